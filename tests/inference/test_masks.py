"""MNS masks by definition: fragile clusters left out, conjunctions, agreement with landmarks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mnsmeta.data.space import brain_mask_img
from mnsmeta.inference.masks import (
    OTHER_PART,
    PARTS,
    Mask,
    agreement_table,
    anatomical_mask,
    conjunction_mask,
    landmark_regions,
    mask_parts,
    meta_analytic_mask,
    robust_clusters,
)

BRAIN = np.asarray(brain_mask_img().dataobj) > 0


def _labels_and_table(p_high):
    """Two cubic clusters in the brain; the second cluster's p interval ends at ``p_high``."""
    labels = np.zeros(BRAIN.shape, dtype=int)
    labels[30:34, 50:54, 40:44] = 1
    labels[55:58, 50:53, 40:43] = 2
    table = pd.DataFrame(
        {
            "cluster": [1, 2],
            "size_voxels": [64, 27],
            "peak_x": [30.0, -20.0],
            "peak_y": [0.0, 0.0],
            "peak_z": [10.0, 10.0],
            "p_fwe": [0.0001, 0.045],
            "p_fwe_mc_high": [0.0004, p_high],
        }
    )
    return labels, table


def test_a_cluster_whose_p_interval_reaches_the_cut_is_left_out_and_named():
    labels, table = _labels_and_table(p_high=0.051)
    kept, fragile = robust_clusters(labels, table)
    assert kept.sum() == 64 and not kept[labels == 2].any()
    assert [(f["cluster"], f["voxels"], f["p_fwe"]) for f in fragile] == [(2, 27, 0.045)]
    clear, none = robust_clusters(*_labels_and_table(p_high=0.049))
    assert clear.sum() == 64 + 27 and none == []


def test_a_meta_analytic_mask_records_its_fragile_clusters_and_a_small_set():
    labels, table = _labels_and_table(p_high=0.06)
    mask = meta_analytic_mask(labels, n_experiments=7, clusters=table, name="expert")
    assert mask.name == "expert" and mask.n_voxels == 64
    assert mask.description["fragile_clusters_left_out"][0]["cluster"] == 2
    assert "fewer than the 17 ALE needs" in mask.description["warning"]
    # Without a table (an old results folder) every significant voxel stays.
    assert meta_analytic_mask(labels > 0).n_voxels == 91


def test_a_conjunction_mask_is_the_voxels_of_every_part():
    labels, _ = _labels_and_table(0.0)
    first = Mask("observation", labels > 0, {"kind": "meta-analytic"})
    second_data = np.zeros(BRAIN.shape, dtype=bool)
    second_data[32:40, 50:54, 40:44] = True  # half of cluster 1
    second = Mask("execution", second_data, {"kind": "meta-analytic"})
    both = conjunction_mask("curated", [first, second])
    assert both.n_voxels == 2 * 4 * 4
    assert both.description["parts"]["observation"]["voxels"] == 91
    assert "observation AND execution" in both.description["made_by"]


def test_the_anatomical_mask_covers_its_own_landmarks_and_not_the_temporal_one():
    """The landmarks are read on the same atlases: the anatomical mask (BA44/45, ventral BA6,
    PF/PFt/PFop...) covers IFG/vPM and rostral IPL almost wholly, pSTS/LOTC hardly at all."""
    anatomical = anatomical_mask()
    table = agreement_table({"anatomical": anatomical})
    coverage = table.set_index("landmark")["coverage"]
    assert coverage["rostral_IPL"] == pytest.approx(1.0, abs=0.02)
    assert coverage["IFG_opercularis_vPM"] > 0.9
    assert coverage["pSTS_LOTC"] < 0.05
    regions = landmark_regions()
    assert regions["rostral_IPL"].sum() > 1000  # both hemispheres' PF, PFt, PFop


def test_agreement_is_dice_and_shared_voxels_of_each_pair():
    a = np.zeros(BRAIN.shape, dtype=bool)
    a[30:40, 50:60, 40:50] = True  # 1000 voxels
    b = np.zeros(BRAIN.shape, dtype=bool)
    b[35:45, 50:60, 40:50] = True  # 1000 voxels, 500 shared
    table = agreement_table({"a": Mask("a", a), "b": Mask("b", b)})
    pair = table[table["second"] == "b"].iloc[0]
    assert (pair["first"], pair["shared_voxels"]) == ("a", 500)
    assert pair["dice"] == pytest.approx(0.5)


def test_a_mask_splits_into_its_mns_nodes_and_the_rest_without_loss():
    anatomical = anatomical_mask().data
    parts = mask_parts(anatomical)
    assert set(parts) == {*PARTS, OTHER_PART}
    total = sum(int(p.sum()) for p in parts.values())
    assert total == int(anatomical.sum())  # disjoint, and nothing lost
    assert parts["rostral_IPL"].sum() > 1000
