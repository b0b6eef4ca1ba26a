"""Contrasts: what each table or block of foci compares, and in which direction.

A study holds one or more contrasts. A database study's contrasts are its database tables
(NeuroQuery's and Neurosynth's ``table_id``); a study typed in from a paper has the contrasts
named in its ``manual/`` foci (the ``experiment`` column). Until a curator reads what a
contrast compares, its kind is ``unknown``; ``coordinates/contrasts/*.tsv`` records what was
read, one line per contrast, with where it was read.

Analyses select contrasts by kind (``contrasts = ["patients<controls"]`` in
``analyses.toml``); the selected contrasts of one study are pooled into one experiment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mnsmeta.curation.groups import GROUPS
from mnsmeta.curation.tsv import participant_count, read_tsv
from mnsmeta.errors import Problem

if TYPE_CHECKING:  # pandas is imported only where it is used (validate stays fast)
    import pandas as pd

PATIENTS_GT_CONTROLS = "patients>controls"
PATIENTS_LT_CONTROLS = "patients<controls"
PATIENTS_VS_CONTROLS = "patients<>controls"
UNKNOWN = "unknown"
KINDS = {
    PATIENTS_GT_CONTROLS: "patients activate more than healthy controls",
    PATIENTS_LT_CONTROLS: "patients activate less than healthy controls",
    # A table of group differences in both directions, whose foci the source does not
    # separate (the databases keep no sign): a group difference, but no direction.
    PATIENTS_VS_CONTROLS: "patients differ from controls, both directions in one table",
    "patients_only": "a task effect within patients only",
    "controls_only": "a task effect within healthy controls only",
    "all_participants": "a task effect in patients and controls together",
    "correlation": "a correlation with symptoms, traits or another measure",
    UNKNOWN: "not (yet) read in a source",
}
#: Kinds that compare patients with controls (their N is both groups', or patients' alone).
BETWEEN_GROUPS = (PATIENTS_GT_CONTROLS, PATIENTS_LT_CONTROLS, PATIENTS_VS_CONTROLS)


def direction_known(kinds) -> pd.Series:
    """Whether each experiment's contrast kinds (``experiments.csv``: ``kinds``) include a
    patients-vs-controls contrast of known direction (``patients<>controls`` does not)."""
    import pandas as pd

    kinds = pd.Series(kinds, dtype=object).fillna("").astype(str)
    return kinds.map(lambda k: PATIENTS_GT_CONTROLS in k or PATIENTS_LT_CONTROLS in k)


CONTRAST_COLUMNS = ["study_id", "group", "contrast", "kind"]
CONTRAST_OPTIONAL = ["table_id", "n_patients", "n_controls", "source", "note"]


@dataclass
class Contrast:
    """One contrast of a study, as a curator read it.

    Parameters
    ----------
    study_id, group : str
        The study's record (``records/``) this contrast belongs to.
    label : str
        The contrast as the paper names it (``SAD > HC``).
    kind : str
        One of ``KINDS``.
    table_id : str
        For a database study: the database table holding this contrast's foci.
    n_patients, n_controls : int or None
        The groups' sizes in this contrast, where read.
    source : str
        Where it was read (URL, table).
    """

    study_id: str
    group: str
    label: str
    kind: str = UNKNOWN
    table_id: str = ""
    n_patients: int | None = None
    n_controls: int | None = None
    source: str = ""
    note: str = ""
    file: str = ""
    line: int = 0


def read_contrasts(path: Path, problems: list[Problem]) -> list[Contrast]:
    """Read and check one contrasts file; append every problem found to ``problems``."""
    path_s = str(path)
    contrasts = []
    for row in read_tsv(path, CONTRAST_COLUMNS, CONTRAST_OPTIONAL, problems):
        kind = row["kind"]
        if kind not in KINDS:
            problems.append(
                Problem(
                    path_s,
                    row.line,
                    f"unknown contrast kind {kind!r}",
                    f"use one of {', '.join(KINDS)}",
                )
            )
        if row["group"] not in GROUPS:
            problems.append(
                Problem(
                    path_s, row.line, f"unknown group {row['group']!r}", f"use {', '.join(GROUPS)}"
                )
            )
        for column in ("study_id", "contrast"):
            if not row[column]:
                problems.append(
                    Problem(path_s, row.line, f"empty {column}", f"write the {column}")
                )
        contrast = Contrast(
            study_id=row["study_id"],
            group=row["group"],
            label=row["contrast"],
            kind=kind,
            table_id=row["table_id"],
            n_patients=participant_count(row, "n_patients", path_s, problems),
            n_controls=participant_count(row, "n_controls", path_s, problems),
            source=row["source"],
            note=row["note"],
            file=path_s,
            line=row.line,
        )
        if kind != UNKNOWN and not contrast.source:
            problems.append(
                Problem(
                    path_s,
                    row.line,
                    f"contrast {contrast.label!r} has kind {kind} but no source",
                    "write the URL or table where the contrast was read, or set kind to unknown",
                )
            )
        contrasts.append(contrast)
    return contrasts


# -- kinds from labels ---------------------------------------------------------------------

#: Words that name the patients (any disorder group) or the healthy controls in a label.
_PATIENTS = (
    r"patients?|pts?|clinical|cases?|sad|gsad|sp|social\s*(?:anxiety|phobi\w*)\w*|bpd|"
    r"borderline\w*|mns|disorder"
)
_CONTROLS = r"hcs?|controls?|healthy(?:\s+\w+)?|ncs?|nc|cons?|comparisons?|non-?anxious"
_SIDE = re.compile(rf"^\W*(?:(?P<patients>{_PATIENTS})|(?P<controls>{_CONTROLS}))\W*$", re.I)
_COMPARATOR = re.compile(r"\s*(>|<|\bgt\b|\blt\b|greater than|less than|more than)\s*", re.I)
_CORRELATION = re.compile(r"correlat|regress|covar", re.I)


def _side(text: str) -> str | None:
    # The words nearest the comparator decide (``SAD patients`` and ``patients with SAD``).
    words = [w for w in re.split(r"[\s(),:;]+", text.strip()) if w]
    for word in (*words[-2:], *words[:2]):
        match = _SIDE.match(word)
        if match:
            return "patients" if match.group("patients") else "controls"
    return None


def infer_kind(label: str) -> str:
    """The kind a contrast's label states, or ``unknown`` when it does not say it plainly.

    ``SAD > HC``, ``patients gt controls`` and ``HC < BPD`` are ``patients>controls``;
    ``HC > SAD`` and ``patients < controls`` are ``patients<controls``; a label naming a
    correlation is ``correlation``. Anything else (``SAD vs HC``, ``faces > shapes``) is
    ``unknown``: the curator sets it.
    """
    if _CORRELATION.search(label):
        return "correlation"
    parts = _COMPARATOR.split(label, maxsplit=1)
    if len(parts) != 3:
        return UNKNOWN
    left, comparator, right = parts
    sides = (_side(left), _side(right))
    if sides not in (("patients", "controls"), ("controls", "patients")):
        return UNKNOWN
    greater = comparator.lower() in (">", "gt", "greater than", "more than")
    patients_greater = greater == (sides[0] == "patients")
    return PATIENTS_GT_CONTROLS if patients_greater else PATIENTS_LT_CONTROLS
