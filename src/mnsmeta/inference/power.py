"""The power of a convergence test: how many experiments must converge before ALE finds it.

A claim's verdict may rest on a null ("no cluster in the IFG"). Such a null is evidence
against the claim only when the test would have found the effect had it been there. This
module answers that by simulation on the engine, on the analysis's own data:

1. pick a true location at random in the claim's region (uniform over its voxels);
2. in ``k`` experiments drawn at random, replace one reported focus (drawn at random) by a
   focus at that location, displaced by the ALE model's own spatial uncertainty (a Gaussian
   of the experiment's kernel width: Eickhoff et al. 2009), so that every experiment keeps
   its number of foci and N;
3. compute the ALE map and threshold it exactly as the analysis was thresholded: the same
   cluster-forming ALE value and the same cluster-size cut. Both come from the analysis's
   Monte Carlo null, which depends only on the experiments' foci counts and N, so planting
   leaves them unchanged and no new null is needed;
4. the effect is *detected* when a surviving cluster lies in the region by the claims' rule
   (its peak, or >= 10 % of its voxels, in the region).

The power at ``k`` is the share of replicates detected; the minimum detectable effect (MDE)
is the smallest ``k`` detected in at least 80 % of them. Every other experiment keeps its
reported foci, so the power is that of *this* literature's background, not of an idealised one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage

from mnsmeta.curation.characteristics import kernel_fwhm_mm
from mnsmeta.data.atlases import labels_at, without_hemisphere
from mnsmeta.data.space import brain_mask_img, mm_to_voxel, voxel_to_mm
from mnsmeta.inference.precision import binomial_interval
from mnsmeta.meta_analysis.clusters import CONNECTIVITY

#: The power a null must have before it counts as evidence against.
TARGET_POWER = 0.8
#: A cluster is in a region when this share of its voxels carries one of its labels.
REGION_SHARE = 0.10
#: Replicates per number of converging experiments.
REPLICATES = 100
FWHM_TO_SD = 1.0 / math.sqrt(8.0 * math.log(2.0))


def region_mask(
    labels: set[str], atlas: str, min_abs_x_mm: float | None = None, max_z_mm: float | None = None
) -> np.ndarray:
    """Brain voxels (on the analysis grid) whose maximum-probability label is in ``labels``.

    ``labels`` are written without hemisphere (``Amygdala``), as in the claims file; the
    optional limits keep voxels with ``|x| >= min_abs_x_mm`` and ``z <= max_z_mm``.
    """
    brain = np.asarray(brain_mask_img().dataobj) > 0
    ijk = np.argwhere(brain)
    xyz = voxel_to_mm(ijk)
    names = labels_at(xyz, atlas)
    inside = np.array([bool(n) and without_hemisphere(n) in labels for n in names])
    if min_abs_x_mm is not None:
        inside &= np.abs(xyz[:, 0]) >= min_abs_x_mm
    if max_z_mm is not None:
        inside &= xyz[:, 2] <= max_z_mm
    mask = np.zeros(brain.shape, dtype=bool)
    mask[tuple(ijk[inside].T)] = True
    return mask


def in_region(voxels: np.ndarray, peak_ijk, region: np.ndarray) -> bool:
    """The claims' rule: a cluster lies in a region when its peak, or at least
    ``REGION_SHARE`` of its voxels (``(n, 3)`` indices), do."""
    if not len(voxels):
        return False
    share = region[tuple(voxels.T)].mean()
    return bool(share >= REGION_SHARE or region[tuple(np.asarray(peak_ijk, dtype=int))])


def clusters_in_region(ale: np.ndarray, cut: float, size_cut: float, region: np.ndarray) -> bool:
    """Whether a cluster of ``ale >= cut`` larger than ``size_cut`` voxels lies in ``region``."""
    labels, _ = ndimage.label(ale >= cut, CONNECTIVITY)
    sizes = np.bincount(labels.ravel())
    for number in np.flatnonzero(sizes[1:] > size_cut) + 1:
        voxels = np.argwhere(labels == number)
        if in_region(voxels, voxels[np.argmax(ale[tuple(voxels.T)])], region):
            return True
    return False


@dataclass(frozen=True)
class PlantingDesign:
    """One analysis's data on the grid, with its thresholds: what the simulation plants into.

    Parameters
    ----------
    foci : pandas.DataFrame
        The analysis's foci (``experiment_id``, ``x``, ``y``, ``z`` in MNI mm).
    sample_sizes : pandas.Series
        Experiment id -> the N of its kernel.
    cut : float
        The cluster-forming ALE value (``summary.csv``: ``cluster_forming_ale``).
    size_cut : float
        The cluster-size cut in voxels (``cluster_size_threshold_voxels``).
    """

    foci: pd.DataFrame
    sample_sizes: pd.Series
    cut: float
    size_cut: float


def detection_power(
    designs: list[PlantingDesign],
    region: np.ndarray,
    ks,
    seed: int,
    replicates: int = REPLICATES,
    stop_at: float | None = TARGET_POWER,
) -> pd.DataFrame:
    """Power to find a cluster in ``region`` when ``k`` experiments converge there.

    With several designs (a conjunction's inputs), the same location is planted in ``k``
    experiments of each, and the effect counts as detected when every design detects it.

    Parameters
    ----------
    designs : list of PlantingDesign
    region : 3D bool array
        Where the true location is drawn, and where a detected cluster must lie.
    ks : iterable of int
        Numbers of converging experiments to simulate, ascending (each capped at the number
        of experiments of the smallest design).
    seed : int
        Seed of the replicates (same seed, same table).
    replicates : int
        Replicates per ``k``.
    stop_at : float or None
        Stop after the first ``k`` whose power reaches this (the MDE is then known).

    Returns
    -------
    pandas.DataFrame
        Columns ``k``, ``detected``, ``replicates``, ``power``, ``power_low``, ``power_high``
        (exact binomial 95 % interval of the simulated power).
    """
    from mnsmeta.meta_analysis.engine import AleComputer

    mask_img = brain_mask_img()
    computer = AleComputer(mask_img)
    brain = computer.mask
    centres = np.argwhere(region & brain)
    if not len(centres):
        raise ValueError("the region has no voxel inside the brain mask")
    prepared = [_prepare(design) for design in designs]
    n_max = min(len(p["ids"]) for p in prepared)
    rng = np.random.default_rng(seed)
    rows = []
    for k in sorted({min(int(k), n_max) for k in ks}):
        detected = 0
        for _ in range(replicates):
            centre = voxel_to_mm(centres[rng.integers(len(centres))])[0]
            found = True
            for design, data in zip(designs, prepared, strict=True):
                ijk = _planted(data, k, centre, rng, brain)
                values = computer.ale(ijk, data["experiment"], data["n"])
                volume = np.zeros(brain.shape)
                volume[brain] = values
                if not clusters_in_region(volume, design.cut, design.size_cut, region):
                    found = False
                    break
            detected += found
        low, high = binomial_interval(detected, replicates)
        rows.append((k, detected, replicates, detected / replicates, low, high))
        if stop_at is not None and detected / replicates >= stop_at:
            break
    return pd.DataFrame(
        rows, columns=["k", "detected", "replicates", "power", "power_low", "power_high"]
    )


def minimum_detectable(power: pd.DataFrame, target: float = TARGET_POWER) -> int | None:
    """The smallest ``k`` with simulated power >= ``target`` (None: none reached it)."""
    reached = power[power["power"] >= target]
    return int(reached["k"].min()) if len(reached) else None


def _prepare(design: PlantingDesign) -> dict:
    foci = design.foci.reset_index(drop=True)
    ids = list(dict.fromkeys(foci["experiment_id"].astype(str)))
    index = {e: i for i, e in enumerate(ids)}
    experiment = foci["experiment_id"].astype(str).map(index).to_numpy()
    sizes = design.sample_sizes.copy()
    sizes.index = sizes.index.astype(str)
    n = sizes.reindex(ids).to_numpy(dtype=float)
    sd = np.array([kernel_fwhm_mm(v) * FWHM_TO_SD for v in n])
    return {
        "ids": ids,
        "ijk": mm_to_voxel(foci[["x", "y", "z"]].to_numpy(dtype=float)).astype(np.int32),
        "experiment": experiment,
        "n": n[experiment].astype(np.int64),
        "sd": sd,
        "rows_of": [np.flatnonzero(experiment == i) for i in range(len(ids))],
    }


def _planted(data: dict, k: int, centre: np.ndarray, rng, brain: np.ndarray) -> np.ndarray:
    """The foci with one focus of each of ``k`` random experiments moved near ``centre``."""
    ijk = data["ijk"].copy()
    shape = np.array(brain.shape)
    for e in rng.choice(len(data["ids"]), size=k, replace=False):
        row = rng.choice(data["rows_of"][e])
        for _ in range(20):  # a displaced focus outside the brain is drawn again
            point = mm_to_voxel(centre + rng.normal(0, data["sd"][e], 3))[0]
            if np.all((point >= 0) & (point < shape)) and brain[tuple(point)]:
                break
        else:
            point = mm_to_voxel(centre)[0]
        ijk[row] = point
    return ijk
