"""The command line: help that teaches, errors without tracebacks, import and export."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from conftest import record_line
from mnsmeta import __version__
from mnsmeta.cli import main
from mnsmeta.curation.sleuth import read_sleuth

SUBCOMMANDS = [
    "fetch",
    "validate",
    "studies",
    "import",
    "export",
    "run",
    "overlap",
    "robustness",
    "specificity",
    "claims",
    "report",
]
SLEUTH = """// Reference=MNI
// Lee et al., 2015: patients > controls
// Subjects=22
-24 -4 -18
42 18 4

// Lee et al., 2015: controls > patients
// Subjects=22
-46 14 22
"""


def invoke(*args):
    return CliRunner().invoke(main, list(map(str, args)), catch_exceptions=False)


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert __version__ in result.output


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_help_shows_an_example(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Example: " in result.output
    assert "mnsmeta " + command in result.output


def test_specificity_refuses_no_permutations_and_a_missing_results_folder(tmp_path):
    result = CliRunner().invoke(main, ["specificity", "--n-perm", "0"])
    assert result.exit_code == 1
    assert "--n-perm 0 --replicates 100: give positive numbers" in result.output
    missing = CliRunner().invoke(main, ["specificity", "--output", str(tmp_path / "none")])
    assert missing.exit_code == 1 and "Traceback" not in missing.output
    assert "run `mnsmeta run` first" in missing.output


def test_validate_reports_problems_and_exits_nonzero_without_traceback(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("// S: a\n// Subjects=10\n1 2 3\n")
    process = subprocess.run(
        [sys.executable, "-m", "mnsmeta", "validate", "--no-database", str(bad)],
        capture_output=True,
        text=True,
    )
    assert process.returncode == 1
    assert f"{bad}:1: no '// Reference=' line" in process.stderr
    assert "error: 1 error(s), 0 warning(s) found" in process.stderr
    assert "Traceback" not in process.stderr


def test_import_then_validate_then_export_round_trip(make_coordinates, tmp_path):
    root = make_coordinates([record_line("19717138", n=(27, 27, ""))])
    paper = tmp_path / "lee2015_table2.txt"
    paper.write_text(SLEUTH)
    result = invoke(
        "--coordinates", root, "import", paper, "--group", "SAD", "--source", "Lee 2015, Table 2"
    )
    assert result.exit_code == 0, result.output
    assert (root / "manual" / "lee2015_table2.tsv").is_file()
    records = (root / "records" / "sad.tsv").read_text().splitlines()
    assert records[1].split("\t")[:5] == [
        "lee_et_al_2015",
        "SAD",
        "task_fmri",
        "patients_vs_controls",
        "included",
    ]

    assert invoke("--coordinates", root, "validate", "--no-database", root).exit_code == 0
    out = tmp_path / "sad.txt"
    result = invoke("--coordinates", root, "export", "--group", "SAD", "-o", out)
    assert result.exit_code == 0, result.output
    experiments = read_sleuth(out, [])
    lee = next(e for e in experiments if e.study == "lee_et_al_2015")
    # Two contrasts of one study pooled into one experiment, foci unchanged (MNI).
    assert sorted(lee.foci) == sorted(
        [(-24.0, -4.0, -18.0), (42.0, 18.0, 4.0), (-46.0, 14.0, 22.0)]
    )
    assert lee.sample_size == 22


def test_import_refuses_a_study_already_curated(make_coordinates, tmp_path):
    root = make_coordinates([record_line("19717138")])
    paper = tmp_path / "lee.txt"
    paper.write_text(SLEUTH)
    assert invoke("--coordinates", root, "import", paper, "-g", "SAD").exit_code == 0
    (root / "manual" / "lee.tsv").rename(root / "manual" / "other.tsv")
    result = CliRunner().invoke(
        main, ["--coordinates", str(root), "import", str(paper), "-g", "SAD"]
    )
    assert result.exit_code == 1
    assert "already curated in group SAD: lee_et_al_2015" in result.output


def test_studies_lists_counts(make_coordinates):
    root = make_coordinates([record_line("19717138", n=(27, 27, "")), record_line("10202567")])
    result = invoke("--coordinates", root, "studies", "-g", "SAD")
    assert result.exit_code == 0
    assert "SAD: 2 records, 2 experiments included" in result.output
    assert "fallback N=54 for 1" in result.output


def test_export_nimare_json(make_coordinates, tmp_path):
    import json

    root = make_coordinates([record_line("19717138", n=(27, 27, ""))])
    out = tmp_path / "sad.json"
    assert (
        invoke(
            "--coordinates", root, "export", "-g", "SAD", "--format", "nimare", "-o", out
        ).exit_code
        == 0
    )
    data = json.loads(out.read_text())
    assert data["19717138"]["contrasts"]["1"]["metadata"]["sample_sizes"] == [54]


def test_overlap_before_run_says_what_to_do(tmp_path):
    from conftest import REPO

    result = CliRunner().invoke(
        main, ["--coordinates", str(REPO / "coordinates"), "overlap", "--output", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "missing: run the MNS analysis first (mnsmeta run --analyses MNS)" in result.output


def test_bad_user_mask_is_one_clear_error(tmp_path):
    from conftest import REPO

    mask = tmp_path / "mask.nii.gz"
    mask.write_text("not an image")
    # The user's mask is checked before anything else is read or computed.
    result = CliRunner().invoke(
        main,
        [
            "--coordinates",
            str(REPO / "coordinates"),
            "overlap",
            "--output",
            str(tmp_path),
            "--mask",
            str(mask),
        ],
    )
    assert result.exit_code == 1
    assert "cannot be read as a NIfTI image" in result.output
    assert "Traceback" not in result.output


def test_import_reads_a_foci_table_with_its_columns_named_by_option(make_coordinates, tmp_path):
    root = make_coordinates([record_line("19717138", n=(27, 27, ""))])
    table = tmp_path / "supplement.csv"
    table.write_text(
        "Author,Direction,Sample,Space,x,y,z\n"
        "Kim 2018,SAD > HC,30,MNI,-24,-4,-18\n"
        "Kim 2018,HC > SAD,30,MNI,-46,14,22\n"
        "Kim 2018,SAD > HC,30,MNI,42,18,4\n"
    )
    refused = CliRunner().invoke(
        main, ["--coordinates", str(root), "import", str(table), "-g", "SAD"]
    )
    assert refused.exit_code == 1
    assert "no n column" in refused.output and "--column n=NAME" in refused.output
    result = invoke("--coordinates", root, "import", table, "-g", "SAD", "--column", "n=Sample")
    assert result.exit_code == 0, result.output
    contrasts = (root / "contrasts" / "supplement.tsv").read_text().splitlines()
    kinds = [
        (line.split("\t")[0], line.split("\t")[2], line.split("\t")[3]) for line in contrasts[1:]
    ]
    assert kinds == [
        ("kim_2018", "SAD > HC", "patients>controls"),
        ("kim_2018", "HC > SAD", "patients<controls"),
    ]
    manual = (root / "manual" / "supplement.tsv").read_text().splitlines()
    assert len(manual) == 1 + 3
    assert invoke("--coordinates", root, "validate", "--no-database", root).exit_code == 0
