"""From records to ALE experiments, and into NiMARE's containers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import record_line
from mnsmeta.curation.experiments import build_experiments, combine
from mnsmeta.curation.records import load_curation
from mnsmeta.data import databases
from mnsmeta.errors import MnsmetaInputError
from mnsmeta.meta_analysis.datasets import to_dataset, to_studyset

TYPED = [
    "typed2020\tfaces\tTAL\tTable 2\t-40\t20\t10\n",
    "typed2020\tvoices\tMNI\tTable 3\t-24\t-4\t-18\n",
]


@pytest.fixture
def typed_curation(make_coordinates):
    root = make_coordinates(
        [
            record_line("19717138", n=(27, 27, "")),  # Neurosynth, MNI
            record_line("10202567"),  # NeuroQuery only, no N: fallback
            record_line("21356318", status="excluded", reason="resting_state"),
            record_line("typed2020", n=("", "", 18), source_db="manual", n_source="Table 1"),
        ],
        TYPED,
    )
    loaded = load_curation(root)
    assert loaded.problems == []
    return loaded


def test_included_studies_become_one_experiment_each(typed_curation):
    experiment_set = build_experiments(typed_curation, "SAD")
    table = experiment_set.experiments
    assert list(table.index) == ["19717138", "10202567", "typed2020"]
    assert table.loc["19717138", "source"] == "neurosynth"
    assert table.loc["10202567", "source"] == "neuroquery"
    assert table.loc["10202567", "reported_space"] == "UNKNOWN"
    # Both contrasts of the typed study are pooled into one experiment.
    assert table.loc["typed2020", "n_foci"] == 2
    # Every stored focus is analysed or counted by the hygiene rule that removed it.
    stored = databases.study_metadata().loc[19717138, "n_foci_neurosynth"]
    removed = table.filter(like="foci_removed_").loc["19717138"]
    assert table.loc["19717138", "n_foci"] + removed.sum() == stored == 47
    assert removed.to_dict() == {
        "foci_removed_implausible_table": 0,
        "foci_removed_duplicate_table": 0,
        "foci_removed_near_copy_table": 0,
        "foci_removed_repeated_focus": 1,
    }


def test_a_table_stored_twice_is_analysed_once_and_a_focus_counts_once(make_coordinates):
    root = make_coordinates(
        [
            record_line("19651401", group="BPD", n=(15, 15, "")),
            record_line("typed2021", group="BPD", n=("", "", 20), source_db="manual"),
        ],
        # the same peak in two contrasts of one typed-in study
        ["typed2021\ta\tMNI\tTable 2\t-40\t20\t10\n", "typed2021\tb\tMNI\tTable 3\t-40\t20\t10\n"],
    )
    table = build_experiments(load_curation(root), "BPD").experiments
    # NeuroQuery holds tbl2-tbl4 and T2-T5: T2 and T4 are copies, T5 a copy with one z flipped
    assert table.loc["19651401", "foci_removed_duplicate_table"] == 11 + 15
    assert table.loc["19651401", "foci_removed_near_copy_table"] == 10
    assert (
        table.loc["19651401", "n_foci"] + table.filter(like="foci_removed_").loc["19651401"].sum()
        == 100
    )
    assert table.loc["typed2021", "n_foci"] == 1
    assert table.loc["typed2021", "foci_removed_repeated_focus"] == 1


def test_sample_size_rules_and_median_fallback(typed_curation):
    table = build_experiments(typed_curation, "SAD").experiments
    assert table.loc["19717138", "sample_size"] == 54
    assert table.loc["typed2020", "sample_size"] == 18
    assert table.loc["10202567", "sample_size"] == 36  # median of 54 and 18
    assert table.loc["10202567", "sample_size_rule"].startswith("fallback: median N of 2")
    fixed = build_experiments(typed_curation, "SAD", fallback=20).experiments
    assert fixed.loc["10202567", "sample_size"] == 20


def test_typed_talairach_foci_are_converted_to_mni(typed_curation):
    foci = build_experiments(typed_curation, "SAD").foci.query("experiment_id == 'typed2020'")
    np.testing.assert_allclose(
        foci[["x", "y", "z"]].to_numpy(),
        [[-41.662439, 22.916911, 5.640985], [-24, -4, -18]],
        atol=1e-6,
    )


def test_nimare_dataset_holds_the_same_foci_and_sample_sizes(typed_curation):
    experiment_set = build_experiments(typed_curation, "SAD")
    dataset = to_dataset(experiment_set)
    assert sorted(dataset.ids) == sorted(f"{e}-1" for e in experiment_set.experiments.index)
    coordinates = dataset.coordinates.sort_values(["id", "x", "y", "z"])
    ours = experiment_set.foci.assign(id=experiment_set.foci["experiment_id"] + "-1")
    ours = ours.sort_values(["id", "x", "y", "z"])
    np.testing.assert_allclose(
        coordinates[["x", "y", "z"]].to_numpy(), ours[["x", "y", "z"]].to_numpy(), atol=1e-9
    )
    sizes = dataset.metadata.set_index("id")["sample_sizes"]
    assert sizes["10202567-1"] == [36]
    studyset = to_studyset(experiment_set)
    assert len(studyset.studies) == 3


def test_group_without_included_studies_is_a_clear_error(typed_curation):
    with pytest.raises(MnsmetaInputError, match="group BPD: no included study"):
        build_experiments(typed_curation, "BPD")


# -- one experiment per sample, tables that belong, copies decided ----------------------


def test_records_of_one_sample_are_one_experiment_with_the_largest_n(make_coordinates):
    root = make_coordinates(
        [
            record_line("a2020", n=("", "", 18), source_db="manual", sample="lab_2020"),
            record_line("b2021", n=("", "", 25), source_db="manual", sample="lab_2020"),
            record_line("c2022", n=("", "", 30), source_db="manual"),
        ],
        [
            "a2020\tfaces\tMNI\tTable 2\t-40\t20\t10\n",
            "a2020\tfaces\tMNI\tTable 2\t30\t-60\t40\n",
            # the second paper reports one of the same peaks again, and a new one
            "b2021\tfaces\tMNI\tTable 1\t-40\t20\t10\n",
            "b2021\tfaces\tMNI\tTable 1\t44\t10\t24\n",
            "c2022\tfaces\tMNI\tTable 1\t0\t50\t10\n",
        ],
    )
    typed_curation = load_curation(root)
    table = build_experiments(typed_curation, "SAD").experiments
    assert list(table.index) == ["a2020+b2021", "c2022"]
    assert table.loc["a2020+b2021", "studies"] == "a2020; b2021"
    # foci pooled, the repeated peak once; N the largest its records report
    assert table.loc["a2020+b2021", "n_foci"] == 3
    assert table.loc["a2020+b2021", "foci_removed_repeated_focus"] == 1
    assert table.loc["a2020+b2021", "sample_size"] == 25
    assert table.loc["a2020+b2021", "sample_size_rule"].startswith("largest of the sample's")
    # the sensitivity rule: only the first record of a sample
    first = dataclasses.replace(typed_curation, sample_rule="first")
    assert list(build_experiments(first, "SAD").experiments.index) == ["a2020", "c2022"]


@pytest.mark.parametrize(
    ("extra", "admit"),
    [
        ({"table_mix": "other_population"}, "mixed_tables"),
        ({"table_mix": "none;connectivity"}, "mixed_tables"),
        ({"coverage": "roi"}, "roi_coverage"),
    ],
)
def test_studies_whose_tables_do_not_belong_enter_only_their_variant(
    make_coordinates, extra, admit
):
    root = make_coordinates(
        [
            record_line("a2020", n=("", "", 18), source_db="manual"),
            record_line("b2021", n=("", "", 25), source_db="manual", **extra),
        ],
        ["a2020\tf\tMNI\tTable 2\t-40\t20\t10\n", "b2021\tf\tMNI\tTable 1\t44\t10\t24\n"],
    )
    typed_curation = load_curation(root)
    assert typed_curation.problems == []
    assert list(build_experiments(typed_curation, "SAD").experiments.index) == ["a2020"]
    admitted = dataclasses.replace(typed_curation, admit=(admit,))
    assert list(build_experiments(admitted, "SAD").experiments.index) == ["a2020", "b2021"]


def test_a_curator_keeps_the_copy_whose_sign_the_study_names(make_coordinates):
    def foci_of(**extra):
        root = make_coordinates([record_line("19651401", group="BPD", n=(15, 15, ""), **extra)])
        foci = build_experiments(load_curation(root), "BPD").foci
        return {tuple(p) for p in foci[["x", "y", "z"]].to_numpy()}

    # NeuroQuery's tbl4 and T5 differ in one sign: (50, -18, 14) vs (50, -18, -14)
    assert (50.0, -18.0, 14.0) in foci_of() and (50.0, -18.0, -14.0) not in foci_of()
    kept = foci_of(keep_copy="T5")
    assert (50.0, -18.0, -14.0) in kept and (50.0, -18.0, 14.0) not in kept


def test_a_study_whose_every_table_is_not_coordinates_must_be_excluded(make_coordinates):
    # BPD 14643096's only table: (1, 2, 3), (1, 3, 4), ... in the ventricles
    root = make_coordinates([record_line("14643096", group="BPD", n=(15, 15, ""))])
    with pytest.raises(MnsmetaInputError) as error:
        build_experiments(load_curation(root), "BPD")
    assert "implausible_foci" in error.value.problems[0].fix


def test_an_implausible_table_is_dropped_and_counted(make_coordinates):
    # MNS 25671563: Neurosynth's table 39887 holds (1, 2, 3) and (0, 1, 2) nine times
    root = make_coordinates([record_line("25671563", group="MNS", n=("", "", 20))])
    table = build_experiments(load_curation(root), "MNS").experiments
    assert table.loc["25671563", "foci_removed_implausible_table"] == 9
    assert table.loc["25671563", "n_foci"] > 50


def test_pooling_with_a_group_that_selects_nothing_keeps_numeric_foci(typed_curation):
    # The pooled group-contrast variant once met a group with no curated group contrast:
    # its empty set turned the pooled coordinates into objects and the cluster table failed.
    sad = build_experiments(typed_curation, "SAD")
    nothing = build_experiments(typed_curation, "SAD", contrast_kinds=("patients>controls",))
    assert len(nothing.experiments) == 0
    pooled = combine([sad, nothing], "pooled")
    assert pooled.ids == sad.ids
    assert (pooled.foci[["x", "y", "z"]].dtypes == np.float64).all()
    np.testing.assert_array_equal(pooled.ijk(), sad.ijk())
