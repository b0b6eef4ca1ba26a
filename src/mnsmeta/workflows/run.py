"""``mnsmeta run``: every analysis from the curated dataset to maps, tables and figures.

Each analysis is written to a hidden temporary folder inside ``results/`` and renamed into
place only when complete, so an interrupted run leaves the previous results untouched. What
later stages need from each analysis is returned as an :class:`AnalysisResult`. With
``reuse``, an analysis whose folder holds the results of the same inputs, settings, seed and
engine (the same cache key, :mod:`mnsmeta.workflows.cache`) is read back, not recomputed.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import asdict
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from mnsmeta.curation.analyses import MIN_EXPERIMENTS, Analysis, underpowered
from mnsmeta.curation.controls import control_experiments, match_controls
from mnsmeta.curation.experiments import ExperimentSet, build_experiments, combine
from mnsmeta.curation.inputs import read_experiments
from mnsmeta.curation.records import Curation
from mnsmeta.curation.references import read_reference, select_matched, select_paradigms
from mnsmeta.data.space import brain_mask_img
from mnsmeta.inference.precision import mc_interval
from mnsmeta.meta_analysis import ale
from mnsmeta.meta_analysis.analysis_result import AnalysisResult
from mnsmeta.meta_analysis.clusters import cluster_table, peak_table
from mnsmeta.meta_analysis.datasets import to_dataset
from mnsmeta.meta_analysis.engine import dask_cluster
from mnsmeta.progress import progress
from mnsmeta.workflows.boilerplate import dataset_description, methods_text
from mnsmeta.workflows.cache import analysis_key, plain
from mnsmeta.workflows.figures import plot_map
from mnsmeta.workflows.provenance import input_checksums, now, package_versions
from mnsmeta.workflows.results import (
    FLOAT_FORMAT,
    AnalysisFolder,
    ResultsFolder,
    ThresholdedMap,
    save_map,
    write_csv,
    write_json,
    write_text,
)
from mnsmeta.workflows.settings import Settings

LGR = logging.getLogger(__name__)

# ``dask_cluster`` is handed on to the command line (``--dask``, ``--scheduler``), which
# reaches the engine only through the workflows.
__all__ = ["dask_cluster", "run_analyses"]


def _control_set(curation: Curation, analysis: Analysis, settings: Settings):
    """The paradigm-matched screened healthy-only controls of a disorder group, and their
    matches."""
    disorder = build_experiments(
        curation, analysis.controls, settings.sample_size_fallback, n_rule=settings.n_rule
    )
    curated = {r.pmid for r in curation.records if r.pmid}
    # One control per experiment: a shared sample is matched by its first record.
    first = dataclasses.replace(curation, sample_rule="first")
    database = {r.pmid: r.paradigm for r in first.for_group(analysis.controls) if not r.is_manual}
    matched = match_controls(database, curated, curation.rejected_controls)
    return control_experiments(disorder, matched, analysis.name), matched


def _reference_set(curation: Curation, analysis: Analysis, settings: Settings):
    """A published reference (all of it, or its selection matched to a disorder's paradigms),
    with the table of its experiments and, when matched, the paradigm balance."""
    if analysis.paradigms:
        seed = ale.analysis_seed(settings.seed, analysis.name)
        experiments, selection = select_paradigms(
            list(analysis.reference), analysis.paradigms, analysis.name, seed
        )
        return experiments, selection, None
    if not analysis.matched_to:
        sets = [read_reference(name, analysis.name)[0] for name in analysis.reference]
        experiment_set = sets[0] if len(sets) == 1 else combine(sets, analysis.name)
        table = experiment_set.experiments[["source", "contrasts", "sample_size", "n_foci"]]
        return experiment_set, table.reset_index(), None
    # One experiment per sample, as the disorder's analysis has them.
    first = dataclasses.replace(curation, sample_rule="first")
    paradigms = pd.Series([r.paradigm for r in first.for_group(analysis.matched_to)])
    seed = ale.analysis_seed(settings.seed, analysis.name)
    return select_matched(list(analysis.reference), paradigms, analysis.name, seed)


def reference_note(analysis: Analysis, balance: pd.DataFrame | None) -> str:
    """A reference's selection, for the summary: sets, paradigms covered and not."""
    sets = ", ".join(analysis.reference)
    if balance is None:
        return f"published reference: {sets} (every experiment)"
    covered = balance[balance["selected"] > 0]
    left = balance[balance["selected"] == 0]
    return (
        f"published reference {sets}, matched to {analysis.matched_to}'s paradigms: "
        + ", ".join(f"{r.paradigm} {r.selected}" for r in covered.itertuples())
        + f" (covering {int(covered['disorder_experiments'].sum())} of "
        f"{int(balance['disorder_experiments'].sum())} {analysis.matched_to} experiments; "
        + "no reference for "
        + (", ".join(f"{r.paradigm} {r.disorder_experiments}" for r in left.itertuples())
           or "none")
        + "); N from the published set"
    )  # fmt: skip


def _experiment_set(curation: Curation, analysis: Analysis, settings: Settings):
    if analysis.foci:  # a group declared by its foci file (analyses.toml `foci`)
        experiments, warnings = read_experiments(Path(analysis.foci), analysis.name)
        for warning in warnings:
            LGR.warning("%s", warning)
        return experiments
    sets = [
        build_experiments(
            curation,
            group,
            settings.sample_size_fallback,
            analysis.modalities,
            analysis.contrasts,
            settings.n_rule,
            analysis.paradigms,
            analysis.effectors,
        )
        for group in analysis.groups
    ]
    return sets[0] if len(sets) == 1 else combine(sets, analysis.name)


def controls_note(matched) -> str:
    """A control set's matching, for the summary: pairs, pool, screening and the unmatched."""
    pairs = matched.pairs
    unmatched = matched.matches[matched.matches["control_pmid"] == 0]
    left = ", ".join(f"{p or 'no paradigm'} {n}" for p, n in
                     unmatched["paradigm"].value_counts().items())  # fmt: skip
    screened = "; ".join(f"{reason} {n:,}" for reason, n in matched.screened_out.items())
    return (
        f"paradigm-matched screened healthy-only controls: {len(pairs)} of "
        f"{len(matched.matches)} studies matched from a pool of {matched.pool_size:,} "
        f"(left out of the pool: {screened}; unmatched: {left or 'none'}; "
        "every control read in coordinates/controls.tsv; N borrowed from the matched study)"
    )


def _not_computed(analysis: Analysis, note: str, results: ResultsFolder) -> dict:
    """The summary row of an analysis without data; its stale folder, if any, goes."""
    LGR.warning("%s: %s", analysis.name, note)
    results.discard(results.analysis(analysis))
    return _summary_row(analysis, None, pd.DataFrame(), note) | {"experiments": 0}


def _write_clusters(
    files: ThresholdedMap, thresholded, stat, z, foci, title: str
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Write a thresholded map, its mask, labels and figures; return the cluster table, its
    peak table (local maxima of ``stat``, 8 mm apart) and the labels."""
    affine = brain_mask_img().affine
    table, labels = cluster_table(thresholded, affine, stat, z, foci)
    peaks = peak_table(labels, affine, stat, z)
    save_map(thresholded, files.z)
    save_map(labels > 0, files.mask, np.uint8)
    save_map(labels, files.labels, np.int16)
    image = nib.Nifti1Image(thresholded, affine)
    plot_map(image, title, files.glass, files.slices)
    return table, peaks, labels


def _summary_row(analysis: Analysis, experiment_set, table: pd.DataFrame, note: str = ""):
    largest = table.iloc[0] if len(table) else None
    n_experiments = len(experiment_set.experiments) if experiment_set is not None else np.nan
    warnings = []
    if experiment_set is not None and underpowered(n_experiments):
        warnings.append(f"{n_experiments} experiments < {MIN_EXPERIMENTS}: low power")
    return {
        "analysis": analysis.name,
        "kind": analysis.kind,
        "experiments": n_experiments,
        "foci": len(experiment_set.foci) if experiment_set is not None else np.nan,
        "clusters": len(table),
        "largest_cluster_mm3": largest["size_mm3"] if largest is not None else 0.0,
        "largest_cluster_peak": (
            f"({largest['peak_x']:g}, {largest['peak_y']:g}, {largest['peak_z']:g})"
            if largest is not None
            else ""
        ),
        "largest_cluster_label": largest["Harvard-Oxford peak"] if largest is not None else "",
        "warnings": "; ".join(warnings),
        "note": note,
    }


def inference_summary(result, settings: Settings) -> dict:
    """The thresholds the Monte Carlo null produced, for the summary and the engine checks.

    ``cluster_forming_ale``: the smallest ALE value with uncorrected p below the
    cluster-forming threshold; ``cluster_size_threshold_voxels``: the (1 - cluster_p)
    quantile of the largest random cluster; ``voxel_fwe_ale``: the (1 - voxel_fwe_p)
    quantile of the largest random ALE value.
    """
    stat = result.get_map("stat", return_type="array")
    p = result.get_map("p", return_type="array")
    forming = stat[p < settings.cluster_forming_p]
    return {
        "cluster_forming_ale": float(forming.min()) if forming.size else np.nan,
        "cluster_size_threshold_voxels": float(
            np.quantile(ale.null(result.estimator, "largest_cluster_size"), 1 - settings.cluster_p)
        ),
        "voxel_fwe_ale": float(
            np.quantile(ale.null(result.estimator, "largest_ale"), 1 - settings.voxel_fwe_p)
        ),
    }


def with_cluster_p(table: pd.DataFrame, result, settings: Settings) -> pd.DataFrame:
    """Each cluster's cluster-level FWE p and its Monte Carlo interval (``n_iters`` draws)."""
    if not len(table):
        return table.assign(p_fwe=[], p_fwe_mc_low=[], p_fwe_mc_high=[])
    name = ale.cluster_fwe_map_name(settings.cluster_statistic)
    logp = result.get_map(name, return_type="array")
    inverse = np.linalg.inv(brain_mask_img().affine)
    mask = brain_mask_img().get_fdata() > 0
    volume = np.zeros(mask.shape)
    volume[mask] = logp
    p = []
    for row in table.itertuples():
        ijk = np.rint(inverse @ [row.peak_x, row.peak_y, row.peak_z, 1])[:3].astype(int)
        p.append(float(10 ** -volume[tuple(ijk)]))
    intervals = [mc_interval(value, settings.n_iters) for value in p]
    return table.assign(
        p_fwe=p,
        p_fwe_mc_low=[low for low, _ in intervals],
        p_fwe_mc_high=[high for _, high in intervals],
    )


def run_ale_analysis(
    analysis: Analysis,
    experiment_set: ExperimentSet,
    settings: Settings,
    folder: AnalysisFolder,
) -> tuple[AnalysisResult, dict, object]:
    """Fit one ALE analysis of ``experiment_set``; write its maps, tables and figures.

    Returns the analysis's result, its summary row and its NiMARE dataset (the input of a
    subtraction).
    """
    n = len(experiment_set.experiments)
    if underpowered(n):
        LGR.warning(
            "%s: %d experiments < %d: ALE has little power (Eickhoff et al., 2016)",
            analysis.name,
            n,
            MIN_EXPERIMENTS,
        )
    dataset = to_dataset(experiment_set)
    seed = ale.analysis_seed(settings.seed, analysis.name)
    estimator, result = ale.fit_ale(
        dataset,
        settings.n_iters,
        seed,
        settings.jobs,
        settings.cluster_forming_p,
        settings.engine,
    )
    for name in result.maps:
        save_map(result.get_map(name, return_type="image").get_fdata(), folder.map(name))
    stat = result.get_map("stat", return_type="image").get_fdata()
    z = result.get_map("z", return_type="image").get_fdata()
    thresholded = ale.cluster_fwe_map(result, settings.cluster_p, settings.cluster_statistic)
    table, peaks, labels = _write_clusters(
        folder.thresholded(),
        thresholded,
        stat,
        z,
        experiment_set.foci,
        f"{analysis.name} ALE, cluster-FWE ({settings.cluster_statistic}) "
        f"p<{settings.cluster_p:g}",
    )
    table = with_cluster_p(table, result, settings)
    folder.write_clusters(table, peaks)
    save_map(ale.voxel_fwe_map(result, settings.voxel_fwe_p), folder.voxel_thresholded)
    folder.write_experiments(experiment_set)
    summary = _summary_row(analysis, experiment_set, table)
    summary.update(inference_summary(result, settings))
    if settings.tfce:
        summary.update(_write_tfce(estimator, result, experiment_set, seed, settings, folder))
    output = AnalysisResult(analysis, experiment_set, table, labels, thresholded)
    return output, summary, dataset


def _write_tfce(estimator, result, experiment_set, seed, settings, folder) -> dict:
    """TFCE maps and their FWE inference; the summary's TFCE columns."""
    # Its own stream: adding TFCE leaves the cluster-FWE maps as they were.
    tfce_seed = int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])
    null = ale.tfce_null(estimator, experiment_set, settings.n_iters, tfce_seed, settings.progress)
    maps = ale.tfce_maps(result, null, settings.voxel_fwe_p)
    save_map(maps["tfce"], folder.tfce)
    save_map(maps["logp"], folder.tfce_logp)
    save_map(maps["z"], folder.tfce_thresholded)
    return {
        "tfce_threshold": float(np.percentile(null, 100 * (1 - settings.voxel_fwe_p))),
        "tfce_voxels": int((maps["z"] > 0).sum()),
    }


