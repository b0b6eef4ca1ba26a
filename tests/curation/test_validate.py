"""Validation: every bad input is reported as file:line: what is wrong: the fix."""

from __future__ import annotations

import pytest

from conftest import MANUAL_HEADER, RECORD_HEADER, record_line
from mnsmeta.curation.validate import validate_paths


def problems_of(*paths, use_database=False):
    return [str(p) for p in validate_paths(list(paths), use_database=use_database).problems]


def manual_study(study_id="typed2020"):
    return record_line(study_id, n=("", "", 20), source_db="manual", n_source="Table 2")


def test_a_clean_folder_has_no_problems(make_coordinates):
    root = make_coordinates(
        [record_line("19717138", n=(27, 27, "")), manual_study()],
        [
            "typed2020\tfaces\tMNI\tTable 2\t-24\t-4\t-18\n",
            "typed2020\tfaces\tTAL\tTable 2\t40\t20\t10\n",
        ],
    )
    assert problems_of(root) == []


@pytest.mark.parametrize(
    ("records", "manual", "expected"),
    [
        # unknown space
        (
            [manual_study()],
            ["typed2020\tc\tSPM\tT1\t1\t2\t3\n"],
            "manual/typed.tsv:2: unknown space 'SPM': use MNI or TAL",
        ),
        # non-numeric x, with a hint for decimal commas
        (
            [manual_study()],
            ["typed2020\tc\tMNI\tT1\t12,5\t2\t3\n"],
            "typed.tsv:2: x '12,5' is not a number (use a decimal point)",
        ),
        # missing y
        ([manual_study()], ["typed2020\tc\tMNI\tT1\t12\t\t3\n"], "typed.tsv:2: y missing"),
        # NaN and infinity
        (
            [manual_study()],
            ["typed2020\tc\tMNI\tT1\tnan\t2\t3\n"],
            "typed.tsv:2: x = 'nan' is not finite",
        ),
        (
            [manual_study()],
            ["typed2020\tc\tMNI\tT1\t1\tinf\t3\n"],
            "typed.tsv:2: y = 'inf' is not finite",
        ),
        # outside the MNI bounding box
        (
            [manual_study()],
            ["typed2020\tc\tMNI\tT1\t12\t-140\t3\n"],
            "typed.tsv:2: focus (12, -140, 3) (MNI) lies outside the MNI152 bounding box",
        ),
        # inside the box but far outside the brain
        ([manual_study()], ["typed2020\tc\tMNI\tT1\t85\t80\t90\n"], "mm outside the brain mask"),
        # duplicate study id
        (
            [record_line("123"), record_line("123")],
            None,
            "test.tsv:3: duplicate study_id 123 in group SAD (also",
        ),
        # missing sample size where one is required (manual study)
        (
            [record_line("typed2020", source_db="manual")],
            ["typed2020\tc\tMNI\tT1\t1\t2\t3\n"],
            "test.tsv:2: study 'typed2020' has manual coordinates but no sample size",
        ),
        # non-positive and non-integer sample sizes
        (
            [record_line("123", n=(0, 20, ""))],
            None,
            "test.tsv:2: n_patients = '0' is not a positive whole number",
        ),
        (
            [record_line("123", n=(12.5, 20, ""))],
            None,
            "n_patients = '12.5' is not a positive whole number",
        ),
        # unknown group and modality
        (
            [record_line("123", group="OCD")],
            None,
            "test.tsv:2: unknown group 'OCD': use one of SAD, BPD, MNS",
        ),
        ([record_line("123", modality="fNIRS")], None, "test.tsv:2: unknown modality 'fNIRS'"),
        # an experiment with zero foci
        ([manual_study()], [], "test.tsv:2: experiment typed2020 has zero foci"),
        # a PMID that is not an integer
        ([record_line("PMC12345")], None, "test.tsv:2: PMID 'PMC12345' is not an integer"),
        # exclusion needs a reason from the fixed list
        (
            [record_line("123", status="excluded", reason="boring")],
            None,
            "excluded with reason 'boring'",
        ),
        # a number without the place it was read
        (
            [record_line("123", n=(20, 20, ""), n_source="")],
            None,
            "sample size given without n_source",
        ),
    ],
)
def test_bad_input_is_reported_with_file_line_and_fix(make_coordinates, records, manual, expected):
    found = problems_of(make_coordinates(records, manual))
    assert any(expected in problem for problem in found), found
    assert all(problem.count(": ") >= 2 for problem in found)  # file:line: what: fix


