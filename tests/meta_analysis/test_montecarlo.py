"""The fast engine's Monte Carlo null equals NiMARE's."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

from mnsmeta.meta_analysis import ale

NULLS = {
    "voxel": "values_level-voxel_corr-fwe_method-montecarlo",
    "size": "values_desc-size_level-cluster_corr-fwe_method-montecarlo",
    "mass": "values_desc-mass_level-cluster_corr-fwe_method-montecarlo",
}


def fit(dataset, engine, seed, n_iters=120, n_jobs=2):
    _, result = ale.fit_ale(dataset, n_iters, seed, n_jobs=n_jobs, engine=engine)
    return result


def fit_on_nimare_draws(dataset, seed, n_iters=120):
    """Our iterations inside NiMARE's loop, on NiMARE's up-front random foci."""
    from nimare.correct import FWECorrector

    from mnsmeta.meta_analysis.nimare_adapter.estimators import fast_ale_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fast_ale_estimator(draws="nimare", random_state=seed).fit(dataset)
        corrector = FWECorrector(
            method="montecarlo", voxel_thresh=0.001, n_iters=n_iters, n_cores=2, vfwe_only=False
        )
        return corrector.transform(result)


def test_same_seed_gives_the_same_null_and_maps_as_nimare(sad_dataset):
    # On NiMARE's own draws, our iterations give NiMARE's null, hence its maps.
    fast, reference = fit_on_nimare_draws(sad_dataset, 7), fit(sad_dataset, "nimare", 7)
    fast_nulls = fast.estimator.null_distributions_
    reference_nulls = reference.estimator.null_distributions_
    voxel = reference_nulls[NULLS["voxel"]]
    # Same random datasets: the largest ALE agrees to float32 precision...
    assert np.abs(fast_nulls[NULLS["voxel"]] - voxel).max() <= 1e-6 * voxel.max()
    # ...the largest cluster of every random dataset has the same size...
    np.testing.assert_array_equal(fast_nulls[NULLS["size"]], reference_nulls[NULLS["size"]])
    np.testing.assert_allclose(
        fast_nulls[NULLS["mass"]], reference_nulls[NULLS["mass"]], rtol=1e-5
    )
    # ...and so the corrected maps are the same.
    for name in (ale.CLUSTER_LOGP, ale.VOXEL_LOGP):
        np.testing.assert_allclose(
            fast.get_map(name, return_type="array"),
            reference.get_map(name, return_type="array"),
            atol=1e-5,
        )


def test_our_maps_from_given_nulls_are_nimares(sad_dataset):
    # Our loop hands its nulls to a copy of the end of NiMARE's correct_fwe_montecarlo: on
    # NiMARE's nulls it gives NiMARE's maps exactly.
    from mnsmeta.meta_analysis import nimare_adapter

    reference = fit(sad_dataset, "nimare", 5, n_iters=60)
    estimator = reference.estimator
    nulls = np.column_stack([estimator.null_distributions_[NULLS[k]] for k in NULLS])
    cut = nimare_adapter.cluster_forming_cut(estimator, 0.001)
    maps, _, description = nimare_adapter.montecarlo_fwe_maps(
        estimator, reference, cut, 0.001, nulls
    )
    assert "repeated 60 times" in description
    for name, values in maps.items():
        expected = reference.get_map(f"{name}_corr-FWE_method-montecarlo", return_type="array")
        # (the result stores every map as float32, ours as NiMARE's)
        np.testing.assert_array_equal(values.astype(expected.dtype), expected, err_msg=name)
    assert (maps["logp_desc-size_level-cluster"] > 0).any()


def test_our_null_agrees_with_nimares_in_distribution(sad_dataset):
    # Our block-wise draws (seed 1) against NiMARE's loop and draws (seed 2): two-sample
    # Kolmogorov-Smirnov tests on the largest ALE, cluster size and mass.
    fast = fit(sad_dataset, "fast", 1, n_iters=400).estimator.null_distributions_
    reference = fit(sad_dataset, "nimare", 2, n_iters=400).estimator.null_distributions_
    for key in NULLS:
        assert stats.ks_2samp(fast[NULLS[key]], reference[NULLS[key]]).pvalue > 0.001, key
    # Not one stream in disguise: the two nulls differ.
    assert not np.array_equal(fast[NULLS["size"]], reference[NULLS["size"]])


def test_our_null_is_the_same_for_any_number_of_threads(sad_dataset):
    one = fit(sad_dataset, "fast", 3, n_iters=130, n_jobs=1)
    two = fit(sad_dataset, "fast", 3, n_iters=130, n_jobs=2)
    for key in NULLS:
        np.testing.assert_array_equal(
            one.estimator.null_distributions_[NULLS[key]],
            two.estimator.null_distributions_[NULLS[key]],
        )
    assert len(one.estimator.null_distributions_[NULLS["size"]]) == 130


def test_our_loop_draws_nothing_ahead(sad_dataset):
    # NiMARE's loop holds n_foci x n_iters x 3 int64 of random foci (plus their indices);
    # ours draws each block's foci as it goes, so its peak memory does not grow with the
    # iterations. Between 100 and 1,000 iterations NiMARE's array grows by 21 MB.
    import tracemalloc

    from mnsmeta.meta_analysis.engine import montecarlo

    plan = _sad_plan(sad_dataset, montecarlo.SLAB)
    growth = 900 * plan.n_foci * 4 * 8
    peaks = []
    for n_iters in (100, 1000):
        tracemalloc.start()
        montecarlo.monte_carlo_null(plan, SAD_CUT, n_iters, seed=0, n_jobs=2)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert growth > 20e6
    assert peaks[1] - peaks[0] < 0.05 * growth


def _sad_plan(dataset, slab):
    from mnsmeta.data.space import brain_mask_img
    from mnsmeta.meta_analysis.engine import montecarlo

    coordinates = dataset.coordinates.sort_values("id", kind="stable")
    sizes = dataset.metadata.set_index("id")["sample_sizes"].map(lambda n: n[0])
    coordinates = coordinates.assign(sample_size=coordinates["id"].map(sizes).to_numpy())
    return montecarlo.Plan.for_coordinates(coordinates, brain_mask_img(), slab)


def _random_foci(plan, n_sets, seed=0):
    voxels = np.argwhere(plan.mask)
    rng = np.random.default_rng(seed)
    return [voxels[rng.integers(0, len(voxels), plan.n_foci)] for _ in range(n_sets)]


SAD_CUT = 0.0186  # NiMARE's cluster-forming ALE for the SAD set at p < 0.001


def test_result_does_not_depend_on_the_slab_width(sad_dataset):
    # Slabs only reorder memory traffic: one x-plane, the default and the whole volume give
    # the same maximum ALE, largest cluster and its mass, bit for bit.
    from mnsmeta.meta_analysis.engine import kernels

    results = {}
    for width in (1, kernels.SLAB, 91):
        plan = _sad_plan(sad_dataset, width)
        results[width] = [plan.iteration(foci, SAD_CUT) for foci in _random_foci(plan, 5)]
        prod, scratch, labels = plan.buffers()[:3]
        # Work buffers are left as found.
        assert prod.min() == 1.0 and scratch.max() == 0.0 and labels.max() == 0
    assert results[1] == results[kernels.SLAB] == results[91]
    assert all(size > 0 for _, size, _ in results[1])


def test_truncated_kernels_give_exactly_the_whole_kernels_result(sad_dataset):
    # Rows of kernel values below TAIL are not stamped; the voxels that this could move
    # across the cut are recomputed from the whole kernels, so nothing changes, bit for bit:
    # with clusters (the usual case) and when no voxel reaches the cut (the largest ALE then
    # comes from a second, whole stamping).
    from mnsmeta.meta_analysis.engine import kernels

    plan = _sad_plan(sad_dataset, kernels.SLAB)
    assert (plan.core[:, :, 1] - plan.core[:, :, 0]).sum() < 0.7 * (
        plan.whole[:, :, 1] - plan.whole[:, :, 0]
    ).sum()
    for cut in (SAD_CUT, 0.5):
        for foci in _random_foci(plan, 20, seed=1):
            truncated = plan.iteration(foci, cut)
            assert truncated == plan.iteration(foci, cut, truncate=False)
        if cut == 0.5:
            assert truncated[1] == 0 and 0 < truncated[0] < cut
        else:
            assert truncated[1] > 0


def test_truncation_bound_holds_for_every_voxel(sad_dataset):
    # The stamped product of the truncated kernels, times the slack, never exceeds the true
    # product (here from whole kernels), at any voxel of random maps.
    from mnsmeta.meta_analysis.engine import kernels

    plan = _sad_plan(sad_dataset, kernels.SLAB)
    prod, scratch = kernels.slab_buffers(plan.mask.shape)
    for foci in _random_foci(plan, 3, seed=2):
        foci = np.ascontiguousarray(foci, dtype=np.int64)
        maps = {}
        for name, rows in (("core", plan.core), ("whole", plan.whole)):
            out = np.empty(plan.mask.shape)
            kernels._ale_product(
                foci, plan.bounds, plan.kernel_of, plan.kernels, plan.halves, rows, prod,
                scratch, out,
            )  # fmt: skip
            maps[name] = out[plan.mask]
        assert np.all(maps["core"] * plan.slack <= maps["whole"])
        assert np.all(maps["core"] >= maps["whole"])
        assert (maps["core"] > maps["whole"]).mean() > 0.5  # the truncation does cut


def test_many_experiments_keep_the_truncation_exact_and_cheap():
    # With thousands of experiments the tail left out shrinks so that the slack stays >= 0.99
    # (with TAIL it would be 0.97 here, 0.87 at Neurosynth's 14,000 experiments); the result
    # is still exactly that of whole kernels.
    from mnsmeta.data.space import brain_mask_img
    from mnsmeta.meta_analysis.engine import kernels, montecarlo

    n_experiments = 3000
    plan = montecarlo.Plan(brain_mask_img(), np.arange(0, 5 * n_experiments + 1, 5),
                            np.full(n_experiments, 20))  # fmt: skip
    assert kernels.truncation_slack(plan.kernels, n_experiments) < 0.975
    assert 0.99 - 1e-9 <= plan.slack < 1.0
    assert kernels.truncation_tail(plan.kernels, 30) == kernels.TAIL
    (foci,) = _random_foci(plan, 1, seed=3)
    largest, _, _ = plan.iteration(foci, 0.0, truncate=False)
    for cut in (0.9 * largest, 0.97 * largest):
        truncated = plan.iteration(foci, cut)
        assert truncated == plan.iteration(foci, cut, truncate=False)
        assert truncated[1] > 0


def test_mask_spans_bound_each_rows_mask_voxels():
    # Each (x, y) row's run starts at its first mask voxel and ends after its last (a gap
    # inside stays in the run); rows without mask voxels get an empty run.
    from mnsmeta.meta_analysis.engine.montecarlo import mask_spans

    mask = np.zeros((2, 3, 6), dtype=bool)
    mask[0, 0, [0, 5]] = True  # both edges, a gap between
    mask[0, 2, 3] = True
    mask[1, 1, 1:4] = True
    spans = mask_spans(mask)
    assert spans.tolist() == [[0, 6], [0, 0], [3, 4], [0, 0], [1, 4], [0, 0]]


def test_reading_only_the_mask_runs_changes_nothing():
    # The slab read visits only each row's run of mask voxels (mask_spans): the smallest
    # product and the candidates (in order) are those of reading every voxel, and every
    # voxel of the slab, in the mask or not, is reset to 1.
    from mnsmeta.meta_analysis.engine.montecarlo import _read_slab, mask_spans

    rng = np.random.default_rng(0)
    shape = (5, 7, 11)
    mask = rng.random(shape) < 0.3
    mask[:, :, 0] = mask[:, :, -1] = True  # runs reaching both z edges
    mask[:, 3] = False  # rows without mask voxels
    everything = np.tile([0, shape[2]], (shape[0] * shape[1], 1))
    flat_mask = mask.reshape(-1)
    # Products below 1 everywhere; the smallest of all lies outside the mask.
    volume = rng.uniform(0.9, 1.0, shape)
    volume[2, 3, 5] = 0.5
    results = []
    for spans in (everything, mask_spans(mask)):
        prod = volume[1:4].copy()  # the slab of x-planes 1 to 3
        cand = np.zeros((prod.size, 3), dtype=np.int32)
        low, n_cand = _read_slab(prod.reshape(-1), flat_mask, spans, 1, 4, 7, 11, 0.95, cand, 0)
        assert np.all(prod == 1.0)
        assert 0.9 <= low < 0.95 and n_cand > 10
        results.append((low, cand[:n_cand].tolist()))
    assert results[0] == results[1]
