"""Robustness checks: shared nulls equal direct reruns; dominance, fragility and fail-safe N
behave as their definitions say on synthetic data with a known answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mnsmeta.curation.experiments import ExperimentSet
from mnsmeta.data.space import brain_mask_img
from mnsmeta.inference import robustness
from mnsmeta.meta_analysis import ale
from mnsmeta.meta_analysis.clusters import label_clusters
from mnsmeta.meta_analysis.datasets import to_dataset
from mnsmeta.meta_analysis.engine import montecarlo, shared_nulls

N_ITERS = 200  # per null; enough to separate the designed cases below
TARGET_MM = (-22, -4, -18)  # left amygdala


def _brain_voxels():
    return np.argwhere(brain_mask_img().get_fdata() > 0)


def synthetic(true_sizes, n_background=15, seed=0, spread_first=False):
    """Background experiments (8 random foci, N=20) plus 'true' experiments converging on
    the left amygdala (one focus there, three random). With ``spread_first`` the first true
    experiment instead reports 27 foci on a 6 mm grid around the target, so it dominates."""
    rng = np.random.default_rng(seed)
    brain = _brain_voxels()
    target = np.rint(np.linalg.inv(brain_mask_img().affine) @ [*TARGET_MM, 1])[:3].astype(int)
    ijk, counts, sizes, ids = [], [], [], []
    grid = np.array([(a, b, c) for a in (-3, 0, 3) for b in (-3, 0, 3) for c in (-3, 0, 3)])
    for i, n in enumerate(true_sizes):
        if spread_first and i == 0:
            foci = target + grid
        else:
            foci = np.vstack(
                [target + rng.integers(-1, 2, 3), brain[rng.integers(0, len(brain), 3)]]
            )
        ijk.append(foci), counts.append(len(foci)), sizes.append(n), ids.append(f"true{i}")
    for i in range(n_background):
        ijk.append(brain[rng.integers(0, len(brain), 8)])
        counts.append(8), sizes.append(20), ids.append(f"background{i}")
    experiments = ExperimentSet.from_voxels("test", ids, np.vstack(ijk), counts, sizes)
    return experiments, tuple(target)


def significant_clusters(experiments, seed=0):
    _, result = ale.fit_ale(to_dataset(experiments, positional_ids=True), N_ITERS, seed, n_jobs=2)
    return label_clusters(ale.cluster_fwe_map(result))[0]


def _direct_largest_cluster(draws, sizes, foci, keep, cut):
    """The fast engine's per-iteration kernel run on the kept experiments only."""
    rows = np.concatenate([np.arange(draws.bounds[e], draws.bounds[e + 1]) for e in keep])
    counts = np.diff(draws.bounds)[keep]
    plan = montecarlo.Plan(brain_mask_img(), np.r_[0, np.cumsum(counts)], np.asarray(sizes)[keep])
    return plan.iteration(foci[rows], cut)[1]


@pytest.fixture(scope="module")
def small_design():
    rng = np.random.default_rng(5)
    n = 9
    sizes, counts = rng.integers(12, 40, n), rng.integers(4, 20, n)
    return sizes, counts, 0.012 + rng.uniform(0, 0.002, n + 1)


def test_leave_one_out_null_equals_rerunning_each_subset(small_design):
    sizes, counts, cuts = small_design
    draws = shared_nulls._Draws(brain_mask_img(), sizes, counts, 1, 0)
    rng = np.random.default_rng(0)
    out = np.zeros(len(sizes) + 1, dtype=np.int64)
    buffers = draws.volumes()
    ma = np.zeros((len(sizes), len(draws.mask_ijk)), np.float32)
    pcand = np.empty(len(draws.mask_ijk))
    n = len(sizes)
    for _ in range(10):
        foci = draws.foci(rng)
        b = buffers
        shared_nulls._leave_one_out_iteration(
            foci, draws.bounds, draws.kernel_of, draws.kernels, draws.halves, draws.rows,
            draws.mask, draws.spans, cuts, b["prod"], b["scratch"], b["index"], b["cand"], pcand, ma, b["state"], b["queue"],
            b["keep"], out,
        )  # fmt: skip
        direct = [
            _direct_largest_cluster(draws, sizes, foci, [j for j in range(n) if j != i], cuts[i])
            for i in range(n)
        ] + [_direct_largest_cluster(draws, sizes, foci, list(range(n)), cuts[n])]
        np.testing.assert_array_equal(out, direct)
        # Work volumes are left clean for the next iteration.
        assert b["prod"].min() == 1.0 and b["index"].max() == 0


