"""A fast Monte Carlo null for ALE: numba kernel stamping, slab by slab, and cluster labelling.

Per random dataset the volume is processed in slabs of ``SLAB`` x-planes, small enough that
their work buffers stay in the core's L2 cache (the whole-volume version spent most of its
time waiting on memory). In each slab, every experiment's kernels are stamped into a scratch
slab with a max (Turkeltaub et al. 2012: foci of one experiment do not add up), the scratch
is folded into the slab's running product of ``1 - MA`` and zeroed in the same pass, and the
slab is read and reset.

In the null, the kernel rows whose values are all below ``TAIL`` (a third of the rows) are
not stamped. That bounds each voxel's true ALE from both sides, so only the voxels that
could be above the cluster-forming cut (the candidates: about 1.2 times the supra-threshold
voxels) get their exact ALE, recomputed from the whole kernels in the stamping's order of
operations. The supra-threshold voxels among them are labelled by a flood fill (face
connectivity, as NiMARE), giving the largest cluster's size and mass; the largest ALE is
the largest candidate's. The result is bit for bit that of stamping whole kernels
everywhere, whatever the slab width (both tested). Nothing is allocated per iteration.

Kernels are NiMARE's (``get_ale_kernel``) and, like NiMARE's MA maps, float32; the running
product is float64 (float32 there moved the largest ALE by 3e-6 of its value). Random foci
are drawn uniformly among the mask's voxels as NiMARE draws them, and the cluster-forming
cut is NiMARE's, so the null distributions agree with NiMARE's in distribution (the random
streams differ) and equal them for the same seed (tested).
"""

from __future__ import annotations

import numba
import numpy as np

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


# No NaN enters the product: the flags let LLVM vectorise the row minimum (same results).
@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nnan", "ninf", "nsz"})
def _read_slab(flat_prod, flat_mask, x_lo, x_hi, ny, nz, limit, cand, n_cand):
    """Append the slab's mask voxels whose product is below ``limit`` to ``cand``; reset.

    Returns the smallest product in the slab's mask and the new count of candidates.
    """
    low = 1.0
    width = np.uint64(nz)
    offset = np.uint64(x_lo * ny * nz)
    for r in range((x_hi - x_lo) * ny):
        row = np.uint64(r * nz)
        row_low = 1.0
        for z in range(width):
            p = flat_prod[row + z] if flat_mask[offset + row + z] else 1.0
            row_low = p if p < row_low else row_low
        low = row_low if row_low < low else low
        if row_low < limit:
            for z in range(nz):
                if flat_prod[row + z] < limit and flat_mask[offset + row + z]:
                    cand[n_cand, 0], cand[n_cand, 1], cand[n_cand, 2] = x_lo + r // ny, r % ny, z
                    n_cand += 1
        for z in range(width):
            flat_prod[row + z] = 1.0
    return low, n_cand


@numba.njit(**_JIT)
def _sort_foci(foci, ny, experiment_of, kernel_of, halves, starts, table):
    """Counting sort of the foci by ``x * ny + y`` into ``table``.

    Row ``i`` of ``table`` is one focus: x, y, z, experiment, kernel, half width. Afterwards
    the foci of key ``k`` are rows ``starts[k]:starts[k + 1]``.
    """
    starts[:] = 0
    for f in range(foci.shape[0]):
        starts[foci[f, 0] * ny + foci[f, 1] + 1] += 1
    for k in range(1, starts.shape[0]):
        starts[k] += starts[k - 1]
    for f in range(foci.shape[0]):
        key = foci[f, 0] * ny + foci[f, 1]
        i = starts[key]
        e = experiment_of[f]
        table[i, 0], table[i, 1], table[i, 2] = foci[f, 0], foci[f, 1], foci[f, 2]
        table[i, 3], table[i, 4], table[i, 5] = e, kernel_of[e], halves[kernel_of[e]]
        starts[key] = i + 1
    for k in range(starts.shape[0] - 1, 0, -1):
        starts[k] = starts[k - 1]
    starts[0] = 0


@numba.njit(**_JIT)
def _exact_column(cand, start, stop, shape, kernels, reach, table, starts, near, ma, out):
    """The ALE at candidates ``start:stop``, all in one (x, y) column, from the whole kernels.

    Computed as the stamping computes it, bit for bit: per experiment the largest kernel value
    over its foci, then the product of ``1 - MA`` in experiment order. ``table`` and
    ``starts`` come from :func:`_sort_foci`; ``reach`` is the largest half width; ``near``
    (n_foci, 6) is work space; ``ma`` is a zeroed float32 array with one entry per experiment,
    left zeroed. Writes ``out[start:stop]``.
    """
    nx, ny = shape[0], shape[1]
    x, y = cand[start, 0], cand[start, 1]
    # The foci whose kernel box holds the column.
    n_near = 0
    for u in range(max(x - reach, 0), min(x + reach + 1, nx)):
        first = starts[u * ny + max(y - reach, 0)]
        last = starts[u * ny + min(y + reach, ny - 1) + 1]
        for i in range(first, last):
            h = table[i, 5]
            a, b = x - table[i, 0] + h, y - table[i, 1] + h
            if 0 <= a <= 2 * h and 0 <= b <= 2 * h:
                near[n_near, 0], near[n_near, 1], near[n_near, 2] = table[i, 2] - h, a, b
                near[n_near, 3], near[n_near, 4], near[n_near, 5] = table[i, 3], table[i, 4], 2 * h
                n_near += 1
    for c in range(start, stop):
        z = cand[c, 2]
        for j in range(n_near):
            d = z - near[j, 0]
            if 0 <= d <= near[j, 5]:
                value = kernels[near[j, 4], near[j, 1], near[j, 2], d]
                if value > ma[near[j, 3]]:
                    ma[near[j, 3]] = value
        p = 1.0
        for e in range(ma.shape[0]):
            if ma[e] > 0.0:
                p *= 1.0 - ma[e]
                ma[e] = 0.0
        out[c] = 1.0 - p


