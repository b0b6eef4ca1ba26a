"""Foci hygiene: a table stored twice is dropped, a focus counts once per experiment."""

from __future__ import annotations

import pandas as pd
import pytest

from mnsmeta.data import databases, hygiene

TABLE_A = [(10.0, 20.0, 30.0), (-40.0, 22.0, 8.0), (2.0, -60.0, 44.0), (30.0, 4.0, -16.0)]


def _foci(tables: dict[str, list[tuple]], pmid: int = 1, source: str = "neuroquery"):
    rows = [
        {"pmid": pmid, "source": source, "table_id": table, "x": x, "y": y, "z": z}
        for table, foci in tables.items()
        for x, y, z in foci
    ]
    return pd.DataFrame(rows)


def test_a_table_stored_twice_is_a_copy_of_the_earlier_one():
    foci = _foci({"tbl2": TABLE_A, "T2": TABLE_A[::-1]})  # same foci, any order
    copies = hygiene.find_table_copies(foci)
    assert copies[["table_id", "copy_of", "rule", "n_foci"]].values.tolist() == [
        ["T2", "tbl2", "duplicate_table", 4]
    ]


def test_a_copy_with_one_sign_flipped_is_a_near_copy_and_names_the_difference():
    flipped = [*TABLE_A[:3], (30.0, 4.0, 16.0)]
    copies = hygiene.find_table_copies(_foci({"tbl4": TABLE_A, "T5": flipped}))
    assert copies[["table_id", "copy_of", "rule"]].values.tolist() == [
        ["T5", "tbl4", "near_copy_table"]
    ]
    assert copies["differences"].tolist() == ["z -16 vs 16 (sign)"]


def test_a_misread_digit_is_a_near_copy_without_sign():
    misread = [*TABLE_A[:3], (30.0, 4.0, -10.0)]
    copies = hygiene.find_table_copies(_foci({"a": TABLE_A, "b": misread}))
    assert copies["differences"].tolist() == ["z -16 vs -10"]


@pytest.mark.parametrize(
    "tables",
    [
        # two contrasts can share their one peak
        {"a": TABLE_A[:1], "b": TABLE_A[:1]},
        # different lengths
        {"a": TABLE_A, "b": TABLE_A[:3]},
        # two of four foci differ: more than 10 %, so two real tables
        {"a": TABLE_A, "b": [*TABLE_A[:2], (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)]},
        # one focus differs in two coordinates: not a misread copy
        {"a": TABLE_A, "b": [*TABLE_A[:3], (31.0, 5.0, -16.0)]},
    ],
)
def test_tables_that_are_not_copies(tables):
    assert hygiene.find_table_copies(_foci(tables)).empty


def test_copies_are_found_within_one_study_and_source_only():
    foci = pd.concat(
        [
            _foci({"t": TABLE_A}, pmid=1),
            _foci({"t": TABLE_A}, pmid=2),
            _foci({"u": TABLE_A}, 1, "x"),
        ]
    )
    assert hygiene.find_table_copies(foci).empty


def test_three_copies_of_one_table_all_point_to_the_first():
    copies = hygiene.find_table_copies(_foci({"a": TABLE_A, "b": TABLE_A, "c": TABLE_A}))
    assert copies[["table_id", "copy_of"]].values.tolist() == [["b", "a"], ["c", "a"]]


def test_marking_keeps_every_focus_and_labels_the_copies():
    foci = _foci({"tbl2": TABLE_A, "T2": TABLE_A, "T3": TABLE_A[:2]})
    marked = hygiene.mark_table_copies(foci)
    assert len(marked) == len(foci)
    assert marked.groupby("table_id", sort=False)["copy_of"].first().to_dict() == {
        "tbl2": "",
        "T2": "tbl2",
        "T3": "",
    }