def test_added_experiments_null_equals_rerunning_each_prefix(small_design):
    sizes, counts, cuts = small_design
    checkpoints = np.array([3, 5, 9])
    draws = shared_nulls._Draws(brain_mask_img(), sizes, counts, 1, 0)
    rng = np.random.default_rng(1)
    out = np.zeros(len(checkpoints), dtype=np.int64)
    b = draws.added_buffers(len(checkpoints))
    # Kernels stamped without their tails, candidates recomputed exactly (as the Monte Carlo
    # iteration): whole kernels (a slack of 1) give the same clusters.
    from mnsmeta.meta_analysis.engine.kernels import truncation_slack

    slacks = np.array([truncation_slack(draws.kernels, c, draws.tail) for c in checkpoints])
    largest = 0
    for rows, slack in ((draws.core, slacks), (draws.rows, np.ones(3))):
        for _ in range(5):
            foci = draws.foci(rng)
            shared_nulls._added_experiments_iteration(
                foci, draws.bounds, draws.kernel_of, draws.kernels, draws.halves, rows,
                draws.mask, draws.spans, checkpoints, cuts[:3], slack, b["prod"], b["scratch"],
                b["index"], b["cand"], b["counts"], b["state"], b["queue"], b["keep"],
                draws.experiment_of, b["table"], b["starts"], b["near"], b["ma"], b["values"],
                out,
            )  # fmt: skip
            direct = [
                _direct_largest_cluster(draws, sizes, foci, list(range(c)), cuts[j])
                for j, c in enumerate(checkpoints)
            ]
            np.testing.assert_array_equal(out, direct)
            largest = max(largest, out.max())
            assert b["prod"].min() == 1.0 and b["index"].max() == 0
    assert largest > 0


def test_shared_nulls_do_not_depend_on_the_number_of_threads(small_design):
    sizes, counts, cuts = small_design
    one = shared_nulls.leave_one_out_null(brain_mask_img(), sizes, counts, cuts, 250, 3, n_jobs=1)
    two = shared_nulls.leave_one_out_null(brain_mask_img(), sizes, counts, cuts, 250, 3, n_jobs=2)
    np.testing.assert_array_equal(one, two)


def test_a_null_that_stops_early_keeps_every_entry_it_computes(small_design, monkeypatch):
    """``needed`` drops the top checkpoints between rounds; what is computed is the full
    null's, for any number of threads, and the dropped entries are marked -1."""
    sizes, counts, cuts = small_design
    checkpoints, n_iters = [3, 5, 9], 700
    monkeypatch.setattr(shared_nulls, "ROUND_BLOCKS", 2)
    args = (brain_mask_img(), sizes, counts, checkpoints, cuts[:3], n_iters, 4)
    full = shared_nulls.added_experiments_null(*args, n_jobs=2)
    calls = []

    def needed(done):
        calls.append(len(done))
        return {200: 2, 400: 1}.get(len(done), 3)

    for jobs in (1, 2):
        calls.clear()
        early = shared_nulls.added_experiments_null(*args, n_jobs=jobs, needed=needed)
        assert calls == [200, 400, 600, 700]  # a round: 2 blocks of 100 iterations
        np.testing.assert_array_equal(early[:200], full[:200])
        np.testing.assert_array_equal(early[200:400, :2], full[200:400, :2])
        assert (early[200:, 2] == -1).all() and (early[400:, 1:] == -1).all()
        np.testing.assert_array_equal(early[400:, 0], full[400:, 0])


