"""The MNI grid's geometry: the distance from a focus to the brain, without a whole-grid
transform at start-up."""

from __future__ import annotations

import nibabel as nib
import numpy as np
from scipy import ndimage

from mnsmeta.data import space


def test_distance_to_brain_equals_the_euclidean_distance_transform():
    img = nib.load(space.brain_mask_file())
    mask = np.asanyarray(img.dataobj).astype(bool)
    transform = ndimage.distance_transform_edt(~mask, sampling=img.header.get_zooms()[:3])
    low, high = space.mni_bounds()
    foci = np.random.default_rng(0).uniform(low - 4, high + 4, (400, 3))
    ijk = np.rint(np.c_[foci, np.ones(len(foci))] @ np.linalg.inv(img.affine).T)[:, :3]
    ijk = ijk.astype(int)
    on_grid = np.all((ijk >= 0) & (ijk < np.array(mask.shape)), axis=1)
    expected = np.full(len(foci), np.inf)
    expected[on_grid] = transform[tuple(ijk[on_grid].T)]
    found = space.distance_to_brain(foci)
    assert np.array_equal(np.isinf(found), ~on_grid)
    np.testing.assert_array_equal(found[on_grid], expected[on_grid])
    assert (found[on_grid] > 0).sum() > 100  # many foci outside the brain were measured
