"""Does SAD or BPD convergence fall in the mirror neuron system more than chance would put it?

Two tests answer two questions (see the README):

1. **ROI-based ALE test**: is the ALE inside the mask higher than when each experiment's foci
   are relocated uniformly at random in the brain (same counts, same kernels)? Valid even
   when no whole-brain cluster survives. Statistic: mean ALE in the mask (max reported too);
   ``p = (1 + #null >= observed) / (1 + n)``.
2. **Overlap of the FWE-thresholded map with the mask**: voxels in both, fraction of the
   convergence inside, enrichment over the mask's share of the brain, fraction of the mask
   covered, Dice, peaks inside. Null: the same clusters, each moved rigidly (one of the 24
   rotations of the voxel grid, which keep shape and size exactly, and a random translation)
   to a place where it lies wholly inside the brain mask.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from mnsmeta.inference.precision import mc_interval
from mnsmeta.meta_analysis.engine.relocation import AleComputer


def roi_null(
    computer: AleComputer,
    ijk: np.ndarray,
    experiment: np.ndarray,
    sample_sizes: np.ndarray,
    masks: dict[str, np.ndarray],
    n_perm: int,
    seed: int,
    progress=None,
) -> tuple[dict[str, tuple[float, float]], dict[str, np.ndarray]]:
    """Observed and null mean/max ALE inside each mask.

    Parameters
    ----------
    computer : AleComputer
    ijk, experiment, sample_sizes : arrays
        The experiments' foci (voxel indices), experiment numbers and sample sizes.
    masks : dict
        Mask name -> 3D bool array (MNI152 2 mm).
    n_perm : int
        Relocations.
    seed : int
        Seed of the relocations.
    progress : callable, optional
        Called with 1 after each relocation (for a progress bar).

    Returns
    -------
    observed : dict
        Mask name -> (mean ALE, max ALE) in the mask.
    null : dict
        Mask name -> (n_perm, 2) array of the same statistics under relocation.
    """
    in_mask = {name: mask[computer.mask] for name, mask in masks.items()}

    def statistics(values):
        return {
            name: (float(values[m].mean()), float(values[m].max())) if m.any() else (0.0, 0.0)
            for name, m in in_mask.items()
        }

    observed = statistics(computer.ale(ijk, experiment, sample_sizes))
    rng = np.random.default_rng(seed)
    null = {name: np.zeros((n_perm, 2)) for name in masks}
    for iteration in range(n_perm):
        values = computer.ale(computer.random_foci(rng, len(ijk)), experiment, sample_sizes)
        for name, pair in statistics(values).items():
            null[name][iteration] = pair
        if progress is not None:
            progress(1)
    return observed, null


def permutation_p(observed: float, null: np.ndarray) -> float:
    """``(1 + #null >= observed) / (1 + n)``: never 0, exact under the null."""
    return float((1 + np.sum(null >= observed)) / (1 + len(null)))


def overlap_statistics(clusters: np.ndarray, mask: np.ndarray, brain: np.ndarray, peaks=()):
    """Overlap of a thresholded map (``clusters`` > 0) with a mask.

    Parameters
    ----------
    clusters : 3D array
        Cluster labels or any map, nonzero where convergence is significant.
    mask, brain : 3D bool arrays
    peaks : iterable of (i, j, k)
        Cluster peaks, counted when inside the mask.

    Returns
    -------
    dict
        ``voxels_in_both``, ``fraction_inside`` (of the convergence), ``enrichment``
        (fraction inside / the mask's share of the brain), ``mask_covered``, ``dice``,
        ``peaks_inside``, ``convergence_voxels``, ``mask_voxels``. All 0 without clusters.
    """
    significant = clusters > 0
    both = int((significant & mask).sum())
    n_significant = int(significant.sum())
    n_mask = int(mask.sum())
    share = n_mask / int(brain.sum()) if brain.any() else 0.0
    fraction = both / n_significant if n_significant else 0.0
    return {
        "convergence_voxels": n_significant,
        "mask_voxels": n_mask,
        "voxels_in_both": both,
        "fraction_inside": fraction,
        "enrichment": fraction / share if share else 0.0,
        "mask_covered": both / n_mask if n_mask else 0.0,
        "dice": 2 * both / (n_significant + n_mask) if (n_significant + n_mask) else 0.0,
        "peaks_inside": int(sum(bool(mask[tuple(p)]) for p in peaks)),
    }


def grid_rotations() -> list[np.ndarray]:
    """The 24 proper rotations of the voxel grid (signed permutation matrices, det +1)."""
    rotations = []
    for permutation in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            matrix = np.zeros((3, 3), dtype=int)
            for row, (column, sign) in enumerate(zip(permutation, signs, strict=True)):
                matrix[row, column] = sign
            if round(np.linalg.det(matrix)) == 1:
                rotations.append(matrix)
    return rotations


def moved_clusters_null(
    labels: np.ndarray,
    mask: np.ndarray,
    brain: np.ndarray,
    n_perm: int,
    seed: int,
    max_tries: int = 500,
    per_cluster: bool = False,
):
    """Voxels in the mask when every cluster is moved to a random place in the brain.

    Each cluster is rotated by one of the 24 grid rotations about its centre and translated
    so that its centre lands on a random brain voxel; a placement is kept only if the whole
    cluster lies inside the brain mask (up to ``max_tries`` draws, then the best draw). The
    whole map's count is that of the union of the placed clusters, as the observed count is
    of the union of the clusters (placements that overlap count once).

    Returns
    -------
    (n_perm,) int array
        Voxels of the moved map inside the mask, per permutation.
    (n_perm, n_clusters) int array, with ``per_cluster``
        Each cluster's moved voxels inside the mask (clusters in label order): the null of
        a test of that cluster alone, from the same placements.
    """
    rng = np.random.default_rng(seed)
    rotations = grid_rotations()
    brain_ijk = np.argwhere(brain)
    shape = np.array(brain.shape)
    flat_mask = np.asarray(mask, dtype=bool).ravel()
    offsets = []
    for cluster in range(1, int(labels.max()) + 1):
        voxels = np.argwhere(labels == cluster)
        if len(voxels):
            offsets.append(voxels - np.rint(voxels.mean(axis=0)).astype(int))
    null = np.zeros(n_perm, dtype=int)
    each = np.zeros((n_perm, len(offsets)), dtype=int)
    for iteration in range(n_perm):
        placed_flat = []
        for number, offset in enumerate(offsets):
            best, best_inside = None, -1.0
            for _ in range(max_tries):
                rotated = offset @ rotations[rng.integers(len(rotations))].T
                placed = rotated + brain_ijk[rng.integers(len(brain_ijk))]
                on_grid = np.all((placed >= 0) & (placed < shape), axis=1)
                inside = on_grid.copy()
                inside[on_grid] = brain[tuple(placed[on_grid].T)]
                fraction = inside.mean()
                if fraction > best_inside:
                    best, best_inside = placed[inside], fraction
                if fraction == 1.0:
                    break
            flat = np.ravel_multi_index(tuple(best.T), tuple(shape))
            each[iteration, number] = int(flat_mask[flat].sum())
            placed_flat.append(flat)
        if placed_flat:
            null[iteration] = int(flat_mask[np.unique(np.concatenate(placed_flat))].sum())
    return (null, each) if per_cluster else null


def summarise_null(observed: float, null: np.ndarray) -> dict:
    """Null mean, 95 % interval, permutation p and the p's Monte Carlo interval."""
    p = permutation_p(observed, null)
    low, high = mc_interval(p, len(null))
    return {
        "observed": observed,
        "null_mean": float(np.mean(null)),
        "null_ci_low": float(np.quantile(null, 0.025)),
        "null_ci_high": float(np.quantile(null, 0.975)),
        "p": p,
        "n_perm": len(null),
        "p_mc_low": low,
        "p_mc_high": high,
    }


def cluster_overlap_table(
    labels: np.ndarray, masks: dict[str, np.ndarray], clusters: pd.DataFrame, affine
) -> pd.DataFrame:
    """Per cluster and mask: voxels inside, fraction inside, whether the peak is inside.

    ``clusters`` is a cluster table (``clusters.csv``): its ``cluster`` numbers match
    ``labels`` and its peaks are in MNI mm; its atlas labels are carried over.
    """
    inverse = np.linalg.inv(affine)
    label_columns = [c for c in clusters.columns if c.endswith(" peak")]
    rows = []
    for _, cluster in clusters.iterrows():
        voxels = labels == cluster["cluster"]
        mm = [cluster["peak_x"], cluster["peak_y"], cluster["peak_z"], 1.0]
        peak = tuple(np.rint(inverse @ mm)[:3].astype(int))
        size = int(voxels.sum())
        for name, mask in masks.items():
            inside = int((voxels & mask).sum())
            rows.append(
                {
                    "cluster": int(cluster["cluster"]),
                    "mask": name,
                    "size_voxels": size,
                    "voxels_in_mask": inside,
                    "fraction_in_mask": inside / size if size else 0.0,
                    "peak_in_mask": bool(mask[peak]),
                    "peak_x": cluster["peak_x"],
                    "peak_y": cluster["peak_y"],
                    "peak_z": cluster["peak_z"],
                    **{column: cluster[column] for column in label_columns},
                }
            )
    return pd.DataFrame(rows)
