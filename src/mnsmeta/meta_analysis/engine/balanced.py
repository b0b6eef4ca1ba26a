"""A fast mean balanced difference: the inner loop of NiMARE's size-balanced ALE subtraction.

NiMARE's ``BalancedALESubtraction`` (after Frahm et al.'s balanced contrast in JALE) compares
two groups through equal-size subsamples: the balanced difference is the mean, over
``difference_iterations`` pairs of subsamples of ``target_n`` experiments, of the ALE of one
minus the ALE of the other, on dense grey-matter arrays; its null repeats this for each of
``n_iters`` random-foci datasets. That is ``n_iters x difference_iterations x 2`` dense ALE
maps (two million at 1,000 x 1,000), about 11 ms per pair in NiMARE here: hours.

Each subsample's ALE is ``1 - prod(1 - MA)`` over its rows, in float32, row after row. A row
whose MA is zero at a voxel multiplies it by exactly 1, so skipping it changes no bit: here
each row multiplies only its nonzero voxels, in the subsample's order, and the difference is
accumulated in float32 as NiMARE accumulates it. The random draws are NiMARE's (its
``RandomState``, called in its order), so the balanced maps and nulls are NiMARE's bit for bit
(tested); only the arithmetic on zeros is skipped.
"""

from __future__ import annotations

import numba
import numpy as np

from mnsmeta.meta_analysis.engine.kernels import _JIT


@numba.njit(**_JIT)
def _multiply_rows(starts, stops, indices, complement, rows, lo, product, touched, stamp, tag, n):
    """``product[v - lo] *= complement`` for the entries of ``rows`` in one voxel block."""
    for r in rows:
        for k in range(starts[r], stops[r]):
            v = indices[k] - lo
            product[v] *= complement[k]
            if stamp[v] != tag:
                stamp[v] = tag
                touched[n] = v
                n += 1
    return n


@numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def _mean_difference(first, second, rows1, rows2, edges, diff):
    """Sum over pairs ``d`` of ALE(rows1[d]) - ALE(rows2[d]) into ``diff`` (float32).

    ``first`` and ``second`` are (block starts, indices, 1 - MA) of each group: row ``r``'s
    entries in voxel block ``b`` (voxels ``edges[b]:edges[b + 1]``) are ``starts[r, b]`` to
    ``starts[r, b + 1]``. Each block is one thread's; within it every voxel sees the rows
    and the pairs in NiMARE's order.
    """
    starts1, indices1, complement1 = first
    starts2, indices2, complement2 = second
    one = np.float32(1.0)
    for b in numba.prange(len(edges) - 1):
        lo, width = edges[b], edges[b + 1] - edges[b]
        product1 = np.ones(width, dtype=np.float32)
        product2 = np.ones(width, dtype=np.float32)
        touched = np.empty(width, dtype=np.int64)
        stamp = np.zeros(width, dtype=np.int64)
        for d in range(rows1.shape[0]):
            n = _multiply_rows(starts1[:, b], starts1[:, b + 1], indices1, complement1,
                               rows1[d], lo, product1, touched, stamp, d + 1, 0)  # fmt: skip
            n = _multiply_rows(starts2[:, b], starts2[:, b + 1], indices2, complement2,
                               rows2[d], lo, product2, touched, stamp, d + 1, n)  # fmt: skip
            for t in range(n):
                v = touched[t]
                diff[lo + v] += (one - product1[v]) - (one - product2[v])
                product1[v] = one
                product2[v] = one


def _sparse_complement(dense: np.ndarray, edges: np.ndarray):
    """Per row, the entries whose ``1 - MA`` (float32, as NiMARE computes it) is not 1.

    An entry of exactly 1 multiplies by 1: leaving it out changes no bit. Returns the
    entries' start in each voxel block (``(rows, blocks + 1)``), voxel indices and values.
    """
    dense = np.asarray(dense, dtype=np.float32)
    rows, voxels = np.nonzero(np.float32(1.0) - dense != np.float32(1.0))
    complement = np.float32(1.0) - dense[rows, voxels]
    # Entries are in row order, voxels ascending within a row (np.nonzero's C order).
    row_starts = np.searchsorted(rows, np.arange(dense.shape[0] + 1))
    starts = np.empty((dense.shape[0], len(edges)), dtype=np.int64)
    for r in range(dense.shape[0]):
        segment = voxels[row_starts[r] : row_starts[r + 1]]
        starts[r] = row_starts[r] + np.searchsorted(segment, edges)
    return starts, voxels.astype(np.int64), complement


def mean_balanced_difference(ma_maps1, ma_maps2, target_n, n_iters, rng, n_cores: int = 1):
    """NiMARE's ``_mean_balanced_difference``: the same draws, the same float32 result."""
    # NiMARE's draws, in its order: the subsamples of group 1 and 2 of each pair in turn.
    rows1 = np.empty((n_iters, target_n), dtype=np.int64)
    rows2 = np.empty((n_iters, target_n), dtype=np.int64)
    for d in range(n_iters):
        rows1[d] = rng.choice(ma_maps1.shape[0], size=target_n, replace=False)
        rows2[d] = rng.choice(ma_maps2.shape[0], size=target_n, replace=False)
    n_voxels = ma_maps1.shape[1]
    diff = np.zeros(n_voxels, dtype=np.float32)
    numba.set_num_threads(max(1, min(n_cores, numba.config.NUMBA_NUM_THREADS)))
    # More blocks than threads, so that uneven blocks still share the work.
    edges = np.linspace(0, n_voxels, 8 * numba.get_num_threads() + 1).astype(np.int64)
    first, second = (_sparse_complement(m, edges) for m in (ma_maps1, ma_maps2))
    _mean_difference(first, second, rows1, rows2, edges, diff)
    return (diff / float(n_iters)).astype(np.float32, copy=False)
