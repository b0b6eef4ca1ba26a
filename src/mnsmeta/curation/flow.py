"""PRISMA-style study flow per group: identified, merged, screened, excluded, included.

Below the studies, the foci of the included studies: as the databases store them, what
each hygiene rule removed (:mod:`mnsmeta.data.hygiene`), and what the analysis uses.
:func:`prisma_boxes` reads the flow table into the boxes of the PRISMA 2020 flow diagram.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pandas as pd

from mnsmeta.curation.candidates import RULES, find_candidates
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


#: What a PRISMA box says where the flow table has no count for it.
NOT_RECORDED = "not recorded"
#: The flow table's stages that the PRISMA boxes read (rows of :func:`study_flow`).
IDENTIFIED = {
    "Neurosynth 0.7, titles": "identified: Neurosynth titles",
    "NeuroQuery 1, titles": "identified: NeuroQuery titles",
    "NeuroQuery 1, abstract/keyword terms": "identified: NeuroQuery abstract/keyword terms",
}
EXCLUDED_PREFIX = "excluded: "


@dataclass(frozen=True)
class PrismaBox:
    """One box of a PRISMA 2020 flow diagram.

    Parameters
    ----------
    key : str
        Where the box sits (``identified``, ``removed``, ``other``, ``screened``,
        ``screening_excluded``, ``sought``, ``not_retrieved``, ``assessed``, ``excluded``,
        ``awaiting``, ``included``).
    title : str
        PRISMA's wording of the box.
    count : int or None
        Its number; None when the flow does not record it (shown as :data:`NOT_RECORDED`).
    lines : tuple of (str, int or None)
        Its itemised counts (databases, exclusion reasons...), None where not recorded.
    total : bool
        Whether the box has a count of its own (the "removed before screening" box only
        itemises).
    """

    key: str
    title: str
    count: int | None = None
    lines: tuple[tuple[str, int | None], ...] = ()
    total: bool = True


def prisma_boxes(flow: pd.DataFrame, group: str) -> list[PrismaBox]:
    """The boxes of a group's PRISMA 2020 flow diagram, counted from its flow table.

    The template is the one for new systematic reviews (Page et al., 2021, BMJ 372:n71),
    with one more box: records awaiting classification, which PRISMA 2020 asks to report.
    Each number is a row of the flow table or a sum or difference of its rows: duplicates
    are the records found by more than one search (their sum less the candidates merged by
    PMID). Steps the curation does not record apart (registers, automation tools, screening
    exclusions before full text, retrieval, reports per study) have ``count`` None.

    Parameters
    ----------
    flow : pandas.DataFrame
        The flow table (:func:`study_flow`, or ``flow.csv`` read with its ``stage`` index).
    group : str
        A column of ``flow``.

    Returns
    -------
    list of PrismaBox
        In the order of the diagram: identification, screening, eligibility, included.
    """
    column = flow[group]

    def count(stage: str) -> int | None:
        return int(column[stage]) if stage in column.index else None

    def total(*counts: int | None) -> int | None:
        return None if any(c is None for c in counts) else sum(counts)

    databases = {label: count(stage) for label, stage in IDENTIFIED.items()}
    if group in RULES and not RULES[group].abstract_terms:
        # A titles-only search (MNS): no abstract/keyword search was made, so its row's 0 is
        # not a count of records found.
        databases.pop("NeuroQuery 1, abstract/keyword terms")
    identified = total(*databases.values())
    merged = count("candidates after merging by PMID")
    duplicates = None if identified is None or merged is None else identified - merged
    reasons = tuple(
        (str(stage)[len(EXCLUDED_PREFIX) :].replace("_", " "), int(n))
        for stage, n in column.items()
        if str(stage).startswith(EXCLUDED_PREFIX) and not str(stage).endswith("(total)") and n
    )
    sensitivity = {
        "tables mix in other groups, connectivity, treatment or ages": count(
            "sensitivity only: tables mix other groups, connectivity, treatment or ages"
        ),
        "ROI/SVC peaks only": count("sensitivity only: ROI/SVC peaks only"),
    }
    primary = {
        "studies": count("included: primary analysis (studies)"),
        "experiments, one per sample": count(
            "included: primary analysis (experiments, one per sample)"
        ),
    }
    return [
        PrismaBox(
            "identified",
            "Records identified from databases",
            identified,
            (*databases.items(), ("Registers", None)),
        ),
        PrismaBox(
            "removed",
            "Records removed before screening",
            lines=(
                ("Duplicate records (found by more than one search)", duplicates),
                ("Marked as ineligible by automation tools", None),
                ("Removed for other reasons", None),
            ),
            total=False,
        ),
        PrismaBox("other", "Records added by hand", count("added by hand (not candidates)")),
        PrismaBox(
            "screened",
            "Records screened",
            count("screened (curation record)"),
            (("Candidates not yet screened", count("candidates not yet curated")),),
        ),
        PrismaBox("screening_excluded", "Records excluded"),
        PrismaBox("sought", "Reports sought for retrieval"),
        PrismaBox("not_retrieved", "Reports not retrieved"),
        PrismaBox("assessed", "Reports assessed for eligibility"),
        PrismaBox(
            "excluded",
            "Excluded at screening or eligibility, with reasons",
            count("excluded (total)"),
            reasons,
        ),
        PrismaBox("awaiting", "Awaiting classification", count("awaiting classification")),
        PrismaBox(
            "included",
            "Studies included in review",
            count("included (eligible)"),
            (
                ("Reports of included studies", None),
                *((f"Primary meta-analysis: {k}", n) for k, n in primary.items()),
                *((f"Sensitivity analyses only: {k}", n) for k, n in sensitivity.items()),
            ),
        ),
    ]
