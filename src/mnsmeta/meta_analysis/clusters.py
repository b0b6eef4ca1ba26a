"""Cluster tables: size, peak, anatomical labels and the experiments behind each cluster."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from mnsmeta.data.atlases import ATLAS_TITLES, label_shares, labels_at

#: Face connectivity, as NiMARE labels clusters in its Monte Carlo null.
CONNECTIVITY = ndimage.generate_binary_structure(rank=3, connectivity=1)


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