def test_all_problems_are_reported_at_once(make_coordinates):
    root = make_coordinates(
        [record_line("x1"), record_line("123", group="OCD"), record_line("456", n=(-3, 1, ""))]
    )
    found = problems_of(root)
    assert len(found) == 3
    assert [p.split(":")[1] for p in found] == ["2", "3", "4"]


def test_empty_file(tmp_path):
    path = tmp_path / "empty.tsv"
    path.write_text("\n\n")
    assert problems_of(path) == [f"{path}: the file is empty: add content or delete it"]


LINE = "123\tSAD\ttask_fmri\tpatients_vs_controls\tincluded\t\t\t\t\t\t\t\t\t\tM\u00fcller\n"


@pytest.mark.parametrize("encoding", ["cp1252", "utf-16"])
def test_windows_encodings_are_decoded_with_a_warning(tmp_path, caplog, encoding):
    from mnsmeta.curation.records import read_records

    path = tmp_path / f"{encoding}.tsv"
    path.write_bytes((RECORD_HEADER + LINE).encode(encoding))  # Python's utf-16 writes a BOM
    problems = []
    (record,) = read_records(path, problems)
    assert problems == []
    assert record.note == "M\u00fcller"
    assert "UTF-8 is preferred" in caplog.text


def test_a_file_in_no_known_encoding_is_one_clear_problem(tmp_path):
    path = tmp_path / "binary.tsv"
    path.write_bytes(RECORD_HEADER.encode() + b"123\tSAD\x00\x81\n")
    assert problems_of(path) == [
        f"{path}:2: not UTF-8 (byte 0x81): save the file as UTF-8 (in a spreadsheet: 'UTF-8 CSV/TSV')"
    ]


def test_single_manual_file_is_recognised_by_its_columns(tmp_path):
    path = tmp_path / "typed.tsv"
    path.write_text(MANUAL_HEADER + "s1\tc\tMNI\tT1\tabc\t2\t3\n")
    found = problems_of(path)
    assert any("typed.tsv:2: x 'abc' is not a number" in p for p in found)


def test_included_study_must_have_foci_in_the_database(make_coordinates):
    # 99999999 is in neither database; 10202567 has foci only in NeuroQuery.
    root = make_coordinates(
        [record_line("99999999"), record_line("10202567", source_db="neurosynth")]
    )
    found = problems_of(root, use_database=True)
    assert any("PMID 99999999 is in neither Neurosynth 0.7 nor NeuroQuery 1" in p for p in found)
    assert any("experiment 10202567 has zero foci in neurosynth" in p for p in found)


def test_flagged_study_must_have_its_flag_acknowledged(make_coordinates):
    root = make_coordinates([record_line("16997576", group="MNS", design="healthy_only")])
    found = problems_of(root, use_database=True)
    assert any(
        "study 16997576 is flagged many_foci=116 but its flags column says (nothing)" in p
        for p in found
    )


def test_claims_file_problems(tmp_path):
    path = tmp_path / "claims.toml"
    path.write_text(
        '[regions]\nIFG = ["Not_A_Label"]\n\n[[claim]]\nid = "a"\nparaphrase = "x"\nanalysis = "OCD"\ntest = "convergence"\nregions = ["IPL"]\ndirection = "any"\n'
    )
    found = problems_of(path)
    assert any("region IFG: unknown Harvard-Oxford label(s) Not_A_Label" in p for p in found)
    assert any("claim 1 (a): unknown analysis 'OCD'" in p for p in found)
    assert any("claim 1 (a): undefined region(s) IPL" in p for p in found)


