"""Specificity where the claims are: region-wise differences, their FWE p, their power.

Experiments are synthetic: a few foci scattered in the brain, and, for a planted effect, one
focus at a known place in some of them. Regions are cubes of voxels, so that each answer is
known without an atlas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mnsmeta.curation.experiments import ExperimentSet
from mnsmeta.data.space import brain_mask_img, mm_to_voxel, voxel_to_mm
from mnsmeta.inference.specificity import (
    RegionContrast,
    RegionMA,
    foci_share_difference,
    reading,
    readings,
)

CENTRE = np.array([-22.0, -4.0, -18.0])  # left amygdala
FAR = np.array([40.0, -60.0, 40.0])  # right parietal cortex


def _brain():
    return np.asarray(brain_mask_img().dataobj) > 0


def _cube(centre_mm, half=3):
    mask = np.zeros(_brain().shape, dtype=bool)
    i, j, k = mm_to_voxel([centre_mm])[0]
    mask[i - half : i + half + 1, j - half : j + half + 1, k - half : k + half + 1] = True
    return mask & _brain()


def _set(name, n, seed, planted=0, at=CENTRE, foci=6, sample_size=20):
    """``n`` experiments of ``foci`` random brain foci; the first ``planted`` also report
    a focus at ``at``."""
    rng = np.random.default_rng(seed)
    brain = np.argwhere(_brain())
    rows = []
    for e in range(n):
        points = voxel_to_mm(brain[rng.integers(len(brain), size=foci)])
        if e < planted:
            points = np.vstack([points, at])
        rows += [(f"{name}{e}", *p) for p in points]
    foci_table = pd.DataFrame(rows, columns=["experiment_id", "x", "y", "z"])
    ids = [f"{name}{e}" for e in range(n)]
    experiments = pd.DataFrame({"sample_size": sample_size}, index=ids)
    return ExperimentSet(name, experiments, foci_table)


@pytest.mark.parametrize("region", ["cube", "hemisphere"])
def test_ma_on_region_voxels_is_nimares(region):
    """Both ways of stamping (look voxels up in the kernel, or the kernel's voxels up in the
    region) give NiMARE's compute_ale_ma values."""
    from nimare.meta.utils import compute_ale_ma

    brain = _brain()
    if region == "cube":
        mask = _cube(CENTRE)
    else:
        mask = brain.copy()
        mask[: mask.shape[0] // 2] = False
    experiments = _set("A", 4, seed=1, planted=2)
    ma, _, _ = compute_ale_ma(
        brain_mask_img(),
        experiments.ijk().astype(np.int32),
        exp_idx=experiments.experiment_of_foci(),
        sample_sizes=experiments.sample_size_of_foci(),
        use_dict=True,
    )
    expected = ma[:, np.flatnonzero(mask[brain])].toarray()
    stamp = RegionMA(np.argwhere(mask))
    which = experiments.experiment_of_foci()
    mine = [stamp.ma(experiments.ijk()[which == e], 20) for e in range(4)]
    np.testing.assert_allclose(mine, expected, rtol=1e-6, atol=1e-9)
    assert expected.max() > 0.005  # the planted foci are in the region


def test_leaving_one_focus_out_needs_no_restamping():
    """The largest and second largest kernel value per voxel give the MA without any one
    focus: the same as stamping the others."""
    experiments = _set("A", 1, seed=2, planted=1, foci=5)
    ijk = experiments.ijk()
    stamp = RegionMA(np.argwhere(_cube(CENTRE, half=6)))
    best, owner, second = stamp.top_two(ijk, 20)
    for left_out in range(len(ijk)):
        without = np.where(owner == left_out, second, best)
        np.testing.assert_allclose(without, stamp.ma(np.delete(ijk, left_out, axis=0), 20))


def test_two_copies_of_one_set_differ_nowhere():
    first = _set("A", 8, seed=3, planted=4)
    second = ExperimentSet(
        "B",
        first.experiments.rename(index=lambda i: "B" + i),
        first.foci.assign(experiment_id="B" + first.foci["experiment_id"]),
    )
    contrast = RegionContrast(first, second, {"amygdala": _cube(CENTRE)})
    table = contrast.table(contrast.null(200, seed=0))
    assert list(table["direction"]) == ["A>B", "B>A"]
    assert (table["max_difference"] == 0).all()
    # A difference of 0 is what half the exchanges of experiments give, or more.
    assert (table["p_fwe"] > 0.3).all() and (table["p_mean"] > 0.3).all()


def test_a_planted_convergence_exceeds_in_its_region_only_and_only_that_way():
    first = _set("SAD", 14, seed=4, planted=14)
    second = _set("HC", 14, seed=5)
    contrast = RegionContrast(first, second, {"amygdala": _cube(CENTRE), "far": _cube(FAR)})
    table = contrast.table(contrast.null(1000, seed=0)).set_index(["region", "direction"])
    here = table.loc[("amygdala", "SAD>HC")]
    assert here["p_fwe"] < 0.01 and here["voxel_p"] < 0.01
    # The peak of the difference is the planted place (within the kernel's 2 mm grid).
    assert np.linalg.norm(here[["peak_x", "peak_y", "peak_z"]].to_numpy(float) - CENTRE) <= 4
    assert here["ale_first"] > here["ale_second"]
    assert table.loc[("amygdala", "HC>SAD"), "p_fwe"] > 0.5
    assert table.loc[("far", "SAD>HC"), "p_fwe"] > 0.05
    assert (table["n_perm"] == 1000).all()
    # Each set's foci per experiment, for the reader (7: six scattered and the planted one).
    assert (table["foci_per_experiment_first"] == 7).all()
    assert (table["foci_per_experiment_second"] == 6).all()


def test_the_power_curve_rises_with_the_converging_experiments_and_is_seeded():
    first, second = _set("SAD", 12, seed=6), _set("HC", 12, seed=7)
    contrast = RegionContrast(first, second, {"amygdala": _cube(CENTRE)})
    curve = contrast.power("amygdala", 0, [1, 6, 12], seed=1, replicates=40, n_perm=100)
    assert list(curve["k"]) == [1, 6, 12]
    power = curve.set_index("k")["power"]
    assert power[1] <= 0.2  # one experiment is no convergence
    assert power[12] >= 0.8  # all twelve converging is found
    assert power[1] < power[6] <= power[12]
    assert (curve["power_low"] <= curve["power"]).all()
    again = contrast.power("amygdala", 0, [1, 6, 12], seed=1, replicates=40, n_perm=100)
    pd.testing.assert_frame_equal(curve, again)
    # Planted in the healthy set, the effect is found the other way.
    other = contrast.power("amygdala", 1, [12], seed=1, replicates=20, n_perm=100)
    assert other["power"].iloc[0] >= 0.8


def test_an_effect_at_a_given_place_is_planted_there():
    first, second = _set("SAD", 10, seed=8), _set("HC", 10, seed=9)
    region = _cube(CENTRE, half=8)
    contrast = RegionContrast(first, second, {"amygdala": region})
    at_peak = contrast.power("amygdala", 0, [10], 2, target_mm=CENTRE, replicates=20, n_perm=100)
    assert at_peak["power"].iloc[0] >= 0.8


def test_the_share_of_foci_in_a_mask_is_compared_by_permuting_experiments():
    mask = _cube(CENTRE, half=2)
    inside = _set("SAD", 6, seed=10, planted=6, foci=0)  # every focus in the mask
    outside = _set("HC", 6, seed=11, at=FAR, planted=6, foci=0)  # none
    result = foci_share_difference(inside, outside, mask, n_perm=2000, seed=0)
    assert result["share_first"] == 1 and result["share_second"] == 0
    assert result["difference"] == 1
    # Only the observed split (1 of C(12, 6) = 924) reaches a difference of 1.
    assert result["p"] < 0.01
    reverse = foci_share_difference(outside, inside, mask, n_perm=2000, seed=0)
    assert reverse["p"] == 1


def test_a_null_reads_as_evidence_only_with_power():
    assert reading(0.01, 0.1) == "exceeds"
    assert reading(0.3, 0.85) == "does not exceed (power 85%)"
    assert reading(0.3, 0.4) == "inconclusive (power 40%)"
    assert reading(0.3, np.nan) == "inconclusive (power not simulated)"


def test_readings_take_the_power_at_the_effect_of_interest():
    keys = {"analysis": "SAD_vs_HC", "region": "amygdala"}
    differences = pd.DataFrame(
        [
            {**keys, "first": "SAD", "second": "HC", "direction": "SAD>HC",
             "max_difference": 0.01, "p_fwe": 0.4},
            {**keys, "first": "SAD", "second": "HC", "direction": "HC>SAD",
             "max_difference": 0.02, "p_fwe": 0.01},
        ]
    )  # fmt: skip
    power = pd.DataFrame(
        [
            {**keys, "direction": d, "k": k, "power": p, "k_of_interest": 4, "n_planted": 12}
            for d in ("SAD>HC", "HC>SAD")
            for k, p in ((2, 0.1), (4, 0.5), (8, 0.9))
        ]
    )
    differences["foci_per_experiment_first"] = 30.0
    differences["foci_per_experiment_second"] = 10.0
    table = readings(differences, power).set_index("direction")
    # The larger set's foci per experiment over the other's, per direction.
    assert (
        table.loc["SAD>HC", "density_ratio"] == 3 and table.loc["HC>SAD", "density_ratio"] == 1 / 3
    )
    assert table.loc["SAD>HC", "reading"] == "inconclusive (power 50%)"
    assert table.loc["SAD>HC", "mde"] == 8
    assert table.loc["HC>SAD", "reading"] == "exceeds"


def test_the_largest_value_outside_some_columns_is_np_delete_then_max():
    """The power replicates' shortcut: each row's top columns, in order, stand in for the
    whole row unless every one of them is excluded."""
    from mnsmeta.inference.specificity import _LargestOutside

    rng = np.random.default_rng(0)
    values = rng.integers(0, 40, size=(50, 300)).astype(float)  # many ties
    largest = _LargestOutside(values, keep=8)
    top_of_row_0 = largest.cols[0]
    for columns in (
        np.array([], dtype=np.int64),
        rng.choice(300, 20, replace=False),
        np.sort(top_of_row_0),  # row 0 falls back to the whole row
        np.arange(290),
        np.arange(300),  # nothing left: -inf
    ):
        rest = np.delete(values, columns, axis=1)
        expected = rest.max(axis=1) if rest.shape[1] else np.full(50, -np.inf)
        np.testing.assert_array_equal(largest.outside(columns), expected)