def test_a_focus_counts_once_per_experiment_but_once_in_each():
    foci = pd.DataFrame(
        {
            "experiment_id": ["1", "1", "1", "2"],
            "x": [10.0, 10.0, 10.004, 10.0],
            "y": [20.0, 20.0, 20.0, 20.0],
            "z": [30.0, 30.0, 30.0, 30.0],
        }
    )
    kept = hygiene.drop_repeated_foci(foci)
    # 10.004 rounds to the stored precision (2 decimals) of 10.0: the same location
    assert kept.index.tolist() == [0, 3]


def test_real_duplicated_neuroquery_tables_of_a_bpd_study():
    """NeuroQuery stores 19651401's tables under tbl2-tbl4 and T2-T5; T5 flips one z."""
    tables = databases.study_tables(19651401).set_index("table_id")
    assert tables["copy_of"].to_dict() == {
        "tbl2": "",
        "tbl3": "",
        "tbl4": "",
        "T2": "tbl2",
        "T3": "",
        "T4": "tbl3",
        "T5": "tbl4",
    }
    assert tables.loc["T5", "rule"] == "near_copy_table"
    assert tables.loc["T5", "differences"] == "z 14 vs -14 (sign)"
    assert tables["foci"].sum() == 100


# -- tables that are not coordinates ----------------------------------------------------

REAL_TABLE = [(-42.0, 18.0, 6.0), (38.0, -52.0, 46.0), (20.0, -4.0, -16.0), (-6.0, 40.0, 22.0)]


@pytest.mark.parametrize(
    ("table", "tests"),
    [
        # BPD 14643096's only table, as Neurosynth stores it
        (
            [(1, 2, 3), (1, 3, 4), (2, 5, 6), (1, 3, 4), (3, 5, 7), (1, 2, 5), (1, 3, 4)],
            ["near_origin", "small_integers"],
        ),
        ([(9, 6, 7), (-3, 6, 7), (3, 6, 9)], ["small_integers"]),
        (
            [(10, 20, 30), (11, -60, 30), (12, 4, -16), (13, 40, 22), (14, 2, 0)],
            ["arithmetic_sequence"],
        ),
        (
            [(63, -30, 16), (-62, -44, 16), (-55, 15, 16), (48, 12, 16), (40, 32, 16)],
            ["constant_column"],
        ),
        # t values where x should be
        ([(5.52, 30, -50), (7.63, 34, -50), (4.84, -28, -56)], ["statistic_like"]),
        (
            [(0.42, 0.83, 0.76), (0.73, 0.86, 0.9), (0.76, 0.59, 0.89)],
            ["near_origin", "statistic_like"],
        ),
    ],
)
def test_tables_that_are_not_coordinates_fail_named_tests(table, tests):
    assert hygiene.implausibility(table) == tests


@pytest.mark.parametrize(
    "table",
    [
        REAL_TABLE,
        # midline foci (x = 0) are real locations
        [(0, 55, 5), (0, 30, 47), (0, -23, 61), (0, -72, 37), (0, -87, -9)],
        # two foci can share any pattern
        [(1, 2, 3), (2, 3, 4)],
        # one decimal coordinate is a converted Talairach focus, not a statistic
        [(-41.5, 18.2, 6.0), (38.0, -52.0, 46.0), (20.0, -4.0, -16.0)],
    ],
)
def test_tables_of_coordinates_pass(table):
    assert hygiene.implausibility(table) == []


def test_the_real_artefact_tables_are_flagged_in_the_merged_databases():
    flagged = databases.implausible_tables([14643096, 25671563, 19717138])
    assert flagged[["pmid", "table_id", "n_foci"]].values.tolist() == [
        [14643096, "14713", 7],
        [25671563, "39887", 9],
    ]


def test_the_rule_flags_few_tables_of_the_whole_merged_database():
    # 144 of the 36,444 merged tables (checked by eye: 20 drawn at random were 18 non-
    # coordinates, one constant-z table and one midline list, which the x = 0 exemption passes)
    flagged = databases.implausible_tables()
    assert len(flagged) == 144
    assert flagged["tests"].str.contains("near_origin").sum() == 88