def test_full_dataset_column_agrees_with_the_engine_null_in_distribution():
    # Two-sample Kolmogorov-Smirnov test of the largest random cluster: the shared null's
    # full-dataset column (seed 1) against NiMARE's procedure on our engine (seed 2).
    experiments, _ = synthetic([20] * 6)
    _, result = ale.fit_ale(to_dataset(experiments, positional_ids=True), 300, 2, n_jobs=2)
    cut = float(result.estimator._p_to_summarystat(0.001))
    n = len(experiments.ids)
    shared = shared_nulls.leave_one_out_null(
        brain_mask_img(), experiments.sample_sizes, experiments.counts, [cut] * (n + 1), 300, 1, 2
    )[:, -1]
    reference = result.estimator.null_distributions_[
        "values_desc-size_level-cluster_corr-fwe_method-montecarlo"
    ]
    assert stats.ks_2samp(shared, reference).pvalue > 0.001


def test_contributions_are_shares_that_sum_to_one_per_cluster():
    experiments, target = synthetic([20] * 6)
    labels = significant_clusters(experiments)
    table = robustness.contributions(experiments, labels)
    assert labels[target] > 0
    np.testing.assert_allclose(table.groupby("cluster")["share"].sum(), 1.0, rtol=1e-9)
    assert (table["share"] > 0).all() and (table["loss"] <= 1).all()


def test_a_dominant_experiment_is_flagged_by_contributions_and_jackknife():
    experiments, target = synthetic([30, 12, 12], spread_first=True)
    labels = significant_clusters(experiments)
    cluster = labels[target]
    assert cluster > 0, "the designed cluster must be significant"
    dominance = robustness.dominance(robustness.contributions(experiments, labels))
    row = dominance.set_index("cluster").loc[cluster]
    assert row["top_study"] == "true0"
    assert row["top_share"] > robustness.ONE_EXPERIMENT_SHARE
    assert row["dominated"]
    jackknife, _ = robustness.jackknife(experiments, labels, N_ITERS, 0, n_jobs=2)
    row = jackknife.set_index("cluster").loc[cluster]
    assert row["fragile"]
    assert "true0" in row["dropped_by"].split()
    assert row["survived"] < row["n_loo"]


def test_a_balanced_cluster_is_neither_dominated_nor_fragile():
    experiments, target = synthetic([40] * 6)
    labels = significant_clusters(experiments)
    cluster = labels[target]
    dominance = robustness.dominance(robustness.contributions(experiments, labels))
    row = dominance.set_index("cluster").loc[cluster]
    assert row["top_share"] < 0.25 and not row["dominated"]
    jackknife, check = robustness.jackknife(experiments, labels, N_ITERS, 0, n_jobs=2)
    assert jackknife.set_index("cluster").loc[cluster, "survived"] == len(experiments.ids)
    assert check["full_clusters_significant"] >= 1


def test_fail_safe_n_grows_with_the_number_of_true_experiments():
    """Bisected over a grid, averaged over noise draws: more true experiments, more noise."""
    levels = (3, 6, 9, 12, 15, 18, 21, 25, 30, 40, 60, 80)
    found = {}
    for n_true in (4, 10):
        experiments, target = synthetic([20] * n_true)
        labels = significant_clusters(experiments)
        assert labels[target] > 0
        table, by_level = robustness.fail_safe_n(
            experiments, labels, N_ITERS, 0, n_jobs=2, levels=levels, draws=3
        )
        row = table.set_index("cluster").loc[labels[target]]
        found[n_true] = row
        # Every draw was probed, only at grid levels, and the estimate lies in its range.
        assert set(by_level["draw"]) == {0, 1, 2}
        assert set(by_level["noise_experiments"]) <= {0, *levels}
        assert row["fsn_low"] <= row["fsn"] <= row["fsn_high"] + 0.5
        assert row["draws"] == 3
    assert found[10]["fsn"] > found[4]["fsn"]
    assert not found[4]["robust"] and found[10]["robust"]
    assert found[10]["benchmark"] == 25


