"""The options and helpers the commands share."""

from __future__ import annotations

from pathlib import Path

import click

from mnsmeta.curation.groups import GROUPS


def _options(*options):
    """Apply click options in the order written (the order ``--help`` lists them)."""

    def apply(function):
        for option in reversed(options):
            function = option(function)
        return function

    return apply


def _upper(ctx, param, value):
    return value.upper() if value else value


GROUP = click.option(
    "-g",
    "--group",
    type=click.Choice(list(GROUPS), case_sensitive=False),
    callback=_upper,
    help="SAD, BPD or MNS (the mirror neuron system reference set).",
)
OUTPUT = click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Results folder.",
)
WAIT = click.option(
    "--wait",
    is_flag=True,
    help="If another command is writing the results folder, wait for it instead of stopping.",
)
CONFIG = click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Analyses file (default: analyses.toml in the coordinates folder).",
)
SEED = click.option("--seed", default=0, show_default=True, help="Seed: same seed, same results.")
JOBS = click.option("--jobs", default=1, show_default=True, help="Threads and processes.")
N_ITERS = click.option(
    "--n-iters",
    default=10_000,
    show_default=True,
    help="Monte Carlo iterations (of every rerun, for robustness).",
)
MONTE_CARLO = _options(N_ITERS, SEED, JOBS)
MASKS = _options(
    click.option(
        "--n-perm",
        default=1000,
        show_default=True,
        help="Relocations and base-rate "
        "database sets of the overlap tests (the moved-cluster test makes at least "
        "10,000 placements).",
    ),
    click.option(
        "--mask",
        "mask_path",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="A NIfTI mask of your own (MNI space), tested beside the built-in MNS masks.",
    ),
    click.option(
        "--mask-threshold",
        type=float,
        help="Keep voxels of --mask above this value (needed when it is not binary).",
    ),
)
DASK = _options(
    click.option(
        "--dask",
        "use_dask",
        is_flag=True,
        help="Run permutations on a local Dask cluster of --jobs workers.",
    ),
    click.option(
        "--scheduler",
        help="Address of a Dask scheduler (tcp://host:8786): permutations run on its workers.",
    ),
)


def dask_context(use_dask: bool, scheduler: str | None, jobs: int):
    """A Dask cluster context when asked for, else nothing (same results either way)."""
    from contextlib import nullcontext

    if not (use_dask or scheduler):
        return nullcontext()
    from mnsmeta.workflows.run import dask_cluster

    return dask_cluster(scheduler, local_workers=max(jobs, 1))


def results_folder(output: Path, existing: bool = False):
    from mnsmeta.workflows.results import ResultsFolder

    results = ResultsFolder(output)
    if existing:
        results.require()
    return results


def err(line: str) -> None:
    click.echo(line, err=True)


#: A foci table's columns named otherwise than the field's usual names (passed through).
COLUMN = click.option(
    "--column",
    "columns",
    multiple=True,
    metavar="ROLE=NAME",
    help="For a foci table: the column that holds ROLE (study, contrast, n, space, x, y, z) "
    "when its name is not one the reader knows; repeat it (--column study=Author --column "
    "n=Subjects). --column contrast= pools each study's rows into one experiment.",
)

FORCE = click.option(
    "--force",
    is_flag=True,
    help="Recompute everything (default: reuse what was made from unchanged inputs, "
    "settings, seed and code).",
)
