"""TFCE of ALE z maps equals JALE's, and its Monte Carlo null finds what it should."""

from __future__ import annotations

import numpy as np
import pytest
from jale.core.utils.compute import compute_tfce
from scipy import ndimage

from conftest import CENTRES, sleuth_text
from mnsmeta.curation.inputs import read_experiments
from mnsmeta.meta_analysis import ale
from mnsmeta.meta_analysis.datasets import to_dataset
from mnsmeta.meta_analysis.engine.tfce import max_tfce, tfce_map


def smooth_map(seed: int, scale: float = 8.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.normal(size=(91, 109, 91)), 2) * scale


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    path = tmp_path_factory.mktemp("tfce") / "studies.txt"
    path.write_text(sleuth_text(20, seed=11))
    experiments = read_experiments(path, "studies")[0]
    estimator, result = ale.fit_ale(to_dataset(experiments), n_iters=10, seed=0)
    return estimator, result, experiments


def test_the_tfce_map_is_jales_on_random_and_real_z_maps(fitted):
    _, result, _ = fitted
    real = result.get_map("z", return_type="image").get_fdata()
    for z in (smooth_map(0), real):
        reference = compute_tfce(z)
        np.testing.assert_allclose(tfce_map(z), reference, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_largest_tfce_in_one_pass_is_jales_maximum(seed):
    # Up to the order of the additions: 1e-12 relative.
    z = smooth_map(seed)
    assert max_tfce(z) == pytest.approx(compute_tfce(z).max(), rel=1e-12)


def test_a_map_without_positive_z_has_no_tfce():
    z = -np.abs(smooth_map(4))
    assert max_tfce(z) == 0.0
    assert not tfce_map(z).any()


def test_the_null_is_reproducible_and_finds_the_planted_convergence(fitted):
    estimator, result, experiments = fitted
    null = ale.tfce_null(estimator, experiments, n_iters=40, seed=3)
    np.testing.assert_array_equal(null, ale.tfce_null(estimator, experiments, 40, seed=3))
    assert not np.array_equal(null, ale.tfce_null(estimator, experiments, 40, seed=4))
    maps = ale.tfce_maps(result, null)
    significant = maps["z"] > 0
    assert significant.any()
    affine = result.get_map("z", return_type="image").affine
    for centre in CENTRES:  # both planted centres survive, within 4 mm
        i, j, k = np.round(np.linalg.solve(affine, [*centre, 1])[:3]).astype(int)
        assert significant[i - 2 : i + 3, j - 2 : j + 3, k - 2 : k + 3].any()
    # The FWE p map and the thresholded map agree.
    assert (maps["logp"][significant] > -np.log10(0.05)).all()
