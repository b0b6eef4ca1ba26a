"""Threshold-free cluster enhancement (Smith & Nichols, 2009) of ALE z maps, as JALE computes it.

JALE (Frahm et al., 2022, who evaluated TFCE for ALE) enhances the z map of an ALE with
``E = 0.5``, ``H = 2`` and 100 steps: ``dt = max(z) / 100``, thresholds ``h = 0, dt, 2 dt...``
below ``max(z)`` (``numpy.arange``), and every voxel above ``h`` gains ``h**H * dt *
size**E``, ``size`` being its face-connected cluster's. Its FWE null is the largest TFCE
value of each Monte Carlo map.

:func:`tfce_map` is that computation (one labelling per step; for the observed map). The null
needs only the largest value, which :func:`max_tfce` gets in one pass: voxels join a
union-find from the highest threshold down, and since every member of a cluster gains the
same at each step from the step it joined, a cluster's largest accumulated value is all that
needs tracking (equal to JALE's maximum up to the order of the additions; tested).
"""

from __future__ import annotations

import numba
import numpy as np

from mnsmeta.meta_analysis.engine.kernels import _JIT, _neighbour

E, H, STEPS = 0.5, 2.0, 100


def thresholds(max_z: float, steps: int = STEPS) -> tuple[float, int]:
    """JALE's step ``dt`` and number of thresholds (``len(np.arange(0, max_z, dt))``)."""
    dt = max_z / steps
    return dt, len(np.arange(0, max_z, dt))


def tfce_map(z: np.ndarray, e: float = E, h: float = H, steps: int = STEPS) -> np.ndarray:
    """TFCE of a 3D z map (JALE's ``compute_tfce``; zeros where z <= 0)."""
    from scipy import ndimage

    z = np.asarray(z, dtype=np.float64)
    max_z = float(z.max())
    out = np.zeros_like(z)
    if max_z <= 0:
        return out
    dt, n = thresholds(max_z, steps)
    for i in range(n):
        level = i * dt
        labels, _ = ndimage.label(z > level)
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        inside = labels > 0
        out[inside] += np.power(level, h) * dt * np.power(sizes[labels[inside]], e)
    return out


@numba.njit(**_JIT)
def _find(parent, v):
    root = v
    while parent[root] != root:
        root = parent[root]
    while parent[v] != root:  # path compression
        parent[v], v = root, parent[v]
    return root


@numba.njit(**_JIT)
def _max_tfce(z, dt, n, e, h, parent, size, best, joined, roots):
    """Largest TFCE value of the 3D map ``z`` (see the module docstring).

    ``parent``, ``size``, ``best`` (per voxel, flat) and ``roots`` are work arrays; ``joined``
    (int64 per voxel) receives each voxel's highest threshold index below its z (-1: none).
    """
    nx, ny, nz = z.shape
    flat = z.reshape(z.size)
    # Bucket the voxels by the highest threshold they exceed (z > i dt, as JALE compares).
    counts = np.zeros(n + 1, dtype=np.int64)
    for v in range(flat.size):
        value = flat[v]
        k = -1
        if value > 0.0:
            k = min(int(value / dt), n - 1)
            while k >= 0 and not (value > k * dt):
                k -= 1
            while k + 1 < n and value > (k + 1) * dt:
                k += 1
        joined[v] = k
        if k >= 0:
            counts[k + 1] += 1
    for i in range(1, n + 1):
        counts[i] += counts[i - 1]
    order = np.empty(counts[n], dtype=np.int64)
    fill = counts[:n].copy()
    for v in range(flat.size):
        k = joined[v]
        if k >= 0:
            order[fill[k]] = v
            fill[k] += 1
    n_roots = 0
    largest = 0.0
    for i in range(n - 1, 0, -1):  # step 0 adds h**H = 0: nothing
        for j in range(counts[i], counts[i + 1]):  # this step's voxels first: all are sets
            v = order[j]
            parent[v], size[v], best[v] = v, 1, 0.0
            roots[n_roots] = v
            n_roots += 1
        for j in range(counts[i], counts[i + 1]):
            v = order[j]
            x, y, w = v // (ny * nz), (v // nz) % ny, v % nz
            for d in range(6):
                a, b, c = _neighbour(x, y, w, d)
                if 0 <= a < nx and 0 <= b < ny and 0 <= c < nz:
                    u = (a * ny + b) * nz + c
                    if joined[u] >= i:
                        ru, rv = _find(parent, u), _find(parent, v)
                        if ru != rv:
                            if size[ru] < size[rv]:
                                ru, rv = rv, ru
                            parent[rv] = ru
                            size[ru] += size[rv]
                            best[ru] = max(best[ru], best[rv])
        gain = (i * dt) ** h * dt
        kept = 0
        for r in range(n_roots):
            root = roots[r]
            if parent[root] == root:
                best[root] += gain * size[root] ** e
                largest = max(largest, best[root])
                roots[kept] = root
                kept += 1
        n_roots = kept
    return largest


def max_tfce(z: np.ndarray, e: float = E, h: float = H, steps: int = STEPS) -> float:
    """The largest TFCE value of a 3D z map (JALE's ``compute_tfce(z).max()``)."""
    z = np.ascontiguousarray(z, dtype=np.float64)
    max_z = float(z.max())
    if max_z <= 0:
        return 0.0
    dt, n = thresholds(max_z, steps)
    work = np.empty(z.size, dtype=np.int64)
    return _max_tfce(
        z, dt, n, e, h, work, np.empty_like(work), np.empty(z.size),
        np.empty_like(work), np.empty_like(work),
    )  # fmt: skip
