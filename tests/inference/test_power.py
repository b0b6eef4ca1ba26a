"""The power simulation and the Monte Carlo precision of a p: what a null verdict rests on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mnsmeta.curation.experiments import ExperimentSet
from mnsmeta.data.space import brain_mask_img
from mnsmeta.inference.power import (
    PlantingDesign,
    clusters_in_region,
    detection_power,
    minimum_detectable,
    region_mask,
)
from mnsmeta.inference.precision import decided, holm, mc_interval
from mnsmeta.meta_analysis import ale
from mnsmeta.meta_analysis.datasets import to_dataset


def _background(n=20, foci=10, seed=0) -> ExperimentSet:
    rng = np.random.default_rng(seed)
    brain = np.argwhere(brain_mask_img().get_fdata() > 0)
    ijk = brain[rng.integers(0, len(brain), n * foci)]
    ids = [f"e{i}" for i in range(n)]
    return ExperimentSet.from_voxels("test", ids, ijk, [foci] * n, [20] * n)


@pytest.fixture(scope="module")
def design() -> PlantingDesign:
    """20 experiments of random foci, thresholded as the run would (cut and size from a
    Monte Carlo null of 500 iterations)."""
    experiments = _background()
    _, result = ale.fit_ale(to_dataset(experiments, positional_ids=True), 500, 0, n_jobs=2)
    stat = result.get_map("stat", return_type="array")
    p = result.get_map("p", return_type="array")
    sizes = result.estimator.null_distributions_[
        "values_desc-size_level-cluster_corr-fwe_method-montecarlo"
    ]
    return PlantingDesign(
        experiments.foci,
        experiments.experiments["sample_size"],
        float(stat[p < 0.001].min()),
        float(np.quantile(sizes, 0.95)),
    )


@pytest.fixture(scope="module")
def amygdala():
    return region_mask({"Amygdala"}, "harvard_oxford")


def test_power_grows_with_the_number_of_converging_experiments(design, amygdala):
    table = detection_power([design], amygdala, [1, 4, 10], seed=0, replicates=30, stop_at=None)
    power = table.set_index("k")["power"]
    # One converging experiment among 20 is never a cluster; ten almost always are.
    assert power[1] <= 0.1
    assert power[10] >= 0.8
    assert power[1] <= power[4] <= power[10]
    assert (table["power_low"] <= table["power"]).all()
    assert (table["power"] <= table["power_high"]).all()
    assert minimum_detectable(table) == 10


def test_the_simulation_stops_at_the_target_and_repeats_with_its_seed(design, amygdala):
    first = detection_power([design], amygdala, range(2, 21, 2), seed=3, replicates=20)
    again = detection_power([design], amygdala, range(2, 21, 2), seed=3, replicates=20)
    pd.testing.assert_frame_equal(first, again)
    assert first["power"].iloc[-1] >= 0.8 and (first["power"].iloc[:-1] < 0.8).all()


def test_a_conjunction_needs_the_effect_in_both_inputs(design, amygdala):
    single = detection_power([design], amygdala, [6], seed=1, replicates=30, stop_at=None)
    both = detection_power([design, design], amygdala, [6], seed=1, replicates=30, stop_at=None)
    assert both["power"].iloc[0] <= single["power"].iloc[0]


def test_a_cluster_counts_in_a_region_by_its_peak_or_a_tenth_of_its_voxels():
    region = np.zeros((10, 10, 10), dtype=bool)
    region[0:2] = True
    ale_map = np.zeros((10, 10, 10))
    ale_map[1:9, 5, 5] = 0.02  # 8 voxels, 1 in the region (12.5 %), peak outside
    ale_map[8, 5, 5] = 0.03
    assert clusters_in_region(ale_map, cut=0.01, size_cut=5, region=region)
    ale_map[1, 5, 5] = 0.0  # none in the region now
    assert not clusters_in_region(ale_map, cut=0.01, size_cut=5, region=region)
    assert not clusters_in_region(ale_map, cut=0.01, size_cut=10, region=region)  # too small


def test_region_bounds_keep_the_ventral_lateral_part():
    whole = region_mask({"Precentral_Gyrus"}, "harvard_oxford")
    ventral = region_mask({"Precentral_Gyrus"}, "harvard_oxford", min_abs_x_mm=30, max_z_mm=40)
    assert 0 < ventral.sum() < whole.sum()
    assert not (ventral & ~whole).any()


def test_a_monte_carlo_interval_covers_its_p_and_narrows_with_draws():
    low, high = mc_interval(0.05, 1000)
    assert low < 0.05 < high
    assert high - low == pytest.approx(0.028, abs=0.004)  # about 2 x 1.96 x 0.0069
    low10, high10 = mc_interval(0.05, 10_000)
    assert high10 - low10 < (high - low) / 2.5
    assert mc_interval(1 / 10_001, 10_000)[0] == 0.0  # the floor: nothing as extreme
    assert np.isnan(mc_interval(0.5, 0)[0])


def test_a_p_is_decided_only_when_its_interval_clears_alpha():
    assert decided(0.001, 10_000, 0.05) and decided(0.2, 1000, 0.05)
    assert not decided(0.04995, 1000, 0.05)  # the audit's example: SE about 0.007
    assert not decided(0.052, 10_000, 0.05)


def test_holm_matches_its_definition():
    p = [0.01, 0.04, 0.03, np.nan, 0.5]
    adjusted = holm(p)
    # Sorted 0.01, 0.03, 0.04, 0.5 (m = 4): 0.04, 0.09, max(0.09, 0.08), 0.5.
    np.testing.assert_allclose(adjusted[[0, 2, 1, 4]], [0.04, 0.09, 0.09, 0.5])
    assert np.isnan(adjusted[3])
    # statsmodels' reference implementation, when it is installed.
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    finite = np.array([0.01, 0.04, 0.03, 0.5])
    np.testing.assert_allclose(
        holm(finite), multitest.multipletests(finite, method="holm")[1], rtol=1e-12
    )
