"""ALE at database scale: NiMARE's ALE without its modelled-activation maps in memory.

NiMARE's fit keeps every experiment's MA map (a sparse study-by-voxel matrix: about 19 GB
for Neurosynth's 14,371 studies) and builds its default uncorrected null by folding the
experiments' MA histograms into the ALE histogram one by one (about n_experiments x 10^5 x
10^3 operations at that scale: days). Here nothing of that size is held:

* the observed ALE is stamped slab by slab with the engine's kernels (:mod:`.kernels`);
* the uncorrected null is NiMARE's other method, its Monte Carlo null
  (``null_method="montecarlo"``): the ALE of every voxel of random datasets, counted in
  NiMARE's histogram (its bins, from each experiment's largest MA, and its edges). NiMARE's
  own code then turns the histogram into p, z and the cluster-forming cut;
* the FWE correction is the engine's loop (:mod:`.montecarlo`).

Random datasets come in blocks, one :class:`numpy.random.SeedSequence` child each, so the
null does not depend on the number of threads. Memory: a few volumes per thread.
"""

from __future__ import annotations

import numba
import numpy as np

from mnsmeta.meta_analysis.engine.kernels import _JIT, _ale_product, slab_buffers

#: Random datasets of the uncorrected null by default. 100 maps pool 100 x 228,483 voxel
#: values, 22,800 of them above the p < 0.001 cut: its Monte Carlo error is about 1 %.
NULL_MAPS = 100
#: Random datasets per stream and per task (fixed: the null does not depend on the threads).
NULL_BLOCK = 5
#: From this many foci on, ``ale.fit_ale``'s fast engine streams (NiMARE's MA maps would take
#: over 4 GB and its histogram null hours).
STREAMING_FOCI = 100_000


@numba.njit(**_JIT)
def _largest_ma(foci, bounds, kernel_of, kernels, halves, mask, out):
    """Each experiment's largest MA value inside the mask, into ``out``."""
    nx, ny, nz = mask.shape
    for e in range(bounds.shape[0] - 1):
        k = kernel_of[e]
        h = halves[k]
        best = 0.0
        for f in range(bounds[e], bounds[e + 1]):
            x, y, z = foci[f, 0], foci[f, 1], foci[f, 2]
            if 0 <= x < nx and 0 <= y < ny and 0 <= z < nz and mask[x, y, z]:
                # The kernel peaks at its centre.
                value = kernels[k, h, h, h]
            else:
                value = 0.0
                for a in range(2 * h + 1):
                    for b in range(2 * h + 1):
                        for c in range(2 * h + 1):
                            u, v, w = x - h + a, y - h + b, z - h + c
                            if 0 <= u < nx and 0 <= v < ny and 0 <= w < nz and mask[u, v, w]:
                                value = max(value, kernels[k, a, b, c])
            best = max(best, value)
        out[e] = best


def observed_ale(plan, ijk) -> np.ndarray:
    """The ALE of foci ``ijk`` (in the plan's experiment order) at the mask's voxels."""
    prod, scratch = slab_buffers(plan.mask.shape)
    out = np.empty(plan.mask.shape)
    foci = np.ascontiguousarray(ijk, dtype=np.int64)
    _ale_product(
        foci, plan.bounds, plan.kernel_of, plan.kernels, plan.halves, plan.whole, prod,
        scratch, out,
    )  # fmt: skip
    return 1.0 - out[plan.mask]


def largest_ma(plan, ijk) -> np.ndarray:
    """Each experiment's largest MA value in the mask (NiMARE's histogram bins need it)."""
    out = np.zeros(len(plan.bounds) - 1, dtype=np.float32)
    foci = np.ascontiguousarray(ijk, dtype=np.int64)
    _largest_ma(foci, plan.bounds, plan.kernel_of, plan.kernels, plan.halves, plan.mask, out)
    return out


def _histogram_block(plan, edges, stream, size):
    """Voxel counts of ``size`` random maps in NiMARE's bins, and each map's last bin."""
    rng = np.random.default_rng(stream)
    null_ijk = plan.null_ijk
    counts = np.zeros(len(edges) - 1, dtype=np.int64)
    last = np.zeros(len(edges) - 1, dtype=np.int64)
    for _ in range(size):
        foci = null_ijk[rng.integers(0, len(null_ijk), plan.n_foci)]
        # NiMARE's ALE values are float32; so are the values it bins.
        values = observed_ale(plan, foci).astype(np.float32)
        map_counts, _ = np.histogram(values, bins=edges)
        counts += map_counts
        last[np.flatnonzero(map_counts)[-1]] += 1
    return counts, last


def null_histogram(plan, bin_centers, n_maps, seed, n_jobs=1, progress=None):
    """NiMARE's Monte Carlo uncorrected null: voxel counts of ``n_maps`` random maps.

    Returns the counts per bin and, per bin, how many maps have their largest value there
    (NiMARE's ``histweights_corr-none_method-montecarlo`` and
    ``histweights_level-voxel_corr-fwe_method-montecarlo``).
    """
    from functools import partial

    from mnsmeta.meta_analysis.engine.scaleout import seeded_blocks

    step = bin_centers[1] - bin_centers[0]
    # NiMARE's edges: halfway between centres (nimare.meta.cbma.base._histogram_bin_edges).
    edges = np.append(bin_centers - step / 2, bin_centers[-1] + step / 2)
    counts = np.zeros(len(bin_centers), dtype=np.int64)
    last = np.zeros(len(bin_centers), dtype=np.int64)
    task = partial(_histogram_block, plan, edges)
    for size, (block_counts, block_last) in seeded_blocks(task, n_maps, NULL_BLOCK, seed, n_jobs):
        counts += block_counts
        last += block_last
        if progress is not None:
            progress.update(size)
    return counts, last