def run_subtraction(
    analysis: Analysis,
    outputs: dict[str, AnalysisResult],
    datasets: dict[str, object],
    settings: Settings,
    folder: AnalysisFolder,
) -> tuple[AnalysisResult, dict]:
    """ALE subtraction of two analyses of this run, both directions."""
    first, second = (outputs[name] for name in analysis.inputs)
    label1, label2 = analysis.inputs
    if not (first.thresholded > 0).any() and not (second.thresholded > 0).any():
        note = f"not computed: neither {label1} nor {label2} has a significant cluster"
        write_text(folder.note, note + "\n")
        table = pd.DataFrame()
        return (
            AnalysisResult(analysis, None, table, None, None, {}),
            _summary_row(analysis, None, table, note),
        )
    mask = brain_mask_img()
    inference = [
        nib.Nifti1Image((o.thresholded > 0).astype(np.float32), mask.affine)
        for o in (first, second)
    ]
    seed = ale.analysis_seed(settings.seed, analysis.name)
    if analysis.balanced:
        result = ale.fit_balanced_subtraction(
            datasets[label1], datasets[label2], settings.balanced_iters, seed, settings.jobs,
            settings.cluster_forming_p, settings.cluster_p, settings.engine,
        )  # fmt: skip
        names = (*ale.BALANCED_MAPS, "prob_desc-group1", "prob_desc-group2")
        directions = ale.balanced_maps(result)
        title = f"balanced, p<{settings.cluster_p:g} (null extremes)"
    else:
        result = ale.fit_subtraction(
            datasets[label1], datasets[label2], *inference, settings.n_iters, seed,
            settings.jobs, settings.cluster_forming_p, settings.engine,
        )  # fmt: skip
        names = ale.SUBTRACTION_MAPS
        directions = ale.subtraction_clusters(result, *inference, settings.cluster_p)
        title = f"cluster-FWE p<{settings.cluster_p:g}"
    for name in names:
        data = result.get_map(name, return_type="image").get_fdata()
        save_map(data, folder.subtraction_map(name))
    tables, peak_tables, labels_by_direction = [], [], {}
    sources = {label1: first, label2: second}
    for key, (minuend, subtrahend) in zip(
        ("group1>group2", "group2>group1"), folder.directions(), strict=True
    ):
        table, peaks, labels = _write_clusters(
            folder.thresholded((minuend, subtrahend)),
            directions[key],
            directions[key],
            directions[key],
            sources[minuend].experiments.foci,
            f"{minuend} > {subtrahend}, {title}",
        )
        tables.append(table.assign(direction=f"{minuend}>{subtrahend}"))
        peak_tables.append(peaks.assign(direction=f"{minuend}>{subtrahend}"))
        labels_by_direction[minuend, subtrahend] = labels
    table = pd.concat(tables, ignore_index=True) if any(len(t) for t in tables) else tables[0]
    peaks = (
        pd.concat(peak_tables, ignore_index=True)
        if any(len(t) for t in peak_tables)
        else peak_tables[0]
    )
    folder.write_clusters(table, peaks)
    pooled = combine([first.experiments, second.experiments], analysis.name)
    summary = _summary_row(
        analysis, pooled, table.sort_values("size_mm3", ascending=False) if len(table) else table
    )
    if analysis.balanced:
        # The balanced difference a voxel must pass, either way (the null's alpha/2 extremes).
        tail = 100 * settings.cluster_p / 2
        high = np.percentile(ale.null(result.estimator, "balanced_max"), 100 - tail)
        low = np.percentile(ale.null(result.estimator, "balanced_min"), tail)
        summary.update({"balanced_high": float(high), "balanced_low": float(low)})
        return AnalysisResult(analysis, None, table, None, None, labels_by_direction), summary
    summary.update(
        {
            # For a subtraction: the cut on |ALE difference| and the permutations' cluster null.
            "cluster_forming_ale": float(ale.null(result.estimator, "cluster_forming_cut")),
            "cluster_size_threshold_voxels": float(
                np.quantile(
                    ale.null(result.estimator, "largest_cluster_size"), 1 - settings.cluster_p
                )
            ),
        }
    )
    return AnalysisResult(analysis, None, table, None, None, labels_by_direction), summary