def test_the_bisection_finds_what_a_scan_of_every_level_finds():
    """Per draw, the bisection's answer equals the exhaustive scan's (significance falls
    with noise here), so probing log2 of the levels loses nothing."""
    experiments, target = synthetic([20] * 8)
    labels = significant_clusters(experiments)
    cluster = labels[target]
    levels = (4, 8, 12, 16, 24, 32, 48)
    table, by_level = robustness.fail_safe_n(
        experiments, labels, N_ITERS, 1, n_jobs=2, levels=levels, draws=2
    )
    scan = {}
    for draw in (0, 1):
        mine = by_level[(by_level["draw"] == draw) & (by_level["cluster"] == cluster)]
        assert len(mine) < len(levels) + 1  # a bisection, not a scan
        ok = mine[mine["significant"]]["noise_experiments"]
        bad = mine[~mine["significant"]]["noise_experiments"]
        last = ok.max() if len(ok) else None
        first = bad.min() if len(bad) else None
        assert last is None or first is None or last < first
        scan[draw] = (last, first)
    row = table.set_index("cluster").loc[cluster]
    grid = [0, *levels]
    midpoints = [
        grid[-1] if first is None else 0.0 if last is None else (last + first - 1) / 2
        for last, first in scan.values()
    ]
    assert row["fsn"] == round(np.mean(midpoints))


def test_nested_fits_are_nimares_fits_of_each_leading_subset():
    """One MA computation gives NiMARE's ALE map and cut of every leading subset, bit for bit
    (the fail-safe N's observed maps at every noise level)."""
    from nimare.meta.cbma.ale import ALE

    from mnsmeta.meta_analysis.nimare_adapter import cluster_forming_cut, nested_ale_fits, quiet

    experiments, _ = synthetic([20] * 4, n_background=6)
    noise = robustness.noise_experiments(experiments, 25, seed=3)
    dataset = to_dataset(experiments.plus(noise), positional_ids=True)
    sizes = [10, 11, 17, 35]
    fits = list(nested_ale_fits(dataset, sizes, 0.001))
    assert len(fits) == len(sizes)
    for size, (stat, cut) in zip(sizes, fits, strict=True):
        with quiet():
            estimator = ALE()
            result = estimator.fit(dataset.slice(list(dataset.ids[:size])))
        np.testing.assert_array_equal(
            stat, result.get_map("stat", return_type="image").get_fdata()
        )
        assert cut == cluster_forming_cut(estimator, 0.001)
    assert fits[0][1] < fits[-1][1]  # more experiments, a higher cut
    with pytest.raises(ValueError, match="beyond"):
        list(nested_ale_fits(dataset, [36], 0.001))


@pytest.mark.parametrize(
    "decided, top",
    [
        ([True, False, False, False], -1),  # not significant without noise: nothing probed
        ([False, False, False, False], 3),  # every level may be probed
        ([False, False, True, True], 1),  # the middle is out: only the lower half
        ([False, True, False, False], 3),  # a decided level below open ones changes nothing
        ([False, False, False, False, False, False, True], 5),
    ],
)
def test_the_levels_still_needed_are_those_a_bisection_may_probe_undecided(decided, top):
    assert robustness._last_undecided_probe(np.array(decided)) == top


def test_the_sequential_fail_safe_null_takes_the_full_nulls_decisions(monkeypatch):
    """Stopping the top levels early changes the iterations behind a decision, never the
    decision: both tables equal the full null's (Besag & Clifford's exact rule)."""
    monkeypatch.setattr(shared_nulls, "ROUND_BLOCKS", 1)
    experiments, _ = synthetic([20] * 4)
    labels = significant_clusters(experiments)
    levels = (3, 6, 9, 12, 15, 18, 21, 25, 30, 40, 60, 80)
    runs = [
        robustness.fail_safe_n(
            experiments, labels, 600, 0, n_jobs=2, levels=levels, draws=3, sequential=sequential
        )
        for sequential in (True, False)
    ]
    (table, by_level), (full_table, full_by_level) = runs
    pd.testing.assert_frame_equal(table, full_table)
    pd.testing.assert_frame_equal(
        by_level.drop(columns="null_iterations"), full_by_level.drop(columns="null_iterations")
    )
    assert (full_by_level["null_iterations"] == 600).all()
    stopped = by_level[by_level["null_iterations"] < 600]
    assert len(stopped) and not stopped["significant"].any()


