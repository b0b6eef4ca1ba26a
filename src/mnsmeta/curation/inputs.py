"""Foci files as meta-analysts have them, read into experiments for ``mnsmeta ale``.

A Sleuth (GingerALE) text file gives one experiment per block, as GingerALE and NiMARE
read it; a NIMADS studyset (NeuroStore's and NiMARE's JSON) one experiment per analysis, as
NiMARE's ``Studyset`` does. Talairach foci are converted to MNI (Lancaster icbm2tal, as
NiMARE). What the project's curation does for its own groups does not apply here: the
experiments are the file's, as its authors defined them.

Errors stop the run (the file cannot be read as intended: a short row, a non-number, no
reference space, a missing or non-positive N, a focus outside the MNI box). Warnings do
not: a focus repeated within an experiment counts once, and a focus a few millimetres
outside the brain mask is kept (the kernel still reaches into the mask), as in GingerALE and
NiMARE.
"""

from __future__ import annotations

import bisect
from pathlib import Path

import numpy as np
import pandas as pd

from mnsmeta.curation.contrasts import UNKNOWN
from mnsmeta.curation.experiments import EXPERIMENT_COLUMNS, FOCI_COLUMNS, ExperimentSet
from mnsmeta.curation.importing import studies_from_nimads
from mnsmeta.curation.sleuth import read_sleuth
from mnsmeta.data.hygiene import drop_repeated_foci
from mnsmeta.data.space import SPACE_RULES, to_mni
from mnsmeta.errors import MnsmetaInputError, Problem, errors_in

#: How the Sleuth reader words a repeated focus (a warning; the repeat is not kept).
REPEAT_MESSAGE = "entered twice"
#: Suffixes read as NIMADS studysets; anything else is read as Sleuth text.
NIMADS_SUFFIXES = (".json",)


def read_experiments(
    path: Path, name: str, drop_outside: bool = False
) -> tuple[ExperimentSet, list[Problem]]:
    """Read a Sleuth file or NIMADS studyset into an experiment set.

    Parameters
    ----------
    path : Path
        The foci file.
    name : str
        The analysis name (the experiment set's group).
    drop_outside : bool
        Drop foci outside the MNI152 bounding box with a warning (Sleuth files) instead of
        refusing the file.

    Returns
    -------
    experiments : ExperimentSet
        One experiment per Sleuth block or NIMADS analysis, foci in MNI.
    warnings : list of Problem
        What was read but is worth a look (``severity == "warning"``).

    Raises
    ------
    MnsmetaInputError
        If the file has errors (every problem found is listed), or no experiment.
    """
    path = Path(path)
    if not path.is_file():
        raise MnsmetaInputError(
            f"{path}: no such file: give a Sleuth text file, a NIMADS studyset (.json) or a "
            "group of the project (SAD, BPD, MNS)"
        )
    if path.suffix.lower() in NIMADS_SUFFIXES:
        blocks, problems = _nimads_blocks(path)
    else:
        problems: list[Problem] = []
        experiments = read_sleuth(path, problems, drop_outside=drop_outside)
        # The reader warns of a repeated focus at its line and keeps the first: count them
        # for the experiment whose block holds that line.
        starts = [e.line for e in experiments]
        repeats = [0] * len(experiments)
        for problem in problems:
            if problem.is_warning and REPEAT_MESSAGE in problem.message:
                repeats[bisect.bisect_right(starts, problem.line) - 1] += 1
        blocks = [
            (e.name, e.sample_size, e.space, e.foci, "// Subjects= line", r)
            for e, r in zip(experiments, repeats, strict=True)
        ]
    errors = errors_in(problems)
    if errors:
        raise MnsmetaInputError(f"{path}: {len(errors)} error(s); nothing analysed", problems)
    if not blocks:
        raise MnsmetaInputError(f"{path}: no experiment found")
    return _experiment_set(name, path, blocks), [p for p in problems if p.is_warning]


def _nimads_blocks(path: Path):
    """NIMADS analyses as (name, N, space, foci, where N was read); problems found."""
    blocks, problems = [], []
    for study in studies_from_nimads(path):
        for contrast in study.contrasts:
            if not contrast.foci:
                continue
            label = f"{study.study_id}: {contrast.label}"
            if not contrast.sample_size:
                problems.append(
                    Problem(
                        str(path),
                        None,
                        f"analysis {label!r} has no sample size",
                        "give metadata.sample_sizes (the number of participants)",
                    )
                )
            repeated = len(contrast.foci) - len(set(contrast.foci))
            if repeated:
                problems.append(_repeat_warning(path, label, repeated))
            foci = list(dict.fromkeys(contrast.foci))
            blocks.append(
                (label, contrast.sample_size, contrast.space, foci, "sample_sizes", repeated)
            )
    return blocks, problems


def _repeat_warning(path: Path, label: str, repeated: int) -> Problem:
    return Problem(
        str(path),
        None,
        f"{repeated} focus(es) repeated within {label!r}",
        "each counts once (a repeated focus adds a random focus to the null, nothing to the "
        "map); delete the repeats to silence this",
        severity="warning",
    )


def _unique_ids(names: list[str]) -> list[str]:
    """Experiment ids: the names, numbered where a name repeats."""
    counts = pd.Series(names).value_counts()
    seen: dict[str, int] = {}
    ids = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        ids.append(f"{name} ({seen[name]})" if counts[name] > 1 else name)
    return ids


def _experiment_set(name: str, path: Path, blocks) -> ExperimentSet:
    ids = _unique_ids([block[0] for block in blocks])
    rows, foci = [], []
    for experiment_id, (label, n, space, xyz, rule, repeated) in zip(ids, blocks, strict=True):
        mni = to_mni(np.asarray(xyz, dtype=float).reshape(-1, 3), np.array([space] * len(xyz)))
        block = pd.DataFrame(
            {
                "experiment_id": experiment_id,
                "contrast": label,
                "kind": UNKNOWN,
                "table_id": "",
                "x": mni[:, 0],
                "y": mni[:, 1],
                "z": mni[:, 2],
            }
        )
        kept = drop_repeated_foci(block)  # a location counts once within an experiment
        foci.append(kept)
        rows.append(
            {
                "experiment_id": experiment_id,
                "group": name,
                "source": path.name,
                "n_foci": len(kept),
                "sample_size": n,
                "sample_size_rule": rule,
                "reported_space": space,
                "space_rule": SPACE_RULES[space],
                "contrasts": label,
                "kinds": UNKNOWN,
                "foci_removed_duplicate_table": 0,
                "foci_removed_near_copy_table": 0,
                "foci_removed_repeated_focus": repeated + len(block) - len(kept),
            }
        )
    experiments = pd.DataFrame(rows).reindex(columns=EXPERIMENT_COLUMNS).set_index("experiment_id")
    return ExperimentSet(name, experiments, pd.concat(foci, ignore_index=True)[FOCI_COLUMNS])


def analysis_name(path: Path) -> str:
    """A results-folder name for a foci file: its stem, in letters, digits, ``_`` and ``-``."""
    stem = "".join(c if c.isalnum() or c in "_-" else "_" for c in Path(path).stem)
    return stem.strip("_") or "ale"
