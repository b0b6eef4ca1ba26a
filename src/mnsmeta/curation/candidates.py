"""Which database studies are candidates for each group: the selection rule, in code.

A study is a candidate for a group when its title (in Neurosynth or NeuroQuery) matches the
group's pattern, or, for the disorders, when NeuroQuery's abstract and keyword term counts
for the group's terms add up to at least 2. Patterns use word boundaries: a naive
``imitation`` would also catch "limitations". The same rule run on a newer release gives a
new candidate list; ``mnsmeta studies --candidates`` shows which are not yet curated.

Candidates with implausible extractions are flagged for a curation decision (never dropped
or kept silently): more than ``MANY_FOCI`` foci, or a focus outside the MNI152 box or more
than 10 mm from the brain mask.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse

from mnsmeta.data import databases
from mnsmeta.data.releases import release_path
from mnsmeta.data.space import FAR_OUTSIDE_MM, distance_to_brain, outside_bounding_box

MANY_FOCI = 100


@dataclass(frozen=True)
class CandidateRule:
    """How one group's candidates are found.

    Parameters
    ----------
    title_pattern : str
        Case-insensitive regular expression searched in titles.
    abstract_terms : tuple of str
        NeuroQuery vocabulary terms counted in abstracts and keywords (empty: titles only).
    min_term_count : int
        Least summed count of ``abstract_terms`` that makes a candidate.
    """

    title_pattern: str
    abstract_terms: tuple[str, ...] = ()
    min_term_count: int = 2


RULES = {
    "SAD": CandidateRule(
        r"\bsocial(?:ly)?[- ](?:anxiety|anxious|phobi\w*)\b|\bsocial phobic",
        ("social anxiety disorder", "social phobia", "social anxiety"),
    ),
    "BPD": CandidateRule(
        r"\bborderline personality|\bBPD\b|\bemotionally unstable personality",
        ("borderline personality disorder",),
    ),
    # Titles only: abstracts mention action observation or imitation in passing in hundreds
    # of studies whose aim is something else; the reference set wants studies about it.
    "MNS": CandidateRule(
        r"\bmirror[- ](?:neuron\w*|system\w*|mechanism\w*)\b|\baction[- ]observation\b"
        r"|\bimitat\w*|\baction understanding\b"
        r"|\bobserv\w+ (?:of )?(?:others'? )?(?:hand |goal[- ]directed |grasping |manual )?"
        r"actions?\b"
    ),
}


def _titles() -> tuple[pd.Series, pd.Series]:
    neurosynth = pd.read_csv(
        release_path("neurosynth_metadata"), sep="\t", usecols=["id", "title"]
    ).set_index("id")["title"]
    neuroquery = pd.read_csv(release_path("neuroquery_metadata"), sep="\t").set_index("id")[
        "title"
    ]
    return neurosynth.fillna(""), neuroquery.fillna("")


def _term_counts(terms: tuple[str, ...]) -> pd.Series:
    """Summed abstract + keyword counts of ``terms`` per NeuroQuery PMID."""
    vocabulary = release_path("neuroquery_vocabulary").read_text().splitlines()
    columns = [vocabulary.index(term) for term in terms]
    pmids = pd.read_csv(release_path("neuroquery_metadata"), sep="\t", usecols=["id"])["id"]
    total = np.zeros(len(pmids))
    for key in ("neuroquery_abstract_counts", "neuroquery_keywords_counts"):
        counts = scipy.sparse.load_npz(release_path(key)).tocsc()[:, columns]
        total += np.asarray(counts.sum(axis=1)).ravel()
    return pd.Series(total, index=pmids.to_numpy())


def find_candidates(group: str) -> pd.DataFrame:
    """Apply a group's rule to both databases.

    Parameters
    ----------
    group : str
        SAD, BPD or MNS.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``pmid``: booleans ``title_neurosynth``, ``title_neuroquery``,
        ``terms_neuroquery``; ``n_foci_neurosynth``, ``n_foci_neuroquery``; the ``source``
        the merge rule picks; and ``flags`` (empty when nothing is implausible).
    """
    rule = RULES[group]
    pattern = re.compile(rule.title_pattern, re.IGNORECASE)
    ns_titles, nq_titles = _titles()
    found = {
        "title_neurosynth": set(ns_titles.index[ns_titles.str.contains(pattern)]),
        "title_neuroquery": set(nq_titles.index[nq_titles.str.contains(pattern)]),
        "terms_neuroquery": set(),
    }
    if rule.abstract_terms:
        counts = _term_counts(rule.abstract_terms)
        found["terms_neuroquery"] = set(counts.index[counts >= rule.min_term_count])
    pmids = sorted(set().union(*found.values()))
    table = pd.DataFrame(index=pd.Index(pmids, name="pmid"))
    for column, members in found.items():
        table[column] = table.index.isin(list(members))
    studies = databases.study_metadata().loc[pmids]
    table["n_foci_neurosynth"] = studies["n_foci_neurosynth"]
    table["n_foci_neuroquery"] = studies["n_foci_neuroquery"]
    table["source"] = [
        databases.choose_source(r.n_foci_neurosynth, r.n_foci_neuroquery, r.neurosynth_space)
        for r in studies.itertuples()
    ]
    table["flags"] = pd.Series(flags_for(pmids)).reindex(table.index).fillna("")
    return table


def flags_for(pmids, source_overrides: dict[int, str] | None = None) -> dict[int, str]:
    """Return implausibility flags per PMID (``many_foci=N``, ``outside_brain=K``).

    Computed on the foci the merge rule (or the override) would use, in MNI.
    """
    foci = databases.merged_foci(source_overrides=source_overrides, pmids=pmids)
    xyz = foci[["x", "y", "z"]].to_numpy()
    foci["outside"] = outside_bounding_box(xyz) | (distance_to_brain(xyz) > FAR_OUTSIDE_MM)
    flags = {}
    for pmid, study in foci.groupby("pmid"):
        parts = []
        if len(study) > MANY_FOCI:
            parts.append(f"many_foci={len(study)}")
        if study["outside"].any():
            parts.append(f"outside_brain={int(study['outside'].sum())}")
        if parts:
            flags[int(pmid)] = ";".join(parts)
    return flags
