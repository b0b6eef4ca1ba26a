"""The streaming ALE (database scale) gives NiMARE's ALE and an equivalent null."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mnsmeta.meta_analysis import ale


@pytest.fixture(scope="module")
def fitted(sad_dataset):
    from nimare.meta.cbma.ale import ALE

    from mnsmeta.meta_analysis.nimare_adapter.estimators import streaming_ale_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = ALE(random_state=4)
        reference_result = reference.fit(sad_dataset)
        ours = streaming_ale_estimator(null_maps=40, n_cores=2, random_state=4)
        result = ours.fit(sad_dataset)
    return ours, result, reference, reference_result


def test_observed_ale_and_histogram_bins_are_nimares(fitted, sad_dataset):
    from scipy import sparse

    ours, result, reference, reference_result = fitted
    np.testing.assert_allclose(
        result.get_map("stat", return_type="array"),
        reference_result.get_map("stat", return_type="array"),
        rtol=1e-6,
        atol=1e-9,
    )
    # The bins come from each experiment's largest MA in the mask, found without MA maps.
    np.testing.assert_array_equal(
        ours.null_distributions_["histogram_bins"], reference.null_distributions_["histogram_bins"]
    )
    ma = sparse.csr_matrix(
        reference.kernel_transformer.transform(
            reference.inputs_["coordinates"], masker=reference.masker, return_type="sparse"
        )
    )
    from mnsmeta.meta_analysis.engine.montecarlo import Plan
    from mnsmeta.meta_analysis.engine.streaming import largest_ma

    coordinates = ours.inputs_["coordinates"]
    plan = Plan.for_coordinates(coordinates, ours.masker.mask_img)
    ijk = coordinates[["i", "j", "k"]].to_numpy()
    np.testing.assert_array_equal(largest_ma(plan, ijk), ma.max(axis=1).toarray().ravel())


def test_monte_carlo_null_agrees_with_nimares_monte_carlo_null(fitted, sad_dataset):
    # The same method as NiMARE's ALE(null_method="montecarlo"), other random streams: 40
    # random maps each pool 9 million voxel values (9,000 above the cut). The cuts agree
    # within 1 %, and every voxel's p between 1e-4 and 0.01 (900 to 90,000 null values
    # above it) within 0.1 of its log10. NiMARE's default
    # (analytic) null puts the cut 2-3 % lower on SAD, for both Monte Carlo nulls.
    from nimare.meta.cbma.ale import ALE

    from mnsmeta.meta_analysis.nimare_adapter import cluster_forming_cut

    ours, result, analytic, _ = fitted
    counts = ours.null_distributions_["histweights_corr-none_method-montecarlo"]
    assert counts.sum() == 40 * len(result.get_map("stat", return_type="array"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = ALE(null_method="montecarlo", n_iters=40, n_cores=2, random_state=5)
        reference_result = reference.fit(sad_dataset)
    cut, reference_cut, analytic_cut = (
        cluster_forming_cut(e, 0.001) for e in (ours, reference, analytic)
    )
    assert abs(cut - reference_cut) < 0.01 * reference_cut
    assert 0.01 < (cut - analytic_cut) / analytic_cut < 0.05
    p, reference_p = (r.get_map("p", return_type="array") for r in (result, reference_result))
    strong = (reference_p < 0.01) & (reference_p > 1e-4)
    assert strong.sum() > 100
    assert np.abs(np.log10(p[strong]) - np.log10(reference_p[strong])).max() < 0.1


def test_null_maps_do_not_depend_on_threads(sad_dataset):
    from mnsmeta.meta_analysis.nimare_adapter.estimators import streaming_ale_estimator

    nulls = []
    for n_cores in (1, 2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            estimator = streaming_ale_estimator(null_maps=12, n_cores=n_cores, random_state=9)
            estimator.fit(sad_dataset)
        nulls.append(estimator.null_distributions_["histweights_corr-none_method-montecarlo"])
    np.testing.assert_array_equal(*nulls)


def test_streaming_fit_finds_the_clusters_of_the_fast_engine(sad_dataset):
    # Whole pipeline with cluster-level FWE: the same significant clusters as the default
    # engine, up to the voxels the two nulls' Monte Carlo error moves.
    _, fast = ale.fit_ale(sad_dataset, 300, seed=2, n_jobs=2, engine="fast")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, streamed = ale.fit_ale(sad_dataset, 300, seed=2, n_jobs=2, engine="streaming")
    significant = [ale.cluster_fwe_map(r, 0.05) > 0 for r in (fast, streamed)]
    assert significant[0].sum() > 200
    overlap = (significant[0] & significant[1]).sum() / (significant[0] | significant[1]).sum()
    assert overlap > 0.8


def test_fit_ale_streams_database_scale_sets(monkeypatch, sad_dataset):
    # From STREAMING_FOCI foci on (100,000; lowered here to the SAD set's 743), the default
    # engine streams: NiMARE's MA maps would not fit in memory.
    from mnsmeta.meta_analysis.engine import streaming

    monkeypatch.setattr(streaming, "STREAMING_FOCI", 700)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator, result = ale.fit_ale(sad_dataset, 60, seed=1, n_jobs=2)
    assert type(estimator).__name__ == "StreamingALE"
    assert estimator.null_method == "montecarlo" and estimator.n_iters == streaming.NULL_MAPS
    nulls = result.estimator.null_distributions_
    assert len(nulls["values_desc-size_level-cluster_corr-fwe_method-montecarlo"]) == 60
    counts = nulls["histweights_corr-none_method-montecarlo"]
    assert counts.sum() == streaming.NULL_MAPS * len(result.get_map("stat", return_type="array"))
