"""The ALE subtraction: our permutation and cluster nulls equal NiMARE's, and what they find."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from conftest import CENTRES, sleuth_text
from mnsmeta.curation.inputs import read_experiments
from mnsmeta.meta_analysis import ale
from mnsmeta.meta_analysis.datasets import to_dataset
from mnsmeta.meta_analysis.engine.subtraction import largest_clusters


def scattered_text(n_experiments: int, seed: int) -> str:
    """A Sleuth file whose foci are scattered only (nothing near CENTRES)."""
    rng = np.random.default_rng(seed)
    blocks = ["// Reference=MNI"]
    for e in range(n_experiments):
        foci = [rng.uniform([-50, -80, 10], [50, 40, 60]) for _ in range(rng.integers(3, 7))]
        lines = "\n".join("\t".join(f"{v:.0f}" for v in focus) for focus in foci)
        blocks.append(f"// Other {e + 1}: task > baseline\n// Subjects=20\n{lines}\n")
    return "\n".join(blocks) + "\n"


@pytest.fixture(scope="module")
def two_groups(tmp_path_factory):
    """Group 1 converges on CENTRES, group 2 is scattered; each group's ALE p < 0.01 map."""
    root = tmp_path_factory.mktemp("subtraction")
    (root / "near.txt").write_text(sleuth_text(14, seed=3))
    (root / "far.txt").write_text(scattered_text(12, seed=4))
    datasets = [
        to_dataset(read_experiments(root / f"{name}.txt", name)[0]) for name in ("near", "far")
    ]
    masks = []
    for dataset in datasets:
        _, result = ale.fit_ale(dataset, n_iters=10, seed=0)
        p = result.get_map("p", return_type="image")
        masks.append(nib.Nifti1Image((p.get_fdata() < 0.01).astype(np.float32), p.affine))
    return datasets, masks


def fit(two_groups, engine, n_iters=40, jobs=2, seed=5):
    (first, second), (mask1, mask2) = two_groups
    return ale.fit_subtraction(first, second, mask1, mask2, n_iters, seed, jobs, engine=engine)


def test_same_seed_gives_nimares_permutations_nulls_and_maps_bit_for_bit(two_groups):
    fast, reference = fit(two_groups, "fast"), fit(two_groups, "nimare")
    nulls = reference.estimator.null_distributions_
    assert set(nulls) == set(fast.estimator.null_distributions_)
    assert len(nulls) == 4  # voxel max, cluster-forming cut, cluster sizes and masses
    for name, null in nulls.items():
        np.testing.assert_array_equal(fast.estimator.null_distributions_[name], null, name)
    for name in reference.maps:
        np.testing.assert_array_equal(fast.maps[name], reference.maps[name], name)


def test_the_null_does_not_depend_on_the_number_of_threads(two_groups):
    one, two = fit(two_groups, "fast", jobs=1), fit(two_groups, "fast", jobs=2)
    for name, null in one.estimator.null_distributions_.items():
        np.testing.assert_array_equal(two.estimator.null_distributions_[name], null)


def test_a_difference_planted_in_group_one_survives_cluster_fwe_in_that_direction(two_groups):
    result = fit(two_groups, "fast", n_iters=200)
    _, (mask1, mask2) = two_groups
    found = ale.subtraction_clusters(result, mask1, mask2, cluster_p=0.05)
    near_gt_far = found["group1>group2"]
    assert found["cluster_p"]["group1>group2"] < 0.05
    affine = mask1.affine
    ijk = np.round(np.linalg.solve(affine, [*CENTRES[0], 1])[:3]).astype(int)
    # Within 6 mm of the planted centre, and only inside group 1's own significant map.
    window = near_gt_far[ijk[0] - 3 : ijk[0] + 4, ijk[1] - 3 : ijk[1] + 4, ijk[2] - 3 : ijk[2] + 4]
    assert (window > 0).any()
    assert not ((near_gt_far > 0) & (mask1.get_fdata() == 0)).any()
    # Group 2 (scattered foci) exceeds group 1 nowhere.
    assert not found["group2>group1"].any()


def test_clusters_count_faces_only_and_each_sign_apart():
    ijk = np.array([[0, 0, 0], [0, 0, 1], [0, 1, 1], [1, 1, 0], [3, 3, 3], [3, 3, 4]])
    values = np.array([2.0, 2.0, 2.0, 2.0, -3.0, -3.0], dtype=np.float32)
    # (1, 1, 0) touches the others by an edge only; the negative pair is one cluster of 2.
    size, mass = largest_clusters(values, 1.0, ijk, (5, 5, 5))
    assert size == 3
    assert mass == pytest.approx(4.0)  # the negative pair: 2 x (3 - 1)
    assert largest_clusters(values, 2.5, ijk, (5, 5, 5))[0] == 2
    assert largest_clusters(values, 3.0, ijk, (5, 5, 5)) == (0, 0.0)  # strictly above the cut
