"""NiMARE's ALE estimators with their inner loops on our engine: every NiMARE subclass.

Each class overrides the NiMARE methods named in its docstring, with the same inputs and
outputs, and calls the engine (:mod:`mnsmeta.meta_analysis.engine`) with arrays. This module
imports NiMARE (about a second): only the functions that fit an analysis import it, so the
command line stays fast. Instances pickle by class name, as processes and Dask need.
"""

from __future__ import annotations

import numpy as np
from nimare.meta.cbma.ale import ALE, ALESubtraction, BalancedALESubtraction

from mnsmeta.meta_analysis import nimare_adapter as nimare
from mnsmeta.meta_analysis.engine import balanced, montecarlo, streaming, subtraction
from mnsmeta.progress import progress

#: Where the Monte Carlo null's random foci come from: our block-wise streams, or NiMARE's
#: up-front draws (its loop, our iterations: NiMARE's null exactly, for the equality tests).
DRAWS = ("blocks", "nimare")


class FastALE(ALE):
    """NiMARE's ALE whose Monte Carlo null runs on our engine.

    The observed ALE, its uncorrected null, the cluster-forming cut and the conversion of the
    nulls into FWE-corrected maps are NiMARE's. The Monte Carlo null is ours: the loop
    (:func:`~mnsmeta.meta_analysis.engine.montecarlo.monte_carlo_null`, threads, no up-front
    draws) and each iteration (random dataset -> largest ALE, largest cluster size and mass,
    in numba). Overrides ``correct_fwe_montecarlo`` and ``_correct_fwe_montecarlo_permutation``.
    """

    #: ``"blocks"`` or ``"nimare"`` (:data:`DRAWS`); set by :func:`fast_ale_estimator`.
    draws = "blocks"
    # NiMARE's own loop (draws="nimare") runs our iteration, which releases the GIL: threads.
    _permutation_parallel_backend = "threading"

    def correct_fwe_montecarlo(
        self, result, voxel_thresh=0.001, n_iters=5000, n_cores=1, vfwe_only=False
    ):
        """NiMARE's method with our loop; the random foci come from the blocks' own streams,
        rooted in NiMARE's stream ``"correct_fwe_montecarlo"`` of ``random_state``."""
        if self.draws == "nimare" or vfwe_only:
            return super().correct_fwe_montecarlo(
                result, voxel_thresh, n_iters, n_cores, vfwe_only
            )
        null_ijk, cut, rng = nimare.montecarlo_inputs(self, voxel_thresh)
        plan = montecarlo.Plan.for_coordinates(self.inputs_["coordinates"], self.masker.mask_img)
        plan.set_null_voxels(null_ijk)
        root = np.random.SeedSequence(int(rng.integers(2**63)))
        with progress(total=n_iters, desc="Monte Carlo", unit="it", stage=False) as bar:
            nulls = montecarlo.monte_carlo_null(plan, cut, n_iters, root, n_cores, bar)
        return nimare.montecarlo_fwe_maps(self, result, cut, voxel_thresh, nulls)

    def _correct_fwe_montecarlo_permutation(
        self, iter_ijk, iter_df, conn, voxel_thresh, vfwe_only, mask_arr=None
    ):
        """One iteration of NiMARE's loop (same inputs and outputs), in numba."""
        plan = self.__dict__.get("fast_plan")
        if plan is None or plan.n_foci != len(iter_df):
            plan = self.fast_plan = montecarlo.Plan.for_coordinates(iter_df, self.masker.mask_img)
        value, size, mass = plan.iteration(np.squeeze(iter_ijk, axis=1), voxel_thresh)
        if vfwe_only:
            return value, None, None
        return value, size, mass

    def __getstate__(self):
        # The plan holds per-thread buffers; workers (processes, Dask) build their own.
        state = self.__dict__.copy()
        state.pop("fast_plan", None)
        return state


