"""Contrasts: kinds read from labels, Sleuth and NIMADS in and out, experiments selected by
kind and pooled per study."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import RECORD_HEADER
from mnsmeta.cli import main
from mnsmeta.curation.contrasts import infer_kind
from mnsmeta.curation.experiments import build_experiments
from mnsmeta.curation.importing import import_studies
from mnsmeta.curation.records import load_curation
from mnsmeta.curation.validate import validate_paths

LABELS = [
    ("SAD > HC", "patients>controls"),
    ("HC > SAD", "patients<controls"),
    ("patients < controls", "patients<controls"),
    ("HC > BPD", "patients<controls"),
    ("BPD < HC", "patients<controls"),
    ("HC < BPD", "patients>controls"),
    ("patients gt controls", "patients>controls"),
    ("GSAD > controls: angry faces", "patients>controls"),
    ("healthy controls > patients with SAD", "patients<controls"),
    ("correlation with LSAS", "correlation"),
    ("SAD vs HC", "unknown"),
    ("faces > shapes", "unknown"),
    ("1", "unknown"),
]


@pytest.mark.parametrize(("label", "kind"), LABELS)
def test_a_label_states_its_kind_or_stays_unknown(label, kind):
    assert infer_kind(label) == kind


# Two studies with a block in each direction; Lee also has a task effect and a correlation,
# and two patients > controls blocks that share a peak.
SLEUTH = """// Reference=MNI
// Lee 2015: SAD > HC (angry faces)
// Subjects=40
-22 -4 -18
40 22 -2

// Lee 2015: SAD > HC (happy faces)
// Subjects=40
-22 -4 -18
-40 20 0

// Lee 2015: HC > SAD
// Subjects=40
48 14 10

// Lee 2015: faces > shapes
// Subjects=40
30 -60 -10

// Lee 2015: correlation with LSAS
// Subjects=20
0 50 10

// Kim 2018: patients < controls
// Subjects=30
-48 14 10

