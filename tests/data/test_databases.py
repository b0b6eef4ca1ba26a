"""The merged coordinate table from both databases (real data, through the mirror)."""

from __future__ import annotations

import numpy as np
import pytest
from nimare.utils import tal2mni

from mnsmeta.data import databases


def test_talairach_focus_converts_like_nimare():
    mni = databases.to_mni(np.array([[-40.0, 20.0, 10.0]]), np.array(["TAL"]))
    np.testing.assert_allclose(mni, [[-41.662439, 22.916911, 5.640985]], atol=1e-6)
    np.testing.assert_allclose(mni, tal2mni(np.array([[-40.0, 20.0, 10.0]])), atol=1e-12)


def test_mni_and_unknown_foci_are_left_as_reported():
    xyz = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    np.testing.assert_array_equal(databases.to_mni(xyz, np.array(["MNI", "UNKNOWN"])), xyz)


def test_database_study_counts():
    studies = databases.study_metadata()
    assert len(studies) == 19148  # union of 14,371 Neurosynth and 13,459 NeuroQuery PMIDs
    assert (studies["n_foci_neurosynth"] > 0).sum() == 14371
    assert (studies["n_foci_neuroquery"] > 0).sum() == 13459
    both = (studies["n_foci_neurosynth"] > 0) & (studies["n_foci_neuroquery"] > 0)
    assert both.sum() == 8682


def test_merged_table_takes_one_source_per_study():
    merged = databases.merged_foci()
    per_study = merged.groupby("pmid")["source"].nunique()
    assert per_study.max() == 1
    sources = merged.groupby("pmid")["source"].first().value_counts()
    assert sources["neurosynth"] == 13238
    assert sources["neuroquery"] == 5910
    assert len(merged) == 664451


@pytest.mark.parametrize(
    ("ns_foci", "nq_foci", "space", "expected"),
    [
        (10, 12, "MNI", "neurosynth"),
        (10, 12, "TAL", "neurosynth"),
        (10, 12, "UNKNOWN", "neuroquery"),
        (0, 12, None, "neuroquery"),
        (10, 0, "UNKNOWN", "neurosynth"),
    ],
)
def test_merge_rule(ns_foci, nq_foci, space, expected):
    assert databases.choose_source(ns_foci, nq_foci, space) == expected


def test_neurosynth_talairach_study_is_converted_in_the_merged_table():
    pmid = 9185551  # Neurosynth says TAL; not in NeuroQuery
    raw = databases.all_foci().query("pmid == @pmid")
    merged = databases.merged_foci(pmids=[pmid])
    assert set(merged["reported_space"]) == {"TAL"}
    np.testing.assert_allclose(
        merged[["x", "y", "z"]].to_numpy(), tal2mni(raw[["x", "y", "z"]].to_numpy()), atol=1e-9
    )


def test_neuroquery_only_study_has_unknown_space_until_curated():
    pmid = 10202567  # NeuroQuery only
    merged = databases.merged_foci(pmids=[pmid])
    assert set(merged["source"]) == {"neuroquery"}
    assert set(merged["reported_space"]) == {"UNKNOWN"}
    assert merged["space_rule"].str.contains("MNI assumed").all()
    curated = databases.merged_foci(space_overrides={pmid: "TAL"}, pmids=[pmid])
    raw = databases.all_foci().query("pmid == @pmid and source == 'neuroquery'")
    np.testing.assert_allclose(
        curated[["x", "y", "z"]].to_numpy(), tal2mni(raw[["x", "y", "z"]].to_numpy()), atol=1e-9
    )


def test_source_override_picks_the_other_database():
    pmid = 10666552  # in both databases, Neurosynth knows the space (MNI)
    assert set(databases.merged_foci(pmids=[pmid])["source"]) == {"neurosynth"}
    chosen = databases.merged_foci(source_overrides={pmid: "neuroquery"}, pmids=[pmid])
    assert set(chosen["source"]) == {"neuroquery"}
    assert len(chosen) == 21
