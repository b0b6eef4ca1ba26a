"""Cluster tables: size, peak, anatomical labels and the experiments behind each cluster;
and peak tables: each cluster's local maxima, as the field lists them under a cluster.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from mnsmeta.data.atlases import ATLAS_TITLES, label_shares, labels_at

#: Face connectivity, as NiMARE labels clusters in its Monte Carlo null.
CONNECTIVITY = ndimage.generate_binary_structure(rank=3, connectivity=1)
#: A local maximum is listed when it lies more than this far (mm) from every higher one of its
#: cluster: nilearn's ``get_clusters_table`` default, as SPM and GingerALE tables space them.
MIN_PEAK_DISTANCE = 8.0
PEAK_COLUMNS = ["cluster", "peak", "x", "y", "z", "stat", "z_value"]


def label_clusters(thresholded: np.ndarray, min_voxels: int = 1) -> tuple[np.ndarray, int]:
    """Label connected supra-threshold voxels; drop clusters smaller than ``min_voxels``.

    Returns the label image (1..n, largest cluster first) and the number of clusters.
    """
    labels, _ = ndimage.label(thresholded > 0, CONNECTIVITY)
    sizes = np.bincount(labels.ravel())[1:]
    order = [i + 1 for i in np.argsort(-sizes, kind="stable") if sizes[i] >= min_voxels]
    relabelled = np.zeros_like(labels)
    for new, old in enumerate(order, start=1):
        relabelled[labels == old] = new
    return relabelled, len(order)


def _mm(ijk: np.ndarray, affine: np.ndarray) -> np.ndarray:
    ijk = np.asarray(ijk).reshape(-1, 3)
    return (np.c_[ijk, np.ones(len(ijk))] @ affine.T)[:, :3]


def cluster_table(
    thresholded: np.ndarray,
    affine: np.ndarray,
    stat: np.ndarray | None = None,
    z: np.ndarray | None = None,
    foci: pd.DataFrame | None = None,
    min_voxels: int = 1,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Describe each cluster of a thresholded map.

    Parameters
    ----------
    thresholded : 3D array
        Thresholded statistic (zero outside clusters); its maximum gives the peak when
        ``stat`` is not given.
    affine : (4, 4) array
        Voxel-to-MNI transform.
    stat, z : 3D arrays, optional
        ALE and z maps, reported at the peak. The peak is the voxel of highest ``stat``.
    foci : DataFrame, optional
        ``experiment_id``, ``x``, ``y``, ``z`` (MNI): experiments with a focus inside a
        cluster are listed as contributing (NiMARE's FocusCounter rule).
    min_voxels : int
        Smallest cluster reported.

    Returns
    -------
    table : DataFrame
        One row per cluster, largest first.
    labels : 3D int array
        Cluster number per voxel (0 outside).
    """
    labels, count = label_clusters(thresholded, min_voxels)
    voxel_mm3 = float(abs(np.linalg.det(affine[:3, :3])))
    peak_map = stat if stat is not None else thresholded
    focus_cluster = None
    if foci is not None and len(foci):
        ijk = np.rint(
            np.c_[foci[["x", "y", "z"]].to_numpy(), np.ones(len(foci))] @ np.linalg.inv(affine).T
        )[:, :3].astype(int)
        inside = np.all((ijk >= 0) & (ijk < np.array(labels.shape)), axis=1)
        focus_cluster = np.zeros(len(foci), dtype=int)
        focus_cluster[inside] = labels[tuple(ijk[inside].T)]
    rows = []
    for cluster in range(1, count + 1):
        voxels = np.argwhere(labels == cluster)
        values = peak_map[tuple(voxels.T)]
        peak_ijk = voxels[int(np.argmax(values))]
        peak = _mm(peak_ijk, affine)[0]
        coordinates = _mm(voxels, affine)
        row = {
            "cluster": cluster,
            "size_voxels": len(voxels),
            "size_mm3": len(voxels) * voxel_mm3,
            "peak_x": peak[0],
            "peak_y": peak[1],
            "peak_z": peak[2],
            "peak_stat": float(peak_map[tuple(peak_ijk)]),
            "peak_z_value": float(z[tuple(peak_ijk)]) if z is not None else np.nan,
        }
        for atlas, title in ATLAS_TITLES.items():
            row[f"{title} peak"] = labels_at(peak, atlas)[0] or "(no label)"
            row[f"{title} cluster"] = "; ".join(
                f"{name} {share:.0%}" for name, share in label_shares(coordinates, atlas)
            )
        if focus_cluster is not None:
            ids = foci.loc[focus_cluster == cluster, "experiment_id"]
            row["n_experiments"] = ids.nunique()
            # "; ": a user's experiment names ("Lee 2015: faces") hold spaces.
            row["experiments"] = "; ".join(sorted(ids.unique(), key=str))
        rows.append(row)
    columns = ["cluster", "size_voxels", "size_mm3", "peak_x", "peak_y", "peak_z", "peak_stat"]
    table = pd.DataFrame(rows, columns=None if rows else columns)
    return table, labels


