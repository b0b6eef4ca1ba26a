"""The characteristics of the included studies, and what their paradigms probe.

The table a meta-analysis prints as its "Table 1": one row per included study, with what a
reader needs to judge it (who, how many, which task, what its tables pool, where its peaks come
from, which space, where its N was read, the kernel the ALE gives it), and whether it enters
the primary analysis or only a sensitivity variant (:meth:`StudyRecord.admitted`).

Kernel FWHM: Eickhoff et al. (2009), as NiMARE's ``get_ale_kernel`` computes it before turning
it into a voxel sigma: ``sqrt(u_subjects^2 + u_templates^2)`` with ``u_templates = 5.7 /
(2 sqrt(2 / pi)) sqrt(8 ln 2)`` mm and ``u_subjects = 11.6 / (2 sqrt(2 / pi)) sqrt(8 ln 2) /
sqrt(N)`` mm.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter

import numpy as np
import pandas as pd

from mnsmeta.curation.experiments import build_experiments
from mnsmeta.curation.groups import GROUPS
from mnsmeta.curation.records import Curation, StudyRecord

CHARACTERISTICS_COLUMNS = [
    "group",
    "study_id",
    "first_author",
    "year",
    "n_patients",
    "n_controls",
    "n_total",
    "kernel_n",
    "n_rule",
    "kernel_fwhm_mm",
    "age_group",
    "paradigm",
    "tables_pooled",
    "table_mix",
    "coverage",
    "sample",
    "space",
    "enters",
]
#: The paradigms that probe the mirror system directly (the review's subject).
MIRROR_PARADIGMS = (
    "action_observation",
    "imitation",
    "observation_execution",
    "execution",
    "imagery",
    "face_imitation",
)


def kernel_fwhm_mm(sample_size: float) -> float:
    """The ALE kernel's FWHM in mm for ``sample_size`` subjects (Eickhoff et al., 2009)."""
    to_fwhm = math.sqrt(8.0 * math.log(2.0))
    templates = 5.7 / (2.0 * math.sqrt(2.0 / math.pi)) * to_fwhm
    subjects = 11.6 / (2.0 * math.sqrt(2.0 / math.pi)) * to_fwhm / math.sqrt(sample_size)
    return math.sqrt(subjects**2 + templates**2)


def entry(record: StudyRecord) -> str:
    """Where an included study enters: the primary analysis, or only a variant, and why."""
    if record.admitted():
        return "primary"
    if record.mixes:
        return f"mixed_tables_kept only ({', '.join(record.mixes)})"
    return "roi_kept only (ROI/SVC peaks only)"


def study_characteristics(curation: Curation, groups=tuple(GROUPS)) -> pd.DataFrame:
    """One row per included study (``CHARACTERISTICS_COLUMNS``), primary or variant-only.

    ``kernel_n`` is the N the study's experiment gets in the analysis that includes it (the
    primary analysis, or the variant that admits it; a shared sample's largest N; the group's
    fallback where no N was read, named in ``n_rule``).
    """
    from mnsmeta.data.databases import merged_foci, study_metadata

    metadata = study_metadata()
    everyone = dataclasses.replace(curation, admit=("mixed_tables", "roi_coverage"))
    rows = []
    for group in groups:
        included = [r for r in curation.for_group(group, included_only=False) if r.included]
        if not included:
            continue
        experiment_set = build_experiments(everyone, group)
        experiments = experiment_set.experiments
        experiment_of = experiment_set.experiment_of_study()
        database = [r for r in included if r.pmid and not r.is_manual]
        foci = merged_foci(
            source_overrides={r.pmid: r.source_db for r in database if r.source_db},
            space_overrides={r.pmid: r.space for r in database if r.space},
            pmids=[r.pmid for r in database],
        )
        tables = foci.groupby("pmid")["table_id"].nunique()
        spaces = foci.groupby("pmid")["reported_space"].first()
        for record in included:
            experiment = experiments.loc[experiment_of[record.study_id]]
            meta = metadata.loc[record.pmid] if record.pmid in metadata.index else None
            authors = "" if meta is None or pd.isna(meta["authors"]) else str(meta["authors"])
            rows.append(
                {
                    "group": group,
                    "study_id": record.study_id,
                    "first_author": authors.split(",")[0].strip(),
                    "year": "" if meta is None or pd.isna(meta["year"]) else int(meta["year"]),
                    "n_patients": record.n_patients,
                    "n_controls": record.n_controls,
                    "n_total": record.n_total,
                    "kernel_n": int(experiment["sample_size"]),
                    "n_rule": experiment["sample_size_rule"],
                    "kernel_fwhm_mm": round(kernel_fwhm_mm(experiment["sample_size"]), 2),
                    "age_group": record.age_group,
                    "paradigm": record.paradigm,
                    "tables_pooled": int(tables.get(record.pmid, 0)) if record.pmid else "",
                    "table_mix": record.table_mix,
                    "coverage": record.coverage,
                    "sample": record.sample,
                    "space": spaces.get(record.pmid, "MNI/TAL as typed")
                    if not record.is_manual
                    else "as typed",
                    "enters": entry(record),
                }
            )
    return pd.DataFrame(rows, columns=CHARACTERISTICS_COLUMNS)


def paradigm_table(characteristics: pd.DataFrame) -> pd.DataFrame:
    """Studies per paradigm and group (all included, and primary), with the mirror total.

    The last rows say how many studies probe action observation, imitation or execution at
    all: the review's claims are about the mirror system, and these are the tasks that
    engage it by design.
    """
    columns = {}
    for group, part in characteristics.groupby("group", sort=False):
        primary = part[part["enters"] == "primary"]
        for label, subset in (("included", part), ("primary", primary)):
            counts = Counter(subset["paradigm"].replace("", "not curated"))
            column = pd.Series(counts, dtype=int)
            mirror = int(subset["paradigm"].isin(MIRROR_PARADIGMS).sum())
            column["probe action observation, imitation or execution"] = mirror
            column["studies"] = len(subset)
            columns[f"{group} {label}"] = column
    table = pd.DataFrame(columns).fillna(0).astype(np.int64)
    order = [p for p in table.index if p not in _TOTALS] + [t for t in _TOTALS if t in table.index]
    table = table.loc[order]
    table.index.name = "paradigm"
    return table


_TOTALS = ("probe action observation, imitation or execution", "studies")