class StreamingALE(FastALE):
    """NiMARE's ALE for database-scale datasets: no MA maps held, Monte Carlo uncorrected null
    (:mod:`mnsmeta.meta_analysis.engine.streaming`). Overrides ``_fit``: the same outputs."""

    def _fit(self, dataset):
        self.dataset = dataset
        self.masker = self.masker or dataset.masker
        self.null_distributions_ = {}
        coordinates = self.inputs_["coordinates"]
        plan = montecarlo.Plan.for_coordinates(coordinates, self.masker.mask_img)
        ijk = coordinates[["i", "j", "k"]].to_numpy()
        stat = streaming.observed_ale(plan, ijk).astype(np.float32)
        bins = nimare.histogram_bins(self, streaming.largest_ma(plan, ijk))
        null_ijk, rng = nimare.uncorrected_null_inputs(self)
        plan.set_null_voxels(null_ijk)
        root = int(rng.integers(2**63))
        with progress(total=self.n_iters, desc="uncorrected null", unit="map", stage=False) as bar:
            counts, last = streaming.null_histogram(
                plan, bins, self.n_iters, root, self.n_cores, bar
            )
        self.null_distributions_[nimare.NULLS["histogram_bins"]] = bins
        self.null_distributions_[nimare.NULLS["histogram_counts"]] = counts
        self.null_distributions_[nimare.NULLS["histogram_largest"]] = last
        return nimare.ale_maps_from_stat(self, stat)


class FastALESubtraction(ALESubtraction):
    """NiMARE's ``ALESubtraction`` whose permutations and cluster nulls run on our engine.

    Everything else is NiMARE's: the MA maps, the observed difference, the permutations (same
    ``random_state``, same shuffles), the tail counts and p-values, the cluster-forming cut.
    Overrides ``_iterate_permutation_diffs`` and ``_compute_cluster_nulls``.
    """

    def _iterate_permutation_diffs(self, ma_store, n_iters, n_cores):
        if nimare.chunked_ma_store(ma_store):  # NiMARE's disk-backed low-memory mode
            return super()._iterate_permutation_diffs(ma_store, n_iters, n_cores)
        orders = nimare.subtraction_permutation_orders(
            self, n_iters, ma_store.n_total, ma_store.n_group1
        )
        return subtraction.permutation_diffs(
            ma_store.group1, ma_store.group2, ma_store.n_group1, orders, n_iters, n_cores
        )

    def _compute_cluster_nulls(self, iter_diff_values, voxel_thresh, n_iters, union_mask=None):
        return subtraction.cluster_nulls(
            iter_diff_values, voxel_thresh, n_iters, self.masker.mask_img, union_mask
        )


class FastBalancedALESubtraction(BalancedALESubtraction):
    """NiMARE's ``BalancedALESubtraction`` whose mean balanced differences run on our engine.

    Everything else is NiMARE's: the per-group probabilistic maps, the random-foci datasets of
    the null, every random draw, the thresholds and the maps. Overrides
    ``_mean_balanced_difference``.
    """

    def _mean_balanced_difference(self, ma_maps1, ma_maps2, target_n, n_iters, rng):
        return balanced.mean_balanced_difference(
            ma_maps1, ma_maps2, target_n, n_iters, rng, n_cores=self.n_cores
        )


def fast_ale_estimator(draws: str = "blocks", **kwargs) -> FastALE:
    """NiMARE's ALE whose Monte Carlo null runs on our engine (:class:`FastALE`).

    Parameters
    ----------
    draws : {"blocks", "nimare"}
        ``"blocks"``: random foci from our block-wise streams (same distribution as NiMARE's,
        a fraction of its memory). ``"nimare"``: NiMARE's loop and its up-front draws, so the
        same seed gives NiMARE's null exactly (for the equality tests).
    **kwargs
        NiMARE's ``ALE`` parameters.
    """
    if draws not in DRAWS:
        raise ValueError(f"draws must be one of {DRAWS}, not {draws!r}")
    estimator = FastALE(**kwargs)
    estimator.draws = draws
    return estimator


def streaming_ale_estimator(
    null_maps: int = streaming.NULL_MAPS, n_cores: int = 1, **kwargs
) -> StreamingALE:
    """NiMARE's ALE for database-scale datasets (:class:`StreamingALE`).

    Parameters
    ----------
    null_maps : int
        Random datasets of the uncorrected null (NiMARE's ``n_iters`` of
        ``null_method="montecarlo"``).
    n_cores : int
        Threads of the uncorrected null.
    **kwargs
        NiMARE's ``ALE`` parameters (``random_state``...).
    """
    return StreamingALE(null_method="montecarlo", n_iters=null_maps, n_cores=n_cores, **kwargs)
