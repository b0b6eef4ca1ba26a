"""``mnsmeta ale``: the whole pipeline for a meta-analyst's own foci, in one command.

Input: a Sleuth text file, a NIMADS studyset, a foci table (CSV, TSV, Excel; one row per
focus), one of the project's groups, or a published reference set. Output: the
same results contract as ``mnsmeta run`` (one folder per analysis with NiMARE's map names,
cluster tables with atlas labels and contributing experiments, figures, ``summary.csv``,
``provenance.json``), so that ``mnsmeta report`` renders it and the robustness tools read it.
With a second input, the subtraction (``--minus``) or the conjunction (``--and``) of the two;
with ``--robustness``, each input's clusters are checked as the project's own are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mnsmeta.curation.analyses import Analysis
from mnsmeta.curation.experiments import ExperimentSet, build_experiments
from mnsmeta.curation.groups import GROUPS
from mnsmeta.curation.inputs import analysis_name, read_experiments
from mnsmeta.curation.references import PUBLISHED_SETS, read_reference
from mnsmeta.errors import MnsmetaInputError, Problem
from mnsmeta.workflows.results import ResultsFolder
from mnsmeta.workflows.robustness import run_review
from mnsmeta.workflows.run import run_analyses
from mnsmeta.workflows.settings import Settings


@dataclass
class OwnInput:
    """One input of ``mnsmeta ale``: its analysis name, experiments and source file.

    Not a foci file's type (that is :class:`~mnsmeta.curation.foci_files.FociExperiment`,
    one per experiment): an input may also be a group of the curation or a published set,
    and is the analysis's experiment set, foci in MNI.
    """

    name: str
    experiments: ExperimentSet
    path: Path | None
    warnings: list[Problem]


def read_input(
    source: str,
    coordinates_dir: Path,
    name: str | None = None,
    drop_outside: bool = False,
    columns=None,
) -> OwnInput:
    """A foci file, a group of the project's curation (``SAD``, ``BPD``, ``MNS``) or a
    published reference set by name (``laird2015``: :mod:`mnsmeta.curation.references`).

    ``drop_outside`` drops a file's foci outside the MNI box or far outside the brain, each
    listed in the warnings; ``columns`` says which column of a table holds what
    (``["study=Author", "n=Subjects"]``).
    """
    path = Path(source)
    if not path.exists() and source.upper() in GROUPS:
        from mnsmeta.curation.records import load_valid_curation

        curation = load_valid_curation(coordinates_dir)
        group = source.upper()
        return OwnInput(name or group, build_experiments(curation, group), None, [])
    if not path.exists() and source.lower() in PUBLISHED_SETS:
        experiments, warnings = read_reference(source.lower(), name)
        return OwnInput(experiments.group, experiments, None, warnings)
    experiments, warnings = read_experiments(
        path, name or analysis_name(path), drop_outside, columns
    )
    return OwnInput(experiments.group, experiments, path, warnings)


def plan(
    first: OwnInput, second: OwnInput | None, operation: str | None, balanced: bool = False
) -> list[Analysis]:
    """The analyses to run: the ALE of each input, then their subtraction or conjunction.

    With ``balanced``, the subtraction is followed by its size-balanced version.
    """
    analyses = [Analysis(first.name, "ale")]
    if second is None:
        return analyses
    if second.name == first.name:
        raise MnsmetaInputError(
            f"both inputs are named {first.name!r}: rename one file (the name is its stem)"
        )
    analyses.append(Analysis(second.name, "ale"))
    if operation == "minus":
        analyses.append(Analysis(f"{first.name}_minus_{second.name}", "subtraction", inputs=(
            first.name, second.name)))  # fmt: skip
        if balanced:
            analyses.append(Analysis(f"{first.name}_minus_{second.name}_balanced",
                                     "subtraction", inputs=(first.name, second.name),
                                     balanced=True))  # fmt: skip
    elif operation == "and":
        analyses.append(Analysis(f"{first.name}_and_{second.name}", "conjunction", inputs=(
            first.name, second.name)))  # fmt: skip
    return analyses


def run_own_foci(
    inputs: list[OwnInput],
    operation: str | None,
    results: ResultsFolder,
    settings: Settings,
    review: Settings | None = None,
    balanced: bool = False,
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Run the ALE of each input (and their combination), then, if ``review`` is given, the
    robustness checks of each input's clusters (contributions, jackknife, fail-safe N).

    Returns the summary table and the robustness tables (empty without ``review``).
    """
    first, second = inputs[0], (inputs[1] if len(inputs) > 1 else None)
    analyses = plan(first, second, operation, balanced)
    summary, _ = run_analyses(
        analyses,
        None,
        None,
        results,
        settings,
        experiment_sets={i.name: i.experiments for i in inputs},
        input_files=[i.path for i in inputs if i.path is not None],
        command="mnsmeta ale",
    )
    tables: dict[str, pd.DataFrame] = {}
    if review is not None:
        own = [a for a in analyses if a.is_ale]
        tables = run_review(analyses, None, None, results, review, own, "mnsmeta ale")
    return summary, tables


def check_options(
    *, minus, conjunction, n_iters, cluster_forming_p, cluster_p, balanced_iters, robust_iters
) -> None:
    """Refuse option values ``mnsmeta ale`` cannot run, saying which and what to give."""
    if minus and conjunction:
        raise MnsmetaInputError("give --minus or --and, not both")
    if balanced_iters is not None and not minus:
        raise MnsmetaInputError("--balanced needs --minus OTHER: it is a subtraction")
    if balanced_iters is not None and balanced_iters < 2:
        raise MnsmetaInputError(f"--balanced {balanced_iters}: give at least 2 iterations")
    if n_iters < 1:
        raise MnsmetaInputError(f"--n-iters {n_iters}: give a positive number of iterations")
    if robust_iters is not None and robust_iters < 1:
        raise MnsmetaInputError(f"--robustness {robust_iters}: give a positive number")
    for name, value, low, high in (
        ("--cluster-forming-p", cluster_forming_p, 0, 0.05),
        ("--cluster-p", cluster_p, 0, 0.5),
    ):
        if not low < value <= high:
            raise MnsmetaInputError(f"{name} {value}: give a p in ({low}, {high}]")


def describe_input(own: OwnInput) -> str:
    """One line: experiments, foci (repeated ones counted once) and the range of N."""
    table = own.experiments.experiments
    repeated = int(table["foci_removed_repeated_focus"].fillna(0).sum())
    return (
        f"{own.name}: {len(table)} experiments, {len(own.experiments.foci)} foci"
        + (f" ({repeated} repeated foci counted once)" if repeated else "")
        + f", N {int(table['sample_size'].min())}-{int(table['sample_size'].max())}"
    )


def describe(summary: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> str:
    """The summary table and, after ``--robustness``, each cluster's checks."""
    shown = [c for c in summary.columns if c not in ("note", "kind")]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        text = summary[shown].to_string(index=False)
        if len(tables.get("clusters", [])):
            columns = ["analysis", "cluster", "label", "top_share", "jackknife_survived"]
            columns += ["jackknife_n", "fsn", "fsn_robust"]
            text += "\n" + tables["clusters"][columns].to_string(index=False)
    return text
