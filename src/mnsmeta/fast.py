"""A fast Monte Carlo null for ALE: numba kernel stamping and cluster labelling.

Per random dataset: each experiment's kernels are stamped into a scratch volume with a max
(Turkeltaub et al. 2012: foci of one experiment do not add up), the scratch is folded into
the running product of ``1 - MA`` and zeroed in the same pass, and a last sequential pass
over the volume reads the ALE, its maximum inside the mask (voxel-level FWE null) and the
voxels above the cluster-forming cut, which are labelled by a flood fill over those voxels
only (face connectivity, as NiMARE). Nothing is allocated per iteration.

Kernels are NiMARE's (``get_ale_kernel``) uncut and, like NiMARE's MA maps, float32; the
running product is float64 (float32 there moved the largest ALE by 3e-6 of its value). Random
foci are drawn uniformly among the
mask's voxels as NiMARE draws them, and the cluster-forming cut is NiMARE's, so the null
distributions agree with NiMARE's in distribution (the random streams differ).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _stamp_boxes(foci, start, stop, kernel, h, volume, mode, prod):
    nx, ny, nz = volume.shape
    size = 2 * h + 1
    for f in range(start, stop):
        ci = foci[f, 0] - h
        cj = foci[f, 1] - h
        ck = foci[f, 2] - h
        for a in range(size):
            x = ci + a
            if x < 0 or x >= nx:
                continue
            for b in range(size):
                y = cj + b
                if y < 0 or y >= ny:
                    continue
                for c in range(size):
                    z = ck + c
                    if z < 0 or z >= nz:
                        continue
                    if mode == 0:
                        value = kernel[a, b, c]
                        if value > volume[x, y, z]:
                            volume[x, y, z] = value
                    else:
                        value = volume[x, y, z]
                        if value > 0.0:
                            prod[x, y, z] *= 1.0 - value
                            volume[x, y, z] = 0.0


@numba.njit(cache=True, nogil=True)
def _stamp_experiment(foci, bounds, e, kernel_of, kernels, halves, scratch, prod):
    """Fold experiment ``e``'s MA map (the maximum over its foci) into ``prod``."""
    k = kernel_of[e]
    _stamp_boxes(foci, bounds[e], bounds[e + 1], kernels[k], halves[k], scratch, 0, prod)
    _stamp_boxes(foci, bounds[e], bounds[e + 1], kernels[k], halves[k], scratch, 1, prod)


@numba.njit(cache=True, nogil=True)
def _ale_product(foci, bounds, kernel_of, kernels, halves, prod, scratch):
    """Stamp every experiment into ``prod`` (the product of 1 - MA); scratch is left zero."""
    for e in range(bounds.shape[0] - 1):
        _stamp_experiment(foci, bounds, e, kernel_of, kernels, halves, scratch, prod)


@numba.njit(cache=True, nogil=True, inline="always")
def _neighbour(x, y, z, d):
    """The ``d``-th of the six face neighbours of voxel ``(x, y, z)`` (NiMARE's connectivity)."""
    if d == 0:
        return x - 1, y, z
    if d == 1:
        return x + 1, y, z
    if d == 2:
        return x, y - 1, z
    if d == 3:
        return x, y + 1, z
    if d == 4:
        return x, y, z - 1
    return x, y, z + 1