// Kim 2018: patients > controls
// Subjects=30
22 -4 -18
"""


@pytest.fixture
def imported(tmp_path):
    root = tmp_path / "coordinates"
    (root / "records").mkdir(parents=True)
    (root / "records" / "sad.tsv").write_text(RECORD_HEADER)
    sleuth = tmp_path / "two_directions.txt"
    sleuth.write_text(SLEUTH)
    messages = import_studies(sleuth, root, "SAD", source_text="Lee 2015 and Kim 2018, Table 2")
    return root, messages


def _foci(experiment_set, study):
    foci = experiment_set.foci[experiment_set.foci["experiment_id"] == study]
    return sorted(map(tuple, foci[["x", "y", "z"]].to_numpy().tolist()))


def test_sleuth_blocks_become_contrasts_with_kinds_and_unknowns_are_listed(imported):
    root, messages = imported
    assert validate_paths([root], use_database=False).problems == []
    contrasts = load_curation(root).contrasts
    assert [(c.study_id, c.label, c.kind) for c in contrasts] == [
        ("lee_2015", "SAD > HC (angry faces)", "patients>controls"),
        ("lee_2015", "SAD > HC (happy faces)", "patients>controls"),
        ("lee_2015", "HC > SAD", "patients<controls"),
        ("lee_2015", "faces > shapes", "unknown"),
        ("lee_2015", "correlation with LSAS", "correlation"),
        ("kim_2018", "patients < controls", "patients<controls"),
        ("kim_2018", "patients > controls", "patients>controls"),
    ]
    assert any("kind unknown for 1 contrast(s)" in m and "faces > shapes" in m for m in messages)


def test_two_directions_give_two_directional_experiments_and_one_pooled(imported):
    root, _ = imported
    curation = load_curation(root)
    pooled = build_experiments(curation, "SAD")
    greater = build_experiments(curation, "SAD", contrast_kinds=("patients>controls",))
    less = build_experiments(curation, "SAD", contrast_kinds=("patients<controls",))
    # One experiment per study in each analysis: one subject group never enters twice.
    assert pooled.ids == greater.ids == less.ids == ["lee_2015", "kim_2018"]
    assert _foci(less, "lee_2015") == [(48, 14, 10)]
    assert _foci(less, "kim_2018") == [(-48, 14, 10)]
    assert _foci(greater, "kim_2018") == [(22, -4, -18)]
    # The study-level analysis pools every contrast; the peak two contrasts share counts once.
    assert len(_foci(pooled, "lee_2015")) == 6
    assert pooled.experiments.loc["lee_2015", "foci_removed_repeated_focus"] == 1
    assert pooled.experiments.loc["lee_2015", "kinds"] == (
        "correlation; patients<controls; patients>controls; unknown"
    )


def test_a_patients_lt_controls_analysis_excludes_every_other_kind(imported):
    root, _ = imported
    less = build_experiments(load_curation(root), "SAD", contrast_kinds=("patients<controls",))
    assert set(less.foci["kind"]) == {"patients<controls"}
    assert set(less.foci["contrast"]) == {"HC > SAD", "patients < controls"}
    assert set(less.experiments["kinds"]) == {"patients<controls"}


def test_a_study_s_contrasts_of_one_kind_pool_into_one_experiment_a_focus_counting_once(
    imported,
):
    root, _ = imported
    greater = build_experiments(load_curation(root), "SAD", contrast_kinds=("patients>controls",))
    lee = greater.experiments.loc["lee_2015"]
    assert lee["contrasts"] == "SAD > HC (angry faces); SAD > HC (happy faces)"
    # The peak both blocks report (-22, -4, -18) counts once.
    assert _foci(greater, "lee_2015") == [(-40, 20, 0), (-22, -4, -18), (40, 22, -2)]
    assert lee["n_foci"] == 3
    np.testing.assert_array_equal(greater.counts, [3, 1])


def test_an_unknown_kind_is_reported_with_its_file_and_line(imported):
    root, _ = imported
    path = root / "contrasts" / "two_directions.tsv"
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace("patients<controls", "patients<<controls")
    path.write_text("\n".join(lines) + "\n")
    problems = [str(p) for p in validate_paths([root], use_database=False).problems]
    assert problems == [
        f"{path}:4: unknown contrast kind 'patients<<controls': use one of patients>controls, "
        "patients<controls, patients<>controls, patients_only, controls_only, all_participants, correlation, unknown"
    ]


def test_a_contrast_must_belong_to_a_study_and_name_its_foci(imported):
    root, _ = imported
    path = root / "contrasts" / "two_directions.tsv"
    with path.open("a") as stream:
        stream.write("nobody_2020\tSAD\tSAD > HC\tpatients>controls\t\t\t\tTable 1\t\n")
        stream.write("kim_2018\tSAD\tSAD > HC\tpatients>controls\t\t\t\tTable 1\t\n")
    problems = [str(p) for p in validate_paths([root], use_database=False).problems]
    assert len(problems) == 2
    assert "belongs to no study: no record of nobody_2020 (SAD)" in problems[0]
    assert "names no experiment of its typed-in foci" in problems[1]


def test_the_between_group_n_counts_both_groups_or_the_patients_alone(imported):
    root, _ = imported
    path = root / "contrasts" / "two_directions.tsv"
    text = path.read_text().replace(
        "kim_2018\tSAD\tpatients < controls\tpatients<controls\t\t\t\t",
        "kim_2018\tSAD\tpatients < controls\tpatients<controls\t\t14\t16\t",
    )
    path.write_text(text)
    curation = load_curation(root)
    assert curation.problems == []
    less = ("patients<controls",)
    both = build_experiments(curation, "SAD", contrast_kinds=less)
    patients = build_experiments(curation, "SAD", contrast_kinds=less, n_rule="patients_only")
    assert both.experiments.loc["kim_2018", "sample_size"] == 30
    assert both.experiments.loc["kim_2018", "sample_size_rule"] == "contrast n_patients+n_controls"
    assert patients.experiments.loc["kim_2018", "sample_size"] == 14
    # Without group sizes the record's N stands, and the patients-only rule says so.
    assert both.experiments.loc["lee_2015", "sample_size"] == 40
    assert "patients not stated" in patients.experiments.loc["lee_2015", "sample_size_rule"]


@pytest.mark.parametrize(
    "variant",
    ["crlf", "cr", "talairach", "split_name"],
)
def test_gingerale_s_variants_of_sleuth_are_read(tmp_path, variant):
    text = SLEUTH
    if variant == "crlf":
        text = text.replace("\n", "\r\n")
    elif variant == "cr":
        text = text.replace("\n", "\r")
    elif variant == "talairach":
        text = text.replace("// Reference=MNI", "// Reference=Talairach")
    elif variant == "split_name":
        text = text.replace(
            "// Kim 2018: patients < controls\n", "// Kim 2018:\n// patients < controls\n"
        )
    root = tmp_path / "coordinates"
    (root / "records").mkdir(parents=True)
    sleuth = tmp_path / "variant.txt"
    sleuth.write_bytes(text.encode())
    import_studies(sleuth, root, "SAD", source_text="test")
    curation = load_curation(root)
    assert curation.problems == []
    labels = [(c.study_id, c.label, c.kind) for c in curation.contrasts]
    assert ("kim_2018", "patients < controls", "patients<controls") in labels
    assert len(labels) == 7
    experiments = build_experiments(curation, "SAD")
    if variant == "talairach":
        # Converted to MNI with NiMARE's Lancaster transform: no focus keeps its numbers.
        assert (48, 14, 10) not in _foci(experiments, "lee_2015")
    else:
        assert (48, 14, 10) in _foci(experiments, "lee_2015")


def _points(experiment_set):
    foci = experiment_set.foci
    return sorted(
        (
            row.experiment_id,
            row.contrast,
            row.kind,
            round(row.x, 6),
            round(row.y, 6),
            round(row.z, 6),
        )
        for row in foci.itertuples()
    )


def test_a_nimads_round_trip_through_nimare_gives_back_studies_contrasts_and_points(
    imported, tmp_path
):
    from nimare.nimads import Studyset

    root, _ = imported
    out = tmp_path / "sad.json"
    result = CliRunner().invoke(
        main,
        ["--coordinates", str(root), "export", "-g", "SAD", "--format", "nimads", "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    studyset = Studyset(str(out))  # NiMARE's own reader
    assert len(studyset.to_dict()["studies"]) == 2
    again = tmp_path / "again"
    (again / "records").mkdir(parents=True)
    import_studies(out, again, "SAD", source_text="round trip")
    before, after = load_curation(root), load_curation(again)
    assert after.problems == []
    assert [(c.study_id, c.label, c.kind) for c in after.contrasts] == [
        (c.study_id, c.label, c.kind) for c in before.contrasts
    ]
    assert _points(build_experiments(after, "SAD")) == _points(build_experiments(before, "SAD"))


def _export(root, kind, out):
    """``mnsmeta export -g SAD --contrast KIND -o OUT`` on the coordinates ``root``."""
    arguments = ["--coordinates", root, "export", "-g", "SAD", "--contrast", kind, "-o", out]
    return CliRunner().invoke(main, [str(a) for a in arguments])


def test_export_of_one_kind_writes_only_its_experiments(imported, tmp_path):
    from nimare.io import convert_sleuth_to_dataset

    root, _ = imported
    out = tmp_path / "less.txt"
    result = _export(root, "patients<controls", out)
    assert result.exit_code == 0, result.output
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # NiMARE's Dataset deprecation
        dataset = convert_sleuth_to_dataset(str(out))
    assert sorted(dataset.coordinates[["x", "y", "z"]].to_numpy().tolist()) == [
        [-48.0, 14.0, 10.0],
        [48.0, 14.0, 10.0],
    ]
    empty = _export(root, "controls_only", tmp_path / "none.txt")
    assert empty.exit_code == 1
    assert "no included study has a curated controls_only contrast" in empty.output


def test_a_studyset_that_nimare_cannot_read_is_one_clear_error(tmp_path):
    root = tmp_path / "coordinates"
    (root / "records").mkdir(parents=True)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"studies": "not a list"}))
    result = CliRunner().invoke(
        main, ["--coordinates", str(root), "import", str(bad), "-g", "SAD"]
    )
    assert result.exit_code == 1
    assert result.output.startswith(f"error: {bad}")
    assert "Traceback" not in result.output


def test_a_kind_curated_on_a_copied_table_labels_the_copy_kept(make_coordinates):
    """19651401's T5 is NeuroQuery's second copy of tbl4: its kind reaches tbl4's foci."""
    from conftest import record_line

    root = make_coordinates([record_line("19651401", group="BPD", n=(15, 15, ""))])
    (root / "contrasts").mkdir()
    (root / "contrasts" / "bpd.tsv").write_text(
        "study_id\tgroup\tcontrast\tkind\ttable_id\tsource\n"
        "19651401\tBPD\tBPD > HC, Table 5\tpatients>controls\tT5\thttps://doi.org/10.0/x\n"
    )
    greater = build_experiments(load_curation(root), "BPD", contrast_kinds=("patients>controls",))
    assert greater.experiments.loc["19651401", "n_foci"] == 10
    assert set(greater.foci["table_id"]) == {"tbl4"}
    assert set(greater.foci["contrast"]) == {"BPD > HC, Table 5"}
