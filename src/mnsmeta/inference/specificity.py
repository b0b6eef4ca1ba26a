"""Specificity where the claims are: a disorder's foci against a healthy set, region by region.

The whole-brain ALE subtraction (Eickhoff et al., 2011) evaluates each direction only inside
its minuend's clusters, and its cluster-forming cut is one quantile of all permuted
differences: reduced activity in a disorder outside the healthy set's clusters can never be
found there, and a null there says nothing without its power. This module asks the question
region by region instead, for two sets of experiments (``first``: the disorder; ``second``:
its healthy reference) and a claim region (amygdala, IFG, IPL, an MNS mask...):

1. **Differences in the region, both ways**: the ALE difference ``ALE(first) - ALE(second)``
   of the unthresholded maps at every voxel of the region; per direction its largest value
   (and where), the region's mean, and their p.
2. **Region-wise FWE by permutation**: the experiments are exchanged between the two sets
   (the subtraction's own label permutation, set sizes kept); in each permutation the largest
   difference in the region (per direction) forms the null of the largest observed one, so
   the p is family-wise over the region's voxels (a small-volume correction, as in SPM
   practice; Nichols & Holmes, 2002). The mean over the region gets the same permutation p.
   ``p = (1 + #null >= observed) / (1 + n_perm)``.
3. **Power of a null**: the probability that this test finds a difference of the size at
   issue: ``k`` experiments of one set get one focus each at the claim's location (a
   reported focus moved there, displaced by the kernel's spatial SD, as in
   :mod:`.power`), and the effect is detected when the region-wise FWE p in that direction
   is below ``alpha``. The critical value is that of the observed data's permutation null
   (the test's null when the sets do not differ), so the planted data need no new
   permutations; this slightly overstates the power of a test that would re-permute the
   planted data (its null widens a little where the plant is). ``k`` runs across a range:
   the power curve.
4. **MNS overlap against the healthy set**: the share of a set's foci inside a mask, the
   disorder's minus the healthy set's, with the same permutation of experiments.

The MA values are NiMARE's (``get_ale_kernel``, the maximum over an experiment's foci), on
the region's voxels only (tested equal to ``compute_ale_ma``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mnsmeta.curation.characteristics import kernel_fwhm_mm
from mnsmeta.curation.experiments import ExperimentSet
from mnsmeta.data.space import brain_mask_img, mm_to_voxel, voxel_to_mm
from mnsmeta.inference.precision import binomial_interval

#: Permutations of the region-wise test.
N_PERM = 10_000
#: Replicates per point of a power curve.
REPLICATES = 100
#: Permutations per power replicate.
POWER_PERM = 200
#: Permutations computed together (a matrix product each).
BATCH = 200
#: Foci per experiment of the larger set over the other's beyond which an "exceeds" is
#: flagged: a set whose experiments report more foci converges more anywhere.
DENSITY_RATIO = 2.0
#: Prefix of the MNS masks among the regions of the specificity tables ("MNS anatomical").
MASK_PREFIX = "MNS "
FWHM_TO_SD = 1.0 / math.sqrt(8.0 * math.log(2.0))


class RegionMA:
    """MA values of experiments on a fixed set of voxels (NiMARE's kernels and rule).

    Parameters
    ----------
    voxels : (n_voxels, 3) int array
        Voxel indices on the MNI152 2 mm grid (all inside the brain mask).
    """

    def __init__(self, voxels: np.ndarray):
        self.voxels = np.asarray(voxels, dtype=np.int64)
        self.shape = np.array(brain_mask_img().shape)
        # Each voxel's column (-1: not one of the voxels), so that a focus touches only the
        # voxels within its kernel's reach.
        self.index = np.full(tuple(self.shape), -1, dtype=np.int64)
        self.index[tuple(self.voxels.T)] = np.arange(len(self.voxels))
        self._supports: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._dense: dict[int, np.ndarray] = {}

    def support(self, sample_size: int) -> tuple[np.ndarray, np.ndarray]:
        """NiMARE's kernel for ``sample_size`` as offsets from the focus and values."""
        from nimare.meta.utils import get_ale_kernel

        if sample_size not in self._supports:
            kernel = get_ale_kernel(brain_mask_img(), sample_size)[1]
            offsets = np.argwhere(kernel > 0)
            values = kernel[tuple(offsets.T)]
            self._supports[sample_size] = (offsets - kernel.shape[0] // 2, values)
        return self._supports[sample_size]

    def _dense_kernel(self, sample_size: int) -> np.ndarray:
        if sample_size not in self._dense:  # built once per N, not once per focus
            offsets, values = self.support(sample_size)
            kernel = np.zeros((offsets.max() - offsets.min() + 1,) * 3)
            kernel[tuple((offsets - offsets.min()).T)] = values
            self._dense[sample_size] = kernel
        return self._dense[sample_size]

    def focus_kernel(self, focus: np.ndarray, sample_size: int) -> tuple[np.ndarray, np.ndarray]:
        """The voxels (positions) within one focus's kernel, and its values there."""
        offsets, values = self.support(int(sample_size))
        focus = np.asarray(focus, dtype=np.int64)
        if len(self.voxels) < len(offsets):  # few voxels: look each one up in the kernel
            kernel = self._dense_kernel(int(sample_size))
            offset = self.voxels - focus - offsets.min()
            inside = np.flatnonzero(np.all((offset >= 0) & (offset < kernel.shape[0]), axis=1))
            return inside, kernel[tuple(offset[inside].T)]
        points = focus + offsets
        ok = np.all((points >= 0) & (points < self.shape), axis=1)
        columns = self.index[tuple(points[ok].T)]
        hit = columns >= 0
        return columns[hit], values[ok][hit]

    def ma(self, foci_ijk: np.ndarray, sample_size: int) -> np.ndarray:
        """One experiment's MA on the voxels: the maximum of its foci's kernels."""
        out = np.zeros(len(self.voxels))
        for focus in np.asarray(foci_ijk, dtype=np.int64):
            # One focus touches each voxel once: a plain maximum, no accumulation needed.
            columns, values = self.focus_kernel(focus, sample_size)
            out[columns] = np.maximum(out[columns], values)
        return out

    def top_two(self, foci_ijk: np.ndarray, sample_size: int):
        """Per voxel the largest kernel value of an experiment's foci, the focus it comes
        from, and the second largest: the MA with any one focus left out, without
        restamping the others."""
        n = len(self.voxels)
        best, owner, second = np.zeros(n), np.full(n, -1), np.zeros(n)
        for j, focus in enumerate(np.asarray(foci_ijk, dtype=np.int64)):
            columns, values = self.focus_kernel(focus, sample_size)
            old_best, old_second = best[columns], second[columns]
            wins = values > old_best
            second[columns] = np.where(wins, old_best, np.maximum(old_second, values))
            best[columns] = np.where(wins, values, old_best)
            owner[columns] = np.where(wins, j, owner[columns])
        return best, owner, second

    def log_complement(self, experiments: ExperimentSet) -> np.ndarray:
        """``log(1 - MA)`` per experiment (rows, in analysis order) and voxel."""
        ijk = experiments.ijk()
        which = experiments.experiment_of_foci()
        sizes = experiments.sample_sizes
        rows = [self.ma(ijk[which == e], sizes[e]) for e in range(len(sizes))]
        # NiMARE's MA maps are float32; so are these values before the logarithm.
        return np.log1p(-np.asarray(rows, dtype=np.float32).astype(np.float64))


def _differences(logs: np.ndarray, indicator: np.ndarray) -> np.ndarray:
    """ALE of the rows marked 1 minus ALE of the others, one row per indicator row."""
    s1 = indicator @ logs
    s2 = logs.sum(axis=0) - s1
    return np.exp(s2) - np.exp(s1)


def _indicators(n: int, n_first: int, count: int, rng) -> np.ndarray:
    """``count`` random splits of ``n`` experiments into ``n_first`` and the rest (0/1)."""
    orders = rng.permuted(np.tile(np.arange(n), (count, 1)), axis=1)
    indicator = np.zeros((count, n))
    np.put_along_axis(indicator, orders[:, :n_first], 1.0, axis=1)
    return indicator


@dataclass(frozen=True)
class RegionNull:
    """The permutation null of one pair of sets on a set of regions.

    Attributes
    ----------
    maxima, minima : dict
        Region name -> (n_perm,) largest and smallest permuted difference in the region.
    means : dict
        Region name -> (n_perm,) permuted mean difference in the region.
    above, below : (n_voxels,) int arrays
        Per voxel, permutations whose difference was >= (<=) the observed one.
    n_perm : int
    """

    maxima: dict
    minima: dict
    means: dict
    above: np.ndarray
    below: np.ndarray
    n_perm: int

    def critical(self, region: str, sign: float, alpha: float) -> float:
        """The region-wise FWE critical difference in direction ``sign`` (+1 or -1)."""
        null = self.maxima[region] if sign > 0 else -self.minima[region]
        return float(np.quantile(null, 1 - alpha, method="higher"))


def _p(observed: float, null: np.ndarray) -> float:
    return float((1 + np.sum(null >= observed)) / (1 + len(null)))


class RegionContrast:
    """Two sets of experiments on the voxels of some regions, ready to permute.

    Parameters
    ----------
    first, second : ExperimentSet
        The disorder and its healthy reference.
    regions : dict
        Region name -> 3D bool array on the MNI152 2 mm grid.
    """

    def __init__(self, first: ExperimentSet, second: ExperimentSet, regions: dict):
        brain = np.asarray(brain_mask_img().dataobj) > 0
        union = np.zeros(brain.shape, dtype=bool)
        for mask in regions.values():
            union |= mask & brain
        self.voxels = np.argwhere(union)
        index = np.full(brain.shape, -1)
        index[tuple(self.voxels.T)] = np.arange(len(self.voxels))
        self.columns = {
            name: index[mask & brain] for name, mask in regions.items() if (mask & brain).any()
        }
        self.first, self.second = first, second
        self.n_first = len(first.experiments)
        self.stamp = RegionMA(self.voxels)
        self.logs = np.vstack(
            [self.stamp.log_complement(first), self.stamp.log_complement(second)]
        )
        self.observed = _differences(self.logs, self._observed_indicator())

    def _observed_indicator(self) -> np.ndarray:
        indicator = np.zeros((1, len(self.logs)))
        indicator[0, : self.n_first] = 1.0
        return indicator

    def null(self, n_perm: int, seed: int) -> RegionNull:
        """The permutation null (experiments exchanged between the sets)."""
        rng = np.random.default_rng(seed)
        maxima = {name: np.empty(n_perm) for name in self.columns}
        minima = {name: np.empty(n_perm) for name in self.columns}
        means = {name: np.empty(n_perm) for name in self.columns}
        above = np.zeros(len(self.voxels), dtype=np.int64)
        below = np.zeros(len(self.voxels), dtype=np.int64)
        observed = self.observed[0]
        for start in range(0, n_perm, BATCH):
            count = min(BATCH, n_perm - start)
            diffs = _differences(self.logs, _indicators(len(self.logs), self.n_first, count, rng))
            above += (diffs >= observed).sum(axis=0)
            below += (diffs <= observed).sum(axis=0)
            for name, columns in self.columns.items():
                part = diffs[:, columns]
                maxima[name][start : start + count] = part.max(axis=1)
                minima[name][start : start + count] = part.min(axis=1)
                means[name][start : start + count] = part.mean(axis=1)
        return RegionNull(maxima, minima, means, above, below, n_perm)

    def table(self, null: RegionNull) -> pd.DataFrame:
        """Per region and direction: the largest difference, where, its voxel p and the
        region-wise FWE p; the region's mean difference and its permutation p."""
        names = (self.first.group, self.second.group)
        observed = self.observed[0]
        rows = []
        for name, columns in self.columns.items():
            values = observed[columns]
            for sign, (high, low), tail, extreme in (
                (1.0, names, null.above, null.maxima[name]),
                (-1.0, names[::-1], null.below, -null.minima[name]),
            ):
                best = int(np.argmax(sign * values))
                voxel = columns[best]
                x, y, z = voxel_to_mm(self.voxels[voxel][None])[0]
                ale = 1.0 - np.exp(
                    [
                        self.logs[: self.n_first, voxel].sum(),
                        self.logs[self.n_first :, voxel].sum(),
                    ]
                )
                voxel_ps = (1 + tail[columns]) / (1 + null.n_perm)
                mean = float(sign * values.mean())
                rows.append(
                    {
                        "region": name,
                        "direction": f"{high}>{low}",
                        "voxels": len(columns),
                        "max_difference": float(sign * values[best]),
                        "peak_x": x,
                        "peak_y": y,
                        "peak_z": z,
                        f"ale_{names[0]}": float(ale[0]),
                        f"ale_{names[1]}": float(ale[1]),
                        "voxel_p": float(voxel_ps[best]),
                        "voxels_p05": int((voxel_ps < 0.05).sum()),
                        "p_fwe": _p(float(sign * values[best]), extreme),
                        "mean_difference": mean,
                        "p_mean": _p(mean, sign * null.means[name]),
                        "n_perm": null.n_perm,
                        # A set with more foci per experiment converges more anywhere: an
                        # exchange of experiments then tests density as well as the group.
                        "foci_per_experiment_first": _density(self.first),
                        "foci_per_experiment_second": _density(self.second),
                    }
                )
        table = pd.DataFrame(rows)
        return table.rename(
            columns={f"ale_{names[0]}": "ale_first", f"ale_{names[1]}": "ale_second"}
        )

    def power(
        self,
        region: str,
        planted_in: int,
        ks,
        seed: int,
        target_mm=None,
        alpha: float = 0.05,
        replicates: int = REPLICATES,
        n_perm: int = POWER_PERM,
    ) -> pd.DataFrame:
        """Power of the region-wise test when ``k`` experiments of one set converge.

        Each replicate is tested as the observed data are: its largest difference in the
        region against ``n_perm`` exchanges of experiments of the planted data. (The observed
        data's null instead would overstate the power: by 8 and 14 points at k = 6 and 8 of
        SAD's 12 experiments in the amygdala, measured.)

        Parameters
        ----------
        region : str
        planted_in : {0, 1}
            The set that gets the effect (0: ``first``, detected as first > second; 1:
            ``second``, detected as second > first).
        ks : iterable of int
            Numbers of converging experiments (each capped at the set's size).
        seed : int
        target_mm : (3,) array, optional
            Where the effect is (an observed peak); default: a voxel of the region drawn
            uniformly per replicate.
        alpha : float
        replicates : int
        n_perm : int
            Permutations per replicate (a test with fewer permutations has no more power than
            one with more: the curve errs on the low side).

        Returns
        -------
        pandas.DataFrame
            ``k``, ``detected``, ``replicates``, ``power``, ``power_low``, ``power_high``
            (exact binomial 95 % interval).
        """
        sign = 1.0 if planted_in == 0 else -1.0
        columns = self.columns[region]
        experiments = self.first if planted_in == 0 else self.second
        offset = 0 if planted_in == 0 else self.n_first
        ijk = experiments.ijk()
        which = experiments.experiment_of_foci()
        sizes = experiments.sample_sizes
        rows_of = [np.flatnonzero(which == e) for e in range(len(sizes))]
        sd = np.array([kernel_fwhm_mm(n) * FWHM_TO_SD for n in sizes])
        brain = np.asarray(brain_mask_img().dataobj) > 0
        region_voxels = self.voxels[columns]
        stamp = RegionMA(region_voxels)
        logs = self.logs[:, columns]
        rng = np.random.default_rng(seed)
        # One set of permutations for every replicate. A replicate changes only its planted
        # rows, and those only near the moved foci: elsewhere its permuted differences are
        # the base ones, computed once; near them, the base log-sums plus the change.
        indicator = _indicators(len(logs), self.n_first, n_perm, rng)
        base = indicator @ logs
        total = logs.sum(axis=0)
        base_null = sign * (np.exp(total - base) - np.exp(base))
        first_sum = logs[: self.n_first].sum(axis=0)
        base_observed = sign * (np.exp(total - first_sum) - np.exp(first_sum))
        null_away, observed_away = _LargestOutside(base_null), _LargestOutside(base_observed[None])
        tops: dict[int, tuple] = {}
        out = []
        for k in sorted({min(int(k), len(sizes)) for k in ks if int(k) > 0}):
            detected = 0
            for _ in range(replicates):
                centre = (
                    np.asarray(target_mm, dtype=float)
                    if target_mm is not None
                    else voxel_to_mm(region_voxels[rng.integers(len(region_voxels))][None])[0]
                )
                chosen = rng.choice(len(sizes), size=k, replace=False)
                change = np.empty((k, len(columns)))
                for i, e in enumerate(chosen):
                    if e not in tops:
                        tops[e] = stamp.top_two(ijk[rows_of[e]], sizes[e])
                    best, owner, second = tops[e]
                    moved = rng.integers(len(rows_of[e]))
                    ma = np.where(owner == moved, second, best)
                    near, values = stamp.focus_kernel(
                        _displaced(centre, sd[e], rng, brain), sizes[e]
                    )
                    ma[near] = np.maximum(ma[near], values)
                    ma = ma.astype(np.float32).astype(np.float64)  # NiMARE's MA precision
                    change[i] = np.log1p(-ma) - logs[offset + e]
                near = np.flatnonzero(np.any(change != 0, axis=0))
                change = change[:, near]
                s1 = base[:, near] + indicator[:, offset + chosen] @ change
                s2 = total[near] + change.sum(axis=0) - s1
                # The largest permuted difference: the base one away from the change.
                null = np.maximum(
                    null_away.outside(near), (sign * (np.exp(s2) - np.exp(s1))).max(axis=1)
                )
                o1 = first_sum[near] + (change.sum(axis=0) if offset == 0 else 0.0)
                o2 = total[near] + change.sum(axis=0) - o1
                observed = max(
                    observed_away.outside(near)[0],
                    (sign * (np.exp(o2) - np.exp(o1))).max() if len(near) else -np.inf,
                )
                detected += _p(observed, null) < alpha
            low, high = binomial_interval(detected, replicates)
            out.append((k, detected, replicates, detected / replicates, low, high))
        return pd.DataFrame(
            out, columns=["k", "detected", "replicates", "power", "power_low", "power_high"]
        )


class _LargestOutside:
    """Per row of a matrix, its largest value outside a few columns, from each row's top
    columns kept in order (the whole row is read only when they are all excluded).

    Equal to ``np.delete(values, columns, axis=1).max(axis=1)`` (``-inf`` for an empty
    row); a power replicate changes a few hundred of a region's columns, and reading the
    others for every replicate was most of the specificity stage's time.
    """

    def __init__(self, values: np.ndarray, keep: int = 64):
        self.values = values
        k = min(keep, values.shape[1])
        cols = np.argpartition(values, values.shape[1] - k, axis=1)[:, values.shape[1] - k :]
        top = np.take_along_axis(values, cols, axis=1)
        order = np.argsort(-top, axis=1, kind="stable")
        self.cols = np.take_along_axis(cols, order, axis=1)
        self.top = np.take_along_axis(top, order, axis=1)

    def outside(self, columns: np.ndarray) -> np.ndarray:
        allowed = ~np.isin(self.cols, columns)
        first = np.argmax(allowed, axis=1)
        out = self.top[np.arange(len(self.top)), first]
        for row in np.flatnonzero(~allowed.any(axis=1)):
            rest = np.delete(self.values[row], columns)
            out[row] = rest.max() if len(rest) else -np.inf
        return out


def _density(experiments: ExperimentSet) -> float:
    return len(experiments.foci) / max(1, len(experiments.experiments))


def _displaced(centre: np.ndarray, sd: float, rng, brain: np.ndarray) -> np.ndarray:
    """A voxel near ``centre`` (Gaussian of SD ``sd`` mm), inside the brain."""
    shape = np.array(brain.shape)
    for _ in range(20):  # a displaced focus outside the brain is drawn again
        point = mm_to_voxel(centre + rng.normal(0, sd, 3))[0]
        if np.all((point >= 0) & (point < shape)) and brain[tuple(point)]:
            return point
    return mm_to_voxel(centre)[0]


def foci_share_difference(
    first: ExperimentSet, second: ExperimentSet, mask: np.ndarray, n_perm: int, seed: int
) -> dict:
    """Share of each set's foci inside ``mask``, first minus second, and its permutation p.

    Experiments (with all their foci) are exchanged between the sets, sizes kept; the p is
    one-sided (first's share larger).
    """
    counts, inside = [], []
    for experiments in (first, second):
        ijk = experiments.ijk()
        hit = mask[tuple(ijk.T)]
        which = experiments.experiment_of_foci()
        n = len(experiments.experiments)
        counts.append(np.bincount(which, minlength=n))
        inside.append(np.bincount(which, weights=hit, minlength=n))
    counts, inside = np.concatenate(counts), np.concatenate(inside)
    n_first = len(first.experiments)

    def share(indicator):
        a = (indicator @ inside) / (indicator @ counts)
        b = ((1 - indicator) @ inside) / ((1 - indicator) @ counts)
        return a, b

    observed = np.zeros((1, len(counts)))
    observed[0, :n_first] = 1.0
    a, b = share(observed)
    rng = np.random.default_rng(seed)
    null = np.concatenate(
        [
            np.subtract(*share(_indicators(len(counts), n_first, min(BATCH, n_perm - s), rng)))
            for s in range(0, n_perm, BATCH)
        ]
    )
    difference = float(a[0] - b[0])
    return {
        "share_first": float(a[0]),
        "share_second": float(b[0]),
        "difference": difference,
        "p": _p(difference, null),
        "n_perm": n_perm,
    }


def reading(p_fwe: float, power: float, alpha: float = 0.05, target: float = 0.8) -> str:
    """A specificity result in words: ``exceeds``, ``does not exceed (power X %)`` or
    ``inconclusive (power X %)`` (a null below ``target`` power says nothing either way)."""
    if p_fwe < alpha:
        return "exceeds"
    if not np.isfinite(power):
        return "inconclusive (power not simulated)"
    word = "does not exceed" if power >= target else "inconclusive"
    return f"{word} (power {power:.0%})"


def readings(differences: pd.DataFrame, power: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """One row per subtraction, region and direction: the test, its power at the effect of
    interest and the :func:`reading`.

    Parameters
    ----------
    differences, power : pandas.DataFrame
        ``results/specificity/differences.csv`` and ``power.csv``.

    Returns
    -------
    pandas.DataFrame
        ``analysis``, ``first``, ``second``, ``region``, ``direction``, ``max_difference``,
        ``p_fwe``, ``k_of_interest``, ``n_planted``, ``power``, ``mde`` (the smallest
        simulated ``k`` with >= 80 % power; NaN: none), ``reading`` and, when the
        differences carry each set's foci per experiment, ``density_ratio``: the larger
        set's foci per experiment over the other's (above :data:`DENSITY_RATIO`, an
        ``exceeds`` may reflect foci density, not only the group).
    """
    keys = ["analysis", "region", "direction"]
    at_interest = power[power["k"] == power["k_of_interest"]][
        [*keys, "k_of_interest", "n_planted", "power"]
    ]
    mde = power[power["power"] >= 0.8].groupby(keys)["k"].min().rename("mde").reset_index()
    columns = ["analysis", "first", "second", "region", "direction", "max_difference", "p_fwe"]
    density = ["foci_per_experiment_first", "foci_per_experiment_second"]
    columns += [c for c in density if c in differences.columns]
    table = differences[columns].merge(at_interest, on=keys, how="left")
    table = table.merge(mde, on=keys, how="left")
    table["reading"] = [
        reading(p, q, alpha) for p, q in zip(table["p_fwe"], table["power"], strict=True)
    ]
    if set(density) <= set(table.columns):
        # Which set is larger in this direction, and how much denser its experiments are.
        larger = table["direction"].str.split(">").str[0] == table["first"]
        high = table[density[0]].where(larger, table[density[1]])
        low = table[density[1]].where(larger, table[density[0]])
        table["density_ratio"] = high / low
    return table
