"""The paradigm-matched, screened healthy-only control set: its rule holds on the real databases."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import scipy.sparse

from mnsmeta.curation import controls
from mnsmeta.data.releases import release_path

#: Controls an independent audit read as invalid in the term-matched set of round 3, and what
#: they are: the screening must catch each by what it is, not by its ID.
AUDIT_NON_CONTROLS = {
    17095252: "not task imaging",  # MEG
    25629899: "not task imaging",  # MEG, title silent: its terms say so
    22525875: "not task imaging",  # MEG
    22941501: "not task imaging",  # fNIRS
    25712871: "not task imaging",  # VBM of a personality trait
    21945697: "not task imaging",  # sleep K-complexes
    25184294: "selected sample",  # chronic occupational stress
    24893064: "selected sample",  # burnout
    26878057: "selected sample",  # psychopathic offenders
}


def disorder_studies(project_curation, group):
    """The group's database studies and their curated paradigms, as the run matches them."""
    first = dataclasses.replace(project_curation, sample_rule="first")
    return {r.pmid: r.paradigm for r in first.for_group(group) if not r.is_manual}


@pytest.fixture(scope="module")
def matched(project_curation):
    curated = {r.pmid for r in project_curation.records if r.pmid}
    return {
        group: controls.match_controls(
            disorder_studies(project_curation, group), curated, project_curation.rejected_controls
        )
        for group in ("SAD", "BPD")
    }, curated


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


def test_the_audits_non_controls_are_screened_out_by_what_they_are():
    reasons = controls.screen(list(AUDIT_NON_CONTROLS))["reason"]
    for pmid, expected in AUDIT_NON_CONTROLS.items():
        assert reasons[pmid].startswith(expected), (pmid, reasons[pmid])


def test_screening_reads_titles_and_terms_not_ids():
    pattern = controls.NOT_TASK_IMAGING_TITLE
    assert pattern.search("Gamma synchronization to faces: a MEG study")
    assert pattern.search("Resting-state networks of the amygdala")
    assert pattern.search("A functional near-infrared spectroscopy study of exclusion")
    # acronyms as written: "meg" inside a word is not MEG
    assert not pattern.search("Omega-band? No: an fMRI study of faces")
    assert not pattern.search("Amygdala responses to fearful faces: an fMRI study")
    selected = controls.SELECTED_SAMPLE_TITLE
    for title in ("Empathy in psychopathic offenders", "Burnout severity and empathy",
                  "High trait anxiety and threat", "Oxytocin and mind reading"):  # fmt: skip
        assert selected.search(title), title
    assert not selected.search("Neural correlates of regulation of negative emotions")


def test_each_control_is_screened_uncurated_used_once_and_of_its_studys_paradigm(matched):
    results, curated = matched
    for result in results.values():
        pairs = result.pairs
        assert pairs["control_pmid"].is_unique
        assert not set(pairs["control_pmid"]) & curated
        assert (controls.screen(pairs["control_pmid"])["reason"] == "").all()
        assert term_counts(pairs["control_pmid"].tolist(), controls.CLINICAL_TERMS).sum() == 0
        named = controls.paradigms_named(pairs["control_pmid"].to_numpy())
        assert all(
            named.loc[c, p] for c, p in zip(pairs["control_pmid"], pairs["paradigm"], strict=True)
        )
        # A study with no paradigm rule is left unmatched, and says why.
        unmatched = result.matches[result.matches["control_pmid"] == 0]
        assert (unmatched["note"] != "").all()
    assert len(results["SAD"].pairs) >= 9 and len(results["BPD"].pairs) >= 15


def test_the_control_ledger_has_a_readers_include_for_every_chosen_control(
    project_curation, matched
):
    results, _ = matched
    for group, result in results.items():
        included = {d.control_pmid for d in project_curation.control_decisions
                    if d.decision == "include" and d.group == group}  # fmt: skip
        missing = set(result.pairs["control_pmid"]) - included
        assert not missing, f"{group}: add ledger rows to coordinates/controls.tsv for {missing}"
    # and a study a reader excluded is never chosen again
    chosen = set().union(*(set(r.pairs["control_pmid"]) for r in results.values()))
    assert not chosen & project_curation.rejected_controls


def test_a_rejected_control_is_replaced_by_the_next_of_its_paradigm(project_curation, matched):
    results, curated = matched
    sad = disorder_studies(project_curation, "SAD")
    first = results["SAD"].pairs.iloc[0]
    again = controls.match_controls(
        sad, curated, project_curation.rejected_controls | {first.control_pmid}
    )
    replaced = again.matches.set_index("pmid").loc[first.pmid]
    assert replaced["control_pmid"] not in (0, first.control_pmid)
    assert replaced["paradigm"] == first.paradigm


def test_matching_is_deterministic(project_curation, matched):
    results, curated = matched
    sad = disorder_studies(project_curation, "SAD")
    reversed_order = dict(reversed(list(sad.items())))
    again = controls.match_controls(reversed_order, curated, project_curation.rejected_controls)
    pd.testing.assert_frame_equal(again.matches, results["SAD"].matches)


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
