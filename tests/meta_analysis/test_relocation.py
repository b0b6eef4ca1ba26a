"""The ALE values used by the null models equal NiMARE's ALE on the same foci."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from nimare.meta.cbma.ale import ALE
from nimare.utils import mm2vox

from mnsmeta.curation.experiments import build_experiments
from mnsmeta.curation.records import load_curation
from mnsmeta.meta_analysis.datasets import to_dataset
from mnsmeta.meta_analysis.engine.relocation import AleComputer, null_space_mask


def test_engine_ale_equals_nimare_on_the_real_sad_set():
    from conftest import REPO

    experiment_set = build_experiments(load_curation(REPO / "coordinates"), "SAD")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = to_dataset(experiment_set)
        reference = ALE().fit(dataset).get_map("stat", return_type="array")
    coordinates = dataset.coordinates
    sizes = dataset.metadata.set_index("id")["sample_sizes"].map(lambda v: int(v[0]))
    computer = AleComputer(dataset.masker.mask_img)
    ours = computer.ale(
        mm2vox(coordinates[["x", "y", "z"]].to_numpy(), dataset.masker.mask_img.affine),
        coordinates["id"].astype("category").cat.codes.to_numpy(),
        coordinates["id"].map(sizes).to_numpy(),
    )
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() <= 1e-6 * reference.max()
    through_nimare = computer.ale_reference(
        mm2vox(coordinates[["x", "y", "z"]].to_numpy(), dataset.masker.mask_img.affine),
        coordinates["id"].astype("category").cat.codes.to_numpy(),
        coordinates["id"].map(sizes).to_numpy(),
    )
    assert np.abs(through_nimare - reference).max() <= 1e-6 * reference.max()


def test_engine_relocations_match_nimare_ma_maps():
    """Random foci, experiments not contiguous, several sample sizes: stamping == NiMARE."""
    from mnsmeta.data.space import brain_mask_img

    computer = AleComputer(brain_mask_img())
    rng = np.random.default_rng(3)
    ijk = computer.random_foci(rng, 60)
    experiment = rng.integers(0, 9, 60)
    sizes = np.array([12, 20, 35, 60, 12, 20, 35, 60, 100])[experiment]
    stamped = computer.ale(ijk, experiment, sizes)
    reference = computer.ale_reference(ijk, experiment, sizes)
    assert np.abs(stamped - reference).max() <= 1e-6 * reference.max()


def test_grey_matter_null_space_is_a_subset_of_the_brain():
    from mnsmeta.data.space import brain_mask_img

    brain = null_space_mask(brain_mask_img(), "brain")
    grey = null_space_mask(brain_mask_img(), "gm")
    assert grey.sum() < brain.sum()
    assert not (grey & ~brain).any()
    assert grey.sum() > 0.4 * brain.sum()


@pytest.mark.parametrize("zooms", [(2.0, 2.0, 2.0), (3.0, 3.0, 3.0)])
def test_kept_kernels_are_nimares(zooms):
    """The kernels kept per sample size and voxel size are ``get_ale_kernel``'s, exactly."""
    import nibabel as nib
    from nimare.meta.utils import get_ale_kernel

    from mnsmeta.meta_analysis.engine.kernels import _ale_kernel

    image = nib.Nifti1Image(np.zeros((4, 4, 4), dtype=np.uint8), np.diag([*zooms, 1.0]))
    for n in (5, 12, 33.5, 1000):
        np.testing.assert_array_equal(
            _ale_kernel(n, zooms), get_ale_kernel(image, sample_size=n)[1]
        )


def test_region_stamper_gives_the_whole_maps_values_bit_for_bit():
    """Only the region's voxels, only the foci in reach: the same floats as the whole map,
    for regions in the middle of the brain, at its edge, split in two, and empty."""
    from mnsmeta.data.space import brain_mask_img

    computer = AleComputer(brain_mask_img())
    rng = np.random.default_rng(7)
    experiment = rng.integers(0, 9, 120)
    sizes = np.array([12, 20, 35, 60, 12, 20, 35, 60, 100])[experiment]
    shape = computer.mask.shape
    middle, edge, split, empty = (np.zeros(shape, dtype=bool) for _ in range(4))
    middle[40:50, 50:60, 40:50] = True
    edge[:12, :, :] = True  # the first slab and a half, mostly outside the brain
    split[20:26, 40:70, 30:40] = split[66:72, 40:70, 30:40] = True
    for region in (middle, edge, split, empty):
        stamper = computer.region_stamper(experiment, sizes, region)
        for _ in range(3):
            ijk = computer.random_foci(rng, 120)
            whole = computer.ale(ijk, experiment, sizes)
            np.testing.assert_array_equal(stamper.ale(ijk), whole[region[computer.mask]])
        # Foci out of the region's reach were skipped (the test would not see them otherwise).
        if region is middle:
            assert 0 < stamper.in_reach[tuple(ijk.T)].sum() < len(ijk)
