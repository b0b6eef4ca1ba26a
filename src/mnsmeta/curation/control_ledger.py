"""The control ledger: a reader's decision on each database study chosen as a healthy control.

``coordinates/controls.tsv`` holds, for every study the matching rule chose as a control
(:mod:`mnsmeta.curation.controls`), what a reader decided from its title and terms: ``include``
(a task fMRI/PET study of healthy adults with the matched paradigm) or ``exclude`` (and why).
An excluded study is never matched again, so the rule takes the next one, which needs its own
row; a test keeps the ledger and the rule's choices in step. Titles are not copied here (they
are the databases'): the reason says in the reader's words what the title shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mnsmeta.curation.tsv import read_tsv
from mnsmeta.errors import Problem

LEDGER_FILE = "controls.tsv"
LEDGER_COLUMNS = ["group", "control_pmid", "decision", "reason", "evidence"]
LEDGER_OPTIONAL = ["study_id", "paradigm"]
DECISIONS = ("include", "exclude")


@dataclass(frozen=True)
class ControlDecision:
    """One ledger row: a reader's decision on one chosen control."""

    group: str
    control_pmid: int
    decision: str
    reason: str
    evidence: str
    study_id: str = ""
    paradigm: str = ""
    line: int = 0


def read_control_ledger(path: Path, problems: list[Problem]) -> list[ControlDecision]:
    """Read the ledger; problems (a bad PMID or decision, a missing reason) are appended."""
    rows = read_tsv(path, LEDGER_COLUMNS, LEDGER_OPTIONAL, problems)
    decisions = []
    for row in rows:
        pmid = row["control_pmid"]
        if not pmid.isdigit():
            problems.append(Problem(str(path), row.line, f"control_pmid {pmid!r} is not a PMID",
                                    "give the control study's PubMed ID (digits)"))  # fmt: skip
            continue
        if row["decision"] not in DECISIONS:
            problems.append(Problem(str(path), row.line, f"decision {row['decision']!r}",
                                    f"use one of {', '.join(DECISIONS)}"))  # fmt: skip
            continue
        if not row["reason"] or not row["evidence"]:
            problems.append(
                Problem(str(path), row.line, f"control {pmid} has no reason or evidence",
                        "say what was read (evidence: title, terms, abstract URL) and why")
            )  # fmt: skip
            continue
        decisions.append(
            ControlDecision(row["group"], int(pmid), row["decision"], row["reason"],
                            row["evidence"], row["study_id"], row["paradigm"], row.line)
        )  # fmt: skip
    return decisions
