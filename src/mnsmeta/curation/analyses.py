"""The analyses to run (``coordinates/analyses.toml``), and what each kind of analysis is.

This module is the one place that knows the analysis kinds, which groups are disorders and
which is the mirror neuron system reference, which analyses answer which claims, and the
minimum number of experiments for a well-powered ALE. Every other module asks an
:class:`Analysis`; none compares kinds or group names itself.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from mnsmeta.curation.contrasts import KINDS as CONTRAST_KINDS
from mnsmeta.curation.contrasts import PATIENTS_GT_CONTROLS, PATIENTS_LT_CONTROLS
from mnsmeta.curation.groups import DISORDER_GROUPS, GROUPS, MNS_REFERENCE
from mnsmeta.curation.records import EFFECTORS, MODALITIES, PARADIGMS
from mnsmeta.curation.references import PUBLISHED_SETS
from mnsmeta.curation.tsv import toml_entry_lines, unknown_keys
from mnsmeta.errors import MnsmetaInputError, Problem

ALE, SUBTRACTION, CONJUNCTION = "ale", "subtraction", "conjunction"
#: The keys an [[analysis]] entry may have.
ANALYSIS_KEYS = (
    "name", "kind", "groups", "foci", "controls", "modalities", "contrasts", "inputs",
    "balanced", "reference", "matched_to", "paradigms", "effectors", "mask",
)  # fmt: skip
KINDS = (ALE, SUBTRACTION, CONJUNCTION)

#: Fewer experiments than this leave ALE underpowered (Eickhoff et al., 2016).
MIN_EXPERIMENTS = 17

#: What a claim's ``analysis`` field names: an ALE of these groups, or an analysis kind.
CLAIM_TARGETS = {
    "SAD": (ALE, ("SAD",)),
    "BPD": (ALE, ("BPD",)),
    "pooled": (ALE, DISORDER_GROUPS),
    "conjunction": (CONJUNCTION, None),
    "contrast": (SUBTRACTION, None),
}


#: The contrast kinds of a directional claim's analysis (claims.toml ``direction``).
DIRECTION_KINDS = {"hyper": (PATIENTS_GT_CONTROLS,), "hypo": (PATIENTS_LT_CONTROLS,)}


def underpowered(n_experiments) -> bool:
    """Whether an analysis of ``n_experiments`` has too few for ALE (Eickhoff et al., 2016)."""
    return n_experiments < MIN_EXPERIMENTS


@dataclass(frozen=True)
class Analysis:
    """One analysis: what it computes and from which experiments.

    Parameters
    ----------
    name : str
        Folder name under ``results/``.
    kind : {"ale", "subtraction", "conjunction"}
    groups : tuple of str
        For ``ale``: groups whose included records are pooled.
    modalities : tuple of str
        For ``ale``: record modalities kept (empty: all included records).
    inputs : tuple of str
        For ``subtraction`` and ``conjunction``: the two ``ale`` analyses combined.
    contrasts : tuple of str
        For ``ale``: the contrast kinds selected (empty: every contrast, the study-level
        analysis); see :mod:`mnsmeta.curation.contrasts`.
    foci : str
        For ``ale``, instead of ``groups``: a Sleuth file or NIMADS studyset whose experiments
        the analysis takes as they are (a group declared without code: PTSD, a task-matched
        control set...), resolved against the analyses file's folder.
    controls : str
        For ``ale``, instead of ``groups``: a disorder group whose paradigm-matched healthy-only
        control set (:mod:`mnsmeta.curation.controls`) the analysis takes.
    balanced : bool
        For ``subtraction``: the size-balanced subtraction (equal-size subsamples of both
        inputs) instead of the permutation test.
    reference : tuple of str
        For ``ale``, instead of ``groups``: published healthy reference sets by name
        (:data:`mnsmeta.curation.references.PUBLISHED_SETS`), all their experiments, or with
        ``matched_to`` their paradigm-matched selection.
    matched_to : str
        With ``reference``: the disorder group (SAD or BPD) whose curated paradigms the
        selection matches (:func:`mnsmeta.curation.references.select_matched`).
    paradigms : tuple of str
        For ``ale`` of groups: keep only records of these curated paradigms; of a reference
        (without ``matched_to``): keep only experiments whose contrast label matches one of
        these paradigms' label rules, one contrast per study
        (:func:`mnsmeta.curation.references.select_paradigms`).
    effectors : tuple of str
        For ``ale`` of groups: keep only records of these curated effectors (hand_arm, body...).
    mask : str
        For ``ale``: the analysis's cluster-FWE map is (part of) the MNS mask of this name;
        two analyses naming the same mask make it as the conjunction of their maps (voxels
        significant in both), as a mirror mask of observation and execution is made.
    """

    name: str
    kind: str
    groups: tuple[str, ...] = ()
    modalities: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    contrasts: tuple[str, ...] = ()
    foci: str = ""
    controls: str = ""
    balanced: bool = False
    reference: tuple[str, ...] = ()
    matched_to: str = ""
    paradigms: tuple[str, ...] = ()
    effectors: tuple[str, ...] = ()
    mask: str = ""

    @property
    def is_ale(self) -> bool:
        return self.kind == ALE

    @property
    def is_subtraction(self) -> bool:
        return self.kind == SUBTRACTION

    @property
    def is_conjunction(self) -> bool:
        return self.kind == CONJUNCTION

    @property
    def direction(self) -> str:
        """``hyper`` or ``hypo`` for an analysis of one between-group direction, else ``any``."""
        for direction, kinds in DIRECTION_KINDS.items():
            if self.contrasts and set(self.contrasts) == set(kinds):
                return direction
        return "any"

    @property
    def is_disorder(self) -> bool:
        """An ALE of disorder groups only (SAD, BPD or both pooled)."""
        return self.is_ale and bool(self.groups) and set(self.groups) <= set(DISORDER_GROUPS)

    @property
    def is_mns_reference(self) -> bool:
        """The ALE of the mirror neuron system reference studies (the meta-analytic mask)."""
        return (
            self.is_ale
            and tuple(self.groups) == (MNS_REFERENCE,)
            and not (self.paradigms or self.effectors or self.mask)
        )

    @property
    def makes_mask(self) -> bool:
        """An ALE whose cluster-FWE map makes (part of) a named MNS mask."""
        return self.is_ale and bool(self.mask)

    @property
    def is_healthy_set(self) -> bool:
        """An ALE of healthy-only experiments: a disorder's controls or a published reference."""
        return self.is_ale and bool(self.controls or self.reference) and not self.mask

    @property
    def tested_for_overlap(self) -> bool:
        """Disorder ALEs, conjunctions and the healthy sets (whose overlap is the yardstick
        of the disorders') are tested against the MNS masks."""
        return self.is_disorder or self.is_conjunction or self.is_healthy_set

    @property
    def reviewed(self) -> bool:
        """Disorder ALEs get the robustness checks (contributions, jackknife, fail-safe N)."""
        return self.is_disorder

    def answers(self, claim_analysis: str, direction: str = "any") -> bool:
        """Whether this analysis is the one a claim's ``analysis`` and ``direction`` name.

        An undirected claim (``any``) is tested on the study-level analysis (all
        contrasts); a directional one on the analysis of that direction's contrasts.
        """
        kind, groups = CLAIM_TARGETS[claim_analysis]
        if kind != self.kind or self.direction != direction:
            return False
        if direction == "any" and self.contrasts:
            return False
        return groups is None or set(groups) == set(self.groups)


