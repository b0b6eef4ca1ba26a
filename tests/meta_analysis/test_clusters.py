"""Peak tables: each cluster's local maxima, 8 mm apart, as nilearn's ``get_clusters_table``
lists them (peak and sub-peaks 1a, 1b, ...), labelled like the cluster peaks.

The comparison with nilearn on a real ALE map is in tests/test_reproduce.py (Enge et al.'s
map, 7 clusters with 2 to 5 local maxima each).
"""

from __future__ import annotations

import itertools
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.reporting import get_clusters_table

from mnsmeta.data.space import brain_mask_img
from mnsmeta.meta_analysis.clusters import (
    MIN_PEAK_DISTANCE,
    cluster_table,
    local_maxima,
    peak_table,
)

AFFINE = brain_mask_img().affine
SHAPE = brain_mask_img().shape
BRAIN = np.argwhere(np.asarray(brain_mask_img().dataobj) > 0)


def bumps(centres_mm, heights, sigma_mm=4.0, floor=0.0):
    """A map of Gaussian bumps (MNI mm centres) in the brain mask, zero below ``floor``."""
    xyz = nib.affines.apply_affine(AFFINE, BRAIN)
    values = np.zeros(len(xyz))
    for centre, height in zip(centres_mm, heights, strict=True):
        values += height * np.exp(-np.sum((xyz - centre) ** 2, axis=1) / (2 * sigma_mm**2))
    values[values < floor] = 0
    data = np.zeros(SHAPE)
    data[tuple(BRAIN.T)] = values
    return data


def nilearn_table(data):
    """nilearn's cluster table of a map (every nonzero voxel in a cluster)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = get_clusters_table(nib.Nifti1Image(data.astype(np.float32), AFFINE), 0)
    table["main"] = table["Cluster ID"].astype(str).str.extract(r"^(\d+)")[0].astype(int)
    return table


def test_a_cluster_lists_its_peak_and_the_maxima_more_than_8_mm_from_higher_ones():
    # One cluster (a broad base): a top at (40, 20, 10), a second hill 20 mm away, and a
    # third 6 mm from the top, which the 8 mm rule leaves out.
    hills = [(40, 20, 10), (40, 40, 10), (46, 20, 10)]
    data = bumps(hills, [1.0, 0.8, 0.9], sigma_mm=1.6) + bumps(hills[:2], [0.2, 0.2], 8.0)
    data[data < 0.1] = 0
    table, labels = cluster_table(data, AFFINE, data, z=data)
    assert len(table) == 1
    peaks = peak_table(labels, AFFINE, data, z=data)
    assert peaks["peak"].tolist() == [1, 2]
    assert peaks[["x", "y", "z"]].to_numpy().tolist() == [[40, 20, 10], [40, 40, 10]]
    assert peaks["stat"].is_monotonic_decreasing
    # The first row is the cluster table's peak, with its labels.
    top = table.iloc[0]
    assert (peaks.loc[0, "x"], peaks.loc[0, "y"], peaks.loc[0, "z"]) == (
        top["peak_x"], top["peak_y"], top["peak_z"]
    )  # fmt: skip
    assert peaks.loc[0, "Harvard-Oxford"] == top["Harvard-Oxford peak"]
    assert peaks.loc[0, "z_value"] == pytest.approx(top["peak_z_value"])


def test_the_peak_table_equals_nilearns_on_a_map_with_many_maxima():
    rng = np.random.default_rng(7)
    centres = nib.affines.apply_affine(AFFINE, BRAIN[rng.choice(len(BRAIN), 40)])
    data = bumps(centres, rng.uniform(0.5, 1.0, 40), sigma_mm=5.0, floor=0.3)
    table, labels = cluster_table(data, AFFINE, data)
    ours = peak_table(labels, AFFINE, data)
    reference = nilearn_table(np.where(labels > 0, data, 0))
    assert reference["main"].nunique() == len(table) >= 10
    assert ours.groupby("cluster").size().max() >= 3  # sub-peaks are exercised
    for _, rows in reference.groupby("main"):
        first = rows[["X", "Y", "Z"]].to_numpy(float)[0]
        ijk = np.rint(np.linalg.solve(AFFINE, [*first, 1])[:3]).astype(int)
        mine = ours[ours["cluster"] == labels[tuple(ijk)]]
        # nilearn lists a peak and at most 3 sub-peaks: ours begin with the same ones.
        expected = rows[["X", "Y", "Z"]].to_numpy(float)
        np.testing.assert_array_equal(mine[["x", "y", "z"]].to_numpy(float)[: len(rows)], expected)
        np.testing.assert_allclose(
            mine["stat"].to_numpy()[: len(rows)], rows["Peak Stat"], rtol=1e-6
        )


def test_peaks_of_a_cluster_are_more_than_8_mm_apart_even_where_nilearn_lists_closer_ones():
    # A top, B 10 mm from it and C 6 mm from A but 11.7 mm from B, lower than both: nilearn
    # checks C only against B, the last peak it kept, and lists it; the 8 mm rule does not.
    a, b, c = (30, -20, 40), (40, -20, 40), (30, -26, 40)
    data = bumps([a, b, c], [1.0, 0.9, 0.8], sigma_mm=1.6) + bumps([a, b], [0.2, 0.2], 8.0)
    data[data < 0.1] = 0
    table, labels = cluster_table(data, AFFINE, data)
    assert len(table) == 1
    ours = peak_table(labels, AFFINE, data)
    assert [tuple(row) for row in ours[["x", "y", "z"]].to_numpy(int)] == [a, b]
    reference = nilearn_table(np.where(labels > 0, data, 0))
    assert [tuple(row) for row in reference[["X", "Y", "Z"]].to_numpy(int)] == [a, b, c]


def test_every_cluster_of_a_map_gets_its_rows_and_pairs_keep_their_distance():
    rng = np.random.default_rng(3)
    centres = nib.affines.apply_affine(AFFINE, BRAIN[rng.choice(len(BRAIN), 60)])
    data = bumps(centres, rng.uniform(0.5, 1.0, 60), sigma_mm=6.0, floor=0.4)
    table, labels = cluster_table(data, AFFINE, data)
    peaks = peak_table(labels, AFFINE, data)
    assert sorted(peaks["cluster"].unique()) == table["cluster"].tolist()
    for _, rows in peaks.groupby("cluster"):
        xyz = rows[["x", "y", "z"]].to_numpy(float)
        gaps = [np.linalg.norm(p - q) for p, q in itertools.combinations(xyz, 2)]
        assert min(gaps, default=np.inf) > MIN_PEAK_DISTANCE
        assert rows["peak"].tolist() == list(range(1, len(rows) + 1))


def test_a_flat_cluster_has_one_peak_at_its_centre_and_no_cluster_none():
    data = np.zeros(SHAPE)
    data[40:45, 50:53, 30:33] = 3.0  # a block of equal values: nilearn's centre of mass
    ijk, values = local_maxima(data, AFFINE)
    np.testing.assert_array_equal(ijk, [[42, 51, 31]])
    assert values.tolist() == [3.0]
    _, labels = cluster_table(np.zeros(SHAPE), AFFINE)
    empty = peak_table(labels, AFFINE, np.zeros(SHAPE))
    assert empty.empty and {"cluster", "peak", "x", "y", "z", "stat"} <= set(empty.columns)
    assert isinstance(empty, pd.DataFrame)
