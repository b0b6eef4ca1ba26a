"""The analyses to run, read from ``coordinates/analyses.toml``."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from mnsmeta.errors import MnsmetaInputError, Problem
from mnsmeta.records import GROUPS, MODALITIES

KINDS = ("ale", "subtraction", "conjunction")


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
    """

    name: str
    kind: str
    groups: tuple[str, ...] = ()
    modalities: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()


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
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise MnsmetaInputError(f"{path}: not valid TOML ({error}): fix the syntax") from error
    problems: list[Problem] = []
    analyses: list[Analysis] = []
    for number, entry in enumerate(data.get("analysis", []), start=1):
        name = entry.get("name", "")

        def problem(message: str, fix: str, number=number, name=name) -> None:
            problems.append(
                Problem(str(path), None, f"analysis {number} ({name}): {message}", fix)
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
        if kind == "ale":
            if not groups or any(g not in GROUPS for g in groups):
                problem(f"groups {list(groups)}", f"give one or more of {', '.join(GROUPS)}")
            if any(m not in MODALITIES for m in modalities):
                problem(f"modalities {list(modalities)}", f"use {', '.join(MODALITIES)}")
        elif kind in ("subtraction", "conjunction"):
            earlier = {a.name: a for a in analyses}
            if len(inputs) != 2 or any(
                i not in earlier or earlier[i].kind != "ale" for i in inputs
            ):
                problem(
                    f"inputs {list(inputs)}",
                    "name two ale analyses defined above this one",
                )
        analyses.append(Analysis(name, kind, groups, modalities, inputs))
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