@numba.njit(cache=True, nogil=True)
def _iteration(
    foci, bounds, kernel_of, kernels, halves, mask, cut, prod, scratch, labels, supra, queue
):
    nx, ny, nz = prod.shape
    _ale_product(foci, bounds, kernel_of, kernels, halves, prod, scratch)
    # Read the ALE in one sequential pass over the volume (kernels overlap, so visiting their
    # boxes again costs several times more); reset the product, except above the cut.
    max_value = 0.0
    n_supra = 0
    flat_prod = prod.reshape(prod.size)
    flat_mask = mask.reshape(mask.size)
    plane = ny * nz
    for v in range(flat_prod.shape[0]):
        p = flat_prod[v]
        if p < 1.0:
            if flat_mask[v]:
                ale = 1.0 - p
                if ale > max_value:
                    max_value = ale
                if ale > cut:
                    x = v // plane
                    y = (v - x * plane) // nz
                    z = v - x * plane - y * nz
                    labels[x, y, z] = -1
                    supra[n_supra, 0] = x
                    supra[n_supra, 1] = y
                    supra[n_supra, 2] = z
                    n_supra += 1
                    continue
            flat_prod[v] = 1.0
    # Flood fill among supra-threshold voxels (face connectivity).
    max_size = 0
    max_mass = 0.0
    cluster = 0
    for s in range(n_supra):
        x0, y0, z0 = supra[s, 0], supra[s, 1], supra[s, 2]
        if labels[x0, y0, z0] != -1:
            continue
        cluster += 1
        labels[x0, y0, z0] = cluster
        queue[0, 0], queue[0, 1], queue[0, 2] = x0, y0, z0
        head, tail = 0, 1
        size = 0
        mass = 0.0
        while head < tail:
            x, y, z = queue[head, 0], queue[head, 1], queue[head, 2]
            head += 1
            size += 1
            mass += (1.0 - prod[x, y, z]) - cut
            for d in range(6):
                u, v, w = _neighbour(x, y, z, d)
                if 0 <= u < nx and 0 <= v < ny and 0 <= w < nz and labels[u, v, w] == -1:
                    labels[u, v, w] = cluster
                    queue[tail, 0], queue[tail, 1], queue[tail, 2] = u, v, w
                    tail += 1
        if size > max_size:
            max_size = size
        if mass > max_mass:
            max_mass = mass
    for s in range(n_supra):
        x, y, z = supra[s, 0], supra[s, 1], supra[s, 2]
        labels[x, y, z] = 0
        prod[x, y, z] = 1.0
    return max_value, max_size, max_mass


def _bounds(experiments: np.ndarray) -> np.ndarray:
    """Start of each run of equal experiment labels, and the end: ``[0, ..., n_foci]``."""
    changes = np.flatnonzero(experiments[1:] != experiments[:-1]) + 1
    return np.r_[0, changes, len(experiments)].astype(np.int64)


def _kernel_table(mask_img, sizes):
    """NiMARE's ALE kernel for each distinct sample size, padded into one float32 array.

    Returns the kernels, their half widths, and each experiment's kernel number.
    """
    from nimare.meta.utils import get_ale_kernel

    unique = sorted(set(np.asarray(sizes).tolist()))
    raw = [get_ale_kernel(mask_img, sample_size=n)[1] for n in unique]
    width = max(k.shape[0] for k in raw)
    kernels = np.zeros((len(raw), width, width, width), dtype=np.float32)
    halves = np.zeros(len(raw), dtype=np.int64)
    for index, kernel in enumerate(raw):
        kernels[index, : kernel.shape[0], : kernel.shape[1], : kernel.shape[2]] = kernel
        halves[index] = kernel.shape[0] // 2
    kernel_of = np.array([unique.index(n) for n in np.asarray(sizes).tolist()], dtype=np.int64)
    return kernels, halves, kernel_of


class _Plan:
    """Experiment boundaries and kernels of one dataset, and per-thread work volumes."""

    def __init__(self, iter_df, mask_img):
        import threading

        experiments = iter_df["id"].to_numpy()
        # Foci of one experiment are contiguous in NiMARE's coordinates table.
        self.bounds = _bounds(experiments)
        if len(np.unique(experiments)) != len(self.bounds) - 1:
            raise ValueError("foci of an experiment are not contiguous")
        sizes = iter_df["sample_size"].to_numpy()[self.bounds[:-1]]
        self.kernels, self.halves, self.kernel_of = _kernel_table(mask_img, sizes)
        self.mask = np.ascontiguousarray(np.asarray(mask_img.get_fdata()) > 0)
        self.n_foci = len(experiments)
        self._local = threading.local()

    def buffers(self):
        local = self._local
        if not hasattr(local, "prod"):
            shape = self.mask.shape
            local.prod = np.ones(shape)
            local.scratch = np.zeros(shape, dtype=np.float32)
            local.labels = np.zeros(shape, dtype=np.int32)
            n = min(int(np.prod(shape)), self.n_foci * self.kernels.shape[1] ** 3)
            local.supra = np.empty((n, 3), dtype=np.int32)
            local.queue = np.empty((n, 3), dtype=np.int32)
        return local.prod, local.scratch, local.labels, local.supra, local.queue


