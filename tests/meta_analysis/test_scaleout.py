"""Dask scale-out: a 2-worker local cluster gives exactly the serial results."""

from __future__ import annotations

import numpy as np

from mnsmeta.meta_analysis import ale
from mnsmeta.meta_analysis.engine.scaleout import dask_cluster

NULLS = (
    "values_level-voxel_corr-fwe_method-montecarlo",
    "values_desc-size_level-cluster_corr-fwe_method-montecarlo",
    "values_desc-mass_level-cluster_corr-fwe_method-montecarlo",
)


def test_local_dask_cluster_gives_the_serial_null_and_maps(bpd_dataset):
    _, serial = ale.fit_ale(bpd_dataset, 120, seed=11, n_jobs=1, engine="fast")
    with dask_cluster(local_workers=2) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        _, distributed = ale.fit_ale(bpd_dataset, 120, seed=11, n_jobs=2, engine="fast")
    for key in NULLS:
        np.testing.assert_array_equal(
            distributed.estimator.null_distributions_[key],
            serial.estimator.null_distributions_[key],
        )
    np.testing.assert_array_equal(
        distributed.get_map(ale.CLUSTER_LOGP, return_type="array"),
        serial.get_map(ale.CLUSTER_LOGP, return_type="array"),
    )


def test_overlap_relocations_on_dask_equal_the_serial_ones(tmp_path):
    from conftest import REPO
    from mnsmeta.curation.experiments import build_experiments
    from mnsmeta.curation.records import load_curation
    from mnsmeta.inference.masks import anatomical_mask
    from mnsmeta.workflows.overlap import roi_test
    from mnsmeta.workflows.settings import Settings

    experiment_set = build_experiments(load_curation(REPO / "coordinates"), "SAD")
    masks = {"anatomical": anatomical_mask().data}
    settings = Settings(n_perm=16, seed=5, jobs=2, progress=False)
    serial = roi_test(experiment_set, masks, settings, "SAD")
    with dask_cluster(local_workers=2):
        distributed = roi_test(experiment_set, masks, settings, "SAD")
    assert serial[0] == distributed[0]
    np.testing.assert_array_equal(serial[1]["anatomical"], distributed[1]["anatomical"])