def test_claims_file_regions_per_atlas_and_claim_settings_are_checked(tmp_path):
    path = tmp_path / "claims.toml"
    path.write_text(
        'atlas = "talairach"\n[regions.IFG]\njuelich = ["GM_Broca_44"]\nmin_abs_x_mm = "wide"\n\n'
        '[[claim]]\nid = "a"\nparaphrase = "x"\nanalysis = "SAD"\ntest = "convergence"\n'
        'regions = ["IFG"]\ndirection = "any"\nalpha = 2\nrequires = "contrasts"\nmask = "x"\n'
    )
    found = problems_of(path)
    assert any("atlas 'talairach' unknown" in p for p in found)
    assert any("region IFG: unknown Juelich label(s) GM_Broca_44" in p for p in found)
    assert any("region IFG: min_abs_x_mm 'wide'" in p for p in found)
    assert any("claim 1 (a): alpha 2 is not a probability" in p for p in found)
    assert any("claim 1 (a): unknown requires 'contrasts'" in p for p in found)
    assert any("claim 1 (a): unknown mask 'x'" in p for p in found)


GOOD_ANALYSES = '[[analysis]]\nname = "SAD"\nkind = "ale"\ngroups = ["SAD"]\n'
BROKEN_ANALYSES = [
    ('directions = ["hypo"]\n', "5: analysis 1 (SAD): unknown key 'directions'"),
    ('contrasts = ["hypo"]\n', "analysis 1 (SAD): contrasts ['hypo']"),
    ('modalities = ["fmri"]\n', "analysis 1 (SAD): modalities ['fmri']"),
    ('\n[[analysis]]\nname = "SAD"\nkind = "ale"\ngroups = ["SAD"]\n', "duplicate name"),
    ('\n[[analysis]]\nname = "x"\nkind = "conjunction"\ninputs = ["SAD"]\n', "inputs ['SAD']"),
    ('\n[[analysis]]\nname = "y"\nkind = "meta"\n', "unknown kind 'meta'"),
    ('\n[[analysis]]\nname = "z"\nkind = "ale"\ngroups = ["OCD"]\n', "groups ['OCD']"),
    ('\n[[analysis]]\nname = "bad name"\nkind = "ale"\ngroups = ["SAD"]\n', "name must be"),
    ("\n[settings]\nn_iters = 5\n", "unknown table or key 'settings'"),
    ('\n[[analysis]]\nname = "w"\nkind = "ale"\ngroup = ["SAD"]\n', "unknown key 'group'"),
    ('paradigms = ["watching"]\n', "analysis 1 (SAD): paradigms ['watching']"),
    ('effectors = ["foot"]\n', "analysis 1 (SAD): effectors ['foot']"),
    ('mask = "user"\n', "analysis 1 (SAD): mask 'user'"),
    ('\n[[analysis]]\nname = "v"\nkind = "ale"\ncontrols = "SAD"\nparadigms = ["pain"]\n',
     "analysis 2 (v): paradigms ['pain']"),
]  # fmt: skip


@pytest.mark.parametrize(("extra", "expected"), BROKEN_ANALYSES)
def test_validate_reads_the_analyses_file_with_the_rules_of_run(tmp_path, extra, expected):
    from mnsmeta.curation.analyses import read_analyses
    from mnsmeta.errors import MnsmetaInputError

    path = tmp_path / "analyses.toml"
    path.write_text(GOOD_ANALYSES + extra)
    found = problems_of(path)
    assert any(expected in problem for problem in found), found
    with pytest.raises(MnsmetaInputError):  # and run refuses it too
        read_analyses(path)


def test_an_unknown_key_of_a_claim_names_its_line_and_the_known_keys(tmp_path):
    path = tmp_path / "claims.toml"
    path.write_text(
        '[[claim]]\nid = "x"\nparaphrase = "p"\nanalysis = "SAD"\ntest = "convergence"\n'
        'direction = "any"\nregion = ["IFG"]\n'
    )
    assert problems_of(path) == [
        f"{path}:7: claim 1 (x): unknown key 'region': use only id, paraphrase, quote_hint, "
        "estimand, analysis, test, regions, direction, alpha, mask, requires (check the spelling)"
    ]