def run_conjunction(
    analysis: Analysis, outputs: dict[str, AnalysisResult], folder: AnalysisFolder
) -> tuple[AnalysisResult, dict]:
    """Minimum-statistic conjunction of two thresholded analyses of this run."""
    first, second = (outputs[name] for name in analysis.inputs)
    conjunction = ale.conjunction_map(first.thresholded, second.thresholded)
    foci = pd.concat([first.experiments.foci, second.experiments.foci])
    table, peaks, labels = _write_clusters(
        folder.thresholded(),
        conjunction,
        conjunction,
        conjunction,
        foci,
        f"{' and '.join(analysis.inputs)}: minimum statistic of cluster-FWE maps",
    )
    folder.write_clusters(table, peaks)
    pooled = combine([first.experiments, second.experiments], analysis.name)
    note = "" if len(table) else "no voxel significant in both inputs"
    summary = _summary_row(analysis, pooled, table, note)
    return AnalysisResult(analysis, None, table, labels, conjunction), summary


def _reads(analysis: Analysis, curation, settings: Settings, experiment_sets: dict):
    """What an ALE reads: its experiments, and the control matches or the reference selection
    (its table and paradigm balance) that chose them; (None, None, None) otherwise."""
    matched = reference = experiment_set = None
    if analysis.controls:
        experiment_set, matched = _control_set(curation, analysis, settings)
    elif analysis.reference:
        experiment_set, *reference = _reference_set(curation, analysis, settings)
    elif analysis.is_ale:
        experiment_set = experiment_sets.get(analysis.name) or _experiment_set(
            curation, analysis, settings
        )
    return experiment_set, matched, reference