@numba.njit(**_JIT)
def _iteration(
    foci, bounds, kernel_of, kernels, halves, rows, whole, slack, mask, cut, prod, scratch,
    labels, supra, values, queue, experiment_of, table, starts, near, ma,
):  # fmt: skip
    """Largest ALE in the mask, largest cluster above ``cut`` (voxels) and its mass.

    The kernels are stamped in ``rows``: the core of :func:`kernel_rows` with its ``slack``
    (:func:`truncation_slack`), or all rows (``whole``) with a slack of 1. The true product
    of ``1 - MA`` lies between the stamped one times the slack and the stamped one, so only
    the voxels that this lets above the cut (the candidates) can be; they get their exact ALE
    from the whole kernels (:func:`_exact_column`). The result is that of stamping whole
    kernels everywhere, bit for bit (tested).

    ``prod`` (float64, ones) and ``scratch`` (float32, zeros) are the buffers of
    :func:`slab_buffers`; ``labels`` (int32, zeros) is a volume; ``supra``, ``values`` and
    ``queue`` have room for every mask voxel; ``experiment_of`` gives each focus's
    experiment; ``table``, ``starts``, ``near`` and ``ma`` are the work arrays of
    :func:`_sort_foci` and :func:`_exact_column`.
    All are left as found.
    """
    nx, ny, nz = mask.shape
    flat_prod = prod.reshape(prod.size)
    flat_mask = mask.reshape(mask.size)
    # Candidates: the stamped product times the slack (a lower bound of the true product)
    # below 1 - cut; the margin absorbs rounding.
    limit = (1.0 - cut) / slack + 1e-9
    low = 1.0
    n_cand = 0
    for x_lo in range(0, nx, prod.shape[0]):
        x_hi = min(x_lo + prod.shape[0], nx)
        _slab_product(foci, bounds, kernel_of, kernels, halves, rows, x_lo, x_hi, scratch, prod)
        slab_low, n_cand = _read_slab(
            flat_prod, flat_mask, x_lo, x_hi, ny, nz, limit, supra, n_cand
        )
        low = min(low, slab_low)
    _sort_foci(foci, ny, experiment_of, kernel_of, halves, starts, table)
    reach = halves.max()
    start = 0
    for c in range(1, n_cand + 1):
        if c == n_cand or supra[c, 0] != supra[start, 0] or supra[c, 1] != supra[start, 1]:
            _exact_column(
                supra, start, c, mask.shape, kernels, reach, table, starts, near, ma, values
            )
            start = c
    max_value = 0.0
    n_supra = 0
    for c in range(n_cand):
        ale = values[c]
        max_value = max(max_value, ale)
        if ale > cut:
            # Keep the supra-threshold voxels in place, in volume order; until labelled, a
            # supra-threshold voxel's label is -1 - its number.
            x, y, z = supra[c, 0], supra[c, 1], supra[c, 2]
            supra[n_supra, 0], supra[n_supra, 1], supra[n_supra, 2] = x, y, z
            values[n_supra] = ale
            labels[x, y, z] = -1 - n_supra
            n_supra += 1
    if n_supra == 0:
        # Nothing above the cut: the largest ALE may lie outside the candidates, and only
        # whole kernels give it (1 minus the smallest product). Rare under the null.
        if slack != 1.0:
            low = 1.0
            for x_lo in range(0, nx, prod.shape[0]):
                x_hi = min(x_lo + prod.shape[0], nx)
                _slab_product(
                    foci, bounds, kernel_of, kernels, halves, whole, x_lo, x_hi, scratch, prod
                )
                slab_low, _ = _read_slab(flat_prod, flat_mask, x_lo, x_hi, ny, nz, -1.0, supra, 0)
                low = min(low, slab_low)
        return 1.0 - low, 0, 0.0
    # Flood fill among supra-threshold voxels (face connectivity).
    max_size = 0
    max_mass = 0.0
    cluster = 0
    for s in range(n_supra):
        x0, y0, z0 = supra[s, 0], supra[s, 1], supra[s, 2]
        if labels[x0, y0, z0] >= 0:
            continue
        cluster += 1
        labels[x0, y0, z0] = cluster
        queue[0, 0], queue[0, 1], queue[0, 2] = x0, y0, z0
        head, tail = 0, 1
        mass = values[s] - cut
        while head < tail:
            x, y, z = queue[head, 0], queue[head, 1], queue[head, 2]
            head += 1
            for d in range(6):
                u, v, w = _neighbour(x, y, z, d)
                if 0 <= u < nx and 0 <= v < ny and 0 <= w < nz and labels[u, v, w] < 0:
                    mass += values[-1 - labels[u, v, w]] - cut
                    labels[u, v, w] = cluster
                    queue[tail, 0], queue[tail, 1], queue[tail, 2] = u, v, w
                    tail += 1
        if tail > max_size:
            max_size = tail
        if mass > max_mass:
            max_mass = mass
    for s in range(n_supra):
        labels[supra[s, 0], supra[s, 1], supra[s, 2]] = 0
    return max_value, max_size, max_mass


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


