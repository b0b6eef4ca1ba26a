"""Foci tables (one row per focus; CSV, TSV, Excel) read as the field writes them.

The two real tables are read where they are, never copied: JALE's example input from the
installed jale wheel, and Lotter et al. 2023's CSV from the data mirror.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import jale_example, lotter_csv
from mnsmeta.curation.foci_files import FociExperiment, read_foci_file
from mnsmeta.curation.inputs import read_experiments
from mnsmeta.curation.sleuth import read_sleuth
from mnsmeta.curation.tables import column_mapping, read_table
from mnsmeta.data.space import to_mni
from mnsmeta.errors import MnsmetaInputError, Problem


def read(path, columns=None, drop_outside=False):
    problems: list[Problem] = []
    experiments = read_table(path, problems, columns, drop_outside)
    return experiments, problems


TABLE = """study,contrast,n,space,x,y,z
Smith 2010,faces > shapes,24,MNI,-40,20,10
Lee 2015,patients > controls,31,TAL,-22,-4,-18
Smith 2010,faces > shapes,24,MNI,38.5,22,8
Lee 2015,patients > controls,31,TAL,30,4,-16
Smith 2010,voices,24,MNI,-52,-20,4
"""


def test_rows_of_one_study_and_contrast_are_one_experiment_wherever_they_are(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text(TABLE)
    experiments, problems = read(path)
    assert problems == []
    assert [
        (e.name, e.study, e.contrast, e.sample_size, e.space, e.line) for e in experiments
    ] == [
        ("Smith 2010: faces > shapes", "Smith 2010", "faces > shapes", 24, "MNI", 2),
        ("Lee 2015: patients > controls", "Lee 2015", "patients > controls", 31, "TAL", 3),
        ("Smith 2010: voices", "Smith 2010", "voices", 24, "MNI", 6),
    ]
    assert experiments[0].foci == [(-40.0, 20.0, 10.0), (38.5, 22.0, 8.0)]
    assert experiments[0].lines == [2, 4]  # each focus keeps its row
    assert {e.file for e in experiments} == {str(path)}


def test_a_table_and_the_same_sleuth_file_give_the_same_mni_foci(tmp_path):
    """Talairach rows are converted as the Sleuth reader's Talairach blocks are."""
    table = tmp_path / "table.csv"
    table.write_text(TABLE)
    sleuth = tmp_path / "lee.txt"
    sleuth.write_text(
        "// Reference=Talairach\n// Lee 2015: patients > controls\n// Subjects=31\n"
        "-22 -4 -18\n30 4 -16\n"
    )
    from_table, _ = read_experiments(table, "t")
    from_sleuth, _ = read_experiments(sleuth, "s")
    lee = from_table.foci[from_table.foci["experiment_id"] == "Lee 2015: patients > controls"]
    np.testing.assert_array_equal(lee[["x", "y", "z"]].to_numpy(), from_sleuth.xyz)
    np.testing.assert_allclose(
        from_sleuth.xyz, to_mni(np.array([[-22.0, -4, -18], [30, 4, -16]]), np.array(["TAL"] * 2))
    )
    assert from_table.experiments["sample_size_rule"].tolist() == ["column 'n'"] * 3


@pytest.mark.parametrize(
    ("header", "row"),
    [
        ("Publication;N;Space;X;Y;Z", "Smith 2010;24;mni;-40;20;10"),  # semicolons
        (
            "Author(s)\tSubjects\tCoordinate space\tx (mm)\ty (mm)\tz (mm)",
            "Smith 2010\t24\tMNI\t-40\t20\t10",
        ),
        ("Citation,Sample size,SPACE,MNI x,MNI y,MNI z", "Smith 2010,24,MNI152,-40,20,10"),
        ("experiment,no. of subjects,template,X,Y,Z", "Smith 2010,24,MNI,-40,20,10"),
    ],
)
def test_columns_are_found_by_the_names_the_field_uses(tmp_path, header, row):
    path = tmp_path / ("table.tsv" if "\t" in header else "table.csv")
    path.write_text(f"{header}\n{row}\n")
    experiments, problems = read(path)
    assert problems == []
    assert [(e.name, e.sample_size, e.space, e.foci) for e in experiments] == [
        ("Smith 2010", 24, "MNI", [(-40.0, 20.0, 10.0)])
    ]


