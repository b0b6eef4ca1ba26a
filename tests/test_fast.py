"""The fast engine's Monte Carlo null equals NiMARE's."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from mnsmeta import ale
from mnsmeta.experiments import build_experiments
from mnsmeta.records import load_curation

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
        return build_experiments(load_curation(REPO / "coordinates"), "SAD").to_dataset()


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
