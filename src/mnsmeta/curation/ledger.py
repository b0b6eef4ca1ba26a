"""The cited-references ledger: every reference of the review, and whether it can enter an ALE.

The ledger file (``coordinates/cited_references.tsv``) holds what curation read about each
reference; whether it is in a database and whether it is included are computed here from the
databases and the records, so they can never go stale.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mnsmeta.curation.records import Curation
from mnsmeta.curation.tsv import read_tsv
from mnsmeta.data import databases
from mnsmeta.data.releases import release_path
from mnsmeta.errors import Problem

LEDGER_COLUMNS = [
    "ref",
    "short_citation",
    "year",
    "pmid",
    "doi",
    "modality",
    "study_type",
    "population",
    "reports_coordinates",
]
# What was tried to reach a cited study's coordinates, and with what result (curation round 2).
LEDGER_OPTIONAL = ["source_url", "note", "coordinates_tried", "coordinates_result"]
#: Columns that :func:`ledger_table` computes from the curation and the databases.
LEDGER_COMPUTED = ["in_database", "included_in", "why_not"]
LEDGER_MODALITIES = (
    "fMRI",
    "PET",
    "EEG",
    "MEG",
    "TMS",
    "TMS-EEG",
    "MRS",
    "VBM/structural",
    "resting-state fMRI",
    "DTI",
    "behavioural",
    "review",
    "meta-analysis",
    "theory",
    "clinical-trial",
    "other",
)
STUDY_TYPES = ("primary", "review", "meta-analysis", "commentary/abstract")
YES_NO = ("yes", "no", "unknown")


def read_ledger(path: Path, problems: list[Problem]) -> pd.DataFrame:
    """Read and check the ledger file; append problems to ``problems``."""
    rows = read_tsv(path, LEDGER_COLUMNS, LEDGER_OPTIONAL, problems)
    path_s = str(path)
    seen = set()
    for row in rows:
        checks = [
            ("modality", LEDGER_MODALITIES),
            ("study_type", STUDY_TYPES),
            ("reports_coordinates", YES_NO),
        ]
        for column, allowed in checks:
            if row[column] not in allowed:
                problems.append(
                    Problem(
                        path_s,
                        row.line,
                        f"unknown {column} {row[column]!r}",
                        f"use one of {', '.join(allowed)}",
                    )
                )
        if row["pmid"] and not row["pmid"].isdigit():
            problems.append(
                Problem(
                    path_s,
                    row.line,
                    f"PMID {row['pmid']!r} is not an integer",
                    "write digits only, or leave it empty",
                )
            )
        if row["ref"] in seen:
            problems.append(
                Problem(path_s, row.line, f"duplicate ref {row['ref']}", "number each once")
            )
        seen.add(row["ref"])
    return pd.DataFrame([{**row.fields, "line": row.line} for row in rows])


def ledger_table(path: Path, curation: Curation) -> pd.DataFrame:
    """Return the ledger with ``in_database``, ``included_in`` and ``why_not`` computed.

    Parameters
    ----------
    path : Path
        The ledger TSV.
    curation : Curation
        Records, to tell whether a reference enters an analysis.

    Returns
    -------
    pandas.DataFrame
    """
    problems: list[Problem] = []
    ledger = read_ledger(path, problems)
    studies = databases.study_metadata()
    dois = (
        pd.read_csv(release_path("neurosynth_metadata"), sep="\t", usecols=["id", "doi"])
        .dropna()
        .assign(doi=lambda t: t["doi"].str.lower())
        .set_index("doi")["id"]
    )
    pmid_of = []
    for row in ledger.itertuples():
        if row.pmid:
            pmid_of.append(int(row.pmid))
        else:
            pmid_of.append(dois.get(str(row.doi).lower()))
    ledger["database_pmid"] = pd.array(
        [pmid if pmid is not None and pmid in studies.index else None for pmid in pmid_of],
        dtype="Int64",
    )
    ledger["in_database"] = ledger["database_pmid"].notna().map({True: "yes", False: "no"})
    records = {}
    for record in curation.records:
        records.setdefault(record.study_id, []).append(record)
    included_in, why_not = [], []
    for row in ledger.itertuples():
        found = records.get(str(int(row.database_pmid))) if row.in_database == "yes" else []
        groups = sorted(r.group for r in found or [] if r.included)
        included_in.append(",".join(groups))
        if groups:
            why_not.append("")
        elif row.study_type != "primary":
            why_not.append(f"{row.study_type}: not a primary study")
        elif row.modality not in ("fMRI", "PET"):
            why_not.append(f"{row.modality}: no task-activation peak coordinates")
        elif row.in_database == "no":
            why_not.append(f"not in Neurosynth 0.7 / NeuroQuery 1 (published {row.year})")
        elif found:
            why_not.append("excluded: " + "; ".join(f"{r.group} {r.reason}" for r in found))
        else:
            why_not.append("in a database but not a candidate of any group")
    ledger["included_in"] = included_in
    ledger["why_not"] = why_not
    return ledger.drop(columns=["line"])
