"""Sleuth (GingerALE) text files: reading with line-numbered checks, and writing.

A Sleuth file starts with ``// Reference=MNI`` (or ``Talairach``); each experiment is one or
more ``//`` header lines (``// Study name: contrast``), a ``// Subjects=N`` line, and one
focus per line (x y z, separated by spaces or tabs). Blank lines separate experiments.

Real files' quirks are read, each with a warning: a typographic minus or dash (``−85``, as
word processors write it) is a minus; ``// subjects = 12`` is ``// Subjects=12``; a block
without foci (a study kept in a shared file with ``// Subjects=0`` and no results) is
skipped. The experiments are :class:`~mnsmeta.curation.foci_files.FociExperiment`, the type
every foci file reader returns, checked as every reader checks them
(:func:`~mnsmeta.curation.foci_files.check_experiments`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnsmeta.curation.foci_files import (
    FociExperiment,
    check_experiments,
    parse_coordinate,
    read_minus,
)
from mnsmeta.curation.tsv import positive_whole_number, read_text
from mnsmeta.errors import Problem

#: Spellings of the reference space that GingerALE and NiMARE accept, and what they mean.
SLEUTH_SPACES = {"MNI": "MNI", "TAL": "TAL", "Talairach": "TAL"}
_REFERENCE = re.compile(r"^//\s*Reference\s*=\s*(.*?)\s*$", re.IGNORECASE)
_SUBJECTS = re.compile(r"^//\s*Subjects\s*=\s*(.*?)\s*$", re.IGNORECASE)
#: Where a Sleuth experiment's N is read (``experiments.csv``'s ``sample_size_rule``).
SUBJECTS_RULE = "// Subjects= line"

#: The experiment type of Sleuth files: the one type of every foci file (the old name).
SleuthExperiment = FociExperiment


@dataclass
class _Block:
    """A Sleuth block while it is read: header lines, its Subjects line, its foci."""

    line: int
    names: list[str]
    subjects: tuple[str, int] | None = None
    foci: list[tuple[float, float, float]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    first_at: dict[tuple[float, float, float], int] = field(default_factory=dict)
    repeated: int = 0

    @property
    def name(self) -> str:
        return " ".join(name for name in self.names if name)


def read_sleuth(
    path: Path,
    problems: list[Problem],
    keep_repeats: bool = False,
    drop_outside: bool | str = False,
) -> list[FociExperiment]:
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
    drop_outside : bool or "box"
        Drop a focus outside the MNI152 bounding box (and, if True, one far outside the
        brain) with a warning naming it, instead of an error (``mnsmeta ale
        --drop-outside``; ``"box"`` for the published reference sets, which hold a few
        such typing errors).

    Returns
    -------
    list of FociExperiment
        The experiments with foci (including any with problems, so counts stay visible).
    """
    path_s = str(path)
    text = read_text(Path(path), problems)
    if text is None:
        return []
    lines = list(enumerate(text.splitlines(), start=1))
    content = [(number, line.strip()) for number, line in lines if line.strip()]
    if not content:
        problems.append(Problem(path_s, None, "the file is empty", "add content or delete it"))
        return []
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

    blocks: list[_Block] = []
    current: _Block | None = None
    in_header = False
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
                if in_header:
                    current.names.append(line.lstrip("/").strip())
                else:
                    current = _Block(number, [line.lstrip("/").strip()])
                    blocks.append(current)
                    in_header = True
                continue
            if current is None or not in_header:
                current = _Block(number, [f"experiment at line {number}"])
                blocks.append(current)
            current.subjects = (subjects.group(1), number)
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
        if focus in current.first_at and not keep_repeats:
            problems.append(
                Problem(
                    path_s,
                    number,
                    f"focus {line!r} entered twice in experiment {current.name!r} "
                    f"(first at line {current.first_at[focus]})",
                    "it counts once (pooled contrasts share peaks); delete the repeated line "
                    "to silence this",
                    severity="warning",
                )
            )
            current.repeated += 1
            continue
        current.first_at.setdefault(focus, number)
        current.foci.append(focus)
        current.lines.append(number)

    experiments = []
    for block in blocks:
        if not block.foci:
            # Shared files keep a header for a study without results (// Subjects=0).
            problems.append(
                Problem(
                    path_s,
                    block.line,
                    f"experiment {block.name!r} has zero foci",
                    "skipped; add its coordinates below its '// Subjects=' line, or delete it",
                    severity="warning",
                )
            )
            continue
        if block.subjects is None:
            problems.append(
                Problem(
                    path_s,
                    block.line,
                    f"experiment {block.name!r} has no '// Subjects=' line",
                    "add '// Subjects=N' (the number of participants) after its name",
                )
            )
            sample_size = None
        else:
            sample_size = _subjects(*block.subjects, path_s, problems)
        experiments.append(
            FociExperiment(
                block.name,
                sample_size,
                space,
                block.foci,
                block.line,
                path_s,
                lines=block.lines,
                repeated=block.repeated,
                sample_size_rule=SUBJECTS_RULE,
            )
        )
    return check_experiments(experiments, path_s, problems, drop_outside)


def _subjects(value: str, line: int, path: str, problems: list[Problem]) -> int | None:
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
    line = read_minus(line, path, number, problems)
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
    values = [parse_coordinate(part, axis, path, number, problems) for axis, part in
              zip("xyz", parts, strict=True)]  # fmt: skip
    return None if None in values else tuple(values)


def _number(value: float) -> str:
    # Shortest text that reads back as the same float: round trips are exact.
    return np.format_float_positional(float(value), trim="-")


def write_sleuth(path: Path, experiments: list[FociExperiment]) -> None:
    """Write experiments (all in one space) as a Sleuth text file.

    Nothing but the reference line, the experiments' headers and their foci: GingerALE and
    NiMARE read any other ``//`` line between experiments as an experiment of its own.

    Parameters
    ----------
    path : Path
        Output file.
    experiments : list of FociExperiment
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
