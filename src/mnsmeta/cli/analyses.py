"""The commands of the analyses: ale, run, overlap, robustness, specificity, claims, report."""

from __future__ import annotations

from pathlib import Path

import click

from mnsmeta.cli.options import (
    COLUMN,
    CONFIG,
    DASK,
    FORCE,
    JOBS,
    MASKS,
    MONTE_CARLO,
    N_ITERS,
    OUTPUT,
    SEED,
    WAIT,
    dask_context,
    err,
    results_folder,
)
from mnsmeta.errors import MnsmetaInputError


@click.command("ale")
@click.argument("input_file", metavar="INPUT")
@click.option(
    "--minus",
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
@MONTE_CARLO
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
    help="What the cluster-level FWE measures: a cluster's extent "
    "in voxels, or its mass (the sum of its ALE above the cut), as NiMARE offers both "
    "(--robustness checks clusters by size).",
)
@click.option(
    "--robustness",
    "robust_iters",
    type=int,
    metavar="N_ITERS",
    help="Also check each "
    "cluster: experiments' contributions, leave-one-out jackknife and fail-safe N "
    "(Acar et al. 2018), with N_ITERS Monte Carlo iterations per rerun (1000 is the "
    "published tooling's default).",
)
@click.option(
    "--balanced",
    "balanced_iters",
    type=int,
    metavar="N",
    help="With --minus, also "
    "the size-balanced subtraction (NiMARE's, after JALE's balanced contrast): N "
    "random-foci null datasets, each with N pairs of equal-size subsamples (1000 is "
    "NiMARE's default; the work grows as N squared).",
)
@click.option(
    "--tfce",
    is_flag=True,
    help="Also threshold-free cluster enhancement (JALE's: E "
    "0.5, H 2, 100 steps), FWE by the largest TFCE of --n-iters random maps (about 30 "
    "ms each).",
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
@COLUMN
@WAIT
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
    block), a NIMADS studyset .json (NeuroStore, NiMARE), a foci table (.csv, .tsv, .xlsx
    such as JALE's; one row per focus, one experiment per study and contrast), a group of
    the project's curation (SAD, BPD, MNS), or a published healthy reference set by name
    (laird2015, morawetz2020, pintoslobo2022, riedel2018; fetched and SHA-256 checked).
    Talairach foci are converted to MNI (Lancaster icbm2tal, as NiMARE). A table's columns
    are found by the names the field uses (study/publication/author, contrast, n/subjects,
    space, x, y, z), or named with --column ROLE=NAME (docs/inputs.md):
      study,contrast,n,space,x,y,z
      Smith 2010,faces > shapes,24,MNI,-40,20,10

    \b
    The folder gets NIfTI maps under NiMARE's names, clusters.csv with Harvard-Oxford and
    Juelich labels and contributing experiments, figures, the exact foci used (foci.txt for
    GingerALE or NiMARE), provenance.json and report.html (every file: results/README.md).
    Inference: cluster-level FWE by Monte Carlo (Eickhoff et al. 2012, 2016); --minus adds
    the subtraction (Eickhoff et al. 2011), --and the conjunction. Inputs of 100,000 foci or
    more are streamed (no MA maps held; Monte Carlo uncorrected null).

    \b
    Examples:
      mnsmeta ale my_studies.txt --output my_ale --jobs 2
      mnsmeta ale patients.txt --minus controls.txt --balanced 1000
      mnsmeta ale SAD --and BPD --output sad_and_bpd
      mnsmeta ale my_studies.txt --robustness 1000
      mnsmeta ale experiment_info.xlsx --column study=Article --drop-outside
    """
    from mnsmeta.workflows import own_foci
    from mnsmeta.workflows.settings import Settings
    from mnsmeta.workflows.stages import review_settings

    own_foci.check_options(
        minus=minus,
        conjunction=conjunction,
        n_iters=n_iters,
        cluster_forming_p=cluster_forming_p,
        cluster_p=cluster_p,
        balanced_iters=balanced_iters,
        robust_iters=robust_iters,
    )
    inputs = []
    for source in [input_file] + [other for other in (minus, conjunction) if other]:
        own = own_foci.read_input(
            source, obj["coordinates"], drop_outside=drop_outside, columns=columns
        )
        for warning in own.warnings:
            err(str(warning))
        if strict and own.warnings:
            raise MnsmetaInputError(
                f"{own.path}: {len(own.warnings)} warning(s) (--strict)", own.warnings
            )
        click.echo(own_foci.describe_input(own))
        inputs.append(own)
    operation = "minus" if minus else ("and" if conjunction else None)
    results = results_folder(output or Path(f"ale-{inputs[0].name}"))
    settings = Settings(
        n_iters=n_iters,
        seed=seed,
        jobs=jobs,
        cluster_forming_p=cluster_forming_p,
        cluster_p=cluster_p,
        cluster_statistic=cluster_statistic,
        progress=progress,
        tfce=tfce,
        balanced_iters=balanced_iters or Settings.balanced_iters,
    )
    with results.locked("mnsmeta ale", wait):
        summary, tables = own_foci.run_own_foci(
            inputs,
            operation,
            results,
            settings,
            review_settings(settings, robust_iters),
            balanced=balanced_iters is not None,
        )
        click.echo(own_foci.describe(summary, tables))
        if report:
            from mnsmeta.report.render import build_report

            click.echo(f"wrote {build_report(results)}")
    click.echo(f"results in {results.path}/")


@click.command()
@click.option(
    "--analyses",
    "names",
    help="Comma-separated analyses to run (their inputs are added); default: all.",
)
@MONTE_CARLO
@OUTPUT
@CONFIG
@click.option(
    "--engine",
    type=click.Choice(["fast", "nimare"]),
    default="fast",
    show_default=True,
    help="Monte Carlo permutations by our numba code (same results) or by NiMARE.",
)
@MASKS
@DASK
@WAIT
@FORCE
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
    force,
):
    """Run every analysis: ALE maps, cluster-FWE inference, tables, figures.

    For each analysis in coordinates/analyses.toml, results/<analysis>/ gets NIfTI maps,
    clusters.csv with atlas labels and contributing experiments, figures, the exact foci
    (foci.txt for GingerALE or NiMARE) and provenance.json; results/summary.csv sums them up
    (every name: results/README.md). A folder is replaced only when complete, so Ctrl-C
    leaves earlier results intact. With the MNS analysis in the run, the MNS overlap tests
    follow (`mnsmeta overlap`). --dask / --scheduler run the Monte Carlo on a Dask cluster:
    the same seed gives the same results serially and distributed. An analysis whose inputs,
    settings, seed and code are unchanged is reused, not recomputed (--force recomputes).

    Example: mnsmeta run --analyses SAD,BPD --n-iters 1000 --seed 1 --jobs 2
    """
    from mnsmeta.workflows.settings import Settings
    from mnsmeta.workflows.stages import run_stage

    settings = Settings(n_iters=n_iters, seed=seed, jobs=jobs, engine=engine, n_perm=n_perm)
    results = results_folder(output)
    with results.locked("mnsmeta run", wait), dask_context(use_dask, scheduler, jobs):
        run_stage(
            obj["coordinates"],
            results,
            settings,
            names,
            config,
            mask_path,
            mask_threshold,
            say=click.echo,
            force=force,
        )


@click.command()
@OUTPUT
@SEED
@JOBS
@CONFIG
@MASKS
@DASK
@WAIT
@FORCE
@click.pass_obj
def overlap(
    obj,
    output,
    seed,
    jobs,
    config,
    mask_path,
    mask_threshold,
    n_perm,
    use_dask,
    scheduler,
    wait,
    force,
):
    """Test SAD, BPD, pooled and conjunction convergence against the MNS masks.

    \b
    Masks (results/masks/, agreement.csv compares them): meta (ALE of the MNS reference
    studies), curated (observation AND execution/imitation of hand/body actions), expert
    (Pintos Lobo et al. 2022's action contrasts), terms (NeuroQuery association maps of
    action observation, imitation, execution), anatomical (Juelich BA44/45, ventral BA6,
    PF/PFt/PFop/PFcm, hIP1-3), user (--mask). An analysis's tests are reused when it,
    the masks and the settings are unchanged (--force recomputes).
    \b
    Tests (results/overlap.csv, also per part: IFG/vPM, rostral IPL, other):
      roi_ale_base_rate      mean ALE in the mask vs database sets drawn like the
                             analysis: more than typical fMRI foci would? (primary)
      thresholded_base_rate  its cluster-FWE map in the mask, same database sets
      roi_ale(_gm), thresholded_overlap, cluster_overlap: secondary (uniform relocation,
                             moved clusters: are the foci non-uniform?)

    Example: mnsmeta overlap --n-perm 1000 --mask my_mns.nii.gz --jobs 2
    """
    from mnsmeta.workflows.settings import Settings
    from mnsmeta.workflows.stages import analyses_of, overlap_stage

    analyses = analyses_of(obj["coordinates"], config)
    results = results_folder(output)
    settings = Settings(n_perm=n_perm, seed=seed, jobs=jobs)
    with results.locked("mnsmeta overlap", wait), dask_context(use_dask, scheduler, jobs):
        click.echo(
            overlap_stage(analyses, results, settings, mask_path, mask_threshold, force=force)
        )


@click.command()
@OUTPUT
@CONFIG
@N_ITERS
@click.option(
    "--n-perm",
    default=1000,
    show_default=True,
    help="Permutations of the reruns' overlap tests, as in the main run.",
)
@SEED
@JOBS
@click.option("--no-sensitivity", is_flag=True, help="Skip the sensitivity reruns.")
@WAIT
@FORCE
@click.pass_obj
def robustness(obj, output, config, n_iters, n_perm, seed, jobs, no_sensitivity, wait, force):
    """How much weight each SAD, BPD and pooled cluster bears: results/robustness/.

    \b
    contributions.csv  each experiment's share of each cluster's ALE (dominated: one
                       experiment > 50 % or two > 80 %)
    jackknife.csv      leave-one-experiment-out reruns the cluster survives
    failsafe.csv       fail-safe N (Acar et al., 2018) against the benchmark n
    sensitivity.csv    other fallback N, p < 0.005, one database, voxel-level FWE:
                       which conclusions change
    clusters.csv       one row per cluster with all of the above

    Needs `mnsmeta run` (with MNS) first. A rerun recomputes the checks and sensitivity
    reruns of the analyses that changed and reuses the others (--force recomputes all).

    Example: mnsmeta robustness --jobs 2
    """
    from mnsmeta.workflows.settings import Settings
    from mnsmeta.workflows.stages import robustness_stage

    settings = Settings(
        n_iters=n_iters, n_perm=n_perm, seed=seed, jobs=jobs, sensitivity=not no_sensitivity
    )
    results = results_folder(output)
    with results.locked("mnsmeta robustness", wait):
        click.echo(robustness_stage(obj["coordinates"], results, settings, config, force))


@click.command()
@OUTPUT
@CONFIG
@click.option(
    "--n-perm",
    default=10_000,
    show_default=True,
    help="Permutations of experiments between the two sets of each region-wise test.",
)
@click.option(
    "--replicates", default=100, show_default=True, help="Replicates per power-curve point."
)
@SEED
@JOBS
@WAIT
@FORCE
@click.pass_obj
def specificity(obj, output, config, n_perm, replicates, seed, jobs, wait, force):
    """Each subtraction asked where the claims are, with the power of its nulls.

    \b
    For every subtraction of the run and every claim region (claims.toml's and the MNS
    masks), results/specificity/ gets:
    differences.csv  both directions: the largest ALE difference in the region, its voxel
                     p and region-wise FWE p (experiments permuted between the sets)
    power.csv        the power curve of each region-wise test (k experiments converging
                     at the claim's location; k_of_interest: a third of the set)
    overlap.csv      each set's share of foci in each MNS mask, permutation p

    Reads "exceeds" (p_fwe < 0.05), "does not exceed (power X %)" at >= 80 % power, else
    "inconclusive". Needs `mnsmeta run` first.

    A rerun reuses the subtractions whose inputs, regions, settings and code are unchanged
    (--force recomputes all).

    A subtraction's power curves run in --jobs threads (the same tables for any number).

    Example: mnsmeta specificity --replicates 200 --jobs 2
    """
    from mnsmeta.workflows.stages import specificity_stage

    text = specificity_stage(
        obj["coordinates"], output, seed, n_perm, replicates, config, wait, err, force, jobs
    )
    click.echo(text)


@click.command()
@OUTPUT
@CONFIG
@click.option("--json", "as_json", is_flag=True, help="Print the verdicts as JSON.")
@click.option(
    "--seed",
    default=0,
    show_default=True,
    help="Seed of the power simulations (same seed, same verdicts).",
)
@WAIT
@click.pass_obj
def claims(obj, output, config, as_json, seed, wait):
    """A verdict for each claim of coordinates/claims.toml, graded, with its certainty.

    \b
    Each claim has one primary test (claims.toml: test, alpha); the others are reported.
    supported         the primary test rejects after Holm's correction across claims
    evidence against  it does not, and it had >= 80 % power for the claimed effect
    inconclusive      neither: a null without the power to count against
    not testable      the design cannot answer the claim as worded; the verdict then
                      says what the data do show

    Each verdict carries its p with the Monte Carlo interval and Holm's p, the power behind
    a null, a certainty grade with a reason for each downgrade, and the verdict under every
    variant (docs/verdicts.md). Writes results/claims.json and claims_variants.csv. The
    exit code is 0 whatever the verdicts.

    Example: mnsmeta claims --json
    """
    import json

    from mnsmeta.report.findings import verdicts_text
    from mnsmeta.workflows.stages import claims_stage

    results = results_folder(output, existing=True)
    with results.locked("mnsmeta claims", wait):
        verdicts = claims_stage(obj["coordinates"], results, seed, config)
        for line in results.stale():
            err(f"warning: {line}; the verdicts below used the older results")
    if as_json:
        click.echo(json.dumps([v.as_dict() for v in verdicts], indent=2))
        return
    click.echo(verdicts_text(verdicts))
    click.echo(f"verdict x variant matrix: {results.claims_variants}")


@click.command()
@OUTPUT
@click.option(
    "--page",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the results page (Markdown) here, e.g. docs/results.md.",
)
@WAIT
@click.pass_obj
def report(obj, output, page, wait):
    """Write one self-contained HTML page with every result: results/report.html.

    Answers first (each claim's verdict, certainty, reason, tests and maps), then the
    limitations, the study flow, each analysis's figures and cluster table, the MNS masks
    and overlap tests, robustness, sensitivity and provenance. Figures are embedded (the file
    can be mailed); a section whose files are missing names the command that makes them.
    --page writes the same as Markdown (docs/results.md) with its maps in figures/, so that
    no result is typed by hand.

    Example: mnsmeta report --page docs/results.md
    """
    from mnsmeta.report.render import build_report
    from mnsmeta.report.results_page import write_results_page

    results = results_folder(output, existing=True)
    with results.locked("mnsmeta report", wait):
        path = build_report(results)
        if page is not None:
            click.echo(f"wrote {write_results_page(results, page)} and its maps")
    click.echo(f"wrote {path}")
