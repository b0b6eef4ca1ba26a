"""The size-balanced subtraction: our mean balanced differences equal NiMARE's bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import sleuth_text
from mnsmeta.curation.inputs import read_experiments
from mnsmeta.meta_analysis import ale
from mnsmeta.meta_analysis.datasets import to_dataset
from mnsmeta.meta_analysis.engine.balanced import mean_balanced_difference


@pytest.fixture(scope="module")
def unequal_groups(tmp_path_factory):
    """Two synthetic groups of 14 and 9 experiments (target size 9)."""
    root = tmp_path_factory.mktemp("balanced")
    (root / "large.txt").write_text(sleuth_text(14, seed=5))
    (root / "small.txt").write_text(sleuth_text(9, seed=6, name="Other"))
    return [to_dataset(read_experiments(root / f"{n}.txt", n)[0]) for n in ("large", "small")]


def test_the_mean_balanced_difference_is_nimares_bit_for_bit():
    from nimare.meta.cbma.ale import BalancedALESubtraction

    rng = np.random.default_rng(0)
    # Sparse float32 MA rows, some values so small that 1 - MA rounds to 1.
    maps = [np.where(rng.random((n, 500)) < 0.3, rng.random((n, 500)) ** 8, 0.0) for n in (7, 5)]
    maps = [m.astype(np.float32) for m in maps]

    ours = mean_balanced_difference(*maps, 4, 25, np.random.RandomState(1), n_cores=2)
    reference = BalancedALESubtraction._mean_balanced_difference(
        None, *maps, 4, 25, np.random.RandomState(1)
    )
    assert ours.dtype == reference.dtype == np.float32
    np.testing.assert_array_equal(ours, reference)


@pytest.mark.parametrize("null_method", ["random-foci", "label-permutation"])
def test_same_seed_gives_nimares_balanced_maps_and_nulls(unequal_groups, null_method):
    from nimare.meta.cbma.ale import BalancedALESubtraction

    from mnsmeta.meta_analysis.nimare_adapter import quiet
    from mnsmeta.meta_analysis.nimare_adapter.estimators import FastBalancedALESubtraction

    fitted = {}
    for name, make in (("fast", FastBalancedALESubtraction), ("nimare", BalancedALESubtraction)):
        with quiet():
            estimator = make(n_iters=3, n_subsamples=6, difference_iterations=8,
                             null_method=null_method, random_state=2, n_cores=2)  # fmt: skip
            fitted[name] = estimator.fit(*unequal_groups)
    fast, reference = fitted["fast"], fitted["nimare"]
    for name, null in reference.estimator.null_distributions_.items():
        np.testing.assert_array_equal(fast.estimator.null_distributions_[name], null)
    assert set(fast.maps) == set(reference.maps)
    for name, values in reference.maps.items():
        np.testing.assert_array_equal(fast.maps[name], values, name)


def test_balanced_directions_split_the_signed_z_map(unequal_groups):
    result = ale.fit_balanced_subtraction(*unequal_groups, n_iters=3, seed=1, n_jobs=2)
    z = result.get_map("z_desc-balancedGroup1MinusGroup2", return_type="image").get_fdata()
    directions = ale.balanced_maps(result)
    np.testing.assert_array_equal(directions["group1>group2"] - directions["group2>group1"], z)
    assert (directions["group1>group2"] >= 0).all() and (directions["group2>group1"] >= 0).all()
