"""``mnsmeta overlap``: both overlap tests for every disorder analysis against every mask.

Reads what ``mnsmeta run`` wrote (the exact foci in ``foci.txt``, the cluster labels and
tables), so the tests use the same experiments and sample sizes as the maps.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from mnsmeta.ale import analysis_seed
from mnsmeta.analyses import Analysis
from mnsmeta.brain import brain_mask_img
from mnsmeta.engine import AleComputer
from mnsmeta.errors import MnsmetaInputError
from mnsmeta.masks import Mask
from mnsmeta.overlap import (
    cluster_overlap_table,
    moved_clusters_null,
    overlap_statistics,
    permutation_p,
    roi_null,
    summarise_null,
)
from mnsmeta.pipeline import staged_folder
from mnsmeta.provenance import now, package_versions, write_json
from mnsmeta.sleuth import read_sleuth

LGR = logging.getLogger(__name__)
#: Relocations are split into this many seeded chunks, whatever the number of processes,
#: so that the same seed gives the same null serially and in parallel.
N_CHUNKS = 8
MASK_COLOURS = {"meta": "tab:blue", "anatomical": "tab:green", "user": "tab:purple"}


@dataclass
class OverlapSettings:
    """Parameters of the overlap tests (recorded in the provenance)."""

    n_perm: int = 1000
    seed: int = 0
    jobs: int = 1
    progress: bool = True


def read_foci(folder: Path):
    """The foci an analysis used (``foci.txt``) as voxel indices, experiments and N."""
    from mnsmeta.robustness import Experiments

    sleuth = read_sleuth(folder / "foci.txt", [], keep_repeats=True)
    if not any(e.foci for e in sleuth):
        raise MnsmetaInputError(f"{folder / 'foci.txt'}: no experiments: rerun mnsmeta run")
    experiments = Experiments.from_sleuth(sleuth)
    experiment = np.repeat(np.arange(len(experiments.ids)), experiments.counts)
    return experiments.ijk, experiment, np.repeat(experiments.sample_sizes, experiments.counts)


#: The ROI test's nulls: foci relocated anywhere in the brain (the test as specified), and
#: only in grey matter (a control: real foci lie in grey matter, and so do MNS masks, so a
#: whole-brain null favours any grey-matter mask).
NULL_SPACES = {"brain": "roi_ale", "gm": "roi_ale_gm"}


def _roi_chunk(ijk, experiment, sample_sizes, masks, n_perm, seed, null_space):
    computer = AleComputer(brain_mask_img(), null_space)
    return roi_null(computer, ijk, experiment, sample_sizes, masks, n_perm, seed)


def roi_test(
    folder: Path,
    masks: dict[str, np.ndarray],
    settings: OverlapSettings,
    name: str,
    null_space: str = "brain",
):
    """Observed mean/max ALE in each mask and their relocation nulls (chunked, seeded)."""
    from joblib import Parallel, delayed

    ijk, experiment, sample_sizes = read_foci(folder)
    sizes = [len(c) for c in np.array_split(np.arange(settings.n_perm), N_CHUNKS) if len(c)]
    seeds = np.random.SeedSequence(
        analysis_seed(settings.seed, f"roi:{null_space}:{name}")
    ).generate_state(len(sizes))
    # Threads: the ALE maps are computed by numba code that releases the GIL.
    chunks = Parallel(n_jobs=settings.jobs, prefer="threads")(
        delayed(_roi_chunk)(ijk, experiment, sample_sizes, masks, size, int(seed), null_space)
        for size, seed in zip(sizes, seeds, strict=True)
    )
    observed = chunks[0][0]
    null = {m: np.concatenate([chunk[1][m] for chunk in chunks]) for m in masks}
    return observed, null


def _roi_rows(name, observed, null, mask_names, test="roi_ale"):
    rows = []
    for mask in mask_names:
        for column, statistic in enumerate(("mean_ale", "max_ale")):
            rows.append(
                {
                    "analysis": name,
                    "mask": mask,
                    "test": test,
                    "statistic": statistic,
                    **summarise_null(observed[mask][column], null[mask][:, column]),
                }
            )
    return rows


def _intersection_union_rows(analysis, results, masks, test, settings):
    """ROI rows of a conjunction: significant only if each input is (intersection-union test),
    so its statistic is the smaller input statistic and its p the larger input p."""
    rows = []
    for mask in masks:
        for column, statistic in enumerate(("mean_ale", "max_ale")):
            parts = [(observed[mask][column], null[mask][:, column]) for observed, null in results]
            rows.append(
                {
                    "analysis": analysis.name,
                    "mask": mask,
                    "test": test,
                    "statistic": statistic,
                    "observed": min(obs for obs, _ in parts),
                    "p": max(permutation_p(obs, null) for obs, null in parts),
                    "n_perm": settings.n_perm,
                    "note": "intersection-union test of "
                    + " and ".join(analysis.inputs)
                    + ": smaller input statistic, larger input p",
                }
            )
    return rows


def _overlap_rows(name, labels, clusters, mask, mask_name, brain, settings):
    affine = brain_mask_img().affine
    inverse = np.linalg.inv(affine)
    peaks = [
        tuple(np.rint(inverse @ [r.peak_x, r.peak_y, r.peak_z, 1])[:3].astype(int))
        for r in clusters.itertuples()
    ]
    stats = overlap_statistics(labels, mask, brain, peaks)
    rows = []
    base = {"analysis": name, "mask": mask_name, "test": "thresholded_overlap"}
    if stats["convergence_voxels"] == 0:
        note = "no significant cluster: overlap statistics are 0 by definition"
        for statistic, value in stats.items():
            rows.append(
                {
                    **base,
                    "statistic": statistic,
                    "observed": value,
                    "p": 1.0,
                    "n_perm": 0,
                    "note": note,
                }
            )
        return rows
    null_voxels = moved_clusters_null(
        labels,
        mask,
        brain,
        settings.n_perm,
        analysis_seed(settings.seed, f"shift:{name}:{mask_name}"),
    )
    n_sig, n_mask = stats["convergence_voxels"], stats["mask_voxels"]
    share = n_mask / brain.sum()
    transforms = {
        "voxels_in_both": lambda v: v,
        "fraction_inside": lambda v: v / n_sig,
        "enrichment": lambda v: v / n_sig / share,
        "mask_covered": lambda v: v / n_mask if n_mask else 0 * v,
        "dice": lambda v: 2 * v / (n_sig + n_mask),
    }
    for statistic, value in stats.items():
        if statistic in transforms:
            summary = summarise_null(value, transforms[statistic](null_voxels.astype(float)))
            rows.append({**base, "statistic": statistic, **summary})
        else:
            rows.append({**base, "statistic": statistic, "observed": value})
    return rows


def _figure(name, thresholded_img, masks: dict[str, Mask], path: Path):
    import matplotlib.pyplot as plt
    from nilearn import plotting

    from mnsmeta.figures import DISPLAY_THRESHOLD, POSITIVE_CMAP, save_figure

    data = thresholded_img.get_fdata()
    figure = plt.figure(figsize=(10, 3.6))
    title = (
        f"{name}: convergence (colour) and MNS masks ("
        + ", ".join(f"{m}: {MASK_COLOURS[m].split(':')[1]}" for m in masks)
        + ")"
    )
    if np.any(data > 0):
        display = plotting.plot_stat_map(
            thresholded_img,
            figure=figure,
            display_mode="z",
            cut_coords=(-18, 0, 10, 20, 35, 50),
            title=title,
            colorbar=True,
            cmap=POSITIVE_CMAP,
            threshold=DISPLAY_THRESHOLD,
            draw_cross=False,
        )
    else:
        display = plotting.plot_anat(
            figure=figure,
            display_mode="z",
            cut_coords=(-18, 0, 10, 20, 35, 50),
            title=f"{name}: no significant cluster; MNS masks as contours",
            draw_cross=False,
        )
    for mask_name, mask in masks.items():
        if mask.data.any():
            display.add_contours(
                mask.image(), levels=[0.5], colors=[MASK_COLOURS[mask_name]], linewidths=1.2
            )
    save_figure(figure, path)


def write_masks(masks: dict[str, Mask], results_dir: Path) -> None:
    """Write each mask and its JSON sidecar to ``results/masks/``."""
    with staged_folder(results_dir, "masks") as folder:
        for name, mask in masks.items():
            mask.image().to_filename(folder / f"mns_{name}.nii.gz")
            write_json(folder / f"mns_{name}.json", {**mask.description, "voxels": mask.n_voxels})


def tested_analyses(analyses: list[Analysis]) -> list[Analysis]:
    """Disorder ALE analyses (groups among SAD, BPD) and conjunctions."""
    return [
        a
        for a in analyses
        if (a.kind == "ale" and set(a.groups) <= {"SAD", "BPD"}) or a.kind == "conjunction"
    ]


def run_overlap(
    analyses: list[Analysis],
    masks: dict[str, Mask],
    results_dir: Path,
    settings: OverlapSettings,
) -> pd.DataFrame:
    """Run both tests for each tested analysis and mask; write ``results/overlap*``.

    Returns
    -------
    pandas.DataFrame
        ``results/overlap.csv``: one row per analysis, mask, test and statistic.
    """
    results_dir = Path(results_dir)
    brain = np.asarray(brain_mask_img().get_fdata()) > 0
    mask_arrays = {name: mask.data for name, mask in masks.items()}
    started = now()
    write_masks(masks, results_dir)
    rows, cluster_rows = [], []
    roi_cache: dict[tuple[str, str], tuple] = {}
    tested = tested_analyses(analyses)
    bar = tqdm(tested, desc="overlap", unit="analysis", disable=not settings.progress)
    with staged_folder(results_dir, "overlap") as folder:
        for analysis in bar:
            bar.set_description(f"overlap {analysis.name}")
            source = results_dir / analysis.name
            if not source.is_dir():
                raise MnsmetaInputError(f"{source}: missing: run the analysis first (mnsmeta run)")
            for null_space, test in NULL_SPACES.items():
                names = [analysis.name] if analysis.kind == "ale" else list(analysis.inputs)
                for name in names:
                    if (name, null_space) not in roi_cache:
                        roi_cache[name, null_space] = roi_test(
                            results_dir / name, mask_arrays, settings, name, null_space
                        )
                if analysis.kind == "ale":
                    rows += _roi_rows(
                        analysis.name, *roi_cache[analysis.name, null_space], masks, test
                    )
                else:
                    rows += _intersection_union_rows(
                        analysis, [roi_cache[n, null_space] for n in names], masks, test, settings
                    )
            if analysis.kind == "ale":
                stem = "labels_level-cluster_corr-FWE_thresh"
                thresholded = "z_level-cluster_corr-FWE_thresh"
            else:
                stem = "labels_desc-conjunction_thresh"
                thresholded = "z_desc-conjunction_thresh"
            labels = np.asarray(nib.load(source / f"{stem}.nii.gz").dataobj).astype(int)
            clusters = pd.read_csv(source / "clusters.csv")
            for mask_name, mask in mask_arrays.items():
                rows += _overlap_rows(
                    analysis.name, labels, clusters, mask, mask_name, brain, settings
                )
            if len(clusters):
                table = cluster_overlap_table(
                    labels, mask_arrays, clusters, brain_mask_img().affine
                )
                cluster_rows.append(table.assign(analysis=analysis.name))
            _figure(
                analysis.name,
                nib.load(source / f"{thresholded}.nii.gz"),
                masks,
                folder / f"{analysis.name}_masks.png",
            )
        overlap = pd.DataFrame(rows)
        overlap.to_csv(folder / "overlap.csv", index=False, float_format="%.6g")
        per_cluster = (
            pd.concat(cluster_rows, ignore_index=True) if cluster_rows else pd.DataFrame()
        )
        per_cluster.to_csv(folder / "overlap_clusters.csv", index=False, float_format="%.6g")
        write_json(
            folder / "provenance.json",
            {
                "command": "mnsmeta overlap",
                "analyses": [a.name for a in tested],
                "masks": {
                    name: {**m.description, "voxels": m.n_voxels} for name, m in masks.items()
                },
                "settings": settings.__dict__,
                "versions": package_versions(),
                "started": started,
                "finished": now(),
            },
        )
    # The top-level copy is the table the README and the claims check point to.
    temporary = results_dir / ".overlap.csv.partial"
    overlap.to_csv(temporary, index=False, float_format="%.6g")
    temporary.replace(results_dir / "overlap.csv")
    return overlap


def masks_for(results_dir: Path, user_path: Path | None, threshold: float | None):
    """The meta-analytic, anatomical and (if given) user masks."""
    from mnsmeta.masks import anatomical_mask, meta_analytic_mask, user_mask

    masks = {
        "meta": meta_analytic_mask(Path(results_dir) / "MNS"),
        "anatomical": anatomical_mask(),
    }
    if user_path is not None:
        masks["user"] = user_mask(user_path, threshold)
    return masks


def describe(overlap: pd.DataFrame) -> str:
    """A short text summary of the overlap table for the terminal."""
    lines = []
    main = overlap[
        (overlap["test"].str.startswith("roi_ale") & (overlap["statistic"] == "mean_ale"))
        | ((overlap["test"] == "thresholded_overlap") & (overlap["statistic"] == "voxels_in_both"))
    ]
    for row in main.itertuples():
        ci = (
            f" null {row.null_mean:.4g} [{row.null_ci_low:.4g}, {row.null_ci_high:.4g}]"
            if pd.notna(getattr(row, "null_mean", np.nan))
            else ""
        )
        lines.append(
            f"{row.analysis:16s} {row.mask:10s} {row.test:19s} {row.statistic:14s} "
            f"observed {row.observed:.4g}{ci} p={row.p:.3g}"
        )
    return "\n".join(lines)