def local_maxima(values: np.ndarray, affine: np.ndarray, min_distance: float = MIN_PEAK_DISTANCE):
    """The local maxima of one cluster, highest first, each more than ``min_distance`` mm from
    every higher one kept.

    nilearn's rule (``nilearn.reporting.get_clusters_table``): a voxel is a local maximum when
    no voxel of its 3 x 3 x 3 neighbourhood is higher and the neighbourhood is not flat; a
    plateau of equal maxima counts once, at its centre of mass (or, when that falls outside
    the plateau, the plateau voxel nearest to it). Unlike nilearn, which lists at most three
    sub-peaks and checks a candidate only against the last peak kept before it, every
    maximum is listed and each is checked against all the higher peaks kept.

    Parameters
    ----------
    values : 3D array
        The statistic inside the cluster, zero outside it.
    affine : (4, 4) array
        Voxel-to-mm transform (distances are in mm).
    min_distance : float
        Smallest distance (mm) to a higher peak, exclusive.

    Returns
    -------
    ijk : (n, 3) int array
        Voxel indices of the peaks, highest first.
    peak_values : (n,) array
        ``values`` at the peaks.
    """
    inside = values != 0
    if not inside.any():
        return np.zeros((0, 3), dtype=int), np.zeros(0)
    # The bounding box with a margin of zeros: the filters see what they would on the map.
    voxels = np.argwhere(inside)
    corner, end = voxels.min(axis=0), voxels.max(axis=0) + 1
    data = np.pad(values[tuple(slice(c, e) for c, e in zip(corner, end, strict=True))], 1)
    highest = ndimage.maximum_filter(data, size=3)
    maxima = (data == highest) & (data != 0)
    cluster = data[data != 0]
    if not np.isclose(cluster.max(), cluster.min()):  # a flat cluster is one plateau
        maxima &= highest > ndimage.minimum_filter(data, size=3)
    plateaus, count = ndimage.label(maxima)
    index = np.arange(1, count + 1)
    ijk = np.rint(ndimage.center_of_mass(data, plateaus, index)).astype(int).reshape(-1, 3)
    for row, label in enumerate(index):
        if plateaus[tuple(ijk[row])] != label:
            voxels = np.argwhere(plateaus == label)
            ijk[row] = voxels[np.argmin(np.linalg.norm(voxels - ijk[row], axis=1))]
    peak_values = data[tuple(ijk.T)]
    order = np.argsort(-peak_values, kind="stable")
    ijk, peak_values = ijk[order] - 1 + corner, peak_values[order]
    xyz = _mm(ijk, affine)
    keep = []
    for row in range(len(ijk)):
        if all(np.linalg.norm(xyz[row] - xyz[kept]) > min_distance for kept in keep):
            keep.append(row)
    return ijk[keep], peak_values[keep]


def peak_table(
    labels: np.ndarray,
    affine: np.ndarray,
    stat: np.ndarray,
    z: np.ndarray | None = None,
    min_distance: float = MIN_PEAK_DISTANCE,
) -> pd.DataFrame:
    """Each cluster's local maxima (peak and sub-peaks), with their anatomical labels.

    The rows a published cluster table lists under each cluster (GingerALE's extrema,
    nilearn's sub-peaks 1a, 1b, ...), beside the one-row-per-cluster table of
    :func:`cluster_table`, whose cluster numbers they share.

    Parameters
    ----------
    labels : 3D int array
        Cluster number per voxel (0 outside), as :func:`cluster_table` returns it.
    affine : (4, 4) array
        Voxel-to-MNI transform.
    stat : 3D array
        The map whose maxima are listed (the ALE map, as the cluster table's peak).
    z : 3D array, optional
        The z map, reported at each peak.
    min_distance : float
        A local maximum closer than this (mm) to a higher one of its cluster is not listed.

    Returns
    -------
    DataFrame
        One row per peak: ``cluster``, ``peak`` (1 = the cluster's highest), ``x``, ``y``,
        ``z`` (MNI mm), ``stat``, ``z_value`` and the label of each atlas at the peak.
    """
    atlas_columns = list(ATLAS_TITLES.values())
    tables = []
    for cluster in range(1, int(labels.max(initial=0)) + 1):
        ijk, values = local_maxima(np.where(labels == cluster, stat, 0), affine, min_distance)
        xyz = _mm(ijk, affine)
        table = pd.DataFrame(
            {
                "cluster": cluster,
                "peak": np.arange(1, len(ijk) + 1),
                "x": xyz[:, 0],
                "y": xyz[:, 1],
                "z": xyz[:, 2],
                "stat": values,
                "z_value": z[tuple(ijk.T)] if z is not None else np.nan,
            }
        )
        for atlas, title in ATLAS_TITLES.items():
            table[title] = [name or "(no label)" for name in labels_at(xyz, atlas)]
        tables.append(table)
    if not tables:
        return pd.DataFrame(columns=PEAK_COLUMNS + atlas_columns)
    return pd.concat(tables, ignore_index=True)
