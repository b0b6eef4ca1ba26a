"""The ``mnsmeta`` command line: parsing and printing only; the work is in the workflows.

Heavy modules (NiMARE, nilearn, numba, pandas) are imported inside the commands that need
them, so that ``--help`` and the quick commands answer at once.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import click

from mnsmeta import __version__
from mnsmeta.curation.groups import GROUPS
from mnsmeta.errors import MnsmetaInputError

LGR = logging.getLogger("mnsmeta")
DEFAULT_COORDINATES = Path("coordinates")


#: What to do about a file system error, by its errno.
FILESYSTEM_FIXES = {
    errno.EACCES: "make it writable (chmod), or choose another folder (--output)",
    errno.EPERM: "make it writable (chmod), or choose another folder (--output)",
    errno.EROFS: "the file system is read-only: choose another folder (--output)",
    errno.ENOSPC: "the disk is full: free some space, then run the command again",
    errno.EDQUOT: "the disk quota is full: free some space, then run the command again",
    errno.ENOTDIR: "a file stands where a folder should be: rename or remove it, or choose "
    "another folder (--output)",
    errno.EEXIST: "a file stands where a folder should be: rename or remove it, or choose "
    "another folder (--output)",
    errno.EISDIR: "a folder stands where a file should be: rename or remove it",
    errno.ENOENT: "check that the path exists",
}


def filesystem_message(error: OSError) -> str:
    """One line: the path, what the system said, and what to do."""
    path = error.filename or "a file"
    if error.filename2:
        path = f"{path} -> {error.filename2}"
    what = error.strerror or type(error).__name__
    fix = FILESYSTEM_FIXES.get(error.errno, "check the path and its permissions, then retry")
    return f"{path}: {what}: {fix} (the previous results are unchanged)"


class _Group(click.Group):
    """Catch user errors once: one clear message on stderr, non-zero exit, no traceback.

    Input problems (``MnsmetaInputError``) and file system failures (``OSError``: a folder
    that cannot be written, a full disk...) are the user's to fix; anything else is a bug
    and shows its traceback with ``--debug``.
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except MnsmetaInputError as error:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.secho(f"error: {error}", fg="red", err=True)
            ctx.exit(1)
        except OSError as error:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.secho(f"error: {filesystem_message(error)}", fg="red", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted: nothing was left half-written", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mnsmeta")
