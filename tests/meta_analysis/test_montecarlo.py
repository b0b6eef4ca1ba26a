"""The fast engine's Monte Carlo null equals NiMARE's."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from mnsmeta.curation.experiments import build_experiments
from mnsmeta.curation.records import load_curation
from mnsmeta.meta_analysis import ale
from mnsmeta.meta_analysis.datasets import to_dataset

NULLS = {
    "voxel": "values_level-voxel_corr-fwe_method-montecarlo",
    "size": "values_desc-size_level-cluster_corr-fwe_method-montecarlo",
    "mass": "values_desc-mass_level-cluster_corr-fwe_method-montecarlo",
}


@pytest.fixture(scope="module")
def sad_dataset():
    from conftest import REPO

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return to_dataset(build_experiments(load_curation(REPO / "coordinates"), "SAD"))


def fit(dataset, engine, seed, n_iters=120):
    _, result = ale.fit_ale(dataset, n_iters, seed, n_jobs=2, engine=engine)
    return result


def test_same_seed_gives_the_same_null_and_maps_as_nimare(sad_dataset):
    fast, reference = fit(sad_dataset, "fast", 7), fit(sad_dataset, "nimare", 7)
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


def test_nulls_from_different_seeds_agree_in_distribution(sad_dataset):
    # Two-sample Kolmogorov-Smirnov test between the fast null (seed 1) and NiMARE's (seed 2).
    fast = fit(sad_dataset, "fast", 1, n_iters=300).estimator.null_distributions_
    reference = fit(sad_dataset, "nimare", 2, n_iters=300).estimator.null_distributions_
    for key in ("voxel", "size"):
        assert stats.ks_2samp(fast[NULLS[key]], reference[NULLS[key]]).pvalue > 0.001, key


def _sad_plan(dataset, slab):
    from mnsmeta.data.space import brain_mask_img
    from mnsmeta.meta_analysis.engine import montecarlo

    coordinates = dataset.coordinates.sort_values("id", kind="stable")
    sizes = dataset.metadata.set_index("id")["sample_sizes"].map(lambda n: n[0])
    coordinates = coordinates.assign(sample_size=coordinates["id"].map(sizes).to_numpy())
    return montecarlo._Plan.for_coordinates(coordinates, brain_mask_img(), slab)


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
