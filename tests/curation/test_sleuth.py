"""Sleuth text files: parsing like GingerALE/NiMARE, exact round trips, clear problems."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nimare.io import convert_sleuth_to_dict

from mnsmeta.curation.sleuth import SleuthExperiment, read_sleuth, write_sleuth
from mnsmeta.errors import Problem

GOOD = """// Reference=Talairach
// Smith et al., 2010: faces > shapes
// Subjects=24
-40 20 10
38.5\t22\t8

// Jones et al., 2012: patients > controls
// Subjects=31
-22 -4 -18
"""


def read(path):
    problems: list[Problem] = []
    return read_sleuth(path, problems), [str(p) for p in problems]


def test_sleuth_file_reads_like_nimare(tmp_path):
    path = tmp_path / "good.txt"
    path.write_text(GOOD)
    experiments, problems = read(path)
    assert problems == []
    assert [(e.study, e.contrast, e.sample_size, e.space) for e in experiments] == [
        ("Smith et al., 2010", "faces > shapes", 24, "TAL"),
        ("Jones et al., 2012", "patients > controls", 31, "TAL"),
    ]
    reference = convert_sleuth_to_dict(str(path))
    smith = reference["Smith et al., 2010"]["contrasts"]["faces > shapes"]
    assert smith["metadata"]["sample_sizes"] == [24]
    np.testing.assert_array_equal(
        np.c_[smith["coords"]["x"], smith["coords"]["y"], smith["coords"]["z"]],
        np.array(experiments[0].foci),
    )


def test_sleuth_round_trip_gives_identical_foci(tmp_path):
    rng = np.random.default_rng(0)
    original = [
        SleuthExperiment(
            f"study {i}: contrast", 10 + i, "MNI", [tuple(f) for f in rng.uniform(-60, 60, (5, 3))]
        )
        for i in range(3)
    ]
    path = tmp_path / "out.txt"
    write_sleuth(path, original)
    again, problems = read(path)
    assert [p for p in problems if "outside" not in p] == []
    assert [e.foci for e in again] == [e.foci for e in original]
    assert [e.sample_size for e in again] == [10, 11, 12]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "// Smith 2010: a\n// Subjects=10\n1 2 3\n",
            "bad.txt:1: no '// Reference=' line before the first experiment",
        ),
        ("// Reference=SPM\n// S: a\n// Subjects=10\n1 2 3\n", "bad.txt:1: unknown space 'SPM'"),
        (
            "// Reference=MNI\n// S: a\n// Subjects=10\n1 2 3\n\n// Reference=Talairach\n// T: b\n// Subjects=9\n4 5 6\n",
            "bad.txt:6: space changes mid-file to 'Talairach'",
        ),
        (
            "// Reference=MNI\n// S: a\n1 2 3\n",
            "bad.txt:2: experiment 'S: a' has no '// Subjects=' line",
        ),
        (
            "// Reference=MNI\n// S: a\n// Subjects=0\n1 2 3\n",
            "bad.txt:3: Subjects = '0' is not a positive whole number",
        ),
        (
            "// Reference=MNI\n// S: a\n// Subjects=10\n1 2\n",
            "bad.txt:4: '1 2' has 2 values, not 3 (x y z)",
        ),
        (
            "// Reference=MNI\n// S: a\n// Subjects=10\n1 2,5 3\n",
            "bad.txt:4: y = '2,5' is not a number (use a decimal point)",
        ),
        (
            "// Reference=MNI\n// S: a\n// Subjects=10\n1 nan 3\n",
            "bad.txt:4: y = 'nan' is not finite",
        ),
        (
            "// Reference=MNI\n// S: a\n// Subjects=10\n1 -200 3\n",
            "lies outside the MNI152 bounding box",
        ),
    ],
)
def test_bad_sleuth_files_are_reported_by_line(tmp_path, text, expected):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    _, problems = read(path)
    assert any(expected in p for p in problems), problems


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.text(
        alphabet=st.sampled_from(list("/ =RefrncMITal0123456789.-,\n\tSubjects:xnaif")),
        max_size=200,
    )
)
def test_any_text_parses_or_reports_problems_never_crashes(tmp_path, text):
    path = tmp_path / "fuzz.txt"
    path.write_text(text)
    problems: list[Problem] = []
    experiments = read_sleuth(path, problems)
    assert isinstance(experiments, list)
    assert all(isinstance(p, Problem) for p in problems)


def test_our_own_exports_are_read_back_with_repeated_foci(tmp_path):
    path = tmp_path / "export.txt"
    path.write_text("// Reference=MNI\n// S: a\n// Subjects=10\n1 2 3\n1 2 3\n4 5 6\n")
    problems = []
    (experiment,) = read_sleuth(path, problems, keep_repeats=True)
    assert problems == []
    assert experiment.foci == [(1.0, 2.0, 3.0), (1.0, 2.0, 3.0), (4.0, 5.0, 6.0)]


def test_a_repeated_focus_is_a_warning_and_the_first_is_kept(tmp_path):
    path = tmp_path / "repeat.txt"
    path.write_text("// Reference=MNI\n// S: a\n// Subjects=10\n1 2 3\n1 2 3\n4 5 6\n")
    problems: list[Problem] = []
    experiments = read_sleuth(path, problems)
    assert experiments[0].foci == [(1.0, 2.0, 3.0), (4.0, 5.0, 6.0)]
    assert [(p.line, p.severity) for p in problems] == [(5, "warning")]
    assert str(problems[0]).startswith(f"{path}:5: warning: focus '1 2 3' entered twice")


# -- a battery: valid Sleuth files round-trip through import and export, never a traceback --

_COORDINATE = st.integers(min_value=-50, max_value=50).map(float)
_FOCUS = st.tuples(_COORDINATE, st.integers(-80, 40).map(float), st.integers(-30, 60).map(float))


@st.composite
def _sleuth_files(draw):
    """Studies of one or two contrasts each; one space for the whole file."""
    space = draw(st.sampled_from(["MNI", "TAL"]))
    n_studies = draw(st.integers(1, 4))
    experiments = []
    for s in range(n_studies):
        n = draw(st.integers(5, 120))
        for c in range(draw(st.integers(1, 2))):
            foci = draw(st.lists(_FOCUS, min_size=1, max_size=6, unique=True))
            experiments.append(SleuthExperiment(f"Study {s} et al: contrast {c}", n, space, foci))
    return experiments


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(experiments=_sleuth_files())
def test_any_valid_sleuth_file_round_trips_through_import_and_export(tmp_path, experiments):
    import shutil
    import uuid

    from click.testing import CliRunner

    from conftest import RECORD_HEADER
    from mnsmeta.cli import main
    from mnsmeta.data.space import to_mni

    root = tmp_path / uuid.uuid4().hex  # one folder per generated example
    (root / "records").mkdir(parents=True)
    (root / "records" / "sad.tsv").write_text(RECORD_HEADER)
    source = root / "typed.txt"
    write_sleuth(source, experiments)
    runner = CliRunner()
    imported = runner.invoke(
        main, ["--coordinates", str(root), "import", str(source), "-g", "SAD"]
    )
    assert imported.exit_code == 0, imported.output
    validated = runner.invoke(main, ["--coordinates", str(root), "validate", "--no-database"])
    assert validated.exit_code == 0, validated.output
    out = root / "out.txt"
    exported = runner.invoke(
        main, ["--coordinates", str(root), "export", "-g", "SAD", "-o", str(out)]
    )
    assert exported.exit_code == 0, exported.output
    problems: list[Problem] = []
    back = read_sleuth(out, problems)
    assert [p for p in problems if not p.is_warning] == []
    # One experiment per study, its contrasts pooled, a location once, in MNI.
    expected = {}
    for experiment in experiments:
        mni = to_mni(
            np.array(experiment.foci), np.array([experiment.space] * len(experiment.foci))
        )
        expected.setdefault(experiment.study, set()).update(map(tuple, np.round(mni, 2)))
    assert len(back) == len(expected)
    got = sorted(sorted(map(tuple, np.round(e.foci, 2))) for e in back)
    assert got == sorted(sorted(foci) for foci in expected.values())
    shutil.rmtree(root)


# -- quirks of real Sleuth files: read, each with a warning that names it ---------------


@pytest.mark.parametrize("minus", ["\u2212", "\u2013", "\u2012", "\u2014", "\ufe63", "\uff0d"])
def test_a_typographic_minus_or_dash_is_read_as_a_minus_with_a_warning(tmp_path, minus):
    path = tmp_path / "pdf.txt"
    path.write_text(f"// Reference=MNI\n// S: a\n// Subjects=10\n{minus}40 20 10\n2 {minus}85 4\n")
    problems: list[Problem] = []
    (experiment,) = read_sleuth(path, problems)
    assert experiment.foci == [(-40.0, 20.0, 10.0), (2.0, -85.0, 4.0)]
    assert [(p.line, p.severity) for p in problems] == [(4, "warning"), (5, "warning")]
    assert str(problems[0]).startswith(f"{path}:4: warning: '{minus}40 20 10' has {minus!r} ")
    assert f"(U+{ord(minus):04X} " in problems[0].message


@pytest.mark.parametrize(
    "subjects", ["// subjects=10", "// Subjects = 10", "//SUBJECTS= 10", "//  Subjects =10\t"]
)
def test_the_subjects_line_is_read_in_any_case_and_spacing(tmp_path, subjects):
    path = tmp_path / "case.txt"
    path.write_text(f"// Reference=MNI\n// S: a\n{subjects}\n1 2 3\n")
    experiments, problems = read(path)
    assert problems == []
    assert [e.sample_size for e in experiments] == [10]


@pytest.mark.parametrize(
    "empty",
    [
        "// Witt 2008: no results\n// Subjects=0\n",  # N 0 and no foci, as in a shared file
        "// Witt 2008: no results\n// Subjects=12\n",
        "// Witt 2008: no results\n",
    ],
)
def test_an_empty_block_is_skipped_with_a_warning(tmp_path, empty):
    path = tmp_path / "shared.txt"
    path.write_text(f"// Reference=MNI\n{empty}\n// T: b\n// Subjects=5\n1 2 3\n")
    problems: list[Problem] = []
    experiments = read_sleuth(path, problems)
    assert [e.name for e in experiments] == ["T: b"]
    assert [str(p) for p in problems] == [
        f"{path}:2: warning: experiment 'Witt 2008: no results' has zero foci: skipped; add its "
        "coordinates below its '// Subjects=' line, or delete it"
    ]


def test_the_same_study_entered_twice_is_a_warning_naming_both(tmp_path):
    path = tmp_path / "twice.txt"
    path.write_text(
        "// Reference=MNI\n// Kim 2018: faces\n// Subjects=15\n1 2 3\n4 5 6\n\n"
        "// Ray 2019: faces\n// Subjects=20\n7 8 9\n\n"
        "// Kim et al. 2018: faces\n// Subjects=15\n4 5 6\n1 2 3\n"
    )
    problems: list[Problem] = []
    experiments = read_sleuth(path, problems)
    assert len(experiments) == 3  # both are used: a warning, not a decision
    (warning,) = problems
    assert (warning.line, warning.severity) == (11, "warning")
    assert warning.message == (
        "experiments 'Kim 2018: faces' (line 2) and 'Kim et al. 2018: faces' have the same 2 "
        "foci (the same study entered twice?)"
    )
