"""PRISMA-style study flow per group: identified, merged, screened, excluded, included.

Below the studies, the foci of the included studies: as the databases store them, what
each hygiene rule removed (:mod:`mnsmeta.data.hygiene`), and what the analysis uses.
"""

from __future__ import annotations

import pandas as pd

from mnsmeta.curation.candidates import find_candidates
from mnsmeta.curation.experiments import build_experiments
from mnsmeta.curation.groups import GROUPS
from mnsmeta.curation.records import REASONS, Curation
from mnsmeta.data import hygiene


def study_flow(curation: Curation, groups=tuple(GROUPS)) -> pd.DataFrame:
    """Count studies at each stage of selection.

    Parameters
    ----------
    curation : Curation
        Records from ``coordinates/``.
    groups : iterable of str
        Groups to report.

    Returns
    -------
    pandas.DataFrame
        One row per stage (in PRISMA order), one column per group.
    """
    columns = {}
    for group in groups:
        candidates = find_candidates(group)
        records = curation.for_group(group, included_only=False)
        by_id = {r.study_id: r for r in records}
        candidate_ids = {str(pmid) for pmid in candidates.index}
        included = [r for r in records if r.included]
        excluded = [r for r in records if not r.included]
        counts = {
            "identified: Neurosynth titles": int(candidates["title_neurosynth"].sum()),
            "identified: NeuroQuery titles": int(candidates["title_neuroquery"].sum()),
            "identified: NeuroQuery abstract/keyword terms": int(
                candidates["terms_neuroquery"].sum()
            ),
            "candidates after merging by PMID": len(candidates),
            "added by hand (not candidates)": len(set(by_id) - candidate_ids),
            "screened (curation record)": len(records),
            "candidates not yet curated": len(candidate_ids - set(by_id)),
            "flagged for a curation decision": int((candidates["flags"] != "").sum()),
        }
        for reason in REASONS:
            counts[f"excluded: {reason}"] = sum(r.reason == reason for r in excluded)
        counts["excluded (total)"] = len(excluded)
        counts["included"] = len(included)
        counts["included with a sample size read in a source"] = sum(
            r.sample_size()[0] is not None for r in included
        )
        counts.update(_foci_counts(curation, group) if included else {})
        columns[group] = counts
    table = pd.DataFrame(columns)
    table.index.name = "stage"
    return table.fillna(0).astype(int)


def _foci_counts(curation: Curation, group: str) -> dict[str, int]:
    """Foci of a group's included studies before and after each hygiene rule."""
    experiments = build_experiments(curation, group).experiments
    removed = {rule: int(experiments[f"foci_removed_{rule}"].sum()) for rule in hygiene.RULES}
    analysed = int(experiments["n_foci"].sum())
    counts = {"foci of included studies (as stored)": analysed + sum(removed.values())}
    for rule, n in removed.items():
        counts[f"foci removed: {rule}"] = n
    counts["foci analysed"] = analysed
    return counts


def excluded_studies(curation: Curation, groups=tuple(GROUPS)) -> pd.DataFrame:
    """Every excluded record: group, study, reason (and what it means), the curator's note."""
    rows = [
        {
            "group": r.group,
            "study_id": r.study_id,
            "reason": r.reason,
            "meaning": REASONS.get(r.reason, ""),
            "note": r.note,
        }
        for r in curation.records
        if r.group in groups and not r.included
    ]
    columns = ["group", "study_id", "reason", "meaning", "note"]
    return pd.DataFrame(rows, columns=columns)