def test_columns_named_otherwise_are_mapped_by_option(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("Name,People,Ref,a,b,c,Effect\nSmith 2010,24,MNI,-40,20,10,up\n")
    experiments, problems = read(path)
    assert any("no study column" in p.message and "--column study=NAME" in p.fix for p in problems)
    assert experiments == []
    mapping = ["study=Name", "n=People", "space=Ref", "x=a", "y=b", "z=c", "contrast=Effect"]
    experiments, problems = read(path, mapping)
    assert problems == []
    assert [(e.study, e.contrast, e.sample_size) for e in experiments] == [
        ("Smith 2010", "up", 24)
    ]


def test_mapping_the_contrast_column_off_pools_a_study_s_rows(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text(TABLE)
    experiments, _ = read(path, ["contrast="])
    assert [(e.name, len(e.foci)) for e in experiments] == [("Smith 2010", 3), ("Lee 2015", 2)]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["study"], "give ROLE=COLUMN"),
        (["author=Name"], "unknown role 'author'"),
        (["n="], "a table needs its n column"),
    ],
)
def test_a_bad_column_option_is_one_clear_error(value, message):
    with pytest.raises(MnsmetaInputError, match=message):
        column_mapping(value)


def test_two_columns_for_one_role_are_refused_with_the_fix(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("Study,Author,n,space,x,y,z\nS,A,24,MNI,1,2,3\n")
    _, problems = read(path)
    (problem,) = problems
    assert problem.line == 1 and "'Study' and 'Author' could both be the study column" in (
        problem.message
    )
    assert problem.fix == "say which: --column study=Study"


def test_an_experiment_with_two_sample_sizes_is_an_error_naming_the_rows(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text(
        "study,n,space,x,y,z\nA,12,MNI,1,2,3\nB,20,MNI,4,5,6\nA,12,MNI,7,8,9\nA,13,MNI,1,2,4\n"
    )
    _, problems = read(path)
    (problem,) = problems
    assert (problem.line, problem.severity) == (2, "error")
    assert (
        problem.message == "experiment 'A' has 2 different N values: 12 (rows 2, 4); 13 (rows 5)"
    )


def test_mixed_spaces_and_missing_values_are_errors_by_row(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text(
        "study,n,space,x,y,z\nA,12,MNI,1,2,3\nA,12,TAL,4,5,6\nB,NA,MNI,1,2,3\nC,9,SPM,7,8,9\n"
        "D,9,MNI,1,NA,3\nE,9,MNI,1,2,3,5\n"
    )
    _, problems = read(path)
    found = {(p.line, p.message) for p in problems}
    assert (2, "experiment 'A' has 2 different space values: MNI (rows 2); TAL (rows 3)") in found
    assert (4, "experiment 'B' has no N (column 'n' is empty on its rows 4)") in found
    assert (5, "space = 'SPM' is not a space") in found
    assert (6, "y missing") in found
    assert (7, "7 cells but the header has 6") in found
    assert len(problems) == 5 + 1  # and D, left without a focus, is skipped with a warning
    assert [p.message for p in problems if p.is_warning] == ["experiment 'D' has zero foci"]


def test_a_bom_na_cells_a_unicode_minus_and_jale_s_block_layout_are_read(tmp_path):
    """A study's name, N and space on its first row only (JALE's second layout); the rows
    below continue it."""
    path = tmp_path / "table.csv"
    path.write_bytes(
        "\ufeffArticles,Subjects,x,y,z,Space,Comment\n"
        "Kim 2018,15,\u221248,14,10,MNI,NA\n"
        ",,48,14,10,,\n"
        "\n"
        "Ray 2019,20,2,4,6,TAL,NA\n".encode()
    )
    experiments, problems = read(path)
    assert [(e.name, e.sample_size, e.space, e.foci) for e in experiments] == [
        ("Kim 2018", 15, "MNI", [(-48.0, 14.0, 10.0), (48.0, 14.0, 10.0)]),
        ("Ray 2019", 20, "TAL", [(2.0, 4.0, 6.0)]),
    ]
    (warning,) = problems
    assert warning.line == 2 and warning.is_warning and "U+2212 MINUS SIGN" in warning.message


def test_an_excel_table_is_read_with_its_row_numbers(tmp_path):
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Article", "Subjects", "x", "y", "z", "Space"])
    sheet.append(["Kim 2018", 15, -48, 14, 10, "MNI"])
    sheet.append([])  # an empty row keeps its number
    sheet.append(["Kim 2018", 15, 48.5, 14, 10, "MNI"])
    sheet.append(["Kim 2018", 15, "x", 14, 10, "MNI"])
    path = tmp_path / "table.xlsx"
    workbook.save(path)
    experiments, problems = read(path)
    assert [(p.line, p.message) for p in problems] == [(5, "x = 'x' is not a number")]
    assert experiments[0].foci == [(-48.0, 14.0, 10.0), (48.5, 14.0, 10.0)]
    assert experiments[0].lines == [2, 4]


def test_every_reader_returns_the_one_experiment_type(tmp_path):
    """The same two experiments as a Sleuth file, a NIMADS studyset and a table."""
    import json

    sleuth = tmp_path / "same.txt"
    sleuth.write_text(
        "// Reference=MNI\n// Kim 2018: faces\n// Subjects=15\n-48 14 10\n48 14 10\n\n"
        "// Ray 2019: faces\n// Subjects=20\n2 4 6\n"
    )
    table = tmp_path / "same.csv"
    table.write_text(
        "study,contrast,n,space,x,y,z\nKim 2018,faces,15,MNI,-48,14,10\n"
        "Kim 2018,faces,15,MNI,48,14,10\nRay 2019,faces,20,MNI,2,4,6\n"
    )
    studyset = tmp_path / "same.json"
    studyset.write_text(
        json.dumps(
            {
                "id": "s",
                "name": "same",
                "studies": [
                    {
                        "id": study,
                        "name": study,
                        "analyses": [
                            {
                                "id": f"{study}a",
                                "name": "faces",
                                "metadata": {"sample_sizes": [n]},
                                "points": [{"space": "MNI", "coordinates": f} for f in foci],
                            }
                        ],
                    }
                    for study, n, foci in (
                        ("Kim 2018", 15, [[-48, 14, 10], [48, 14, 10]]),
                        ("Ray 2019", 20, [[2, 4, 6]]),
                    )
                ],
            }
        )
    )
    read_back = {}
    for path in (sleuth, table, studyset):
        problems: list[Problem] = []
        experiments = read_foci_file(path, problems)
        assert problems == []
        assert all(type(e) is FociExperiment for e in experiments)
        assert {e.file for e in experiments} == {str(path)}
        read_back[path.suffix] = [
            (e.study, e.contrast, e.sample_size, e.space, e.foci) for e in experiments
        ]
    assert read_back[".txt"] == read_back[".csv"] == read_back[".json"]


# -- the field's real tables, end to end ------------------------------------------------


def test_jale_s_example_input_is_read_as_jale_groups_it():
    """56 articles, one N each (1,266 subjects); JALE's tags split study_49 into low and
    high, which --column contrast=lowVShigh does here too (57 experiments)."""
    path = jale_example()
    experiments, problems = read(path)
    assert len(experiments) == 56
    assert sum(e.sample_size for e in experiments) == 1266
    assert {e.space for e in experiments} == {"MNI", "TAL"}
    assert sum(len(e.foci) for e in experiments) + sum(e.repeated for e in experiments) == 1152
    assert sum(e.repeated for e in experiments) == 7  # each warned at its row
    assert [p.line for p in problems if "entered twice" in p.message] == [
        49, 58, 152, 366, 580, 631, 765,
    ]  # fmt: skip
    assert not [p for p in problems if not p.is_warning]
    by_tag, _ = read(path, ["contrast=lowVShigh"])
    assert len(by_tag) == 57
    assert [e.name for e in by_tag if e.study == "study_49"] == ["study_49: low", "study_49: high"]


def test_lotter_s_csv_gives_the_papers_22_experiments_and_740_subjects():
    """The paper's main ALE pools each publication's contrasts (the authors' reader); with
    the contrasts column, each publication-and-contrast is an experiment (26)."""
    path = lotter_csv()
    pooled, problems = read(path, ["contrast="])
    assert problems == []
    assert len(pooled) == 22 and sum(e.sample_size for e in pooled) == 740
    assert sum(len(e.foci) for e in pooled) == 313
    assert sum(e.space == "TAL" for e in pooled) == 3
    by_contrast, _ = read(path)
    assert len(by_contrast) == 26
    koike = [e for e in by_contrast if e.study == "Koike 2016 1 3 +  2019b"]
    assert len(koike) == 3 and {e.sample_size for e in koike} == {64}


def test_the_sleuth_reader_is_unchanged_by_the_table_reader(tmp_path):
    # A .txt is Sleuth text whatever it holds; a table's header there is an error.
    path = tmp_path / "table.txt"
    path.write_text(TABLE)
    problems: list[Problem] = []
    assert read_sleuth(path, problems) == []
    assert "no '// Reference=' line" in problems[0].message