def test_warnings_are_reported_but_stop_only_a_strict_validation(make_coordinates):
    """A repeated focus counts once and a focus outside the brain is used as given."""
    from click.testing import CliRunner

    from mnsmeta.cli import main

    root = make_coordinates(
        [manual_study()],
        [
            "typed2020\tc\tMNI\tT1\t-24\t-4\t-18\n",
            "typed2020\tc\tMNI\tT1\t-24\t-4\t-18\n",  # repeated
            "typed2020\tc\tMNI\tT1\t84\t-20\t0\n",  # 14 mm outside the brain mask
        ],
    )
    problems = validate_paths([root], use_database=False).problems
    assert [(p.line, p.severity) for p in problems] == [(3, "warning"), (4, "warning")]
    assert "counts once" in problems[0].fix and "used as given" in problems[1].fix
    runner = CliRunner()
    lenient = runner.invoke(main, ["validate", "--no-database", str(root)])
    assert lenient.exit_code == 0 and "2 warning(s)" in lenient.output
    strict = runner.invoke(main, ["validate", "--no-database", "--strict", str(root)])
    assert strict.exit_code == 1 and "0 error(s), 2 warning(s) found (--strict)" in strict.output


def _studyset(points):
    import json

    return json.dumps(
        {
            "id": "s",
            "name": "s",
            "studies": [
                {
                    "id": "kim",
                    "name": "Kim 2018",
                    "analyses": [
                        {
                            "id": "a",
                            "name": "faces",
                            "metadata": {"sample_sizes": [15]},
                            "points": [{"space": "MNI", "coordinates": p} for p in points],
                        }
                    ],
                }
            ],
        }
    )


def test_validate_reads_every_foci_format_that_ale_and_import_read(tmp_path):
    """Sleuth text, a NIMADS studyset (refused before), and tables: CSV, TSV and Excel."""
    from openpyxl import Workbook

    (tmp_path / "a.txt").write_text("// Reference=MNI\n// S: a\n// Subjects=10\n1 2 3\n")
    (tmp_path / "b.json").write_text(_studyset([[1, 2, 3], [4, 5, 6]]))
    (tmp_path / "c.csv").write_text("study,n,space,x,y,z\nS,10,MNI,1,2,3\nT,12,MNI,4,5,6\n")
    (tmp_path / "d.tsv").write_text("Study\tN\tSpace\tX\tY\tZ\nS\t10\tMNI\t1\t2\t3\n")
    workbook = Workbook()
    for row in (["Article", "Subjects", "x", "y", "z", "Space"], ["S", 10, 1, 2, 3, "MNI"]):
        workbook.active.append(row)
    workbook.save(tmp_path / "e.xlsx")
    paths = [tmp_path / name for name in ("a.txt", "b.json", "c.csv", "d.tsv", "e.xlsx")]
    report = validate_paths(paths, use_database=False)
    assert report.problems == []
    assert (report.files, report.foci_experiments) == (5, 1 + 1 + 2 + 1 + 1)


def test_validate_reports_a_foci_file_s_problems_as_ale_would(tmp_path):
    (tmp_path / "bad.json").write_text(_studyset([[1, -200, 3]]))
    (tmp_path / "bad.csv").write_text("Name,n,space,x,y,z\nS,10,MNI,1,2,3\n")
    found = problems_of(tmp_path / "bad.json", tmp_path / "bad.csv")
    assert found[0].startswith(
        f"{tmp_path / 'bad.json'}: focus (1, -200, 3) (MNI) lies outside the MNI152 bounding "
        "box: check the sign and order of x, y, z and the space; or drop such foci, each "
        "listed: `mnsmeta ale --drop-outside`"
    )
    assert found[1].startswith(f"{tmp_path / 'bad.csv'}:1: no study column")
    named = validate_paths([tmp_path / "bad.csv"], use_database=False, columns=["study=Name"])
    assert named.problems == [] and named.foci_experiments == 1