def _key(analysis: Analysis, settings: Settings, keys: dict, reads: tuple) -> str:
    # An ALE is keyed by what it reads, a subtraction or conjunction by its inputs' keys: a
    # change in SAD reaches every analysis built on SAD, and nothing else.
    if analysis.is_ale:
        return analysis_key(analysis, settings, list(reads))
    return analysis_key(analysis, settings, [keys[name] for name in analysis.inputs])


def cache_keys(
    analyses: list[Analysis],
    curation: Curation | None,
    settings: Settings,
    experiment_sets: dict[str, ExperimentSet] | None = None,
) -> dict[str, str]:
    """The cache key :func:`run_analyses` gives each analysis (those it would compute).

    Parameters are those of :func:`run_analyses`. Returns analysis name -> key
    (:func:`mnsmeta.workflows.cache.analysis_key`).
    """
    keys: dict[str, str] = {}
    for analysis in analyses:
        reads = _reads(analysis, curation, settings, experiment_sets or {})
        if analysis.is_ale and not len(reads[0].experiments):
            continue
        if all(name in keys for name in analysis.inputs):
            keys[analysis.name] = _key(analysis, settings, keys, reads)
    return keys


def run_analyses(
    analyses: list[Analysis],
    curation: Curation | None,
    coordinates_dir,
    results: ResultsFolder,
    settings: Settings,
    experiment_sets: dict[str, ExperimentSet] | None = None,
    input_files: list | None = None,
    command: str = "mnsmeta run",
    reuse: bool = False,
    say=None,
    reused_into: list | None = None,
) -> tuple[pd.DataFrame, dict[str, AnalysisResult]]:
    """Run analyses in order and write them into ``results``.

    Parameters
    ----------
    analyses : list of Analysis
        In dependency order (subtraction and conjunction after their inputs).
    curation : Curation or None
        Validated records (None when every ALE analysis is in ``experiment_sets``).
    coordinates_dir : Path or None
        The curation folder (checksummed into the provenance).
    results : ResultsFolder
        Where each analysis gets its folder, and the summary and provenance are written.
    settings : Settings
    experiment_sets : dict, optional
        Analysis name -> experiments read elsewhere (a user's foci file, ``mnsmeta ale``):
        these ALE analyses use them instead of the curation.
    input_files : list of Path, optional
        Those files, checksummed into the provenance.
    command : str
        The command recorded in the provenance.
    reuse : bool
        Read back, instead of recomputing, each analysis whose folder has the cache key this
        run computes for it (its files are left as they are; its provenance gets this run's
        settings and input checksums). False recomputes every analysis (``--force``).
    say : callable, optional
        Receives one line naming the analyses reused and those recomputed.
    reused_into : list, optional
        Receives the names of the analyses reused.

    Returns
    -------
    summary : pandas.DataFrame
        One row per analysis (the results folder's summary table).
    outputs : dict
        Analysis name -> :class:`AnalysisResult`, for the stages that follow.
    """
    started = now()
    experiment_sets = experiment_sets or {}
    declared = [a.foci for a in analyses if a.foci]  # groups declared by a foci file
    checksums = input_checksums(coordinates_dir, [*(input_files or []), *declared])
    versions = package_versions()
    outputs: dict[str, AnalysisResult] = {}
    datasets: dict[str, object] = {}
    sets: dict[str, ExperimentSet] = {}  # each ALE's experiments (a subtraction's datasets)
    keys: dict[str, str] = {}
    reused, recomputed = [], []
    rows = []
    bar = progress(analyses, desc="analyses", unit="analysis", show=settings.progress)
    for analysis in bar:
        bar.set_description(f"{analysis.name} ({analysis.kind})")
        analysis_started = now()
        reads = _reads(analysis, curation, settings, experiment_sets)
        experiment_set, matched, reference = reads
        if analysis.is_ale:
            if not len(experiment_set.experiments):
                kinds = " or ".join(analysis.contrasts)
                rows.append(
                    _not_computed(
                        analysis,
                        f"not computed: no included experiment has a curated {kinds} contrast",
                        results,
                    )
                )
                continue
        missing = [name for name in analysis.inputs if name not in outputs]
        if missing:
            note = f"not computed: {' and '.join(missing)} not computed"
            rows.append(_not_computed(analysis, note, results))
            continue
        if analysis.is_ale:
            sets[analysis.name] = experiment_set
        key = keys[analysis.name] = _key(analysis, settings, keys, reads)
        cached = _cached(results, analysis, key, sets.get(analysis.name)) if reuse else None
        if cached is not None:
            outputs[analysis.name], row = cached
            _refresh_provenance(results.analysis(analysis), settings, checksums)
            rows.append(row)
            reused.append(analysis.name)
            continue
        recomputed.append(analysis.name)
        if analysis.is_subtraction:  # a reused input's dataset is made only when needed
            for name in analysis.inputs:
                if name not in datasets:
                    datasets[name] = to_dataset(sets[name])
        with results.staged(results.analysis(analysis)) as folder:
            if analysis.is_ale:
                output, row, datasets[analysis.name] = run_ale_analysis(
                    analysis, experiment_set, settings, folder
                )
                if matched is not None:
                    folder.write_controls(matched)
                    row["note"] = "; ".join(filter(None, [row["note"], controls_note(matched)]))
                if reference is not None:
                    folder.write_reference(*reference)
                    note = reference_note(analysis, reference[1])
                    row["note"] = "; ".join(filter(None, [row["note"], note]))
            elif analysis.is_subtraction:
                output, row = run_subtraction(analysis, outputs, datasets, settings, folder)
            else:
                output, row = run_conjunction(analysis, outputs, folder)
            outputs[analysis.name] = output
            row = _plain(row)
            write_json(
                folder.provenance,
                {
                    "analysis": asdict(analysis),
                    "settings": asdict(settings),
                    "seed_used": ale.analysis_seed(settings.seed, analysis.name),
                    "versions": versions,
                    "inputs_sha256": checksums,
                    "started": analysis_started,
                    "finished": now(),
                    "summary": row,
                    "cache_key": key,
                    # What a later run checks before reusing the folder.
                    "files": sorted(p.name for p in folder.path.iterdir() if p.is_file()),
                },
            )
        rows.append(row)
    if reused_into is not None:
        reused_into.extend(reused)
    if say is not None:
        say(
            f"reused (unchanged inputs and settings): {', '.join(reused) or 'none'}; "
            f"recomputed: {', '.join(recomputed) or 'none'}"
            if reuse
            else f"recomputed without reuse (--force): {', '.join(recomputed) or 'none'}"
        )
    summary = pd.DataFrame(rows)
    # A partial rerun (--analyses BPD) replaces its own rows and keeps the others', so the
    # folder's summary and provenance always describe every analysis it holds.
    merged, kept = _merged_summary(results, summary, command)
    write_csv(merged, results.summary, float_format=FLOAT_FORMAT)
    write_text(results.boilerplate, methods_text(analyses, summary, settings, versions))
    write_json(results.dataset_description, dataset_description(command, versions))
    previous = (results.read_provenance() or {}) if kept or reused else {}
    runs = {name: run for name, run in previous.get("runs", {}).items() if name in kept}
    this_run = {"settings": asdict(settings), "started": started, "finished": now()}
    earlier = previous.get("runs", {})
    for a in analyses:
        runs[a.name] = this_run
        if a.name in reused and a.name in earlier:  # the times of the run that computed it
            runs[a.name] = {**earlier[a.name], "settings": this_run["settings"]}
    write_json(
        results.provenance,
        {
            "command": command,
            "analyses": merged["analysis"].tolist(),
            "settings": asdict(settings),
            "versions": versions,
            "inputs_sha256": checksums,
            "started": started,
            "finished": now(),
            "runs": runs,
        },
    )
    return summary, outputs


