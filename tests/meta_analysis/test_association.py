"""Term association maps equal NiMARE's MKDAChi2 (the reverse-inference test of Neurosynth)."""

from __future__ import annotations

import numpy as np
import pytest

from mnsmeta.data.space import brain_mask_img, voxel_to_mm
from mnsmeta.meta_analysis.association import StudyCounts

BRAIN = np.asarray(brain_mask_img().dataobj) > 0


def _studies(rng, n_studies, hot=None, n_hot=0):
    """Random foci per study; the first ``n_hot`` studies also report one near ``hot``."""
    brain_ijk = np.argwhere(BRAIN)
    ijk, study = [], []
    for s in range(n_studies):
        foci = brain_ijk[rng.integers(len(brain_ijk), size=rng.integers(3, 12))]
        if s < n_hot:
            foci = np.vstack([foci, hot + rng.integers(-1, 2, size=3)])
        ijk.append(foci)
        study.append(np.full(len(foci), s))
    return np.vstack(ijk), np.concatenate(study)


def _nimare_dataset(ijk, study, ids):
    from nimare.dataset import Dataset

    xyz = voxel_to_mm(ijk)
    source = {
        f"s{s}": {
            "contrasts": {
                "1": {
                    "coords": {
                        "space": "MNI",
                        "x": xyz[study == s, 0].tolist(),
                        "y": xyz[study == s, 1].tolist(),
                        "z": xyz[study == s, 2].tolist(),
                    }
                }
            }
        }
        for s in ids
    }
    return Dataset(source, target="mni152_2mm")


def test_the_association_map_is_nimares_mkdachi2():
    from nimare.meta.cbma.mkda import MKDAChi2

    rng = np.random.default_rng(3)
    hot = np.array([25, 70, 40])
    ijk, study = _studies(rng, 60, hot=hot, n_hot=12)
    selected = np.zeros(60, dtype=bool)
    selected[:15] = True  # 12 of the 15 report a focus near the hot spot
    ours = StudyCounts(ijk, study, 60).association(selected)
    first = _nimare_dataset(ijk, study, np.flatnonzero(selected))
    second = _nimare_dataset(ijk, study, np.flatnonzero(~selected))
    theirs = MKDAChi2().fit(first, second)
    z = theirs.get_map("z_desc-association", return_type="array")
    p = theirs.get_map("p_desc-association", return_type="array")
    np.testing.assert_allclose(ours.z, z, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.p, p, rtol=1e-4, atol=1e-12)
    # The planted association is found, at FDR 0.05, where it was planted.
    found = ours.significant(0.05)
    assert found[tuple(hot)]
    assert ours.n_selected == 15 and ours.n_unselected == 45


def test_without_an_association_fdr_finds_nothing():
    rng = np.random.default_rng(4)
    ijk, study = _studies(rng, 80)
    counts = StudyCounts(ijk, study, 80)
    selected = rng.random(80) < 0.25
    assert not counts.association(selected).significant(0.01).any()
    assert counts.count(np.zeros(80, dtype=bool)).sum() == 0


@pytest.mark.parametrize("n_studies", [1, 5])
def test_every_study_counts_once_per_voxel(n_studies):
    """Two foci of one study 2 mm apart make overlapping spheres that count once."""
    ijk = np.array([[45, 60, 40], [46, 60, 40]] * n_studies)
    study = np.repeat(np.arange(n_studies), 2)
    counts = StudyCounts(ijk, study, n_studies)
    assert counts.total.max() == n_studies
