"""PRISMA-style study flow per group: identified, merged, screened, excluded, included.

Below the studies, the foci of the included studies: as the databases store them, what
each hygiene rule removed (:mod:`mnsmeta.data.hygiene`), and what the analysis uses.
"""

from __future__ import annotations

from collections import Counter

import pandas as pd

from mnsmeta.curation.candidates import find_candidates
from mnsmeta.curation.experiments import build_experiments
from mnsmeta.curation.groups import GROUPS
from mnsmeta.curation.records import REASONS, Curation
from mnsmeta.data import databases, hygiene


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
            counts[f"excluded: {reason}"] = sum(
                r.reason == reason for r in excluded if r.status == "excluded"
            )
        counts["excluded (total)"] = sum(r.status == "excluded" for r in excluded)
        # PRISMA 2020: records that could not be decided are awaiting classification.
        counts["awaiting classification"] = sum(r.status == "awaiting" for r in excluded)
        counts["included (eligible)"] = len(included)
        counts["included with a sample size read in a source"] = sum(
            r.sample_size()[0] is not None for r in included
        )
        primary = [r for r in included if r.admitted()]
        counts["sensitivity only: tables mix other groups, connectivity, treatment or ages"] = sum(
            bool(r.mixes) for r in included
        )
        counts["sensitivity only: ROI/SVC peaks only"] = sum(
            r.coverage == "roi" and not r.mixes for r in included
        )
        counts["included: primary analysis (studies)"] = len(primary)
        samples = Counter(r.sample_key for r in primary)
        counts["primary studies sharing a sample with another (pooled)"] = sum(
            samples[r.sample_key] > 1 for r in primary
        )
        counts["included: primary analysis (experiments, one per sample)"] = len(samples)
        counts.update(_plausibility_counts(records))
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
    counts = {"foci of the primary studies (as stored)": analysed + sum(removed.values())}
    for rule, n in removed.items():
        counts[f"foci removed: {rule}"] = n
    counts["foci analysed"] = analysed
    return counts


def _plausibility_counts(records) -> dict[str, int]:
    """Database tables of the screened studies that are not plausibly coordinates."""
    studies = [r for r in records if r.pmid and not r.is_manual]
    if not studies:
        return {}
    tables = databases.implausible_tables(
        [r.pmid for r in studies], {r.pmid: r.source_db for r in studies if r.source_db}
    )
    included = {r.pmid for r in studies if r.included}
    return {
        "tables not coordinates (plausibility rule), screened studies": len(tables),
        "tables not coordinates, included studies (dropped)": int(
            tables["pmid"].isin(included).sum()
        ),
    }


#: What an ``awaiting`` record's row says in place of an exclusion reason's meaning.
AWAITING = "awaiting classification: not enough could be read to decide (not excluded)"


def excluded_studies(curation: Curation, groups=tuple(GROUPS)) -> pd.DataFrame:
    """Every record that does not enter: excluded (reason and what it means) or awaiting
    classification, with the curator's note."""
    rows = [
        {
            "group": r.group,
            "study_id": r.study_id,
            "status": r.status,
            "reason": r.reason,
            "meaning": REASONS.get(r.reason, "") if r.status == "excluded" else AWAITING,
            "note": r.note,
        }
        for r in curation.records
        if r.group in groups and not r.included
    ]
    columns = ["group", "study_id", "status", "reason", "meaning", "note"]
    return pd.DataFrame(rows, columns=columns)
