"""``mnsmeta run``: every analysis from the curated dataset to maps, tables and figures.

Each analysis is written to a hidden temporary folder inside ``results/`` and renamed into
place only when complete, so an interrupted run leaves the previous results untouched.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from mnsmeta import ale
from mnsmeta.analyses import Analysis
from mnsmeta.brain import brain_mask_img
from mnsmeta.clusters import cluster_table
from mnsmeta.experiments import ExperimentSet, build_experiments, combine
from mnsmeta.figures import plot_map
from mnsmeta.provenance import input_checksums, now, package_versions, write_json
from mnsmeta.records import Curation
from mnsmeta.sleuth import write_sleuth

LGR = logging.getLogger(__name__)

#: Fewer experiments than this leave ALE underpowered (Eickhoff et al., 2016).
MIN_EXPERIMENTS = 17

#: The thresholded map's file stem; its mask_ and labels_ twins share the rest of the name.
THRESHOLDED = "z_level-cluster_corr-FWE_thresh"
VOXEL_THRESHOLDED = "z_level-voxel_corr-FWE_thresh"
#: The cluster numbers of the thresholded map (1 = largest), as in clusters.csv.
LABELS_FILE = "labels_level-cluster_corr-FWE_thresh.nii.gz"


@dataclass
class RunSettings:
    """Parameters of a run (all recorded in the provenance files)."""

    n_iters: int = 10_000
    seed: int = 0
    jobs: int = 1
    cluster_forming_p: float = 0.001
    cluster_p: float = 0.05
    voxel_fwe_p: float = 0.05
    subtraction_p: float = 0.001
    subtraction_min_mm3: float = 200.0
    sample_size_fallback: str | int = "median"
    engine: str = "fast"
    progress: bool = True


@dataclass
class AnalysisOutput:
    """What later analyses need from an ALE analysis of the same run."""

    experiment_set: ExperimentSet
    dataset: object
    thresholded: np.ndarray
    summary: dict = field(default_factory=dict)


def save_map(data: np.ndarray, path: Path, dtype=np.float32) -> None:
    """Write a 3D array on the MNI152 2 mm grid as NIfTI (same data, same bytes)."""
    template = brain_mask_img()
    image = nib.Nifti1Image(np.asarray(data, dtype=dtype), template.affine)
    image.header.set_xyzt_units("mm")
    image.header.set_qform(template.affine, code=4)  # MNI
    image.header.set_sform(template.affine, code=4)
    image.to_filename(path)


@contextmanager
def staged_folder(results_dir: Path, name: str):
    """Yield a temporary folder that replaces ``results_dir/name`` only on success."""
    results_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.partial-", dir=results_dir))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    final = results_dir / name
    previous = None
    if final.exists():
        previous = results_dir / f".{name}.previous-{staging.name.rsplit('-', 1)[-1]}"
        final.rename(previous)
    staging.rename(final)
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)


def _experiment_set(curation: Curation, analysis: Analysis, settings: RunSettings):
    sets = [
        build_experiments(curation, group, settings.sample_size_fallback, analysis.modalities)
        for group in analysis.groups
    ]
    return sets[0] if len(sets) == 1 else combine(sets, analysis.name)


def _write_clusters(
    folder: Path, thresholded, stat, z, foci, stem: str, title: str, min_voxels=1
) -> pd.DataFrame:
    affine = brain_mask_img().affine
    table, labels = cluster_table(thresholded, affine, stat, z, foci, min_voxels)
    if min_voxels > 1:
        thresholded = np.where(labels > 0, thresholded, 0).astype(np.float32)
    save_map(thresholded, folder / f"{stem}.nii.gz")
    save_map(labels > 0, folder / f"{stem.replace('z_', 'mask_', 1)}.nii.gz", np.uint8)
    save_map(labels, folder / f"{stem.replace('z_', 'labels_', 1)}.nii.gz", np.int16)
    image = nib.Nifti1Image(thresholded, affine)
    plot_map(image, title, folder / f"{stem}_glass.png", folder / f"{stem}_slices.png")
    return table


def _summary_row(analysis: Analysis, experiment_set, table: pd.DataFrame, note: str = ""):
    largest = table.iloc[0] if len(table) else None
    n_experiments = len(experiment_set.experiments) if experiment_set is not None else np.nan
    warnings = []
    if experiment_set is not None and n_experiments < MIN_EXPERIMENTS:
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


def inference_summary(result, settings: RunSettings) -> dict:
    """The thresholds the Monte Carlo null produced, for the summary and the engine checks.

    ``cluster_forming_ale``: the smallest ALE value with uncorrected p below the
    cluster-forming threshold; ``cluster_size_threshold_voxels``: the (1 - cluster_p)
    quantile of the largest random cluster; ``voxel_fwe_ale``: the (1 - voxel_fwe_p)
    quantile of the largest random ALE value.
    """
    stat = result.get_map("stat", return_type="array")
    p = result.get_map("p", return_type="array")
    nulls = result.estimator.null_distributions_
    forming = stat[p < settings.cluster_forming_p]
    return {
        "cluster_forming_ale": float(forming.min()) if forming.size else np.nan,
        "cluster_size_threshold_voxels": float(
            np.quantile(
                nulls["values_desc-size_level-cluster_corr-fwe_method-montecarlo"],
                1 - settings.cluster_p,
            )
        ),
        "voxel_fwe_ale": float(
            np.quantile(
                nulls["values_level-voxel_corr-fwe_method-montecarlo"], 1 - settings.voxel_fwe_p
            )
        ),
    }


def run_ale_analysis(
    analysis: Analysis, curation: Curation, settings: RunSettings, folder: Path
) -> AnalysisOutput:
    """Fit one ALE analysis and write its maps, tables and figures into ``folder``."""
    experiment_set = _experiment_set(curation, analysis, settings)
    n = len(experiment_set.experiments)
    if n < MIN_EXPERIMENTS:
        LGR.warning(
            "%s: %d experiments < %d: ALE has little power (Eickhoff et al., 2016)",
            analysis.name,
            n,
            MIN_EXPERIMENTS,
        )
    dataset = experiment_set.to_dataset()
    seed = ale.analysis_seed(settings.seed, analysis.name)
    _, result = ale.fit_ale(
        dataset,
        settings.n_iters,
        seed,
        settings.jobs,
        settings.cluster_forming_p,
        settings.engine,
    )
    for name in result.maps:
        save_map(result.get_map(name, return_type="image").get_fdata(), folder / f"{name}.nii.gz")
    stat = result.get_map("stat", return_type="image").get_fdata()
    z = result.get_map("z", return_type="image").get_fdata()
    thresholded = ale.cluster_fwe_map(result, settings.cluster_p)
    table = _write_clusters(
        folder,
        thresholded,
        stat,
        z,
        experiment_set.foci,
        THRESHOLDED,
        f"{analysis.name} ALE, cluster-FWE p<{settings.cluster_p:g}",
    )
    table.to_csv(folder / "clusters.csv", index=False, float_format="%.6g")
    voxel = ale.voxel_fwe_map(result, settings.voxel_fwe_p)
    save_map(voxel, folder / f"{VOXEL_THRESHOLDED}.nii.gz")
    experiment_set.experiments.to_csv(folder / "experiments.csv")
    fallback = experiment_set.experiments["sample_size_rule"].str.startswith("fallback")
    write_sleuth(
        folder / "foci.txt",
        experiment_set.to_sleuth(),
        comments=[
            f"mnsmeta analysis {analysis.name}: {n} experiments, MNI; sample sizes used; "
            f"fallback N for: {', '.join(experiment_set.experiments.index[fallback]) or 'none'}"
        ],
    )
    summary = _summary_row(analysis, experiment_set, table)
    summary.update(inference_summary(result, settings))
    return AnalysisOutput(experiment_set, dataset, thresholded, summary)


def run_subtraction(
    analysis: Analysis, outputs: dict[str, AnalysisOutput], settings: RunSettings, folder: Path
) -> dict:
    """ALE subtraction of two analyses of this run, both directions."""
    first, second = (outputs[name] for name in analysis.inputs)
    label1, label2 = analysis.inputs
    if not (first.thresholded > 0).any() and not (second.thresholded > 0).any():
        note = f"not computed: neither {label1} nor {label2} has a significant cluster"
        (folder / "NOTE.txt").write_text(note + "\n")
        return _summary_row(analysis, None, pd.DataFrame(), note)
    mask = brain_mask_img()
    inference = [
        nib.Nifti1Image((o.thresholded > 0).astype(np.float32), mask.affine)
        for o in (first, second)
    ]
    seed = ale.analysis_seed(settings.seed, analysis.name)
    result = ale.fit_subtraction(
        first.dataset, second.dataset, *inference, settings.n_iters, seed, settings.jobs
    )
    for name in (
        "stat_desc-group1MinusGroup2",
        "z_desc-group1MinusGroup2",
        "p_desc-group1MinusGroup2",
    ):
        data = result.get_map(name, return_type="image").get_fdata()
        save_map(
            data, folder / f"{name.replace('group1', label1).replace('Group2', label2)}.nii.gz"
        )
    voxel_mm3 = float(abs(np.linalg.det(mask.affine[:3, :3])))
    min_voxels = int(np.ceil(settings.subtraction_min_mm3 / voxel_mm3))
    tables = []
    directions = ale.subtraction_maps(result, settings.subtraction_p)
    for key, (minuend, subtrahend, source) in {
        "group1>group2": (label1, label2, first),
        "group2>group1": (label2, label1, second),
    }.items():
        table = _write_clusters(
            folder,
            directions[key],
            directions[key],
            directions[key],
            source.experiment_set.foci,
            f"z_desc-{minuend}gt{subtrahend}_thresh",
            f"{minuend} > {subtrahend}, p<{settings.subtraction_p:g}, "
            f">= {settings.subtraction_min_mm3:g} mm3",
            min_voxels,
        )
        tables.append(table.assign(direction=f"{minuend}>{subtrahend}"))
    table = pd.concat(tables, ignore_index=True) if any(len(t) for t in tables) else tables[0]
    table.to_csv(folder / "clusters.csv", index=False, float_format="%.6g")
    pooled = combine([first.experiment_set, second.experiment_set], analysis.name)
    return _summary_row(
        analysis, pooled, table.sort_values("size_mm3", ascending=False) if len(table) else table
    )


def run_conjunction(analysis: Analysis, outputs: dict[str, AnalysisOutput], folder: Path) -> dict:
    """Minimum-statistic conjunction of two thresholded analyses of this run."""
    first, second = (outputs[name] for name in analysis.inputs)
    conjunction = ale.conjunction_map(first.thresholded, second.thresholded)
    foci = pd.concat([first.experiment_set.foci, second.experiment_set.foci])
    table = _write_clusters(
        folder,
        conjunction,
        conjunction,
        conjunction,
        foci,
        "z_desc-conjunction_thresh",
        f"{' and '.join(analysis.inputs)}: minimum statistic of cluster-FWE maps",
    )
    table.to_csv(folder / "clusters.csv", index=False, float_format="%.6g")
    pooled = combine([first.experiment_set, second.experiment_set], analysis.name)
    note = "" if len(table) else "no voxel significant in both inputs"
    return _summary_row(analysis, pooled, table, note)


def run_analyses(
    analyses: list[Analysis],
    curation: Curation,
    coordinates_dir: Path,
    results_dir: Path,
    settings: RunSettings,
) -> pd.DataFrame:
    """Run analyses in order and write ``results/``; return the summary table.

    Parameters
    ----------
    analyses : list of Analysis
        In dependency order (subtraction and conjunction after their inputs).
    curation : Curation
        Validated records.
    coordinates_dir : Path
        The curation folder (checksummed into the provenance).
    results_dir : Path
        Where each analysis gets its folder, and the summary and provenance are written.
    settings : RunSettings

    Returns
    -------
    pandas.DataFrame
        One row per analysis (``results/summary.csv``).
    """
    started = now()
    checksums = input_checksums(coordinates_dir)
    versions = package_versions()
    outputs: dict[str, AnalysisOutput] = {}
    rows = []
    bar = tqdm(analyses, desc="analyses", unit="analysis", disable=not settings.progress)
    for analysis in bar:
        bar.set_description(f"{analysis.name} ({analysis.kind})")
        analysis_started = now()
        with staged_folder(Path(results_dir), analysis.name) as folder:
            if analysis.kind == "ale":
                output = run_ale_analysis(analysis, curation, settings, folder)
                outputs[analysis.name] = output
                row = output.summary
            elif analysis.kind == "subtraction":
                row = run_subtraction(analysis, outputs, settings, folder)
            else:
                row = run_conjunction(analysis, outputs, folder)
            write_json(
                folder / "provenance.json",
                {
                    "analysis": asdict(analysis),
                    "settings": asdict(settings),
                    "seed_used": ale.analysis_seed(settings.seed, analysis.name),
                    "versions": versions,
                    "inputs_sha256": checksums,
                    "started": analysis_started,
                    "finished": now(),
                    "summary": row,
                },
            )
        rows.append(row)
    summary = pd.DataFrame(rows)
    summary_path = Path(results_dir) / "summary.csv"
    temporary = summary_path.with_name(".summary.csv.partial")
    summary.to_csv(temporary, index=False, float_format="%.6g")
    temporary.replace(summary_path)
    write_json(
        Path(results_dir) / "provenance.json",
        {
            "command": "mnsmeta run",
            "analyses": [a.name for a in analyses],
            "settings": asdict(settings),
            "versions": versions,
            "inputs_sha256": checksums,
            "started": started,
            "finished": now(),
        },
    )
    return summary
