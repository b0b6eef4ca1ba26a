"""Foci files as the field shares them: one experiment type for every format.

A meta-analyst's foci come as a Sleuth text file (GingerALE's; :mod:`.sleuth`), a NIMADS
studyset (NeuroStore's and NiMARE's JSON; :mod:`.nimads`) or a table with one row per focus
(CSV, TSV or Excel, as JALE and most supplements have them; :mod:`.tables`). Every reader
gives the same thing, a list of :class:`FociExperiment` with its foci as written and the file
and line each came from, and every reader ends with the same checks
(:func:`check_experiments`), so that ``mnsmeta validate``, ``mnsmeta import`` and
``mnsmeta ale`` read every format alike and word every problem alike.

The checks, for all formats:

- a focus outside the MNI152 bounding box cannot be placed on the grid: an error, unless
  the reader was asked to drop it (``mnsmeta ale --drop-outside``), which lists it;
- a focus more than :data:`~mnsmeta.data.space.FAR_OUTSIDE_MM` mm outside the brain mask is
  used as given, as GingerALE and NiMARE use it (a warning), or dropped and listed with
  ``--drop-outside``;
- an experiment without foci (an empty block, as in shared files that keep a header for a
  study without results) is skipped with a warning;
- two experiments with the same foci (the same study entered twice) are named in a warning:
  both are used, so their participants would count twice.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnsmeta.data.space import FAR_OUTSIDE_MM, distance_to_brain, outside_bounding_box, to_mni
from mnsmeta.errors import MnsmetaInputError, Problem, errors_in

#: Suffixes read as NIMADS studysets, and as tables; anything else is read as Sleuth text.
NIMADS_SUFFIXES = (".json",)
TABLE_SUFFIXES = (".csv", ".tsv", ".tab", ".xlsx", ".xlsm")

#: Characters that word processors and PDF tables put where a minus sign is meant.
MINUS_LOOKALIKES = "\u2212\u2013\u2012\u2014\ufe63\uff0d"
_MINUSES = str.maketrans(dict.fromkeys(MINUS_LOOKALIKES, "-"))

#: How the checks word what ``--drop-outside`` does, so that every message names it alike.
DROP_OPTION = "mnsmeta ale --drop-outside"


@dataclass
class FociExperiment:
    """One experiment of a foci file (Sleuth block, NIMADS analysis, or table rows).

    Parameters
    ----------
    name : str
        The experiment's name as the file gives it (``Study: contrast`` in Sleuth).
    sample_size : int or None
        Its N (participants), or None when the file gives none (an error then).
    space : str
        ``"MNI"`` or ``"TAL"``: the space of ``foci``.
    foci : list of tuple
        ``(x, y, z)`` as written in the file (not converted), a repeated focus once.
    line : int or None
        Line (table row) of the experiment's first line, or None (NIMADS).
    file : str
        The file it was read from.
    study, contrast : str
        Study and contrast; by default read from ``name`` (``Study: contrast``; the
        contrast is ``"1"`` when the name has no colon, as GingerALE numbers them).
    kind : str
        The contrast's kind when the file's metadata states it (NIMADS ``metadata.kind``),
        else ``""`` (``mnsmeta import`` then reads it from the contrast's label).
    lines : list of int or None
        The line of each focus (empty when not known).
    repeated : int
        Foci repeated within the experiment in the file, each counted once (warned).
    sample_size_rule : str
        Where N was read (``"// Subjects= line"``, ``"sample_sizes"``, ``"column 'n'"``).
    """

    name: str
    sample_size: int | None
    space: str
    foci: list[tuple[float, float, float]] = field(default_factory=list)
    line: int | None = None
    file: str = ""
    study: str = ""
    contrast: str = ""
    kind: str = ""
    lines: list[int | None] = field(default_factory=list)
    repeated: int = 0
    sample_size_rule: str = ""

    def __post_init__(self):
        if not self.study and not self.contrast:
            self.study, self.contrast = split_name(self.name)

    @property
    def xyz(self) -> np.ndarray:
        """(n_foci, 3) float array of the foci as written."""
        return np.asarray(self.foci, dtype=float).reshape(-1, 3)

    def line_of(self, index: int) -> int | None:
        """The line of focus ``index``, else the experiment's line."""
        return self.lines[index] if index < len(self.lines) else self.line


def split_name(name: str) -> tuple[str, str]:
    """Study and contrast of an experiment name ``Study: contrast`` (contrast ``"1"``
    when there is no colon)."""
    study, _, contrast = name.partition(":")
    return study.strip(), contrast.strip() or "1"


def study_id_from_name(name: str) -> str:
    """Turn a study name (``Smith et al., 2010``) into an id (``smith_et_al_2010``)."""
    slug = re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")
    return slug or "study"


def focus_text(focus) -> str:
    """A focus as ``x y z``, each number in its shortest exact form."""
    return " ".join(np.format_float_positional(float(v), trim="-") for v in focus)


def read_minus(text: str, path: str, line: int | None, problems: list[Problem]) -> str:
    """``text`` with a typographic minus or dash read as ``-``, with a warning naming it.

    Tables copied from PDFs and word processors carry U+2212 (MINUS SIGN) or a dash where
    the author meant a minus: ``−85`` is -85, not a typing error to refuse.
    """
    found = sorted({c for c in text if c in MINUS_LOOKALIKES})
    if not found:
        return text
    named = ", ".join(f"{c!r} (U+{ord(c):04X} {unicodedata.name(c)})" for c in found)
    problems.append(
        Problem(
            path,
            line,
            f"{text.strip()!r} has {named} where a minus sign is meant",
            "read as '-'; type a plain '-' (U+002D) to silence this",
            severity="warning",
        )
    )
    return text.translate(_MINUSES)


def parse_coordinate(
    value, axis: str, path: str, line: int | None, problems: list[Problem]
) -> float | None:
    """A coordinate in mm from a file's text (or a spreadsheet's number); None, with the
    problem recorded, if it is not a finite number."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        try:
            number = float(value)
        except ValueError:
            hint = " (use a decimal point)" if "," in value else ""
            problems.append(
                Problem(path, line, f"{axis} = {value!r} is not a number{hint}", "fix the value")
            )
            return None
    if not math.isfinite(number):
        problems.append(
            Problem(path, line, f"{axis} = {value!r} is not finite", "write a number in mm")
        )
        return None
    return number


def read_foci_file(
    path: Path,
    problems: list[Problem],
    columns=None,
    drop_outside: bool | str = False,
) -> list[FociExperiment]:
    """Read any foci file into experiments, appending every problem found to ``problems``.

    Parameters
    ----------
    path : Path
        A Sleuth text file, a NIMADS studyset (``.json``) or a table (``.csv``, ``.tsv``,
        ``.tab``, ``.xlsx``).
    problems : list of Problem
        Where problems are recorded; reading continues past them.
    columns : dict or sequence of str, optional
        For tables: which column holds what (``{"study": "Author"}`` or
        ``["study=Author"]``); see :mod:`mnsmeta.curation.tables`. Ignored for the
        other formats.
    drop_outside : bool or "box"
        True: drop the foci outside the MNI152 box or far outside the brain (listed as
        warnings) instead of refusing the file; ``"box"``: drop only those outside the box
        (the published reference sets).

    Returns
    -------
    list of FociExperiment
        The experiments with foci, in file order.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    # Readers are imported here: each imports this module for the experiment type.
    if suffix in NIMADS_SUFFIXES:
        from mnsmeta.curation.nimads import read_nimads

        return read_nimads(path, problems, drop_outside=drop_outside)
    if suffix in TABLE_SUFFIXES:
        from mnsmeta.curation.tables import read_table

        return read_table(path, problems, columns, drop_outside=drop_outside)
    from mnsmeta.curation.sleuth import read_sleuth

    return read_sleuth(path, problems, drop_outside=drop_outside)


def require_experiments(
    path: Path, experiments: list[FociExperiment], problems: list[Problem], verb: str
) -> list[Problem]:
    """Stop on any error or on a file without experiments; return the warnings.

    Raises
    ------
    MnsmetaInputError
        ``"PATH: N error(s); nothing VERB"`` with every problem, or ``"PATH: no experiment
        found"``.
    """
    errors = errors_in(problems)
    if errors:
        raise MnsmetaInputError(f"{path}: {len(errors)} error(s); nothing {verb}", problems)
    if not experiments:
        raise MnsmetaInputError(f"{path}: no experiment found", problems)
    return [problem for problem in problems if problem.is_warning]


def check_experiments(
    experiments: list[FociExperiment],
    path: str,
    problems: list[Problem],
    drop_outside: bool | str = False,
) -> list[FociExperiment]:
    """The checks every reader ends with; returns the experiments left with foci.

    Foci outside the MNI152 box are errors (or dropped, listed), foci far outside the brain
    warnings (or dropped, listed, with ``drop_outside=True``); experiments without foci are
    skipped with a warning; experiments with identical foci are named in a warning.
    """
    dropped = _check_locations(experiments, path, problems, drop_outside)
    if dropped and drop_outside is True:
        problems.append(
            Problem(
                path,
                None,
                f"{dropped} focus(es) outside the MNI152 box or more than "
                f"{FAR_OUTSIDE_MM:g} mm outside the brain mask dropped (--drop-outside)",
                "each is listed above with its experiment, coordinates and line",
                severity="warning",
            )
        )
    kept = []
    for experiment in experiments:
        if experiment.foci:
            kept.append(experiment)
        else:  # the readers skip their empty experiments: this one lost every focus
            problems.append(
                Problem(
                    path,
                    experiment.line,
                    f"experiment {experiment.name!r} has no focus left after dropping the "
                    "ones outside",
                    "skipped",
                    severity="warning",
                )
            )
    _check_identical(kept, path, problems)
    return kept


def _check_locations(experiments, path, problems, drop_outside) -> int:
    """Check each focus's MNI location; drop those outside if asked. Returns how many."""
    if not any(e.foci for e in experiments):
        return 0
    xyz = np.concatenate([e.xyz for e in experiments])
    spaces = np.concatenate([[e.space] * len(e.foci) for e in experiments])
    mni = to_mni(xyz, spaces)  # one conversion per file: NiMARE's transform is slow to load
    outside = outside_bounding_box(mni)
    distance = np.zeros(len(mni))
    distance[~outside] = distance_to_brain(mni[~outside])
    n_dropped, start = 0, 0
    for experiment in experiments:
        keep = []
        for index, focus in enumerate(experiment.foci):
            row = start + index
            problem, dropped = _location(
                experiment, index, focus, mni[row], outside[row], distance[row], path,
                drop_outside,
            )  # fmt: skip
            if problem is not None:
                problems.append(problem)
            if dropped:
                n_dropped += 1
            else:
                keep.append(index)
        start += len(experiment.foci)
        if len(keep) < len(experiment.foci):
            experiment.foci = [experiment.foci[i] for i in keep]
            if experiment.lines:
                experiment.lines = [experiment.lines[i] for i in keep]
    return n_dropped


def _location(experiment, index, focus, mni, outside, distance, path, drop_outside):
    """The problem with one focus's location (or None), and whether it is dropped."""
    line = experiment.line_of(index)
    shown = "({:g}, {:g}, {:g})".format(*np.round(mni, 1))
    written = focus_text(focus)
    if outside and drop_outside:
        return Problem(
            path,
            line,
            f"focus {written!r} of experiment {experiment.name!r} lies outside the MNI152 "
            "bounding box",
            "dropped (it cannot be placed on the grid); check the paper's table",
            severity="warning",
        ), True
    if outside:  # kept: the error stops the command
        return Problem(
            path,
            line,
            f"focus {shown} (MNI) lies outside the MNI152 bounding box",
            "check the sign and order of x, y, z and the space; or drop such foci, each "
            f"listed: `{DROP_OPTION}`",
        ), False
    if distance <= FAR_OUTSIDE_MM:
        return None, False
    if drop_outside is True:
        return Problem(
            path,
            line,
            f"focus {written!r} of experiment {experiment.name!r} lies {distance:.0f} mm "
            "outside the brain mask",
            "dropped (--drop-outside); check the paper's table",
            severity="warning",
        ), True
    # GingerALE and NiMARE keep such a focus: its kernel still reaches into the mask.
    option = "" if drop_outside else f"; `{DROP_OPTION}` drops it"
    return Problem(
        path,
        line,
        f"focus {shown} (MNI) lies {distance:.0f} mm outside the brain mask",
        "it is used as given; check the sign and order of x, y, z and the space (TAL vs MNI)"
        + option,
        severity="warning",
    ), False


def _check_identical(experiments, path, problems) -> None:
    """Warn of experiments whose foci are the same set (the same study entered twice)."""
    first: dict[tuple, FociExperiment] = {}
    for experiment in experiments:
        key = (experiment.space, frozenset(experiment.foci))
        earlier = first.setdefault(key, experiment)
        if earlier is experiment:
            continue
        where = f" (line {earlier.line})" if earlier.line else ""
        problems.append(
            Problem(
                path,
                experiment.line,
                f"experiments {earlier.name!r}{where} and {experiment.name!r} have the same "
                f"{len(experiment.foci)} foci (the same study entered twice?)",
                "both are used, so its participants count twice; delete one unless they are "
                "different samples",
                severity="warning",
            )
        )
