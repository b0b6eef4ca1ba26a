"""Kernel stamping on the MNI152 2 mm grid, slab by slab, in numba.

Per map the volume is processed in slabs of ``SLAB`` x-planes, small enough that their work
buffers stay in the core's L2 cache (the whole-volume version spent most of its time waiting
on memory). In each slab, every experiment's kernels are stamped into a scratch slab with a
max (Turkeltaub et al. 2012: foci of one experiment do not add up), the scratch is folded
into the slab's running product of ``1 - MA`` and zeroed in the same pass, and the slab is
read and reset.

Alternatives measured and left out (issue 27, item 3; SAD and MNS random maps, 2 cores,
AVX-512): folding ``1 - kernel`` straight into the product where an experiment's kernels
do not overlap would save at most 28-38 % of the stamping (all foci folded directly,
ignoring overlaps), but 80 % (SAD) to 91 % (MNS) of the foci reaching a slab overlap
another focus of their experiment there, and deciding row by row which rows are shared
made the stamping 35-70 % slower. Keeping ``1 - kernel`` in a float64 scratch (a minimum,
then a plain product) was up to 24 % slower: twice the scratch's bytes. The cost is per
kernel row (15-19 voxels, each row's loop vectorised): loops whose length changes from row
to row (runs of ``z`` clipped to the mask or to a ball) mispredict, and fixed padded lengths
or two rows per loop lose their vectorisation (numba cannot tell LLVM that the buffers do
not alias); all were 1.2 to 2.2 times slower. The read of the slab
(:func:`.montecarlo._read_slab`) was not: it now reads only the mask's runs.

Kernels are NiMARE's (``get_ale_kernel``) and, like NiMARE's MA maps, float32; the running
product is float64 (float32 there moved the largest ALE by 3e-6 of its value). The Monte
Carlo null (:mod:`.montecarlo`), the shared nulls of the robustness checks
(:mod:`.shared_nulls`) and the relocation nulls of the overlap test (:mod:`.relocation`) all
stamp with these functions.
"""

from __future__ import annotations

import functools

import nibabel as nib
import numba
import numpy as np
from scipy import ndimage

#: x-planes per slab: 8 x 109 x 91 voxels is 0.6 MB of float64 product and 0.3 MB of scratch.
SLAB = 8

#: Kernel rows whose values are all below this are not stamped in the Monte Carlo null (a
#: third of each kernel's rows); the voxels this could move across the cut are recomputed
#: from the whole kernels, so the null is exact.
TAIL = 1e-5

# Inner loops index flat arrays with unsigned offsets: numba then skips its negative-index
# wraparound branch and LLVM vectorises the loops (2x faster than 3-D indexing here).
_JIT = dict(cache=True, nogil=True, error_model="numpy")


@numba.njit(**_JIT)
def _stamp_slab(foci, start, stop, kernel, width, h, rows, x_lo, x_hi, scratch, prod):
    """Fold one experiment's MA map (foci ``start:stop``) into the slab's product.

    ``kernel`` is the flattened (width, width, width) kernel, stamped in the kernel rows
    ``b`` in ``rows[a, 0]:rows[a, 1]`` (all, or the core of :func:`kernel_rows`); ``scratch``
    and ``prod`` are the slab buffers (x - x_lo, y, z). ``scratch`` is zero on entry and exit.
    """
    _, ny, nz = prod.shape
    plane = ny * nz
    flat_prod = prod.reshape(prod.size)
    flat_scratch = scratch.reshape(scratch.size)
    w = 2 * h + 1
    # The experiment's MA (a max over its foci) into the scratch...
    for f in range(start, stop):
        fx, fy, fz = foci[f, 0] - h, foci[f, 1] - h, foci[f, 2] - h
        z0, z1 = max(fz, 0), min(fz + w, nz)
        for a in range(max(x_lo - fx, 0), min(x_hi - fx, w)):
            for b in range(max(-fy, rows[a, 0]), min(ny - fy, rows[a, 1])):
                k = np.uint64((a * width + b) * width + z0 - fz)
                v = np.uint64((fx + a - x_lo) * plane + (fy + b) * nz + z0)
                for c in range(np.uint64(z1 - z0)):
                    value, old = kernel[k + c], flat_scratch[v + c]
                    flat_scratch[v + c] = value if value > old else old
    # ...then into the product, clearing the scratch.
    for f in range(start, stop):
        fx, fy, fz = foci[f, 0] - h, foci[f, 1] - h, foci[f, 2] - h
        z0, z1 = max(fz, 0), min(fz + w, nz)
        for a in range(max(x_lo - fx, 0), min(x_hi - fx, w)):
            for b in range(max(-fy, rows[a, 0]), min(ny - fy, rows[a, 1])):
                v = np.uint64((fx + a - x_lo) * plane + (fy + b) * nz + z0)
                for c in range(np.uint64(z1 - z0)):
                    flat_prod[v + c] *= 1.0 - flat_scratch[v + c]
                    flat_scratch[v + c] = 0.0