#: The summary's columns in the order the analyses write them (``_summary_row``, then the
#: inference, TFCE and balanced columns): a row read back from JSON, whose keys come sorted,
#: is put back in this order so that ``summary.csv`` is the same whether it was reused.
SUMMARY_ORDER = [
    *_summary_row(Analysis("x", "ale", ("x",)), None, pd.DataFrame()),
    "cluster_forming_ale",
    "cluster_size_threshold_voxels",
    "voxel_fwe_ale",
    "tfce_threshold",
    "tfce_voxels",
    "balanced_high",
    "balanced_low",
]


def _plain(row: dict) -> dict:
    """A summary row with Python scalars (as JSON reads them back) in :data:`SUMMARY_ORDER`,
    unknown columns last, so that a fresh row and a reused one make the same table."""
    values = plain(row)
    known = [k for k in SUMMARY_ORDER if k in values]
    return {k: values[k] for k in [*known, *sorted(set(values) - set(known))]}


def _cached(
    results: ResultsFolder, analysis: Analysis, key: str, experiment_set: ExperimentSet | None
) -> tuple[AnalysisResult, dict] | None:
    """The result and summary row of an analysis whose folder has ``key`` and every file it
    was written with; else None (recompute)."""
    folder = results.analysis(analysis)
    try:
        provenance = folder.read_provenance()
    except ValueError:  # not JSON: a damaged file is recomputed
        return None
    if not provenance or provenance.get("cache_key") != key or "files" not in provenance:
        return None
    if not all((folder.path / name).is_file() for name in provenance["files"]):
        return None
    if analysis.is_subtraction and folder.note.is_file():  # neither input had a cluster
        output = AnalysisResult(analysis, None, pd.DataFrame(), None, None, {})
    else:
        # An ALE hands on the experiments it was keyed by (the very foci of a fresh run).
        output = results.load(analysis, with_experiments=False)
        output = dataclasses.replace(output, experiments=experiment_set)
    return output, _plain(provenance["summary"])


