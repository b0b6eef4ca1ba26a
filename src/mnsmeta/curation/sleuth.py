"""Sleuth (GingerALE) text files: reading with line-numbered checks, and writing.

A Sleuth file starts with ``// Reference=MNI`` (or ``Talairach``); each experiment is one or
more ``//`` header lines (``// Study name: contrast``), a ``// Subjects=N`` line, and one
focus per line (x y z, separated by spaces or tabs). Blank lines separate experiments.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnsmeta.curation.records import check_focus_location
from mnsmeta.curation.tsv import positive_whole_number, read_text
from mnsmeta.data.space import outside_bounding_box, to_mni
from mnsmeta.errors import Problem

#: Spellings of the reference space that GingerALE and NiMARE accept, and what they mean.
SLEUTH_SPACES = {"MNI": "MNI", "TAL": "TAL", "Talairach": "TAL"}
_REFERENCE = re.compile(r"^//\s*Reference\s*=\s*(.*?)\s*$", re.IGNORECASE)
_SUBJECTS = re.compile(r"^//\s*Subjects\s*=\s*(.*?)\s*$", re.IGNORECASE)


@dataclass
class SleuthExperiment:
    """One experiment of a Sleuth file.

    Parameters
    ----------
    name : str
        The header text (``Study: contrast``), as written.
    sample_size : int or None
        The ``// Subjects=`` value.
    space : str
        ``"MNI"`` or ``"TAL"``.
    foci : list of tuple
        ``(x, y, z)`` as written in the file (not converted).
    line : int
        Line of the experiment's first header line.
    """

    name: str
    sample_size: int | None
    space: str
    foci: list[tuple[float, float, float]] = field(default_factory=list)
    line: int = 0

    @property
    def study(self) -> str:
        return self.name.split(":")[0].strip()

    @property
    def contrast(self) -> str:
        _, _, contrast = self.name.partition(":")
        return contrast.strip() or "1"


def read_sleuth(
    path: Path, problems: list[Problem], keep_repeats: bool = False, drop_outside: bool = False
) -> list[SleuthExperiment]:
    """Read a Sleuth text file, appending every problem found to ``problems``.

    Parameters
    ----------
    path : Path
        The Sleuth file.
    problems : list of Problem
        Where problems are recorded; reading continues past them.
    keep_repeats : bool
        Keep a focus repeated within an experiment instead of reporting it: the exports
        (``foci.txt``) keep every database row (a study's pooled tables may repeat a peak),
        each of which is one random focus in the Monte Carlo null, as in NiMARE.
    drop_outside : bool
        Drop a focus outside the MNI152 bounding box with a warning naming it, instead of
        an error (``mnsmeta ale --drop-outside``; the published reference sets, which hold a
        few such typing errors).

    Returns
    -------
    list of SleuthExperiment
        The experiments read (including any with problems, so counts stay visible).
    """
    path_s = str(path)
    text = read_text(Path(path), problems)
    if text is None:
        return []
    lines = list(enumerate(text.splitlines(), start=1))
    content = [(number, line.strip()) for number, line in lines if line.strip()]
    first_number, first = content[0]
    reference = _REFERENCE.match(first)
    if reference is None:
        problems.append(
            Problem(
                path_s,
                first_number,
                "no '// Reference=' line before the first experiment",
                "start the file with '// Reference=MNI' or '// Reference=Talairach'",
            )
        )
        return []
    space = SLEUTH_SPACES.get(reference.group(1))
    if space is None:
        problems.append(
            Problem(
                path_s,
                first_number,
                f"unknown space {reference.group(1)!r}",
                f"use one of {', '.join(SLEUTH_SPACES)}",
            )
        )
        return []

    experiments: list[SleuthExperiment] = []
    current: SleuthExperiment | None = None
    in_header = False
    seen: dict[tuple[float, float, float], int] = {}

    def close(experiment: SleuthExperiment | None) -> None:
        if experiment is not None and not experiment.foci:
            problems.append(
                Problem(
                    path_s,
                    experiment.line,
                    f"experiment {experiment.name!r} has zero foci",
                    "add its coordinates below its '// Subjects=' line, or delete it",
                )
            )

    for number, line in lines[first_number:]:
        line = line.strip()
        if not line:
            in_header = False
            continue
        if line.startswith("//"):
            reference = _REFERENCE.match(line)
            if reference is not None:
                problems.append(
                    Problem(
                        path_s,
                        number,
                        f"space changes mid-file to {reference.group(1)!r}",
                        "GingerALE takes one space per file: split the file, or convert "
                        "all foci to one space",
                    )
                )
                continue
            subjects = _SUBJECTS.match(line)
            if subjects is None:
                if not in_header:
                    close(current)
                    current = SleuthExperiment(line.lstrip("/").strip(), None, space, [], number)
                    experiments.append(current)
                    seen = {}
                    in_header = True
                else:
                    current.name = f"{current.name} {line.lstrip('/').strip()}".strip()
                continue
            if current is None or not in_header:
                close(current)
                current = SleuthExperiment(f"experiment at line {number}", None, space, [], number)
                experiments.append(current)
                seen = {}
            current.sample_size = _subjects(subjects.group(1), path_s, number, problems)
            in_header = False
            continue
        in_header = False
        if current is None:
            problems.append(
                Problem(
                    path_s,
                    number,
                    "coordinates before any experiment header",
                    "add '// Study: contrast' and '// Subjects=N' lines above them",
                )
            )
            continue
        focus = _focus(line, path_s, number, problems)
        if focus is None:
            continue
        if focus in seen and not keep_repeats:
            problems.append(
                Problem(
                    path_s,
                    number,
                    f"focus {line!r} entered twice in experiment {current.name!r} "
                    f"(first at line {seen[focus]})",
                    "it counts once (pooled contrasts share peaks); delete the repeated line "
                    "to silence this",
                    severity="warning",
                )
            )
            continue
        seen[focus] = number
        mni = to_mni(np.array([focus]), np.array([space]))[0]
        if drop_outside and outside_bounding_box(mni)[0]:
            problems.append(
                Problem(
                    path_s,
                    number,
                    f"focus {line!r} of experiment {current.name!r} lies outside the MNI152 "
                    "bounding box",
                    "dropped (it cannot be placed on the grid); check the paper's table",
                    severity="warning",
                )
            )
            continue
        check_focus_location(tuple(mni), path_s, number, problems)
        current.foci.append(focus)
    close(current)
    for experiment in experiments:
        if experiment.sample_size is None and not any(
            p.line == experiment.line and "Subjects" in p.message for p in problems
        ):
            problems.append(
                Problem(
                    path_s,
                    experiment.line,
                    f"experiment {experiment.name!r} has no '// Subjects=' line",
                    "add '// Subjects=N' (the number of participants) after its name",
                )
            )
    return experiments


def _subjects(value: str, path: str, line: int, problems: list[Problem]) -> int | None:
    number = positive_whole_number(value)
    if number is None:
        problems.append(
            Problem(
                path,
                line,
                f"Subjects = {value!r} is not a positive whole number",
                "write the number of participants, e.g. '// Subjects=24'",
            )
        )
    return number


def _focus(line: str, path: str, number: int, problems: list[Problem]):
    parts = line.split()
    if len(parts) != 3:
        problems.append(
            Problem(
                path,
                number,
                f"{line!r} has {len(parts)} values, not 3 (x y z)",
                "write one focus per line as three numbers separated by spaces or tabs",
            )
        )
        return None
    values = []
    for axis, part in zip("xyz", parts, strict=True):
        try:
            value = float(part)
        except ValueError:
            hint = " (use a decimal point)" if "," in part else ""
            problems.append(
                Problem(path, number, f"{axis} = {part!r} is not a number{hint}", "fix the value")
            )
            return None
        if not math.isfinite(value):
            problems.append(
                Problem(path, number, f"{axis} = {part!r} is not finite", "write a number in mm")
            )
            return None
        values.append(value)
    return tuple(values)


def _number(value: float) -> str:
    # Shortest text that reads back as the same float: round trips are exact.
    return np.format_float_positional(float(value), trim="-")


def write_sleuth(path: Path, experiments: list[SleuthExperiment]) -> None:
    """Write experiments (all in one space) as a Sleuth text file.

    Nothing but the reference line, the experiments' headers and their foci: GingerALE and
    NiMARE read any other ``//`` line between experiments as an experiment of its own.

    Parameters
    ----------
    path : Path
        Output file.
    experiments : list of SleuthExperiment
        Experiments to write; they must share one space.
    """
    spaces = {experiment.space for experiment in experiments}
    if len(spaces) > 1:
        raise ValueError(f"experiments in several spaces {sorted(spaces)}: convert them first")
    space = spaces.pop() if spaces else "MNI"
    reference = "Talairach" if space == "TAL" else "MNI"
    lines = [f"// Reference={reference}"]
    for experiment in experiments:
        lines.append("")
        lines.append(f"// {experiment.name}")
        lines.append(f"// Subjects={experiment.sample_size}")
        lines += [" ".join(_number(v) for v in focus) for focus in experiment.foci]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