def test_the_fail_safe_null_stops_when_an_observed_fit_fails(monkeypatch):
    """The null runs while the draws' maps are fitted; a failing fit stops it after its
    first round and the error reaches the caller."""
    monkeypatch.setattr(shared_nulls, "ROUND_BLOCKS", 1)
    experiments, _ = synthetic([20] * 4)
    labels = significant_clusters(experiments)
    fits = robustness.nested_ale_fits
    calls = []

    def second_fails(*args):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("fit failed")
        return fits(*args)

    stamped = []
    null = robustness.added_experiments_null

    def counted(*args, **kwargs):
        result = null(*args, **kwargs)
        stamped.append((result >= 0).any(axis=1).sum())
        return result

    monkeypatch.setattr(robustness, "nested_ale_fits", second_fails)
    monkeypatch.setattr(robustness, "added_experiments_null", counted)
    with pytest.raises(RuntimeError, match="fit failed"):
        robustness.fail_safe_n(experiments, labels, 5000, 0, levels=(3, 6), draws=3)
    assert stamped == [shared_nulls.BLOCK]  # one round of one block, not 5,000 iterations


def test_noise_foci_fall_in_grey_matter_and_draws_differ_only_in_where():
    from mnsmeta.meta_analysis.engine.relocation import null_space_mask

    experiments, _ = synthetic([20, 30, 40], n_background=2)
    grey = null_space_mask(brain_mask_img(), "gm")
    first = robustness.noise_experiments(experiments, 50, seed=4)
    second = robustness.noise_experiments(experiments, 50, seed=5)
    assert grey[tuple(first.ijk().T)].all() and grey[tuple(second.ijk().T)].all()
    np.testing.assert_array_equal(first.counts, second.counts)
    np.testing.assert_array_equal(first.sample_sizes, second.sample_sizes)
    assert (first.ijk() != second.ijk()).any()


def test_the_jackknife_reports_retained_volume_and_peak_shift():
    experiments, target = synthetic([30, 12, 12], spread_first=True)
    labels = significant_clusters(experiments)
    cluster = labels[target]
    table, check = robustness.jackknife(experiments, labels, N_ITERS, 0, n_jobs=2)
    subsets = check["subsets"]
    mine = subsets[subsets["cluster"] == cluster]
    assert len(mine) == len(experiments.ids)
    # Leaving out the dominant experiment loses the cluster: 0 % retained, no peak.
    lost = mine.set_index("left_out").loc["true0"]
    assert lost["retained_pct"] == 0 and np.isnan(lost["peak_shift_mm"])
    kept = mine[mine["survived"]]
    assert (kept["retained_pct"] > 0).all() and (kept["retained_pct"] <= 100).all()
    row = table.set_index("cluster").loc[cluster]
    assert row["min_retained_pct"] == 0
    assert row["max_peak_shift_mm"] == pytest.approx(kept["peak_shift_mm"].max())


def test_noise_experiments_borrow_counts_and_sizes_from_the_real_ones():
    experiments, _ = synthetic([20, 30, 40], n_background=2)
    noise = robustness.noise_experiments(experiments, 50, seed=4)
    np.testing.assert_array_equal(noise.counts[: len(experiments.counts)], experiments.counts)
    assert set(noise.counts) <= set(experiments.counts)
    assert set(noise.sample_sizes) <= set(experiments.sample_sizes)
    brain = brain_mask_img().get_fdata() > 0
    assert brain[tuple(noise.ijk().T)].all()
    again = robustness.noise_experiments(experiments, 50, seed=4)
    np.testing.assert_array_equal(noise.ijk(), again.ijk())