def _refresh_provenance(folder: AnalysisFolder, settings: Settings, checksums: dict) -> None:
    """A reused folder's provenance, brought up to this run's settings and input checksums
    (the cache key proves they give the same files); its times stay the computation's."""
    provenance = folder.read_provenance()
    provenance.update({"settings": asdict(settings), "inputs_sha256": checksums})
    write_json(folder.provenance, provenance)


def _merged_summary(
    results: ResultsFolder, summary: pd.DataFrame, command: str
) -> tuple[pd.DataFrame, set[str]]:
    """This run's summary rows in place of their old ones, the folder's other rows kept.

    Rows are kept from an earlier run of the same command whose analysis folder (or
    not-computed note) still stands; the order is the earlier summary's, new analyses last.
    Returns the merged table and the names of the rows kept.
    """
    try:
        old = results.read_summary()
        provenance = results.read_provenance() or {}
    except (OSError, ValueError):
        return summary, set()
    if old is None or "analysis" not in old or provenance.get("command") != command:
        return summary, set()
    notes = old["note"].fillna("").astype(str) if "note" in old else pd.Series("", old.index)
    standing = [
        results.path.joinpath(str(name)).is_dir() or "not computed" in note
        for name, note in zip(old["analysis"], notes, strict=True)
    ]
    kept = old[standing & ~old["analysis"].isin(summary["analysis"]).to_numpy()]
    if kept.empty:
        return summary, set()
    order = list(dict.fromkeys([*old["analysis"], *summary["analysis"]]))
    merged = pd.concat([kept, summary], ignore_index=True)
    merged = merged.sort_values("analysis", key=lambda names: names.map(order.index))
    return merged.reset_index(drop=True), set(kept["analysis"])
