"""The pipeline's stages as the commands run them: read the inputs, run, say what was done.

Each function is one command of ``mnsmeta`` (``run``, ``overlap``, ``robustness``,
``specificity``, ``claims``, ``export``) minus the parsing: it takes the curation folder, the
results folder and the settings, checks what the options asked, runs the workflow, and returns
the text the command prints. The command line (:mod:`mnsmeta.cli`) parses and prints only.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from mnsmeta.curation.analyses import Analysis, read_analyses, select
from mnsmeta.curation.claims_file import Claim, Regions, read_claims
from mnsmeta.curation.contrasts import KINDS
from mnsmeta.curation.experiments import build_experiments
from mnsmeta.curation.records import load_valid_curation
from mnsmeta.errors import MnsmetaInputError, Problem
from mnsmeta.workflows.claims import run_claims
from mnsmeta.workflows.export import export_experiments
from mnsmeta.workflows.masks import masks_for
from mnsmeta.workflows.overlap import describe as describe_overlap
from mnsmeta.workflows.overlap import run_overlap
from mnsmeta.workflows.results import ResultsFolder
from mnsmeta.workflows.robustness import run_review
from mnsmeta.workflows.run import run_analyses
from mnsmeta.workflows.settings import Settings
from mnsmeta.workflows.specificity import SpecificitySettings, run_specificity
from mnsmeta.workflows.specificity import describe as describe_specificity
from mnsmeta.workflows.studies import write_study_tables


def _positive(**values) -> None:
    for name, value in values.items():
        if value < 1:
            option = "--" + name.replace("_", "-")
            raise MnsmetaInputError(f"{option} {value}: give a positive number")


def analyses_of(coordinates_dir: Path, config: Path | None = None) -> list[Analysis]:
    """The analyses file: ``config``, or ``analyses.toml`` in the curation folder."""
    return read_analyses(config or Path(coordinates_dir) / "analyses.toml")


def claims_of(coordinates_dir: Path) -> tuple[list[Claim], Regions]:
    """The claims file of the curation folder, refused with every problem it has."""
    path = Path(coordinates_dir) / "claims.toml"
    problems: list[Problem] = []
    claims, regions = read_claims(path, problems)
    if problems:
        raise MnsmetaInputError(f"{path}: problems", problems)
    return claims, regions


def _table(table: pd.DataFrame, columns=None) -> str:
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        return (table if columns is None else table[columns]).to_string(index=False)


def overlap_stage(
    analyses: list[Analysis],
    results: ResultsFolder,
    settings: Settings,
    mask_path: Path | None = None,
    mask_threshold: float | None = None,
    outputs=None,
    force: bool = False,
) -> str:
    """The MNS masks and every overlap test (``mnsmeta overlap``); returns the summary.

    The tests of an analysis whose key is unchanged are reused (``force`` recomputes)."""
    _positive(n_perm=settings.n_perm)
    masks = masks_for(results, analyses, mask_path, mask_threshold, outputs)
    said = []
    overlap = run_overlap(
        analyses, masks, results, settings, outputs, reuse=not force, say=said.append
    )
    return (
        "".join(f"{line}\n" for line in said)
        + describe_overlap(overlap)
        + f"\noverlap tables in {results.overlap_table} and {results.overlap.path}/; "
        f"masks in {results.masks.path}/"
    )


def run_stage(
    coordinates_dir: Path,
    results: ResultsFolder,
    settings: Settings,
    names: str | None = None,
    config: Path | None = None,
    mask_path: Path | None = None,
    mask_threshold: float | None = None,
    say=print,
    force: bool = False,
) -> None:
    """Every analysis (or those ``names``, comma-separated) and, with the MNS reference among
    them, the overlap tests (``mnsmeta run``). ``say`` receives each part of the report.

    An analysis whose inputs, settings, seed and engine are those of its folder is reused
    (its cache key, :mod:`mnsmeta.workflows.cache`), and so are the overlap tests of an
    analysis whose key and masks are unchanged; ``force`` recomputes everything."""
    _positive(n_iters=settings.n_iters)
    curation = load_valid_curation(coordinates_dir)
    analyses = analyses_of(coordinates_dir, config)
    chosen = select(analyses, [n.strip() for n in names.split(",")] if names else None)
    summary, outputs = run_analyses(
        chosen, curation, coordinates_dir, results, settings, reuse=not force, say=say
    )
    # The flow, excluded studies and characteristics follow the records every run.
    write_study_tables(curation, results)
    say(_table(summary.drop(columns=["note"])))
    say(f"results in {results.path}/ (a summary, a provenance file, one folder per analysis)")
    if any(a.is_mns_reference for a in chosen):
        say(overlap_stage(chosen, results, settings, mask_path, mask_threshold, outputs, force))


def robustness_stage(
    coordinates_dir: Path,
    results: ResultsFolder,
    settings: Settings,
    config: Path | None = None,
    force: bool = False,
) -> str:
    """Contributions, jackknife, fail-safe N and sensitivity (``mnsmeta robustness``).

    Checks and reruns whose keys are unchanged are reused (``force`` recomputes)."""
    _positive(n_iters=settings.n_iters, n_perm=settings.n_perm)
    curation = load_valid_curation(coordinates_dir)
    analyses = analyses_of(coordinates_dir, config)
    said = []
    tables = run_review(
        analyses, curation, coordinates_dir, results, settings, reuse=not force, say=said.append
    )
    columns = ["analysis", "cluster", "label", "top_share", "dominated"]
    columns += ["jackknife_survived", "jackknife_n", "fragile", "fsn", "fsn_robust"]
    text = _table(tables["clusters"], columns)
    if "sensitivity" in tables:
        text += "\n" + _table(tables["sensitivity"], ["analysis", "variant", "conclusion_changes"])
    return (
        "".join(f"{line}\n" for line in said)
        + text
        + (f"\nrobustness tables in {results.robustness.path}/")
    )


def specificity_stage(
    coordinates_dir: Path,
    output: Path,
    seed: int,
    n_perm: int,
    replicates: int,
    config: Path | None = None,
    wait: bool = False,
    progress=None,
    force: bool = False,
    jobs: int = 1,
) -> str:
    """The subtractions in the claim regions, with power (``mnsmeta specificity``), in the
    results folder ``output`` of an earlier ``mnsmeta run``. Subtractions whose keys are
    unchanged are reused (``force`` recomputes); ``jobs`` threads run the power curves."""
    if n_perm < 1 or replicates < 1:
        raise MnsmetaInputError(
            f"--n-perm {n_perm} --replicates {replicates}: give positive numbers"
        )
    claims, regions = claims_of(coordinates_dir)
    analyses = analyses_of(coordinates_dir, config)
    effect = claims[0].effect if claims else 1 / 3
    settings = SpecificitySettings(seed, effect, n_perm, replicates)
    results = ResultsFolder(output)
    results.require()
    said: list[str] = []
    with results.locked("mnsmeta specificity", wait):
        tables = run_specificity(
            analyses, regions, results, settings, progress, not force, said.append, jobs
        )
    return "\n".join(
        [*said, describe_specificity(tables), f"specificity tables in {results.specificity.path}/"]
    )


def claims_stage(
    coordinates_dir: Path, results: ResultsFolder, seed: int, config: Path | None = None
):
    """A verdict for each claim (``mnsmeta claims``); returns the verdicts."""
    claims, regions = claims_of(coordinates_dir)
    analyses = analyses_of(coordinates_dir, config)
    return run_claims(claims, regions, analyses, results, seed=seed)


def export_stage(
    coordinates_dir: Path,
    group: str | None,
    contrast_kind: str | None,
    output: Path,
    format_: str,
    force: bool = False,
) -> str:
    """The exact foci and N of a group's analysis, as a file (``mnsmeta export``)."""
    if not group:
        raise MnsmetaInputError("export needs --group: SAD, BPD or MNS")
    if output.exists() and not force:
        raise MnsmetaInputError(
            f"{output}: exists: choose another file (-o), or pass --force to overwrite it"
        )
    if contrast_kind and contrast_kind not in KINDS:
        raise MnsmetaInputError(f"--contrast {contrast_kind!r}: use one of {', '.join(KINDS)}")
    kinds = (contrast_kind,) if contrast_kind else ()
    experiment_set = build_experiments(
        load_valid_curation(coordinates_dir), group, contrast_kinds=kinds
    )
    if not len(experiment_set.experiments):
        raise MnsmetaInputError(
            f"group {group}: no included study has a curated {contrast_kind} contrast: "
            "nothing to export (set contrast kinds in coordinates/contrasts/)"
        )
    export_experiments(experiment_set, output, format_)
    n_fallback = len(experiment_set.with_fallback())
    fallback = (
        f"; fallback N={experiment_set.fallback_sample_size} for {n_fallback} of them"
        if n_fallback
        else ""
    )
    return (
        f"wrote {output}: {len(experiment_set.experiments)} experiments, "
        f"{len(experiment_set.foci)} foci{fallback}"
    )


def review_settings(settings: Settings, robust_iters: int | None) -> Settings | None:
    """The robustness checks of ``mnsmeta ale --robustness N``: N iterations per rerun, no
    sensitivity reruns (they need the project's curation), else None."""
    if robust_iters is None:
        return None
    return dataclasses.replace(settings, n_iters=robust_iters, sensitivity=False)
