"""The base-rate null: sets of whole database experiments drawn like the analysis.

The uniform (and grey-matter) relocation nulls answer "are the foci non-uniform?", which any
fMRI literature is; the base-rate null answers "more than typical fMRI foci would?". On
random database sets the first rejects nearly always and the second at its nominal rate.
"""

from __future__ import annotations

import numpy as np
import pytest

from mnsmeta.data.space import brain_mask_img
from mnsmeta.inference.masks import anatomical_mask
from mnsmeta.inference.overlap import (
    BaseRateDesign,
    DatabasePool,
    base_rate_null,
    permutation_p,
    roi_null,
)
from mnsmeta.meta_analysis.engine.relocation import AleComputer


def _pool():
    """Six studies with 1, 2, 2, 3, 5 and 8 foci (foci numbered by study in ``i``)."""
    counts = [1, 2, 2, 3, 5, 8]
    study = np.repeat(np.arange(6), counts)
    within = np.concatenate([np.arange(c) for c in counts])
    ijk = np.column_stack([study * 10 + within, np.full(len(study), 50),
                           np.full(len(study), 40)])  # fmt: skip
    return DatabasePool(ijk, study)


def test_a_drawn_set_has_the_analysis_foci_counts_from_distinct_studies():
    pool = _pool()
    ijk, experiment = pool.draw([2, 2, 3], np.random.default_rng(0))
    assert np.bincount(experiment).tolist() == [2, 2, 3]
    studies = [set(ijk[experiment == e, 0] // 10) for e in range(3)]
    assert all(len(s) == 1 for s in studies)  # each experiment is one pool study
    assert len(set.union(*studies)) == 3  # three distinct studies
    # More foci than any study has an exact match for: k foci of a larger study.
    ijk, experiment = pool.draw([4], np.random.default_rng(1))
    assert len(ijk) == 4 and len(set(ijk[:, 0] // 10)) == 1
    again, _ = pool.draw([4], np.random.default_rng(1))
    np.testing.assert_array_equal(ijk, again)  # same seed, same set


@pytest.fixture(scope="module")
def database():
    from mnsmeta.workflows.overlap import database_pool

    return database_pool()


def test_the_base_rate_test_is_calibrated_on_random_database_sets_and_the_uniform_null_not(
    database,
):
    """Random database sets drawn like a 20-experiment design: the base-rate test rejects
    about 5 % of them at 0.05 (binomial 99 % range for 160 sets: 1-17 rejections), the
    uniform-relocation test nearly all (measured on the real data: 100 % of 20 sets)."""
    computer = AleComputer(brain_mask_img(), "brain")
    rng = np.random.default_rng(0)
    counts = database.counts[rng.choice(len(database), 20, replace=False)]
    design = BaseRateDesign(counts, np.full(20, 20), cut=0.02, size_cut=100)
    masks = {"anatomical": anatomical_mask().data}
    null_roi, _ = base_rate_null(computer, [design], database, masks, 300, seed=1)
    tested_roi, _ = base_rate_null(computer, [design], database, masks, 160, seed=2)
    null = null_roi[0]["anatomical"][:, 0]
    p = np.array([permutation_p(o, null) for o in tested_roi[0]["anatomical"][:, 0]])
    rejected = int((p < 0.05).sum())
    assert 1 <= rejected <= 17, rejected
    # The same kind of sets against foci relocated uniformly in the brain.
    sizes = np.full(int(counts.sum()), 20)
    uniform = []
    draw = np.random.default_rng(3)
    for number in range(12):
        ijk, experiment = database.draw(counts, draw)
        observed, relocated = roi_null(computer, ijk, experiment, sizes, masks, 60, number)
        uniform.append(permutation_p(observed["anatomical"][0], relocated["anatomical"][:, 0]))
    assert np.mean(np.array(uniform) < 0.05) >= 0.75


def test_a_conjunction_set_is_thresholded_in_both_designs(database):
    """With two designs, a drawn set's thresholded map is the voxels significant in both:
    never more than either design's alone."""
    computer = AleComputer(brain_mask_img(), "brain")
    rng = np.random.default_rng(5)
    designs = [
        BaseRateDesign(database.counts[rng.choice(len(database), n, replace=False)],
                       np.full(n, 25), cut=0.012, size_cut=20)
        for n in (12, 14)
    ]  # fmt: skip
    brain = np.asarray(brain_mask_img().dataobj) > 0
    masks = {"brain": brain}
    _, alone = base_rate_null(computer, designs[:1], database, masks, 20, seed=7)
    _, both = base_rate_null(computer, designs, database, masks, 20, seed=7)
    assert alone["brain"].max() > 0  # low cuts: the drawn sets have clusters
    assert (both["brain"] <= alone["brain"]).all()
