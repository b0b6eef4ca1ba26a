"""Foci files as meta-analysts have them, read into experiments for ``mnsmeta ale``.

A Sleuth (GingerALE) text file gives one experiment per block, as GingerALE and NiMARE
read it; a NIMADS studyset (NeuroStore's and NiMARE's JSON) one experiment per analysis, as
NiMARE's ``Studyset`` does; a table (CSV, TSV, Excel; one row per focus) one experiment per
study and contrast (:mod:`mnsmeta.curation.tables`). Every reader gives
:class:`~mnsmeta.curation.foci_files.FociExperiment`; Talairach foci are converted to MNI
(Lancaster icbm2tal, as NiMARE). What the project's curation does for its own groups does not
apply here: the experiments are the file's, as its authors defined them.

Errors stop the run (the file cannot be read as intended: a short row, a non-number, no
reference space, a missing or non-positive N, a focus outside the MNI box unless
``--drop-outside``). Warnings do not: a focus repeated within an experiment counts once, an
experiment without foci is skipped, and a focus a few millimetres outside the brain mask is
kept (the kernel still reaches into the mask), as in GingerALE and NiMARE.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mnsmeta.curation.contrasts import UNKNOWN
from mnsmeta.curation.experiments import EXPERIMENT_COLUMNS, FOCI_COLUMNS, ExperimentSet
from mnsmeta.curation.foci_files import FociExperiment, read_foci_file, require_experiments
from mnsmeta.data.hygiene import drop_repeated_foci
from mnsmeta.data.space import SPACE_RULES, to_mni
from mnsmeta.errors import MnsmetaInputError, Problem


def read_experiments(
    path: Path, name: str, drop_outside: bool | str = False, columns=None
) -> tuple[ExperimentSet, list[Problem]]:
    """Read a Sleuth file, NIMADS studyset or foci table into an experiment set.

    Parameters
    ----------
    path : Path
        The foci file.
    name : str
        The analysis name (the experiment set's group).
    drop_outside : bool or "box"
        Drop foci outside the MNI152 bounding box or far outside the brain, each listed as
        a warning, instead of refusing the file (``"box"``: only those outside the box).
    columns : dict or sequence of str, optional
        For a table: which column holds what (``["study=Author", "n=Subjects"]``).

    Returns
    -------
    experiments : ExperimentSet
        One experiment per Sleuth block, NIMADS analysis or table study (and contrast),
        foci in MNI.
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
            f"{path}: no such file: give a Sleuth text file, a NIMADS studyset (.json), a "
            "foci table (.csv, .tsv, .xlsx) or a group of the project (SAD, BPD, MNS)"
        )
    problems: list[Problem] = []
    experiments = read_foci_file(path, problems, columns, drop_outside)
    warnings = require_experiments(path, experiments, problems, "analysed")
    return experiment_set(name, path, experiments), warnings


def _unique_ids(names: list[str]) -> list[str]:
    """Experiment ids: the names, numbered where a name repeats."""
    counts = pd.Series(names).value_counts()
    seen: dict[str, int] = {}
    ids = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        ids.append(f"{name} ({seen[name]})" if counts[name] > 1 else name)
    return ids


def experiment_set(name: str, path: Path, experiments: list[FociExperiment]) -> ExperimentSet:
    """The experiments of a foci file as the analysis's experiment set, foci in MNI."""
    ids = _unique_ids([experiment.name for experiment in experiments])
    rows, foci = [], []
    for experiment_id, experiment in zip(ids, experiments, strict=True):
        xyz = experiment.xyz
        mni = to_mni(xyz, np.array([experiment.space] * len(xyz)))
        block = pd.DataFrame(
            {
                "experiment_id": experiment_id,
                "contrast": experiment.name,
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
                "source": Path(path).name,
                "n_foci": len(kept),
                "sample_size": experiment.sample_size,
                "sample_size_rule": experiment.sample_size_rule,
                "reported_space": experiment.space,
                "space_rule": SPACE_RULES[experiment.space],
                "contrasts": experiment.name,
                "kinds": UNKNOWN,
                "foci_removed_duplicate_table": 0,
                "foci_removed_near_copy_table": 0,
                "foci_removed_repeated_focus": experiment.repeated + len(block) - len(kept),
            }
        )
    experiments = pd.DataFrame(rows).reindex(columns=EXPERIMENT_COLUMNS).set_index("experiment_id")
    return ExperimentSet(name, experiments, pd.concat(foci, ignore_index=True)[FOCI_COLUMNS])


def analysis_name(path: Path) -> str:
    """A results-folder name for a foci file: its stem, in letters, digits, ``_`` and ``-``."""
    stem = "".join(c if c.isalnum() or c in "_-" else "_" for c in Path(path).stem)
    return stem.strip("_") or "ale"