def truncation_slack(kernels: np.ndarray, n_experiments: int, tail: float = TAIL) -> float:
    """Lower bound of (true product of 1 - MA) / (product from the rows above ``tail``).

    An experiment's true MA is at most its truncated MA plus ``tail``, so each factor
    ``1 - MA`` shrinks by at most ``1 - tail / (1 - peak)``.
    """
    peak = float(kernels.max())
    return (1.0 - tail / (1.0 - peak)) ** n_experiments


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
    """Kernels and experiment boundaries of one dataset's null, and per-thread work buffers.

    Parameters
    ----------
    mask_img : nibabel image
        The brain mask.
    bounds : (n_experiments + 1,) int array
        Where each experiment's foci start in the foci arrays, then their count.
    sizes : (n_experiments,) int array
        Each experiment's N (its kernel).
    slab : int
        x-planes per slab.
    """

    def __init__(self, mask_img, bounds, sizes, slab=SLAB):
        import threading

        self.bounds = np.asarray(bounds, dtype=np.int64)
        self.kernels, self.halves, self.kernel_of = _kernel_table(mask_img, sizes)
        self.core = kernel_rows(self.kernels, self.halves, TAIL)
        self.whole = kernel_rows(self.kernels, self.halves)
        self.slack = truncation_slack(self.kernels, len(sizes))
        self.experiment_of = np.repeat(np.arange(len(sizes)), np.diff(self.bounds))
        self.mask = np.ascontiguousarray(np.asarray(mask_img.get_fdata()) > 0)
        self.n_foci = int(self.bounds[-1])
        self.slab = slab
        self._local = threading.local()

    @classmethod
    def for_coordinates(cls, iter_df, mask_img, slab=SLAB):
        """The plan of NiMARE's coordinates table (foci of an experiment are contiguous)."""
        experiments = iter_df["id"].to_numpy()
        bounds = _bounds(experiments)
        if len(np.unique(experiments)) != len(bounds) - 1:
            raise ValueError("foci of an experiment are not contiguous")
        return cls(mask_img, bounds, iter_df["sample_size"].to_numpy()[bounds[:-1]], slab)

    def buffers(self):
        local = self._local
        if not hasattr(local, "prod"):
            shape = self.mask.shape
            local.prod, local.scratch = slab_buffers(shape, self.slab)
            local.labels = np.zeros(shape, dtype=np.int32)
            n = int(self.mask.sum())
            local.supra = np.empty((n, 3), dtype=np.int32)
            local.values = np.empty(n)
            local.queue = np.empty((n, 3), dtype=np.int32)
            local.table = np.empty((self.n_foci, 6), dtype=np.int64)
            local.near = np.empty((self.n_foci, 6), dtype=np.int64)
            local.starts = np.empty(shape[0] * shape[1] + 1, dtype=np.int64)
            local.ma = np.zeros(len(self.bounds) - 1, dtype=np.float32)
        return (
            local.prod, local.scratch, local.labels, local.supra, local.values, local.queue,
            self.experiment_of, local.table, local.starts, local.near, local.ma,
        )  # fmt: skip

    def iteration(self, foci, cut, truncate=True):
        """Largest ALE, largest cluster above ``cut`` and its mass, for foci (voxel indices).

        ``truncate=False`` stamps the whole kernels everywhere: the same result, slower.
        """
        rows, slack = (self.core, self.slack) if truncate else (self.whole, 1.0)
        foci = np.ascontiguousarray(foci, dtype=np.int64)
        return _iteration(
            foci, self.bounds, self.kernel_of, self.kernels, self.halves, rows, self.whole,
            slack, self.mask, float(cut), *self.buffers(),
        )  # fmt: skip


def _fast_permutation(self, iter_ijk, iter_df, conn, voxel_thresh, vfwe_only, mask_arr=None):
    """Drop-in for NiMARE's ``_correct_fwe_montecarlo_permutation`` (same inputs, outputs)."""
    plan = getattr(self, "_fast_plan", None)
    if plan is None or plan.n_foci != len(iter_df):
        plan = self._fast_plan = _Plan.for_coordinates(iter_df, self.masker.mask_img)
    value, size, mass = plan.iteration(np.squeeze(iter_ijk, axis=1), voxel_thresh)
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