@numba.njit(**_JIT)
def _stamp_experiment(
    foci, bounds, e, kernel_of, kernels, halves, rows, x_lo, x_hi, scratch, prod
):
    """Fold experiment ``e`` into the product of slab ``[x_lo, x_hi)``.

    ``kernels`` is the (n_kernels, W, W, W) table of :func:`_kernel_table`.
    """
    k = kernel_of[e]
    width = kernels.shape[1]
    _stamp_slab(
        foci, bounds[e], bounds[e + 1], kernels[k].reshape(width**3), width, halves[k], rows[k],
        x_lo, x_hi, scratch, prod,
    )  # fmt: skip


@numba.njit(**_JIT)
def _slab_product(foci, bounds, kernel_of, kernels, halves, rows, x_lo, x_hi, scratch, prod):
    """Fold every experiment into the slab's product of ``1 - MA`` (``prod`` starts at 1)."""
    for e in range(bounds.shape[0] - 1):
        _stamp_experiment(
            foci, bounds, e, kernel_of, kernels, halves, rows, x_lo, x_hi, scratch, prod
        )


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


@numba.njit(**_JIT)
def _ale_product(foci, bounds, kernel_of, kernels, halves, rows, prod, scratch, out):
    """The product of ``1 - MA`` over experiments at every voxel, into the volume ``out``.

    ``rows`` are the whole kernels' (:func:`kernel_rows` with no tail).
    """
    nx = out.shape[0]
    for x_lo in range(0, nx, prod.shape[0]):
        x_hi = min(x_lo + prod.shape[0], nx)
        _slab_product(foci, bounds, kernel_of, kernels, halves, rows, x_lo, x_hi, scratch, prod)
        out[x_lo:x_hi] = prod[: x_hi - x_lo]
        prod[:] = 1.0


@numba.njit(**_JIT)
def _product_at(foci, bounds, kernel_of, kernels, halves, rows, nx, voxels, prod, scratch, out):
    """``1 -`` the product of ``1 - MA`` at ``voxels`` (ascending flat offsets in the volume),
    into ``out``; slabs without one of them are not stamped. Each voxel gets the arithmetic
    of :func:`_ale_product`."""
    width = prod.shape[0]
    plane = prod.shape[1] * prod.shape[2]
    flat_prod = prod.reshape(prod.size)
    i, n = 0, voxels.shape[0]
    for x_lo in range(0, nx, width):
        x_hi = min(x_lo + width, nx)
        if i == n or voxels[i] >= x_hi * plane:
            continue
        _slab_product(foci, bounds, kernel_of, kernels, halves, rows, x_lo, x_hi, scratch, prod)
        offset = x_lo * plane
        while i < n and voxels[i] < x_hi * plane:
            out[i] = 1.0 - flat_prod[voxels[i] - offset]
            i += 1
        prod[:] = 1.0


def slab_buffers(shape, width=SLAB):
    """The product (ones) and scratch (zeros) buffers of a slab of ``width`` x-planes."""
    slab = (min(width, shape[0]), shape[1], shape[2])
    return np.ones(slab), np.zeros(slab, dtype=np.float32)


def _bounds(experiments: np.ndarray) -> np.ndarray:
    """Start of each run of equal experiment labels, and the end: ``[0, ..., n_foci]``."""
    changes = np.flatnonzero(experiments[1:] != experiments[:-1]) + 1
    return np.r_[0, changes, len(experiments)].astype(np.int64)


def kernel_rows(kernels: np.ndarray, halves: np.ndarray, tail: float = 0.0) -> np.ndarray:
    """The kernel rows ``b`` to stamp for each ``(kernel, a)``: ``[rows[k, a, 0], rows[k, a, 1])``.

    With ``tail=0`` every row of each kernel's box; otherwise only the rows holding a value of
    at least ``tail`` (a disc: the kernel is a Gaussian), so that every value left out is
    below ``tail``.
    """
    n_kernels, width = kernels.shape[:2]
    rows = np.zeros((n_kernels, width, 2), dtype=np.int64)
    for k, h in enumerate(halves):
        for a in range(2 * h + 1):
            if tail <= 0:
                rows[k, a] = 0, 2 * h + 1
                continue
            kept = np.flatnonzero(kernels[k, a, : 2 * h + 1].max(axis=1) >= tail)
            if len(kept):
                rows[k, a] = kept[0], kept[-1] + 1
    return rows


#: Smallest slack the truncation may cost (see :func:`truncation_tail`).
MIN_SLACK = 0.99


def truncation_tail(kernels: np.ndarray, n_experiments: int) -> float:
    """The tail to leave out for ``n_experiments``: ``TAIL``, or less when there are many.

    The slack of :func:`truncation_slack` shrinks geometrically with the experiments: with
    14,000 experiments and ``TAIL`` it is 0.87, and the voxels it lets near the cut (to be
    recomputed from whole kernels) cost three times the stamping. The tail is lowered so
    that the slack stays at least ``MIN_SLACK``; below a few hundred experiments it is
    ``TAIL``.
    """
    peak = float(kernels.max())
    return min(TAIL, (1.0 - peak) * (1.0 - MIN_SLACK ** (1.0 / max(n_experiments, 1))))