@click.option("-v", "--verbose", count=True, help="More messages (-vv for debugging detail).")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of short error messages.")
@click.option(
    "--coordinates",
    "coordinates_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=lambda: os.environ.get("MNSMETA_COORDINATES", str(DEFAULT_COORDINATES)),
    show_default="coordinates/, or $MNSMETA_COORDINATES",
    help="The curation folder (records/ and manual/).",
)
@click.pass_context
def main(ctx, verbose, debug, coordinates_dir):
    """Meta-analysis of SAD and BPD fMRI studies against the mirror neuron system.

    \b
    The usual path:
      mnsmeta fetch              get Neurosynth 0.7 and NeuroQuery 1 (verified, cached)
      mnsmeta validate           check every file in coordinates/
      mnsmeta studies -g SAD     the experiments an analysis of SAD would use
      mnsmeta run                every ALE analysis, its maps and tables, the MNS tests
      mnsmeta overlap            the MNS overlap tests again (other mask, more permutations)
      mnsmeta robustness         contributions, jackknife, fail-safe N, sensitivity
      mnsmeta specificity        the subtractions in the claim regions, with power
      mnsmeta claims             a verdict for each of the review's claims
      mnsmeta report             everything on one self-contained HTML page
      mnsmeta import paper.txt -g BPD   add foci typed from a paper (Sleuth, table)
      mnsmeta export -g SAD -o sad.txt  the exact foci, for GingerALE or NiMARE

    Databases are cached in $MNSMETA_DATA_DIR (default ~/.cache/mnsmeta); set
    $MNSMETA_DATA_MIRROR to copy them from a local folder instead of downloading.
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s")
    ctx.obj = {"debug": debug, "coordinates": coordinates_dir}


@main.command()
@click.option(
    "--mirror",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Copy from this local folder instead of downloading (overrides $MNSMETA_DATA_MIRROR).",
)
def fetch(mirror):
    """Download (or copy) the database release files and the published reference sets, and
    verify their SHA-256.

    Example: MNSMETA_DATA_MIRROR=../shared/data mnsmeta fetch
    """
    from mnsmeta.data.releases import PUBLISHED_FILES, RELEASE_FILES, data_dir, fetch_file

    files = RELEASE_FILES + PUBLISHED_FILES
    for release in files:
        path = fetch_file(release, mirror=mirror)
        click.echo(f"ok  {path.stat().st_size:>10,d}  {release.relpath}")
    click.echo(f"{len(files)} files verified in {data_dir()}")


#: A foci table's columns named otherwise than the field's usual names (passed through).
_COLUMN = click.option(
    "--column",
    "columns",
    multiple=True,
    metavar="ROLE=NAME",
    help="For a foci table: the column that holds ROLE (study, contrast, n, space, x, y, z) "
    "when its name is not one the reader knows; repeat it (--column study=Author --column "
    "n=Subjects). --column contrast= pools each study's rows into one experiment.",
)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--no-database", is_flag=True, help="Skip the checks against the databases.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit non-zero).")
@_COLUMN
@click.pass_obj
def validate(obj, paths, no_database, strict, columns):
    """Check records, manual coordinates and foci files; list every problem.

    PATHS are folders laid out like coordinates/, .tsv curation files, or foci files as
    `mnsmeta ale` and `mnsmeta import` read them: Sleuth .txt, NIMADS .json, or a table
    (.csv, .tsv, .xlsx) with one row per focus (default: the coordinates folder). Each
    problem is printed as FILE:LINE: what is wrong: how to fix it.

    \b
    Errors (the file cannot be read as intended: a short row, a non-number, no reference
    space, a missing or non-positive N, two N for one experiment, a space switch mid-file,
    a focus outside the MNI box) exit non-zero. Warnings do not (unless --strict): a focus
    repeated within an experiment counts once; an experiment without foci is skipped; two
    experiments with the same foci are named; a typographic minus (U+2212) is read as a
    minus; a focus more than 10 mm outside the brain mask is used as given, as GingerALE
    and NiMARE do.

    \b
    A table's columns are found by their usual names in any case, e.g.
      study,contrast,n,space,x,y,z
      Smith 2010,faces > shapes,24,MNI,-40,20,10
    or named with --column ROLE=NAME (docs/inputs.md lists the names known).

    \b
    Example: mnsmeta validate coordinates/ my_new_study.txt
    Example: mnsmeta validate supplement.xlsx --column study=Author --column n=Subjects
    """
    from mnsmeta.curation.validate import validate_paths
    from mnsmeta.errors import errors_in

    report = validate_paths(
        list(paths) or [obj["coordinates"]], use_database=not no_database, columns=columns
    )
    for problem in report.problems:
        click.echo(str(problem), err=True)
    errors = errors_in(report.problems)
    n_warnings = len(report.problems) - len(errors)
    if errors or (strict and n_warnings):
        raise MnsmetaInputError(
            f"{len(errors)} error(s), {n_warnings} warning(s) found"
            + (" (--strict)" if strict and not errors else "")
        )
    curation = report.curation
    included = sum(r.included for r in curation.records)
    click.echo(
        f"ok: {report.files} file(s), {len(curation.records)} records "
        f"({included} included), {len(curation.manual_foci)} manual foci"
        + (
            f", {report.foci_experiments} experiments in foci files"
            if report.foci_experiments
            else ""
        )
        + (f"; {n_warnings} warning(s)" if n_warnings else "")
    )


def _load_valid_curation(coordinates_dir: Path):
    from mnsmeta.curation.records import load_valid_curation

    return load_valid_curation(coordinates_dir)


_GROUP = click.option(
    "-g",
    "--group",
    type=click.Choice(list(GROUPS), case_sensitive=False),
    callback=lambda ctx, param, value: value.upper() if value else value,
    help="SAD, BPD or MNS (the mirror neuron system reference set).",
)


@main.command()
@_GROUP
@click.option(
    "--candidates",
    is_flag=True,
    help="List the candidates the selection rule finds, and which are not yet curated.",
)
@click.option("--flow", is_flag=True, help="PRISMA-style counts per group (also written as CSV).")
@click.option("--cited", is_flag=True, help="The review's cited-references ledger, with totals.")
@click.option(
    "--tables",
    "tables_of",
    metavar="PMID",
    help="The database tables of one study (their ids, source and foci): what a contrast's "
    "table_id names.",
)
@click.option(
    "--copies",
    is_flag=True,
    help="The database tables stored twice among the included studies: dropped as copies, "
    "near copies flagged for a curator with the coordinates that differ.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV file for --flow, --cited, --copies or --candidates (default for --flow and "
    "--cited: in results/, where the report reads them).",
)
@click.pass_obj
def studies(obj, group, candidates, flow, cited, tables_of, copies, output):
    """List the experiments each group's default analysis would use, with counts.

    \b
    --candidates  studies the selection rule finds in the databases, curated or not
    --flow        identified / merged / screened / excluded by reason / awaiting / included
                  and primary; also writes results/excluded.csv, characteristics.csv
                  (one row per included study) and paradigms.csv
    --cited       every reference of the review: modality, in a database, included
    --copies      tables a database stores twice (dropped; near copies flagged)

    Example: mnsmeta studies --group SAD
    """
    import pandas as pd

    from mnsmeta.workflows.results import ResultsFolder, write_csv

    curation = _load_valid_curation(obj["coordinates"])
    groups = [group] if group else list(GROUPS)
    results = ResultsFolder(Path("results"))
    if tables_of:
        from mnsmeta.data.databases import study_tables

        if not str(tables_of).isdigit():
            raise MnsmetaInputError(f"--tables {tables_of!r}: give a PubMed ID (digits)")
        pmid = int(tables_of)
        source = next((r.source_db for r in curation.records if r.pmid == pmid), "")
        click.echo(study_tables(pmid, source).to_string(index=False))
        return
    if flow:
        from mnsmeta.curation.flow import study_flow

        table = study_flow(curation, groups)
        click.echo(table.to_string())
        if output:
            click.echo(f"wrote {write_csv(table, output, index=True)}")
            return
        from mnsmeta.workflows.studies import write_study_tables

        for path in write_study_tables(curation, results, groups, flow=table):
            click.echo(f"wrote {path}")
        return
    if cited:
        from mnsmeta.curation.ledger import ledger_table

        table = ledger_table(obj["coordinates"] / "cited_references.tsv", curation)
        shown = ["ref", "short_citation", "modality", "reports_coordinates", "in_database"]
        with pd.option_context("display.width", 200, "display.max_rows", 500):
            click.echo(table[[*shown, "included_in", "why_not"]].to_string(index=False))
        click.echo(
            f"\n{len(table)} references: "
            + ", ".join(f"{k} {v}" for k, v in table["modality"].value_counts().items())
            + f"\nreport peak coordinates: {(table['reports_coordinates'] == 'yes').sum()}; "
            f"in a database: {(table['in_database'] == 'yes').sum()}; "
            f"included in an analysis: {(table['included_in'] != '').sum()}"
        )
        click.echo(f"wrote {write_csv(table, output or results.ledger)}")
        return
    if copies:
        from mnsmeta.data.databases import table_copies

        parts = []
        for name in groups:
            records = [r for r in curation.for_group(name) if not r.is_manual]
            found = table_copies(
                [r.pmid for r in records], {r.pmid: r.source_db for r in records if r.source_db}
            )
            parts.append(found.assign(group=name))
            near = found[found["rule"] == "near_copy_table"]
            click.echo(
                f"{name}: {len(found)} tables stored twice in {found['pmid'].nunique()} "
                f"included studies ({int(found['n_foci'].sum())} foci dropped); "
                f"{len(near)} near copies to check against the paper"
            )
            for row in found.itertuples():
                differs = f": {row.differences}" if row.differences else ""
                click.echo(
                    f"  {row.pmid} {row.source} {row.table_id} copies {row.copy_of} "
                    f"({row.rule}, {row.n_foci} foci){differs}"
                )
        if output:
            click.echo(f"wrote {write_csv(pd.concat(parts), output)}")
        return
    if candidates:
        from mnsmeta.curation.candidates import find_candidates

        parts = []
        for name in groups:
            found = find_candidates(name)
            curated = {r.study_id for r in curation.for_group(name, included_only=False)}
            found["curated"] = [str(pmid) in curated for pmid in found.index]
            found.insert(0, "group", name)
            parts.append(found)
            click.echo(
                f"{name}: {len(found)} candidates, {int((~found['curated']).sum())} not yet "
                f"curated, {int((found['flags'] != '').sum())} flagged"
            )
            for pmid, row in found[~found["curated"]].iterrows():
                click.echo(f"  not curated: {pmid} ({row['source']}) {row['flags']}")
        if output:
            click.echo(f"wrote {write_csv(pd.concat(parts), output, index=True)}")
        return

    from mnsmeta.curation.analyses import MIN_EXPERIMENTS, underpowered
    from mnsmeta.curation.experiments import build_experiments
    from mnsmeta.data import hygiene

    for name in groups:
        records = curation.for_group(name, included_only=False)
        if not curation.for_group(name):
            click.echo(f"{name}: {len(records)} records, none included yet\n")
            continue
        experiment_set = build_experiments(curation, name)
        table = experiment_set.experiments
        with pd.option_context("display.width", 140, "display.max_rows", 500):
            click.echo(
                table[
                    ["source", "n_foci", "sample_size", "sample_size_rule", "space_rule"]
                ].to_string()
            )
        n_fallback = len(experiment_set.with_fallback())
        n_unknown_space = (table["reported_space"] == "UNKNOWN").sum()
        click.echo(
            f"{name}: {len(records)} records, {len(table)} experiments included, "
            f"{int(table['n_foci'].sum())} foci; N curated for {len(table) - n_fallback}, "
            f"fallback N={experiment_set.fallback_sample_size} for {n_fallback}; "
            f"space unknown (MNI assumed) for {n_unknown_space}"
        )
        removed = {rule: int(table[f"foci_removed_{rule}"].sum()) for rule in hygiene.RULES}
        click.echo(
            "  foci removed by hygiene: "
            + ", ".join(f"{rule} {n}" for rule, n in removed.items())
            + " (mnsmeta studies --copies lists the tables)"
        )
        if underpowered(len(table)):
            click.echo(
                f"  warning: {len(table)} experiments < {MIN_EXPERIMENTS}: ALE has little power "
                "to find convergence (Eickhoff et al., 2016)"
            )
        click.echo()


_OUTPUT = click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Results folder.",
)
_WAIT = click.option(
    "--wait",
    is_flag=True,
    help="If another command is writing the results folder, wait for it instead of stopping.",
)
_CONFIG = click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Analyses file (default: analyses.toml in the coordinates folder).",
)


def _dask_options(function):
    function = click.option(
        "--scheduler",
        help="Address of a Dask scheduler (tcp://host:8786): permutations run on its workers.",
    )(function)
    return click.option(
        "--dask",
        "use_dask",
        is_flag=True,
        help="Run permutations on a local Dask cluster of --jobs workers.",
    )(function)


def _cluster(use_dask: bool, scheduler: str | None, jobs: int):
    """A Dask cluster context when asked for, else nothing (same results either way)."""
    from contextlib import nullcontext

    if not (use_dask or scheduler):
        return nullcontext()
    from mnsmeta.workflows.run import dask_cluster

    return dask_cluster(scheduler, local_workers=max(jobs, 1))


def _mask_options(function):
    function = click.option(
        "--mask-threshold",
        type=float,
        help="Keep voxels of --mask above this value (needed when it is not binary).",
    )(function)
    function = click.option(
        "--mask",
        "mask_path",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="A NIfTI mask of your own (MNI space), tested beside the built-in MNS masks.",
    )(function)
    return click.option(
        "--n-perm",
        default=1000,
        show_default=True,
        help="Relocations and base-rate database sets of the overlap tests (the "
        "moved-cluster test makes at least 10,000 placements).",
    )(function)


def _run_overlap(analyses, results, mask_path, mask_threshold, n_perm, seed, jobs, outputs=None):
    from mnsmeta.workflows.masks import masks_for
    from mnsmeta.workflows.overlap import OverlapSettings, describe, run_overlap

    if n_perm < 1:
        raise MnsmetaInputError(f"--n-perm {n_perm}: give a positive number of permutations")
    masks = masks_for(results, analyses, mask_path, mask_threshold, outputs)
    overlap = run_overlap(
        analyses, masks, results, OverlapSettings(n_perm=n_perm, seed=seed, jobs=jobs), outputs
    )
    click.echo(describe(overlap))
    click.echo(
        f"overlap tables in {results.overlap_table} and {results.overlap.path}/; "
        f"masks in {results.masks.path}/"
    )


def _monte_carlo_options(function):
    """The Monte Carlo settings of the commands that make maps (run, ale)."""
    for option in reversed(
        [
            click.option(
                "--n-iters", default=10_000, show_default=True, help="Monte Carlo iterations."
            ),
            click.option(
                "--seed", default=0, show_default=True, help="Seed: same seed, same maps."
            ),
            click.option(
                "--jobs", default=1, show_default=True, help="Processes for the Monte Carlo null."
            ),
        ]
    ):
        function = option(function)
    return function


@main.command("ale")
@click.argument("input_file", metavar="INPUT")
@click.option(
    "--minus",
    "minus",
    metavar="OTHER",
    help="A second input: also its ALE, and the subtraction INPUT - OTHER (both directions).",
)
@click.option(
    "--and",
    "conjunction",
    metavar="OTHER",
    help="A second input: also its ALE, and the conjunction (minimum statistic).",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Results folder (default: ale-<INPUT name> in the current folder).",
)
@_monte_carlo_options
@click.option(
    "--cluster-forming-p",
    default=0.001,
    show_default=True,
    help="Voxel-level p that forms clusters (Eickhoff et al. 2016 advise 0.001).",
)
@click.option("--cluster-p", default=0.05, show_default=True, help="Cluster-level FWE p.")
@click.option(
    "--cluster-statistic",
    type=click.Choice(["size", "mass"]),
    default="size",
    show_default=True,
    help="What the cluster-level FWE measures: a cluster's extent in voxels, or its mass "
    "(the sum of its ALE above the cut), as NiMARE offers both (--robustness checks "
    "clusters by size).",
)
@click.option(
    "--robustness",
    "robust_iters",
    type=int,
    default=None,
    metavar="N_ITERS",
    help="Also check each cluster: experiments' contributions, leave-one-out jackknife and "
    "fail-safe N (Acar et al. 2018), with N_ITERS Monte Carlo iterations per rerun (1000 is "
    "the published tooling's default).",
)
@click.option(
    "--balanced",
    "balanced_iters",
    type=int,
    default=None,
    metavar="N",
    help="With --minus, also the size-balanced subtraction (NiMARE's, after JALE's balanced "
    "contrast): N random-foci null datasets, each with N pairs of equal-size subsamples "
    "(1000 is NiMARE's default; the work grows as N squared).",
)
@click.option(
    "--tfce",
    is_flag=True,
    help="Also threshold-free cluster enhancement (JALE's: E 0.5, H 2, 100 steps), FWE by "
    "the largest TFCE of --n-iters random maps (about 30 ms each).",
)
@click.option("--report/--no-report", default=True, show_default=True, help="Write the report.")
@click.option("--progress/--no-progress", default=True, help="Progress bars on stderr.")
@click.option("--strict", is_flag=True, help="Stop on warnings too (repeated or outside foci).")
@click.option(
    "--drop-outside",
    is_flag=True,
    help="Drop foci outside the MNI152 box or more than 10 mm outside the brain mask, each "
    "listed (file, experiment, coordinates) and counted, instead of refusing the file.",
)
@_COLUMN
@_WAIT
@click.pass_obj
def ale_command(
    obj,
    input_file,
    minus,
    conjunction,
    output,
    n_iters,
    seed,
    jobs,
    cluster_forming_p,
    cluster_p,
    cluster_statistic,
    robust_iters,
    balanced_iters,
    tfce,
    report,
    progress,
    strict,
    drop_outside,
    columns,
    wait,
):
    """ALE of your own foci: maps, cluster table, figures and a report, in one command.

    \b
    INPUT is a Sleuth text file (GingerALE's format, MNI or Talairach; one experiment per
    block), a NIMADS studyset .json (NeuroStore, NiMARE; one experiment per analysis), a
    foci table (.csv, .tsv, .xlsx such as JALE's; one row per focus, one experiment per
    study and contrast), a group of the project's curation (SAD, BPD, MNS), or a published
    healthy reference set by name (laird2015 faces, morawetz2020 emotion regulation,
    pintoslobo2022 social processes, riedel2018 emotion: fetched and SHA-256 checked like
    the databases). Talairach foci are converted to MNI (Lancaster icbm2tal, as NiMARE). A
    focus outside the MNI box stops the run unless --drop-outside drops it (with the foci
    more than 10 mm outside the brain, each listed with a warning).

    \b
    A table's columns are found by the names the field uses, in any case (study,
    publication, author(s), experiment; contrast or direction; n, subjects, sample size;
    space; x, y, z), or named with --column ROLE=NAME:
      study,contrast,n,space,x,y,z
      Smith 2010,faces > shapes,24,MNI,-40,20,10
      Smith 2010,faces > shapes,24,MNI,38,22,8
      Lee 2015,patients > controls,31,TAL,-22,-4,-18

    \b
    The folder gets, per input, NIfTI maps under NiMARE's names (stat = ALE, z, p, the
    cluster-FWE and voxel-FWE maps), clusters.csv with Harvard-Oxford and Juelich labels
    and the experiments contributing to each cluster, figures, experiments.csv, foci.tsv
    and foci.txt (the exact foci used, for GingerALE or NiMARE), provenance.json with the
    input file's checksum, summary.csv, and report.html. Inference: cluster-level FWE by
    Monte Carlo (Eickhoff et al. 2012, 2016). A second input (--minus, --and) adds the
    subtraction (group labels permuted, Eickhoff et al. 2011, evaluated where the minuend
    survived) or the conjunction.

    \b
    --robustness N_ITERS adds, for every cluster, each experiment's share, the leave-one-out
    jackknife and the fail-safe N (noise experiments added until it vanishes). --balanced N
    adds the size-balanced subtraction (equal-size subsamples of both inputs). --tfce adds
    TFCE (Smith & Nichols 2009, as JALE computes it for ALE, Frahm et al. 2022) with its
    voxel-level FWE map.

    \b
    Database-scale inputs (100,000 foci or more: a whole Neurosynth term, MACM-like sets)
    are streamed: no modelled-activation maps held in memory, and NiMARE's Monte Carlo
    uncorrected null (100 random maps) instead of its analytic one, which would take days.
    500,000 foci with 1,000 iterations took 12.5 minutes on 2 cores here.

    \b
    Examples:
      mnsmeta ale my_studies.txt --output my_ale --jobs 2
      mnsmeta ale patients.txt --minus controls.txt --n-iters 5000
      mnsmeta ale patients.txt --minus controls.txt --balanced 1000
      mnsmeta ale SAD --and BPD --output sad_and_bpd
      mnsmeta ale SAD --minus laird2015 --balanced 1000
      mnsmeta ale my_studies.txt --robustness 1000
      mnsmeta ale experiment_info.xlsx --column study=Article --drop-outside
    """
    import pandas as pd

    from mnsmeta.workflows.own_foci import read_input, run_own_foci
    from mnsmeta.workflows.results import ResultsFolder
    from mnsmeta.workflows.run import RunSettings

    if minus and conjunction:
        raise MnsmetaInputError("give --minus or --and, not both")
    if balanced_iters is not None and not minus:
        raise MnsmetaInputError("--balanced needs --minus OTHER: it is a subtraction")
    if balanced_iters is not None and balanced_iters < 2:
        raise MnsmetaInputError(f"--balanced {balanced_iters}: give at least 2 iterations")
    if n_iters < 1:
        raise MnsmetaInputError(f"--n-iters {n_iters}: give a positive number of iterations")
    for name, value, low, high in (
        ("--cluster-forming-p", cluster_forming_p, 0, 0.05),
        ("--cluster-p", cluster_p, 0, 0.5),
    ):
        if not low < value <= high:
            raise MnsmetaInputError(f"{name} {value}: give a p in ({low}, {high}]")
    sources = [input_file] + [other for other in (minus, conjunction) if other]
    inputs = [read_input(source, obj["coordinates"], drop_outside=drop_outside,
                         columns=columns) for source in sources]  # fmt: skip
    for own in inputs:
        for warning in own.warnings:
            click.echo(str(warning), err=True)
        if strict and own.warnings:
            raise MnsmetaInputError(
                f"{own.path}: {len(own.warnings)} warning(s) (--strict)", own.warnings
            )
        table = own.experiments.experiments
        repeated = int(table["foci_removed_repeated_focus"].fillna(0).sum())
        click.echo(
            f"{own.name}: {len(table)} experiments, {len(own.experiments.foci)} foci"
            + (f" ({repeated} repeated foci counted once)" if repeated else "")
            + f", N {int(table['sample_size'].min())}-{int(table['sample_size'].max())}"
        )
    operation = "minus" if minus else ("and" if conjunction else None)
    results = ResultsFolder(output or Path(f"ale-{inputs[0].name}"))
    settings = RunSettings(
        n_iters=n_iters,
        seed=seed,
        jobs=jobs,
        cluster_forming_p=cluster_forming_p,
        cluster_p=cluster_p,
        cluster_statistic=cluster_statistic,
        progress=progress,
        tfce=tfce,
        balanced_iters=balanced_iters or RunSettings.balanced_iters,
    )
    review = None
    if robust_iters is not None:
        from mnsmeta.workflows.robustness import ReviewSettings

        if robust_iters < 1:
            raise MnsmetaInputError(f"--robustness {robust_iters}: give a positive number")
        review = ReviewSettings(
            n_iters=robust_iters,
            seed=seed,
            jobs=jobs,
            cluster_forming_p=cluster_forming_p,
            cluster_p=cluster_p,
            sensitivity=False,
            progress=progress,
        )
    with results.locked("mnsmeta ale", wait):
        summary, tables = run_own_foci(
            inputs, operation, results, settings, review, balanced=balanced_iters is not None
        )
        shown = [c for c in summary.columns if c not in ("note", "kind")]
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            click.echo(summary[shown].to_string(index=False))
            if len(tables.get("clusters", [])):
                columns = ["analysis", "cluster", "label", "top_share", "jackknife_survived"]
                columns += ["jackknife_n", "fsn", "fsn_robust"]
                click.echo(tables["clusters"][columns].to_string(index=False))
        if report:
            from mnsmeta.report.render import build_report

            click.echo(f"wrote {build_report(results)}")
    click.echo(f"results in {results.path}/")


@main.command()
@click.option(
    "--analyses",
    "names",
    help="Comma-separated analyses to run (their inputs are added); default: all.",
)
@_monte_carlo_options
@_OUTPUT
@_CONFIG
@click.option(
    "--engine",
    type=click.Choice(["fast", "nimare"]),
    default="fast",
    show_default=True,
    help="Monte Carlo permutations by our numba code (same results) or by NiMARE.",
)
@_mask_options
@_dask_options
@_WAIT
@click.pass_obj
def run(
    obj,
    names,
    n_iters,
    seed,
    jobs,
    output,
    config,
    engine,
    mask_path,
    mask_threshold,
    n_perm,
    use_dask,
    scheduler,
    wait,
):
    """Run every analysis: ALE maps, cluster-FWE inference, tables, figures.

    \b
    For each analysis in coordinates/analyses.toml, results/<analysis>/ gets NIfTI maps
    (ALE, z, p, the cluster-FWE thresholded z map and cluster mask), clusters.csv with
    Harvard-Oxford and Juelich labels and contributing experiments, PNG figures,
    experiments.csv and foci.tsv (the experiments and their exact foci), foci.txt (the same
    as Sleuth text, to rerun in GingerALE or NiMARE) and provenance.json;
    results/summary.csv sums them up (every name: results/README.md). An analysis's folder
    is replaced only when it is complete, so Ctrl-C leaves earlier results intact. When the MNS
    analysis is part of the run, the MNS overlap tests follow (see `mnsmeta overlap`).

    --dask runs the Monte Carlo and permutation work on a local Dask cluster;
    --scheduler tcp://host:8786 on a running one. The same seed gives the same results
    serially and distributed.

    Example: mnsmeta run --analyses SAD,BPD --n-iters 1000 --seed 1 --jobs 2
    """
    from mnsmeta.curation.analyses import read_analyses, select
    from mnsmeta.workflows.results import ResultsFolder
    from mnsmeta.workflows.run import RunSettings, run_analyses

    if n_iters < 1:
        raise MnsmetaInputError(f"--n-iters {n_iters}: give a positive number of iterations")
    coordinates_dir = obj["coordinates"]
    curation = _load_valid_curation(coordinates_dir)
    analyses = read_analyses(config or coordinates_dir / "analyses.toml")
    chosen = select(analyses, [n.strip() for n in names.split(",")] if names else None)
    settings = RunSettings(n_iters=n_iters, seed=seed, jobs=jobs, engine=engine)
    import pandas as pd

    results = ResultsFolder(output)
    with results.locked("mnsmeta run", wait), _cluster(use_dask, scheduler, jobs):
        summary, outputs = run_analyses(chosen, curation, coordinates_dir, results, settings)
        # The flow, excluded studies and characteristics follow the records every run.
        from mnsmeta.workflows.studies import write_study_tables

        write_study_tables(curation, results)
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            click.echo(summary.drop(columns=["note"]).to_string(index=False))
        click.echo(f"results in {output}/ (a summary, a provenance file, one folder per analysis)")
        if any(a.is_mns_reference for a in chosen):
            _run_overlap(chosen, results, mask_path, mask_threshold, n_perm, seed, jobs, outputs)


@main.command()
@_OUTPUT
@click.option("--seed", default=0, show_default=True, help="Seed of the permutations.")
@click.option("--jobs", default=1, show_default=True, help="Processes for the ROI null.")
@_CONFIG
@_mask_options
@_dask_options
@_WAIT
@click.pass_obj
def overlap(
    obj, output, seed, jobs, config, mask_path, mask_threshold, n_perm, use_dask, scheduler, wait
):
    """Test SAD, BPD, pooled and conjunction convergence against the MNS masks.

    \b
    Masks (results/masks/, each with a JSON sidecar; agreement.csv compares them):
      meta        the cluster-FWE ALE of all MNS-reference studies (results/MNS)
      curated     observation AND imitation/execution of hand/body actions
                  (conjunction of results/MNS_observation and MNS_execution)
      expert      Pintos Lobo et al. 2022's action observation/imitation contrasts
      terms       NeuroQuery association maps of "action observation", "imitation"
                  and "action execution" (FDR q < 0.01), their conjunction
      anatomical  Juelich BA44/45, ventral BA6, PF/PFt/PFop/PFcm, hIP1-3
      user        --mask FILE (binary, or thresholded with --mask-threshold)
    \b
    Tests per analysis and mask (results/overlap.csv; part = IFG/vPM, rostral IPL, other):
      roi_ale_base_rate      mean ALE in the mask vs database sets drawn like the
                             analysis: more than typical fMRI foci would? (primary)
      thresholded_base_rate  its cluster-FWE map in the mask, same database sets
      roi_ale(_gm)           vs foci relocated at random: are the foci non-uniform?
      thresholded_overlap    vs the same clusters moved rigidly (whole map)
      cluster_overlap        each cluster alone vs its own moved placements

    Example: mnsmeta overlap --n-perm 1000 --mask my_mns.nii.gz --jobs 2
    """
    from mnsmeta.curation.analyses import read_analyses
    from mnsmeta.workflows.results import ResultsFolder

    analyses = read_analyses(config or obj["coordinates"] / "analyses.toml")
    results = ResultsFolder(output)
    with results.locked("mnsmeta overlap", wait), _cluster(use_dask, scheduler, jobs):
        _run_overlap(analyses, results, mask_path, mask_threshold, n_perm, seed, jobs)


@main.command()
@_OUTPUT
@_CONFIG
@click.option(
    "--n-iters",
    default=10_000,
    show_default=True,
    help="Monte Carlo iterations of every rerun, as in the main analyses.",
)
@click.option(
    "--n-perm",
    default=1000,
    show_default=True,
    help="Permutations of the reruns' overlap tests, as in the main run.",
)
@click.option("--seed", default=0, show_default=True, help="Seed: same seed, same tables.")
@click.option("--jobs", default=1, show_default=True, help="Threads and processes.")
@click.option("--no-sensitivity", is_flag=True, help="Skip the sensitivity reruns.")
@_WAIT
@click.pass_obj
def robustness(obj, output, config, n_iters, n_perm, seed, jobs, no_sensitivity, wait):
    """How much weight each SAD, BPD and pooled cluster bears: results/robustness/.

    \b
    contributions.csv  each experiment's share of each cluster's ALE; a cluster is
                       dominated when one experiment gives > 50 % or two give > 80 %
    jackknife.csv      in how many leave-one-experiment-out reruns (same threshold
                       procedure) the cluster survives; fragile if any removal kills it
    failsafe.csv       fail-safe N (Acar et al., 2018): noise experiments added before the
                       cluster stops being significant, against the benchmark n
    sensitivity.csv    each disorder analysis and its overlap tests under other fallback
                       N, p < 0.005, one database only, voxel-level FWE; which conclusions
                       change
    clusters.csv       one row per cluster with all of the above

    Needs `mnsmeta run` (with MNS, so that the overlap tests exist) first.

    Example: mnsmeta robustness --jobs 2
    """
    from mnsmeta.curation.analyses import read_analyses
    from mnsmeta.workflows.results import ResultsFolder
    from mnsmeta.workflows.robustness import ReviewSettings, run_review

    if n_iters < 1:
        raise MnsmetaInputError(f"--n-iters {n_iters}: give a positive number of iterations")
    if n_perm < 1:
        raise MnsmetaInputError(f"--n-perm {n_perm}: give a positive number of permutations")
    coordinates_dir = obj["coordinates"]
    curation = _load_valid_curation(coordinates_dir)
    analyses = read_analyses(config or coordinates_dir / "analyses.toml")
    settings = ReviewSettings(
        n_iters=n_iters, n_perm=n_perm, seed=seed, jobs=jobs, sensitivity=not no_sensitivity
    )
    results = ResultsFolder(output)
    with results.locked("mnsmeta robustness", wait):
        tables = run_review(analyses, curation, coordinates_dir, results, settings)
    import pandas as pd

    columns = ["analysis", "cluster", "label", "top_share", "dominated"]
    columns += ["jackknife_survived", "jackknife_n", "fragile", "fsn", "fsn_robust"]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        click.echo(tables["clusters"][columns].to_string(index=False))
        if "sensitivity" in tables:
            sensitivity = tables["sensitivity"]
            click.echo(
                sensitivity[["analysis", "variant", "conclusion_changes"]].to_string(index=False)
            )
    click.echo(f"robustness tables in {results.robustness.path}/")


@main.command()
@_OUTPUT
@_CONFIG
@click.option(
    "--n-perm",
    default=10_000,
    show_default=True,
    help="Permutations of experiments between the two sets of each region-wise test.",
)
@click.option(
    "--replicates", default=100, show_default=True, help="Replicates per power-curve point."
)
@click.option("--seed", default=0, show_default=True, help="Seed: same seed, same tables.")
@_WAIT
@click.pass_obj
def specificity(obj, output, config, n_perm, replicates, seed, wait):
    """Each subtraction asked where the claims are, with the power of its nulls.

    \b
    For every subtraction of the run (a disorder minus its screened database controls or
    its published healthy reference; SAD minus BPD) and every claim region (claims.toml's
    regions and the MNS masks), results/specificity/ gets:
    differences.csv  both directions: the largest ALE difference in the region and where,
                     its voxel p, the region-wise FWE p (experiments permuted between the
                     sets, the largest difference in the region as the null: not limited
                     to either set's clusters), the mean difference and its p
    power.csv        the power curve of each region-wise test: k experiments of the set
                     that should be larger converge at the claim's location (its own
                     cluster's peak there, else anywhere in the region); k_of_interest is
                     the claims' effect (a third of the set)
    overlap.csv      share of each set's foci in each MNS mask, and the permutation p of
                     the difference

    A difference at p_fwe < 0.05 reads "exceeds"; a null "does not exceed (power X %)" at
    >= 80 % power for k_of_interest, else "inconclusive". `mnsmeta claims` reads these.
    Takes several minutes (the power curves). Needs `mnsmeta run` first.

    Example: mnsmeta specificity --replicates 200
    """
    from mnsmeta.curation.analyses import read_analyses
    from mnsmeta.curation.claims_file import read_claims
    from mnsmeta.errors import Problem
    from mnsmeta.workflows.results import ResultsFolder
    from mnsmeta.workflows.specificity import SpecificitySettings, describe, run_specificity

    if n_perm < 1 or replicates < 1:
        raise MnsmetaInputError(
            f"--n-perm {n_perm} --replicates {replicates}: give positive numbers"
        )
    coordinates_dir = obj["coordinates"]
    problems: list[Problem] = []
    claims_list, regions = read_claims(coordinates_dir / "claims.toml", problems)
    if problems:
        raise MnsmetaInputError(f"{coordinates_dir / 'claims.toml'}: problems", problems)
    analyses = read_analyses(config or coordinates_dir / "analyses.toml")
    effect = claims_list[0].effect if claims_list else 1 / 3
    results = ResultsFolder(output)
    results.require()
    with results.locked("mnsmeta specificity", wait):
        settings = SpecificitySettings(seed, effect, n_perm, replicates)
        tables = run_specificity(
            analyses, regions, results, settings, progress=lambda line: click.echo(line, err=True)
        )
    click.echo(describe(tables))
    click.echo(f"specificity tables in {results.specificity.path}/")


@main.command()
@_OUTPUT
@_CONFIG
@click.option("--json", "as_json", is_flag=True, help="Print the verdicts as JSON.")
@click.option(
    "--seed",
    default=0,
    show_default=True,
    help="Seed of the power simulations (same seed, same verdicts).",
)
@_WAIT
@click.pass_obj
def claims(obj, output, config, as_json, seed, wait):
    """A verdict for each claim of coordinates/claims.toml, graded, with its certainty.

    \b
    Each claim has one primary test (claims.toml: test, alpha); the others are reported.
    supported         the primary test rejects after Holm's correction across claims
    evidence against  it does not, and it had >= 80 % power for the claimed effect
                      (convergence in a third of the experiments, simulated)
    inconclusive      neither: a null without the power to count against
    not testable      the design cannot answer the claim as worded (e.g. altered activity
                      without patients-vs-controls contrasts of known direction); the
                      verdict then says what the data do show

    \b
    Each verdict carries: the p with its Monte Carlo interval and the Holm-adjusted p, the
    power or minimum detectable effect (MDE: experiments that must converge) behind a null,
    a certainty grade (high, moderate, low, very low) with the reason for each downgrade, and
    the verdict under every sensitivity variant and the atlas variant.

    Reads results/ (run, overlap, robustness and specificity) and writes
    results/claims.json and results/claims_variants.csv (the verdict x variant matrix).
    Takes a minute or two (the power simulations). The exit code is 0 whatever the verdicts.

    Example: mnsmeta claims --json
    """
    import json

    from mnsmeta.curation.analyses import read_analyses
    from mnsmeta.curation.claims_file import read_claims
    from mnsmeta.errors import Problem
    from mnsmeta.report.findings import p_text, power_text
    from mnsmeta.workflows.claims import run_claims
    from mnsmeta.workflows.results import ResultsFolder

    coordinates_dir = obj["coordinates"]
    problems: list[Problem] = []
    claims_list, regions = read_claims(coordinates_dir / "claims.toml", problems)
    if problems:
        raise MnsmetaInputError(f"{coordinates_dir / 'claims.toml'}: problems", problems)
    analyses = read_analyses(config or coordinates_dir / "analyses.toml")
    results = ResultsFolder(output)
    results.require()
    with results.locked("mnsmeta claims", wait):
        verdicts = run_claims(claims_list, regions, analyses, results, seed=seed)
        for line in results.stale():
            click.echo(f"warning: {line}; the verdicts below used the older results", err=True)
    if as_json:
        click.echo(json.dumps([v.as_dict() for v in verdicts], indent=2))
        return
    for v in verdicts:
        entry = v.as_dict()
        certainty = f", certainty {entry['certainty']}" if entry["certainty"] else ""
        click.echo(f"{v.claim.id}: {v.verdict.upper()}{certainty}")
        click.echo(f"  claim: {v.claim.paraphrase}")
        if v.claim.estimand:
            click.echo(f"  estimand: {v.claim.estimand}")
        click.echo(f"  why: {v.reason}")
        if entry["p"] is not None:
            holm = f"; Holm {entry['p_holm']}" if entry["p_holm"] is not None else ""
            click.echo(f"  primary test: {v.primary}: p {p_text(entry)}{holm}")
        elif v.primary:
            click.echo(f"  primary test: {v.primary}")
        if power_text(entry):
            click.echo(f"  power: {power_text(entry)}")
        if v.neutral:
            click.echo(f"  what the data show: {v.neutral}")
        for reason in v.certainty_reasons:
            click.echo(f"  downgraded: {reason}")
        if v.variants:
            click.echo(
                f"  variants: {len(v.flipped_by)} of {len(v.variants)} change it"
                + (f" ({', '.join(v.flipped_by)})" if v.flipped_by else "")
            )
        click.echo(f"  evidence: {v.evidence}")
    click.echo(f"verdict x variant matrix: {results.claims_variants}")


@main.command("import")
@click.argument("input_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_GROUP
@click.option(
    "--modality",
    default="task_fmri",
    show_default=True,
    help="Modality of every imported experiment.",
)
@click.option(
    "--design",
    default="patients_vs_controls",
    show_default=True,
    help="Design of every imported experiment.",
)
@click.option("--source", "source_text", default="", help="Where the foci were read (citation).")
@_COLUMN
@click.pass_obj
def import_(obj, input_file, group, modality, design, source_text, columns):
    """Add the studies of a Sleuth text file, a NIMADS studyset (.json) or a foci table
    (.csv, .tsv, .xlsx; one row per focus) to coordinates/.

    \b
    Each block of a Sleuth file ('// Study: contrast'), each analysis of a NIMADS study,
    and each study and contrast of a table (columns study, contrast, n, space, x, y, z, or
    named with --column) is one contrast of a study typed in by hand:
      coordinates/manual/<file>.tsv     its foci, in the space the file states
      coordinates/contrasts/<file>.tsv  its kind: read from the label ('SAD > HC' is
                                        patients>controls, 'HC > BPD' patients<controls)
                                        or the studyset's metadata; unknown otherwise,
                                        listed for you to set
      coordinates/records/<group>.tsv   one record per study (source_db manual)

    \b
    A table, e.g. (the contrast column gives the kind, as a Sleuth label does):
      study,contrast,n,space,x,y,z
      Smith 2010,SAD > HC,24,MNI,-40,20,10
      Smith 2010,HC > SAD,24,MNI,38,22,8

    \b
    Example: mnsmeta import smith2020_table2.txt --group SAD --source "Smith 2020, Table 2"
    Example: mnsmeta import supplement.csv --group BPD --column study=Author --column n=N_total
    """
    from mnsmeta.curation.importing import import_studies

    if not group:
        raise MnsmetaInputError("import needs --group: SAD, BPD or MNS")
    written = import_studies(
        input_file, obj["coordinates"], group, modality, design, source_text, columns
    )
    for line in written:
        click.echo(line)


@main.command()
@_GROUP
@click.option(
    "--contrast",
    "contrast_kind",
    help="Only the contrasts of this kind (patients>controls, patients<controls, ...), "
    "each study's pooled into one experiment as the analysis pools them.",
)
@click.option(
    "--format",
    "format_",
    type=click.Choice(["sleuth", "nimare", "nimads"]),
    default="sleuth",
    show_default=True,
    help="Sleuth text (GingerALE), NiMARE dataset JSON, or a NIMADS studyset (studies with "
    "their contrasts as analyses, kinds in the metadata).",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
@click.pass_obj
def export(obj, group, contrast_kind, format_, output, force):
    """Write the exact foci and sample sizes of a group's analysis (MNI).

    The Sleuth text opens in GingerALE and in NiMARE (nimare.io.convert_sleuth_to_dataset):
    one block per experiment, as the ALE uses them. The NIMADS studyset keeps each study's
    contrasts apart (NeuroStore, nimare.nimads.Studyset); `mnsmeta import` reads it back.

    Example: mnsmeta export --group SAD --contrast "patients<controls" -o sad_reduced.txt
    """
    from mnsmeta.curation.contrasts import KINDS
    from mnsmeta.curation.experiments import build_experiments
    from mnsmeta.workflows.export import export_experiments

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
        _load_valid_curation(obj["coordinates"]), group, contrast_kinds=kinds
    )
    if not len(experiment_set.experiments):
        raise MnsmetaInputError(
            f"group {group}: no included study has a curated {contrast_kind} contrast: "
            "nothing to export (set contrast kinds in coordinates/contrasts/)"
        )
    export_experiments(experiment_set, output, format_)
    click.echo(
        f"wrote {output}: {len(experiment_set.experiments)} experiments, "
        f"{len(experiment_set.foci)} foci"
        + (
            f"; fallback N={experiment_set.fallback_sample_size} for "
            f"{len(experiment_set.with_fallback())} of them"
            if len(experiment_set.with_fallback())
            else ""
        )
    )


@main.command()
@_OUTPUT
@click.option(
    "--page",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the results page (Markdown) here, e.g. docs/results.md.",
)
@_WAIT
@click.pass_obj
def report(obj, output, page, wait):
    """Write one self-contained HTML page with every result: results/report.html.

    \b
    Answers first (each claim: verdict, certainty, reason, primary test, maps, the verdict
    under every variant), then the limitations the data impose, then study flow,
    cited-references ledger, summary, each analysis's figures and cluster table (with
    per-experiment contributions and robustness flags when computed), MNS masks and overlap
    tests, robustness and sensitivity tables and provenance. Figures are embedded, so the
    file can be mailed or opened offline; a section whose files are missing names the
    command that makes them. --page writes the same answers, limitations and numbers as a
    Markdown page (the repository's docs/results.md) with the maps beside it in figures/,
    so that no result is typed by hand.

    Example: mnsmeta report --page docs/results.md
    """
    from mnsmeta.report.render import build_report
    from mnsmeta.report.results_page import write_results_page
    from mnsmeta.workflows.results import ResultsFolder

    results = ResultsFolder(output)
    results.require()
    with results.locked("mnsmeta report", wait):
        path = build_report(results)
        if page is not None:
            click.echo(f"wrote {write_results_page(results, page)} and its maps")
    click.echo(f"wrote {path}")
