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

Both nulls above answer "are the foci non-uniform?": any fMRI literature lies in grey matter,
and in the MNS, more than uniform foci would (measured on random database sets: the mean-ALE
test rejects for about 90 % of them). The **base-rate null** answers the question the claims
ask, "more than typical fMRI foci would?": the same statistics on sets of whole database
experiments drawn like the analysis (:class:`DatabasePool`, :func:`base_rate_null`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd

from mnsmeta.inference.precision import mc_interval
from mnsmeta.meta_analysis.engine import AleComputer


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
    # Only the masks' voxels are computed (their union, a few percent of the brain); each
    # mask's values come in the brain's C order, as from the whole map, so the statistics
    # are the whole map's bit for bit.
    union = np.zeros(computer.mask.shape, dtype=bool)
    for mask in masks.values():
        union |= mask
    union &= computer.mask
    in_mask = {name: mask[union] for name, mask in masks.items()}
    stamper = computer.region_stamper(experiment, sample_sizes, union)

    def statistics(values):
        return {
            name: (float(values[m].mean()), float(values[m].max())) if m.any() else (0.0, 0.0)
            for name, m in in_mask.items()
        }

    observed = statistics(stamper.ale(ijk))
    rng = np.random.default_rng(seed)
    null = {name: np.zeros((n_perm, 2)) for name in masks}
    for iteration in range(n_perm):
        values = stamper.ale(computer.random_foci(rng, len(ijk)))
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


#: 32-bit words of the random stream drawn at a time for :func:`moved_clusters_null`.
_WORDS = 1 << 20


@numba.njit(cache=True, nogil=True)
def _bounded(words, pos, n):
    """``Generator.integers(n)`` for ``n < 2**32`` from the generator's 32-bit words.

    NumPy draws a scalar below ``n`` by Lemire's method from ``next_uint32`` (for PCG64 the
    low, then the high half of each 64-bit output); replaying it on the same words gives
    the same numbers. Returns the number and the next position, or ``(-1, pos)`` when the
    words run out.
    """
    limit = np.uint64(n)
    if pos >= len(words):
        return -1, pos
    m = np.uint64(words[pos]) * limit
    pos += 1
    leftover = m & np.uint64(0xFFFFFFFF)
    if leftover < limit:
        threshold = (np.uint64(0xFFFFFFFF) - (limit - np.uint64(1))) % limit
        while leftover < threshold:
            if pos >= len(words):
                return -1, pos
            m = np.uint64(words[pos]) * limit
            pos += 1
            leftover = m & np.uint64(0xFFFFFFFF)
    return np.int64(m >> np.uint64(32)), pos


@numba.njit(cache=True, nogil=True, inline="always")
def _moved(offsets, v, rotation, centre):
    """Voxel ``v`` of a cluster (its offset from the centre) rotated and moved to ``centre``."""
    x, y, z = offsets[v, 0], offsets[v, 1], offsets[v, 2]
    return (
        rotation[0, 0] * x + rotation[0, 1] * y + rotation[0, 2] * z + centre[0],
        rotation[1, 0] * x + rotation[1, 1] * y + rotation[1, 2] * z + centre[1],
        rotation[2, 0] * x + rotation[2, 1] * y + rotation[2, 2] * z + centre[2],
    )


@numba.njit(cache=True, nogil=True)
def _place_clusters(
    words, pos, first, offsets, starts, rotations, brain, brain_ijk, flat_mask, max_tries,
    null, each, seen, placed,
):  # fmt: skip
    """Permutations ``first, first + 1, ...`` of :func:`moved_clusters_null`, in numba.

    Returns the first permutation not done (``len(null)`` when all are) and the position
    in ``words`` it starts at: the caller draws more words and resumes there.
    """
    nx, ny, nz = brain.shape
    for iteration in range(first, null.shape[0]):
        start_pos = pos
        n_placed = 0
        for number in range(len(starts) - 1):
            lo, hi = starts[number], starts[number + 1]
            best_count, best_rot, best_at = -1, 0, 0
            for _ in range(max_tries):
                r, pos = _bounded(words, pos, rotations.shape[0])
                at, pos = _bounded(words, pos, brain_ijk.shape[0])
                if r < 0 or at < 0:
                    return iteration, start_pos
                count = 0
                for v in range(lo, hi):
                    u0, u1, u2 = _moved(offsets, v, rotations[r], brain_ijk[at])
                    if 0 <= u0 < nx and 0 <= u1 < ny and 0 <= u2 < nz and brain[u0, u1, u2]:
                        count += 1
                    elif count + hi - v - 1 <= best_count:
                        break  # neither whole nor better than the best: its count is moot
                if count > best_count:
                    best_count, best_rot, best_at = count, r, at
                if count == hi - lo:
                    break
            in_mask = 0
            for v in range(lo, hi):
                u0, u1, u2 = _moved(offsets, v, rotations[best_rot], brain_ijk[best_at])
                if 0 <= u0 < nx and 0 <= u1 < ny and 0 <= u2 < nz and brain[u0, u1, u2]:
                    flat = (u0 * ny + u1) * nz + u2
                    in_mask += flat_mask[flat]
                    placed[n_placed] = flat
                    n_placed += 1
            each[iteration, number] = in_mask
        # The union of the placed clusters (placements that overlap count once).
        union = 0
        for i in range(n_placed):
            if not seen[placed[i]]:
                seen[placed[i]] = True
                union += flat_mask[placed[i]]
        for i in range(n_placed):
            seen[placed[i]] = False
        null[iteration] = union
    return null.shape[0], pos


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
    cluster lies inside the brain mask (up to ``max_tries`` draws, then the draw with most
    voxels inside, of which only those count). The whole map's count is that of the union
    of the placed clusters, as the observed count is of the union of the clusters
    (placements that overlap count once).

    The draws are those of ``numpy.random.default_rng(seed)``, a rotation number then a
    brain voxel number per try (``Generator.integers``), replayed in numba on the
    generator's words (the loop in Python took minutes per table).

    Returns
    -------
    (n_perm,) int array
        Voxels of the moved map inside the mask, per permutation.
    (n_perm, n_clusters) int array, with ``per_cluster``
        Each cluster's moved voxels inside the mask (clusters in label order): the null of
        a test of that cluster alone, from the same placements.
    """
    generator = np.random.default_rng(seed).bit_generator
    rotations = np.ascontiguousarray(np.stack(grid_rotations()).astype(np.int64))
    brain = np.ascontiguousarray(brain, dtype=bool)
    brain_ijk = np.argwhere(brain).astype(np.int64)
    flat_mask = np.ascontiguousarray(np.asarray(mask, dtype=bool).ravel())
    offsets = []
    for cluster in range(1, int(labels.max()) + 1):
        voxels = np.argwhere(labels == cluster)
        if len(voxels):
            offsets.append(voxels - np.rint(voxels.mean(axis=0)).astype(int))
    starts = np.cumsum([0, *(len(o) for o in offsets)]).astype(np.int64)
    stacked = np.concatenate(offsets).astype(np.int64) if offsets else np.zeros((0, 3), np.int64)
    null = np.zeros(n_perm, dtype=np.int64)
    each = np.zeros((n_perm, len(offsets)), dtype=np.int64)
    seen = np.zeros(brain.size, dtype=bool)
    placed = np.empty(len(stacked), dtype=np.int64)
    # NumPy's PCG64 hands out each 64-bit output as two 32-bit words, low half first.
    words = generator.random_raw(_WORDS // 2).view(np.uint32)
    first, pos = 0, 0
    while first < n_perm:
        first, pos = _place_clusters(
            words, pos, first, stacked, starts, rotations, brain, brain_ijk, flat_mask,
            max_tries, null, each, seen, placed,
        )  # fmt: skip
        if first < n_perm:  # out of words: keep the unused ones, draw more
            more = generator.random_raw(_WORDS // 2).view(np.uint32)
            words = np.concatenate([words[pos:], more])
            pos = 0
    null, each = null.astype(int), each.astype(int)
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


class DatabasePool:
    """Whole experiments of the databases (healthy, no curated group) to draw sets from.

    The base-rate null asks "do the analysis's foci weigh the MNS more than typical fMRI
    foci would?": a set is drawn like the analysis (one database study per experiment, with
    that experiment's foci count and N), and the statistic computed on it as on the analysis.

    Parameters
    ----------
    ijk : (n, 3) int array
        Every pool focus's voxel.
    study : (n,) int array
        The pool study (0 .. n_studies - 1) of each focus.
    """

    def __init__(self, ijk: np.ndarray, study: np.ndarray):
        order = np.argsort(study, kind="stable")
        self.ijk = np.asarray(ijk, dtype=np.int32)[order]
        counts = np.bincount(np.asarray(study)[order])
        self.counts = counts
        self.starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.by_count = np.argsort(counts, kind="stable")

    def __len__(self) -> int:
        return len(self.counts)

    def _candidates(self, k: int) -> np.ndarray:
        """Studies with exactly ``k`` foci, else the fewest studies with the next count up."""
        exact = np.flatnonzero(self.counts == k)
        if len(exact) >= 2:
            return exact
        above = self.by_count[self.counts[self.by_count] >= k]
        if not len(above):  # more foci than any pool study: the largest ones
            above = self.by_count[-10:]
        return above[: max(len(exact), 10)]

    def draw(self, counts, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A set matched on foci counts: per experiment, a pool study with that many foci
        (distinct studies; with more foci, that many of them drawn at random).

        Returns
        -------
        ijk : (sum(counts), 3) int array
        experiment : (sum(counts),) int array
            The experiment (position in ``counts``) of each focus.
        """
        used: set[int] = set()
        parts, experiment = [], []
        for position, k in enumerate(counts):
            options = [s for s in self._candidates(int(k)) if s not in used]
            study = (
                int(options[rng.integers(len(options))])
                if options
                else int(rng.integers(len(self)))
            )
            used.add(study)
            foci = self.ijk[self.starts[study] : self.starts[study] + self.counts[study]]
            if len(foci) > k:
                foci = foci[np.sort(rng.choice(len(foci), int(k), replace=False))]
            parts.append(foci)
            experiment.append(np.full(len(foci), position))
        return np.concatenate(parts), np.concatenate(experiment)


@dataclass(frozen=True)
class BaseRateDesign:
    """What a drawn set copies from the analysis: foci counts, N and thresholds.

    ``cut`` and ``size_cut`` are the analysis's cluster-forming ALE and cluster-size cut:
    both follow from the experiments' foci counts and N, which a drawn set shares, so a
    drawn set is thresholded as the analysis was.
    """

    counts: np.ndarray
    sample_sizes: np.ndarray
    cut: float
    size_cut: float


def in_large_clusters(values, brain_ijk, cut, size_cut) -> np.ndarray:
    """Which brain voxels lie in a face-connected cluster of ``values >= cut`` larger than
    ``size_cut`` voxels.

    ``values`` are given at the brain voxels ``brain_ijk`` (C order). Only the box around
    the voxels at or above the cut is labelled (the whole volume took a fifth of the
    base-rate nulls): the same clusters, as no cluster reaches outside it.
    """
    from scipy import ndimage

    from mnsmeta.meta_analysis.clusters import CONNECTIVITY

    supra = np.flatnonzero(values >= cut)
    out = np.zeros(len(values), dtype=bool)
    if not len(supra):
        return out
    where = brain_ijk[supra]
    low = where.min(axis=0)
    local = where - low
    box = np.zeros(tuple(local.max(axis=0) + 1), dtype=bool)
    box[tuple(local.T)] = True
    labels, _ = ndimage.label(box, CONNECTIVITY)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    out[supra] = (sizes > size_cut)[labels[tuple(local.T)]]
    return out


def base_rate_null(
    computer: AleComputer,
    designs: list[BaseRateDesign],
    pool: DatabasePool,
    masks: dict[str, np.ndarray],
    n_sets: int,
    seed: int,
    progress=None,
):
    """The ROI and thresholded-overlap statistics of ``n_sets`` database sets drawn like
    the analysis.

    With several designs (a conjunction's inputs), each set draws one set per design, and
    the thresholded map is their conjunction (voxels significant in every design).

    Returns
    -------
    roi : list of dict
        Per design, mask name -> (n_sets, 2) array of mean and max ALE in the mask.
    overlap : dict
        Mask name -> (n_sets,) int array: voxels of the thresholded set inside the mask.
    """
    rng = np.random.default_rng(seed)
    brain = computer.mask
    brain_ijk = np.argwhere(brain)
    # The masks' voxels as one index array into the brain's voxels, cut per mask: every
    # mask's statistics from one gather and a segmented reduction.
    names = [name for name, mask in masks.items() if mask[brain].any()]
    indices = [np.flatnonzero(masks[name][brain]) for name in names]
    gather = np.concatenate(indices) if names else np.zeros(0, dtype=int)
    starts = np.concatenate([[0], np.cumsum([len(i) for i in indices])[:-1]]).astype(int)
    sizes = np.array([len(i) for i in indices])
    roi = [{name: np.zeros((n_sets, 2)) for name in masks} for _ in designs]
    overlap = {name: np.zeros(n_sets, dtype=int) for name in masks}
    for iteration in range(n_sets):
        significant = np.ones(int(brain.sum()), dtype=bool)
        for number, design in enumerate(designs):
            ijk, experiment = pool.draw(design.counts, rng)
            values = computer.ale(ijk, experiment, design.sample_sizes[experiment])
            if names:
                gathered = values[gather]
                means = np.add.reduceat(gathered, starts) / sizes
                maxima = np.maximum.reduceat(gathered, starts)
                for position, name in enumerate(names):
                    roi[number][name][iteration] = means[position], maxima[position]
            significant &= in_large_clusters(values, brain_ijk, design.cut, design.size_cut)
        if names:
            counts = np.add.reduceat(significant[gather].astype(int), starts)
            for position, name in enumerate(names):
                overlap[name][iteration] = counts[position]
        if progress is not None:
            progress(1)
    return roi, overlap