def truncation_slack(kernels: np.ndarray, n_experiments: int, tail: float = TAIL) -> float:
    """Lower bound of (true product of 1 - MA) / (product from the rows above ``tail``).

    An experiment's true MA is at most its truncated MA plus ``tail``, so each factor
    ``1 - MA`` shrinks by at most ``1 - tail / (1 - peak)``.
    """
    peak = float(kernels.max())
    return (1.0 - tail / (1.0 - peak)) ** n_experiments


@functools.cache
def _ale_kernel(sample_size, zooms: tuple) -> np.ndarray:
    """NiMARE's ALE kernel (``get_ale_kernel``) of one sample size on voxels of ``zooms``.

    Kept: it depends on nothing else, and the base-rate nulls build kernel tables for
    thousands of random sets (a Gaussian filter of 31^3 voxels each time was a fifth of
    ``mnsmeta claims``). Read-only.
    """
    from nimare.meta.utils import get_ale_kernel

    voxel = nib.Nifti1Image(np.zeros((1, 1, 1), dtype=np.uint8), np.diag([*zooms, 1.0]))
    kernel = get_ale_kernel(voxel, sample_size=sample_size)[1]
    kernel.setflags(write=False)
    return kernel


def _kernel_table(mask_img, sizes):
    """NiMARE's ALE kernel for each distinct sample size, padded into one float32 array.

    Returns the kernels, their half widths, and each experiment's kernel number.
    """
    unique = sorted(set(np.asarray(sizes).tolist()))
    zooms = tuple(float(z) for z in mask_img.header.get_zooms()[:3])
    raw = [_ale_kernel(n, zooms) for n in unique]
    width = max(k.shape[0] for k in raw)
    kernels = np.zeros((len(raw), width, width, width), dtype=np.float32)
    halves = np.zeros(len(raw), dtype=np.int64)
    for index, kernel in enumerate(raw):
        kernels[index, : kernel.shape[0], : kernel.shape[1], : kernel.shape[2]] = kernel
        halves[index] = kernel.shape[0] // 2
    kernel_of = np.array([unique.index(n) for n in np.asarray(sizes).tolist()], dtype=np.int64)
    return kernels, halves, kernel_of


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
        self.rows = kernel_rows(self.kernels, self.halves)
        self.mask = np.ascontiguousarray(np.asarray(mask_img.get_fdata()) > 0)
        self.prod, self.scratch = slab_buffers(self.mask.shape)
        self.out = np.empty(self.mask.shape)

    def ale(self, ijk: np.ndarray) -> np.ndarray:
        """ALE at every mask voxel for foci at ``ijk`` (in the order given at construction)."""
        foci = np.ascontiguousarray(np.asarray(ijk)[self.order], dtype=np.int64)
        _ale_product(
            foci, self.bounds, self.kernel_of, self.kernels, self.halves, self.rows, self.prod,
            self.scratch, self.out,
        )  # fmt: skip
        return 1.0 - self.out[self.mask]


class RegionStamper(KernelStamper):
    """:meth:`KernelStamper.ale` at the voxels of a region only, bit for bit.

    For the ROI test, whose masks hold 8 % of the brain: only the foci whose kernel box
    reaches the region (about three quarters of them for the MNS masks) and only the slabs
    holding region voxels are stamped, and only the region's voxels are read. A voxel's
    value does not change, as a focus out of reach adds nothing there.

    Parameters
    ----------
    mask_img, experiment, sample_sizes
        As for :class:`KernelStamper`.
    region : 3D bool array
        The voxels to read (those outside the brain mask are ignored).
    """

    def __init__(self, mask_img, experiment, sample_sizes, region):
        super().__init__(mask_img, experiment, sample_sizes)
        region = np.asarray(region, dtype=bool) & self.mask
        self.voxels = np.flatnonzero(region.ravel()).astype(np.int64)
        # Focus centres within a kernel's half width (in every axis) of a region voxel.
        reach = 2 * int(self.halves.max()) + 1
        self.in_reach = ndimage.maximum_filter(region, size=reach, mode="constant")
        self.experiment_of = np.repeat(np.arange(len(self.bounds) - 1), np.diff(self.bounds))

    def ale(self, ijk: np.ndarray) -> np.ndarray:
        """ALE at the region's voxels (C order) for foci at ``ijk`` (construction order)."""
        foci = np.asarray(ijk)[self.order]
        kept = self.in_reach[foci[:, 0], foci[:, 1], foci[:, 2]]
        counts = np.bincount(self.experiment_of[kept], minlength=len(self.bounds) - 1)
        out = np.empty(len(self.voxels))
        _product_at(
            np.ascontiguousarray(foci[kept], dtype=np.int64), np.r_[0, np.cumsum(counts)],
            self.kernel_of, self.kernels, self.halves, self.rows, self.mask.shape[0],
            self.voxels, self.prod, self.scratch, out,
        )  # fmt: skip
        return out
