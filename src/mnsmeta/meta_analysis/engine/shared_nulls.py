"""Cluster-size nulls of many related datasets from one set of random draws.

The robustness checks rerun the same Monte Carlo procedure on datasets that differ from the
real one by a few experiments: every leave-one-out subset (jackknife) and the real experiments
plus 1, 2, ... noise experiments (fail-safe N). Fitting each from scratch multiplies the cost
by the number of datasets. Here every random dataset is drawn once and serves them all:

* leave one out: the random ALE without experiment ``i`` is ``1 - P / (1 - MA_i)``, where ``P``
  is the product of ``1 - MA`` over all experiments. Every voxel above experiment ``i``'s
  cluster-forming cut is above the smallest cut in the full ALE, so only those voxels (a few
  hundred per random map) need ``MA_i`` and a cluster labelling;
* added experiments: experiments are stamped in order and the largest cluster is read at each
  checkpoint (real experiments, then the first ``k`` noise experiments). A caller that needs
  only decisions may stop the top checkpoints between rounds of iterations (``needed``):
  the entries computed are the same.

Each subset's random foci are drawn exactly as NiMARE draws them for that subset (uniformly
among the mask's voxels, the subset's own foci counts), so each null has NiMARE's distribution;
the nulls of different subsets are correlated, which does not matter for a per-subset test.
Random streams come from one :class:`numpy.random.SeedSequence`, one child per block of
iterations, so the result does not depend on the number of threads.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from mnsmeta.meta_analysis.engine.kernels import (
    _JIT,
    _kernel_table,
    _neighbour,
    _slab_product,
    _stamp_experiment,
    kernel_rows,
    slab_buffers,
    truncation_slack,
    truncation_tail,
)
from mnsmeta.meta_analysis.engine.montecarlo import _exact_candidates, _sort_foci, mask_spans

#: Iterations per random stream; fixed so that the draws do not depend on the thread count.
BLOCK = 100
#: Blocks per round of a null that may stop early (:func:`added_experiments_null`'s
#: ``needed``): its decisions are taken every ``ROUND_BLOCKS * BLOCK`` iterations.
ROUND_BLOCKS = 10


@numba.njit(cache=True, nogil=True)
def _largest_cluster(n_cand, cand, index, keep, state, queue):
    """Largest face-connected cluster among candidates with ``keep``; uses ``state`` scratch."""
    for c in range(n_cand):
        state[c] = 1 if keep[c] else 0
    largest = 0
    for c0 in range(n_cand):
        if state[c0] != 1:
            continue
        state[c0] = 2
        queue[0] = c0
        head, tail = 0, 1
        while head < tail:
            c = queue[head]
            head += 1
            x, y, z = cand[c, 0], cand[c, 1], cand[c, 2]
            for d in range(6):
                u, v, w = _neighbour(x, y, z, d)
                if 0 <= u < index.shape[0] and 0 <= v < index.shape[1] and 0 <= w < index.shape[2]:
                    n = index[u, v, w] - 1
                    if n >= 0 and state[n] == 1:
                        state[n] = 2
                        queue[tail] = n
                        tail += 1
        if tail > largest:
            largest = tail
    return largest


@numba.njit(**_JIT)
def _first_at_least(cand, n_cand, x):
    """First candidate (sorted by x) whose x is at least ``x``."""
    lo, hi = 0, n_cand
    while lo < hi:
        mid = (lo + hi) // 2
        if cand[mid, 0] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(**_JIT)
def _leave_one_out_iteration(
    foci, bounds, kernel_of, kernels, halves, rows, mask, spans, cuts, prod, scratch, index,
    cand, pcand, ma, state, queue, keep, out,
):  # fmt: skip
    nx, ny, nz = mask.shape
    plane = ny * nz
    width = prod.shape[0]
    flat_prod = prod.reshape(prod.size)
    flat_mask = mask.reshape(mask.size)
    n_exp = bounds.shape[0] - 1
    floor = cuts.min()
    # Candidates: mask voxels whose full ALE exceeds the smallest cut, found slab by slab
    # (so sorted by x), with their product of 1 - MA; only each row's run of mask voxels
    # (``spans``, :func:`.montecarlo.mask_spans`) is read.
    n_cand = 0
    for x_lo in range(0, nx, width):
        x_hi = min(x_lo + width, nx)
        _slab_product(foci, bounds, kernel_of, kernels, halves, rows, x_lo, x_hi, scratch, prod)
        offset = x_lo * plane
        for r in range((x_hi - x_lo) * ny):
            for z in range(spans[x_lo * ny + r, 0], spans[x_lo * ny + r, 1]):
                v = r * nz + z
                p = flat_prod[v]
                if flat_mask[offset + v] and 1.0 - p > floor:
                    x, y = x_lo + r // ny, r % ny
                    cand[n_cand, 0], cand[n_cand, 1], cand[n_cand, 2] = x, y, z
                    pcand[n_cand] = p
                    n_cand += 1
                    index[x, y, z] = n_cand
        prod[:] = 1.0
    # Each experiment's MA at the candidates (the maximum over its foci); a focus reaches
    # only the candidates within its kernel's half width in x.
    for e in range(n_exp):
        for c in range(n_cand):
            ma[e, c] = 0.0
        kernel = kernels[kernel_of[e]]
        h = halves[kernel_of[e]]
        for f in range(bounds[e], bounds[e + 1]):
            fx, fy, fz = foci[f, 0], foci[f, 1], foci[f, 2]
            for c in range(_first_at_least(cand, n_cand, fx - h), n_cand):
                a = cand[c, 0] - fx + h
                if a > 2 * h:
                    break
                b = cand[c, 1] - fy + h
                d = cand[c, 2] - fz + h
                if 0 <= b <= 2 * h and 0 <= d <= 2 * h and kernel[a, b, d] > ma[e, c]:
                    ma[e, c] = kernel[a, b, d]
    # Leave out each experiment in turn; the last column is the full dataset.
    for i in range(n_exp + 1):
        for c in range(n_cand):
            p = pcand[c]
            if i < n_exp:
                p = p / (1.0 - ma[i, c])
            keep[c] = 1.0 - p > cuts[i]
        out[i] = _largest_cluster(n_cand, cand, index, keep, state, queue)
    for c in range(n_cand):
        index[cand[c, 0], cand[c, 1], cand[c, 2]] = 0


@numba.njit(**_JIT)
def _added_experiments_iteration(
    foci, bounds, kernel_of, kernels, halves, rows, mask, spans, checkpoints, cuts, slacks,
    prod, scratch, index, cand, counts, state, queue, keep, experiment_of, table, starts,
    near, ma, values, out,
):  # fmt: skip
    nx, ny, nz = mask.shape
    plane = ny * nz
    width = prod.shape[0]
    flat_prod = prod.reshape(prod.size)
    flat_mask = mask.reshape(mask.size)
    n_checks = checkpoints.shape[0]
    counts[:] = 0
    # Slab by slab: stamp the experiments in order (kernels without their tails, ``rows``)
    # and, at each checkpoint, keep the voxels that may be above that checkpoint's cut: the
    # stamped product times the checkpoint's slack (a lower bound of the true product)
    # below 1 - cut, as in the Monte Carlo iteration (reading each row's run of mask voxels).
    for x_lo in range(0, nx, width):
        x_hi = min(x_lo + width, nx)
        offset = x_lo * plane
        j = 0
        for e in range(checkpoints[n_checks - 1]):
            _stamp_experiment(
                foci, bounds, e, kernel_of, kernels, halves, rows, x_lo, x_hi, scratch, prod
            )
            while j < n_checks and checkpoints[j] == e + 1:
                limit = (1.0 - cuts[j]) / slacks[j] + 1e-9
                for r in range((x_hi - x_lo) * ny):
                    for z in range(spans[x_lo * ny + r, 0], spans[x_lo * ny + r, 1]):
                        v = r * nz + z
                        if flat_mask[offset + v] and flat_prod[v] < limit:
                            n = counts[j]
                            cand[j, n, 0] = x_lo + r // ny
                            cand[j, n, 1] = r % ny
                            cand[j, n, 2] = z
                            counts[j] = n + 1
                j += 1
        prod[:] = 1.0
    # Each checkpoint's candidates get their exact ALE from the whole kernels of its first
    # experiments (candidates come column by column: slabs are read in x, y, z order).
    for j in range(n_checks):
        n_cand = counts[j]
        _sort_foci(
            foci[: bounds[checkpoints[j]]], ny, experiment_of, kernel_of, halves, starts, table
        )
        _exact_candidates(
            cand[j], n_cand, mask.shape, kernels, halves, table, starts, near, ma, values
        )
        for c in range(n_cand):
            index[cand[j, c, 0], cand[j, c, 1], cand[j, c, 2]] = c + 1
            keep[c] = values[c] > cuts[j]
        out[j] = _largest_cluster(n_cand, cand[j], index, keep, state, queue)
        for c in range(n_cand):
            index[cand[j, c, 0], cand[j, c, 1], cand[j, c, 2]] = 0


class _Draws:
    """Kernels, foci counts and random streams shared by both kinds of null."""

    def __init__(self, mask_img, sample_sizes, foci_counts, n_iters, seed):
        self.kernels, self.halves, self.kernel_of = _kernel_table(mask_img, sample_sizes)
        self.rows = kernel_rows(self.kernels, self.halves)
        # Kernels without their tails (.montecarlo): for the added experiments.
        self.tail = truncation_tail(self.kernels, len(sample_sizes))
        self.core = kernel_rows(self.kernels, self.halves, self.tail)
        counts = np.asarray(foci_counts, dtype=np.int64)
        self.bounds = np.r_[0, np.cumsum(counts)].astype(np.int64)
        self.experiment_of = np.repeat(np.arange(len(counts)), counts)
        self.mask = np.ascontiguousarray(np.asarray(mask_img.get_fdata()) > 0)
        self.spans = mask_spans(self.mask)
        self.mask_ijk = np.argwhere(self.mask).astype(np.int64)
        self.n_iters = n_iters
        n_blocks = -(-n_iters // BLOCK)
        self.streams = np.random.SeedSequence(seed).spawn(n_blocks)

    def blocks(self):
        for b, stream in enumerate(self.streams):
            yield b, stream, min(BLOCK, self.n_iters - b * BLOCK)

    def foci(self, rng):
        # NiMARE draws each focus uniformly among the mask's voxels.
        return self.mask_ijk[rng.integers(0, len(self.mask_ijk), size=self.bounds[-1])]

    def volumes(self):
        shape = self.mask.shape
        capacity = len(self.mask_ijk)
        prod, scratch = slab_buffers(shape)
        return {
            "prod": prod,
            "scratch": scratch,
            "index": np.zeros(shape, dtype=np.int32),
            "cand": np.empty((capacity, 3), dtype=np.int64),
            "state": np.empty(capacity, dtype=np.int8),
            "queue": np.empty(capacity, dtype=np.int64),
            "keep": np.empty(capacity, dtype=np.bool_),
        }

    def added_buffers(self, n_checkpoints):
        """Work arrays of :func:`_added_experiments_iteration` (one set per thread)."""
        buffers = self.volumes()
        n_foci, shape = int(self.bounds[-1]), self.mask.shape
        buffers["cand"] = np.empty((n_checkpoints, len(self.mask_ijk), 3), dtype=np.int64)
        buffers["counts"] = np.zeros(n_checkpoints, dtype=np.int64)
        buffers["table"] = np.empty((n_foci, 6), dtype=np.int64)
        buffers["near"] = np.empty((n_foci, 6), dtype=np.int64)
        buffers["starts"] = np.empty(shape[0] * shape[1] + 1, dtype=np.int64)
        buffers["ma"] = np.zeros(len(self.bounds) - 1, dtype=np.float32)
        buffers["values"] = np.empty(len(self.mask_ijk))
        return buffers


def _run_blocks(draws, work, n_columns, n_jobs, progress, needed=None):
    """Run every block of iterations; ``work(foci, buffers, row)`` fills one row.

    With ``needed``, the blocks run in rounds of :data:`ROUND_BLOCKS`; after each round
    ``needed(done)`` (the rows so far) returns how many leading columns the later rows
    still need, and only those are computed (the others hold -1). Rounds are fixed and
    every block keeps its own stream and draws all its foci, so the computed entries equal
    those of a full run whatever ``n_jobs`` is.
    """
    out = np.full((draws.n_iters, n_columns), -1, dtype=np.int64)
    width = n_columns

    def block(args):
        b, stream, size = args
        buffers = work.buffers()
        rng = np.random.default_rng(stream)
        for t in range(size):
            work(draws.foci(rng), buffers, out[b * BLOCK + t, :width])
        return size

    blocks = list(draws.blocks())
    step = len(blocks) if needed is None else ROUND_BLOCKS
    with ThreadPoolExecutor(max_workers=max(1, n_jobs)) as pool:
        for start in range(0, len(blocks), step):
            part = blocks[start : start + step]
            if width > 0:
                for done in pool.map(block, part):
                    if progress is not None:
                        progress.update(done)
            elif progress is not None:
                progress.update(sum(size for _, _, size in part))
            if needed is not None and width > 0:
                rows = part[-1][0] * BLOCK + part[-1][2]
                width = min(width, int(needed(out[:rows])))
    return out


class _Local:
    def __init__(self, make):
        import threading

        self._local = threading.local()
        self._make = make

    def buffers(self):
        if not hasattr(self._local, "buffers"):
            self._local.buffers = self._make()
        return self._local.buffers


def leave_one_out_null(
    mask_img, sample_sizes, foci_counts, cuts, n_iters, seed, n_jobs=1, progress=None
):
    """Largest random cluster of every leave-one-experiment-out dataset, and of the full one.

    Parameters
    ----------
    mask_img : nibabel image
        The brain mask (NiMARE's), on which random foci are drawn.
    sample_sizes, foci_counts : (n_experiments,) int arrays
        Each experiment's N (its kernel) and number of foci.
    cuts : (n_experiments + 1,) float array
        Cluster-forming ALE of each leave-one-out dataset (NiMARE's cut for p < 0.001), then
        that of the full dataset.
    n_iters, seed : int
        Monte Carlo iterations and their seed.
    n_jobs : int
        Threads.
    progress : tqdm or None
        Updated by the number of iterations done.

    Returns
    -------
    (n_iters, n_experiments + 1) int array
        Column ``i``: the largest cluster (voxels) of each random map without experiment
        ``i``; last column: with all experiments.
    """
    draws = _Draws(mask_img, sample_sizes, foci_counts, n_iters, seed)
    n_exp = len(foci_counts)
    cuts = np.asarray(cuts, dtype=np.float64)
    if cuts.shape != (n_exp + 1,):
        raise ValueError(f"need {n_exp + 1} cuts (one per subset and the full set)")

    def make():
        buffers = draws.volumes()
        buffers["ma"] = np.zeros((n_exp, len(draws.mask_ijk)), dtype=np.float32)
        buffers["pcand"] = np.empty(len(draws.mask_ijk))
        return buffers

    def work(foci, b, row):
        _leave_one_out_iteration(
            foci, draws.bounds, draws.kernel_of, draws.kernels, draws.halves, draws.rows,
            draws.mask, draws.spans, cuts,
            b["prod"], b["scratch"], b["index"], b["cand"], b["pcand"], b["ma"], b["state"],
            b["queue"], b["keep"], row,
        )  # fmt: skip

    work.buffers = _Local(make).buffers
    return _run_blocks(draws, work, n_exp + 1, n_jobs, progress)


def added_experiments_null(
    mask_img, sample_sizes, foci_counts, checkpoints, cuts, n_iters, seed, n_jobs=1,
    progress=None, needed=None,
):  # fmt: skip
    """Largest random cluster after the first ``checkpoints[j]`` experiments, for every ``j``.

    Parameters
    ----------
    sample_sizes, foci_counts : (n_experiments,) int arrays
        All experiments in the order they are added (the real ones, then the noise ones).
    checkpoints : increasing int array
        Numbers of experiments at which the largest cluster is read.
    cuts : float array, one per checkpoint
        The cluster-forming ALE of the dataset made of the first ``checkpoints[j]``
        experiments.
    needed : callable, optional
        For a null that may stop early: called every :data:`ROUND_BLOCKS` blocks with the
        rows done so far, it returns how many leading checkpoints the remaining iterations
        still need (those above are decided). Experiments past the last needed checkpoint
        are not stamped.

    Returns
    -------
    (n_iters, n_checkpoints) int array
        -1 where a checkpoint was no longer needed; every other entry as without
        ``needed``, for any ``n_jobs`` (the same draws, see :func:`_run_blocks`).
    """
    draws = _Draws(mask_img, sample_sizes, foci_counts, n_iters, seed)
    checkpoints = np.asarray(checkpoints, dtype=np.int64)
    cuts = np.asarray(cuts, dtype=np.float64)
    if len(cuts) != len(checkpoints) or np.any(np.diff(checkpoints) <= 0):
        raise ValueError("checkpoints must increase, with one cut each")

    slacks = np.array(
        [truncation_slack(draws.kernels, c, draws.tail) for c in checkpoints], dtype=np.float64
    )

    def make():
        return draws.added_buffers(len(checkpoints))

    def work(foci, b, row):
        k = len(row)  # the checkpoints still needed: stamping stops at the last of them
        _added_experiments_iteration(
            foci, draws.bounds, draws.kernel_of, draws.kernels, draws.halves, draws.core,
            draws.mask, draws.spans, checkpoints[:k], cuts[:k], slacks[:k], b["prod"],
            b["scratch"], b["index"], b["cand"], b["counts"], b["state"], b["queue"],
            b["keep"], draws.experiment_of, b["table"], b["starts"], b["near"], b["ma"],
            b["values"], row,
        )  # fmt: skip

    work.buffers = _Local(make).buffers
    return _run_blocks(draws, work, len(checkpoints), n_jobs, progress, needed)