def _fast_permutation(self, iter_ijk, iter_df, conn, voxel_thresh, vfwe_only, mask_arr=None):
    """Drop-in for NiMARE's ``_correct_fwe_montecarlo_permutation`` (same inputs, outputs)."""
    plan = getattr(self, "_fast_plan", None)
    if plan is None or plan.n_foci != len(iter_df):
        plan = self._fast_plan = _Plan(iter_df, self.masker.mask_img)
    foci = np.ascontiguousarray(np.squeeze(iter_ijk, axis=1), dtype=np.int64)
    value, size, mass = _iteration(
        foci,
        plan.bounds,
        plan.kernel_of,
        plan.kernels,
        plan.halves,
        plan.mask,
        float(voxel_thresh),
        *plan.buffers(),
    )
    if vfwe_only:
        return value, None, None
    return value, size, mass


def _drop_plan(self):
    # The plan holds per-thread buffers; workers (processes, Dask) rebuild their own.
    state = self.__dict__.copy()
    state.pop("_fast_plan", None)
    return state


def _fast_class():
    from nimare.meta.cbma.ale import ALE

    # Pickle finds a bound method by its name: name it as the method it replaces.
    _fast_permutation.__name__ = "_correct_fwe_montecarlo_permutation"
    _fast_permutation.__qualname__ = "FastALE._correct_fwe_montecarlo_permutation"
    return type(
        "FastALE",
        (ALE,),
        {
            "__module__": __name__,
            "__qualname__": "FastALE",
            "__doc__": "NiMARE's ALE with numba Monte Carlo permutations.",
            "_permutation_parallel_backend": "threading",
            "_correct_fwe_montecarlo_permutation": _fast_permutation,
            "__getstate__": _drop_plan,
        },
    )


def __getattr__(name):
    # ``FastALE`` is built on first use so that importing this module does not import NiMARE;
    # it is stored at module level so that pickle (processes, Dask) can find it by name.
    if name == "FastALE":
        globals()["FastALE"] = _fast_class()
        return globals()["FastALE"]
    raise AttributeError(name)


def fast_ale_estimator(**kwargs):
    """Return NiMARE's ALE whose Monte Carlo permutations run on our numba kernels.

    Everything else is NiMARE's: the observed ALE, the random foci (so the same seed draws
    the same random datasets), the cluster-forming cut and the conversion of the nulls into
    FWE-corrected maps. Only the per-permutation work (random dataset -> maximum ALE,
    largest cluster size and mass) is replaced, and it runs in threads (the numba code
    releases the GIL).
    """
    from mnsmeta import fast

    return fast.FastALE(**kwargs)


class KernelStamper:
    """Whole ALE maps from voxel indices, fast, for the relocation nulls of the overlap test.

    Parameters
    ----------
    mask_img : nibabel image
        Brain mask; values are returned for its voxels, in NiMARE's masked order.
    experiment : (n_foci,) int array
        Experiment of each focus (its order is kept for :meth:`ale`).
    sample_sizes : (n_foci,) int array
        Sample size of each focus's experiment.
    """

    def __init__(self, mask_img, experiment, sample_sizes):
        experiment = np.asarray(experiment)
        self.order = np.argsort(experiment, kind="stable")
        self.bounds = _bounds(experiment[self.order])
        sizes = np.asarray(sample_sizes)[self.order][self.bounds[:-1]]
        self.kernels, self.halves, self.kernel_of = _kernel_table(mask_img, sizes)
        self.mask = np.ascontiguousarray(np.asarray(mask_img.get_fdata()) > 0)
        self.prod = np.ones(self.mask.shape)
        self.scratch = np.zeros(self.mask.shape, dtype=np.float32)

    def ale(self, ijk: np.ndarray) -> np.ndarray:
        """ALE at every mask voxel for foci at ``ijk`` (in the order given at construction)."""
        foci = np.ascontiguousarray(np.asarray(ijk)[self.order], dtype=np.int64)
        _ale_product(
            foci, self.bounds, self.kernel_of, self.kernels, self.halves, self.prod, self.scratch
        )
        values = 1.0 - self.prod[self.mask]
        self.prod.fill(1.0)
        return values