def read_analyses(path: Path) -> list[Analysis]:
    """Read and check the analyses file.

    Raises
    ------
    MnsmetaInputError
        With every problem found (unknown kind, group, input...).
    """
    path = Path(path)
    if not path.is_file():
        raise MnsmetaInputError(
            f"{path}: no analyses file: create it (see coordinates/analyses.toml in the project)"
        )
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise MnsmetaInputError(f"{path}: not valid TOML ({error}): fix the syntax") from error
    problems: list[Problem] = []
    analyses: list[Analysis] = []
    lines = toml_entry_lines(text, "analysis")
    for key in data:
        if key != "analysis":
            problems.append(
                Problem(
                    str(path),
                    None,
                    f"unknown table or key {key!r}",
                    "the file holds [[analysis]] entries only",
                )
            )
    entries = data.get("analysis", [])
    if not isinstance(entries, list):
        entries = []
    for number, entry in enumerate(entries, start=1):
        name = entry.get("name", "")
        where = lines[number - 1] if number <= len(lines) else {}

        def problem(message: str, fix: str, number=number, name=name, where=where) -> None:
            problems.append(
                Problem(str(path), where.get(""), f"analysis {number} ({name}): {message}", fix)
            )

        problems.extend(
            unknown_keys(entry, ANALYSIS_KEYS, where, str(path), f"analysis {number} ({name})")
        )
        if not name or not name.replace("_", "").isalnum():
            problem("name must be letters, digits and underscores", "rename it")
        if name in {a.name for a in analyses}:
            problem("duplicate name", "give each analysis its own name")
        kind = entry.get("kind", "")
        if kind not in KINDS:
            problem(f"unknown kind {kind!r}", f"use one of {', '.join(KINDS)}")
        groups = tuple(entry.get("groups", ()))
        modalities = tuple(entry.get("modalities", ()))
        inputs = tuple(entry.get("inputs", ()))
        contrasts = tuple(entry.get("contrasts", ()))
        if contrasts and (kind != ALE or any(c not in CONTRAST_KINDS for c in contrasts)):
            problem(
                f"contrasts {list(contrasts)}",
                f"an ale analysis may select contrast kinds among {', '.join(CONTRAST_KINDS)}",
            )
        foci = str(entry.get("foci", ""))
        if foci and (kind != ALE or groups or contrasts or modalities):
            problem(
                f"foci {foci!r} with {'kind ' + kind if kind != ALE else 'groups or a filter'}",
                "an ale analysis takes either groups (with modalities, contrasts) or a foci file",
            )
        elif foci and not (path.parent / foci).is_file():
            problem(f"foci file {foci!r} not found", f"give a path relative to {path.parent}")
        controls = str(entry.get("controls", ""))
        if controls and (kind != ALE or groups or foci or contrasts or modalities):
            problem(
                f"controls {controls!r} with other inputs or kind {kind}",
                "an ale analysis takes groups, a foci file or controls, one of them",
            )
        elif controls and controls not in DISORDER_GROUPS:
            problem(f"controls {controls!r}", f"give one of {', '.join(DISORDER_GROUPS)}")
        balanced = entry.get("balanced", False)
        if balanced not in (True, False) or (balanced and kind != SUBTRACTION):
            problem(f"balanced = {balanced!r}", "balanced = true is for a subtraction only")
        reference = entry.get("reference", ())
        reference = (reference,) if isinstance(reference, str) else tuple(reference)
        matched_to = str(entry.get("matched_to", ""))
        if reference and (kind != ALE or groups or foci or controls or contrasts or modalities):
            problem(
                f"reference {list(reference)} with other inputs or kind {kind}",
                "an ale analysis takes groups, a foci file, controls or reference, one of them",
            )
        unknown = [r for r in reference if r not in PUBLISHED_SETS]
        if unknown:
            problem(f"reference {unknown}", f"name published sets: {', '.join(PUBLISHED_SETS)}")
        if matched_to and (not reference or matched_to not in DISORDER_GROUPS):
            problem(
                f"matched_to {matched_to!r}",
                f"with reference = [...], give one of {', '.join(DISORDER_GROUPS)}",
            )
        paradigms = tuple(entry.get("paradigms", ()))
        effectors = tuple(entry.get("effectors", ()))
        mask = str(entry.get("mask", ""))
        if paradigms and (kind != ALE or foci or controls or matched_to):
            problem(
                f"paradigms {list(paradigms)}",
                "paradigms select records of groups, or labels of an unmatched reference",
            )
        elif any(p not in PARADIGMS for p in paradigms):
            problem(f"paradigms {list(paradigms)}", f"use {', '.join(PARADIGMS)}")
        if effectors and (kind != ALE or not groups):
            problem(f"effectors {list(effectors)}", "effectors select records of groups")
        elif any(e not in EFFECTORS for e in effectors):
            problem(f"effectors {list(effectors)}", f"use {', '.join(EFFECTORS)}")
        if mask and (kind != ALE or not mask.replace("_", "").isalnum() or mask == "user"):
            problem(f"mask {mask!r}", "an ale analysis may name a mask: letters, digits, _")
        if foci:
            foci = str(path.parent / foci)
        elif kind == ALE and not controls and not reference:
            if not groups or any(g not in GROUPS for g in groups):
                problem(f"groups {list(groups)}", f"give one or more of {', '.join(GROUPS)}")
            if any(m not in MODALITIES for m in modalities):
                problem(f"modalities {list(modalities)}", f"use {', '.join(MODALITIES)}")
        elif kind in (SUBTRACTION, CONJUNCTION):
            earlier = {a.name: a for a in analyses}
            if len(inputs) != 2 or any(i not in earlier or not earlier[i].is_ale for i in inputs):
                problem(
                    f"inputs {list(inputs)}",
                    "name two ale analyses defined above this one",
                )
        analyses.append(
            Analysis(
                name,
                kind,
                groups,
                modalities,
                inputs,
                contrasts,
                foci,
                controls,
                balanced is True,
                reference,
                matched_to,
                paradigms,
                effectors,
                mask,
            )
        )
    if not analyses:
        problems.append(Problem(str(path), None, "no [[analysis]] entries", "add one"))
    if problems:
        raise MnsmetaInputError(f"{path}: {len(problems)} problem(s)", problems)
    return analyses


def select(analyses: list[Analysis], names: list[str] | None) -> list[Analysis]:
    """Return the named analyses plus the ones they need, in file order."""
    if not names:
        return analyses
    by_name = {a.name: a for a in analyses}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise MnsmetaInputError(
            f"unknown analysis {', '.join(unknown)}: choose from {', '.join(by_name)}"
        )
    wanted = set(names)
    for name in names:
        wanted.update(by_name[name].inputs)
    return [a for a in analyses if a.name in wanted]


def mns_reference(analyses: list[Analysis]) -> Analysis | None:
    """The MNS reference analysis among ``analyses``, if any."""
    return next((a for a in analyses if a.is_mns_reference), None)


def answering(
    claim_analysis: str, analyses: list[Analysis], direction: str = "any"
) -> Analysis | None:
    """The analysis of analyses.toml that a claim's ``analysis`` (and direction) names.

    Raises when no study-level analysis answers; returns None when no analysis of a claim's
    direction is configured (the claim is then not testable).
    """
    for analysis in analyses:
        if analysis.answers(claim_analysis, direction):
            return analysis
    if direction != "any":
        return None
    raise MnsmetaInputError(
        f"claims: no analysis in analyses.toml answers {claim_analysis!r}: add one"
    )
