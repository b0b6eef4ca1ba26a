"""The task-matched healthy-only control set: its rule holds on the real databases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse

from mnsmeta.curation import controls
from mnsmeta.curation.records import load_curation
from mnsmeta.data.releases import release_path


@pytest.fixture(scope="module")
def curation():
    from conftest import REPO

    return load_curation(REPO / "coordinates")


@pytest.fixture(scope="module")
def matched(curation):
    curated = {r.pmid for r in curation.records if r.pmid}
    # every eligible SAD study (the primary set and the variant-only ones): the matching rule
    sad = [r.pmid for r in curation.records if r.group == "SAD" and r.included and r.pmid]
    return controls.match_controls(sad, curated), curated


def term_counts(pmids, terms):
    """Title + abstract + keyword counts of ``terms`` for ``pmids`` (rows in that order)."""
    vocabulary = release_path("neuroquery_vocabulary").read_text().splitlines()
    ids = pd.read_csv(release_path("neuroquery_metadata"), sep="\t", usecols=["id"])["id"]
    rows = pd.Series(np.arange(len(ids)), index=ids).reindex(pmids).to_numpy()
    columns = [vocabulary.index(t) for t in terms]
    return sum(
        scipy.sparse.load_npz(release_path(key)).tocsr()[rows][:, columns].toarray()
        for key in controls.SOURCES
    )


def test_each_control_is_healthy_only_uncurated_and_used_once(matched):
    result, curated = matched
    pairs = result.pairs
    assert len(pairs) >= 17  # enough for an ALE (Eickhoff et al., 2016)
    assert pairs["control_pmid"].is_unique
    assert not set(pairs["control_pmid"]) & curated
    assert term_counts(pairs["control_pmid"].tolist(), controls.CLINICAL_TERMS).sum() == 0
    # Nearly all disorder studies name clinical terms: the filter is not vacuous.
    named = term_counts(pairs["pmid"].tolist(), controls.CLINICAL_TERMS).sum(axis=1) > 0
    assert named.mean() >= 0.9


def test_each_pair_shares_tasks_at_the_caliper(matched):
    result, _ = matched
    pairs = result.pairs
    assert (pairs["similarity"] >= controls.CALIPER).all()
    assert (pairs["shared_terms"].str.len() > 0).all()
    disorder = term_counts(pairs["pmid"].tolist(), controls.TASK_TERMS) > 0
    control = term_counts(pairs["control_pmid"].tolist(), controls.TASK_TERMS) > 0
    cosine = (disorder & control).sum(axis=1) / np.sqrt(disorder.sum(axis=1) * control.sum(axis=1))
    np.testing.assert_allclose(pairs["similarity"], cosine, rtol=1e-12)
    # The balance table is computed over exactly these pairs.
    np.testing.assert_allclose(result.balance["disorder_share"], disorder.mean(axis=0))
    np.testing.assert_allclose(result.balance["control_share"], control.mean(axis=0))


def test_matching_is_deterministic(curation, matched):
    result, curated = matched
    # every eligible SAD study (the primary set and the variant-only ones): the matching rule
    sad = [r.pmid for r in curation.records if r.group == "SAD" and r.included and r.pmid]
    again = controls.match_controls(list(reversed(sad)), curated)
    pd.testing.assert_frame_equal(again.matches, result.matches)


def test_the_standardized_difference_of_two_shares():
    disorder = np.array([[1, 0], [1, 0], [0, 0], [0, 0]])  # shares 0.5 and 0
    control = np.array([[1, 0], [0, 0], [0, 0], [0, 0]])  # shares 0.25 and 0
    terms = controls.TASK_TERMS
    table = controls.balance_table(
        np.pad(disorder, ((0, 0), (0, len(terms) - 2))),
        np.pad(control, ((0, 0), (0, len(terms) - 2))),
    )
    expected = (0.5 - 0.25) / np.sqrt((0.25 + 0.1875) / 2)
    assert table["smd"].iloc[0] == pytest.approx(expected)
    assert table["smd"].iloc[1] == 0.0  # neither set names it: balanced, not undefined


def test_sad_is_no_task_term():
    # NeuroQuery lowercases: "SAD", the disorder's acronym, would match every SAD abstract.
    assert "sad" not in controls.TASK_TERMS
