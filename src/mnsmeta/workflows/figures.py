"""PNG figures of thresholded maps: a glass brain and orthogonal slices."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
import numpy as np

from mnsmeta.filesystem import atomic

#: Thresholded maps are positive: red to yellow, distinct from the blue/green mask outlines.
POSITIVE_CMAP = "autumn"
#: Voxels at 0 (outside clusters) are not drawn.
DISPLAY_THRESHOLD = 1e-3


def save_figure(figure, path: Path) -> None:
    """Save a figure as PNG, atomically, and close it."""
    with atomic(path) as temporary:
        # No timestamp in the file's metadata, so equal maps give equal bytes.
        figure.savefig(temporary, dpi=100, metadata={"Software": None})
    plt.close(figure)


def plot_map(image, title: str, glass_path: Path, slices_path: Path, cut_coords=None) -> None:
    """Draw a thresholded map as a glass brain and as orthogonal slices on the MNI template.

    Parameters
    ----------
    image : nibabel image
        Thresholded statistic (zero outside clusters).
    title : str
        Figure title (analysis name and threshold).
    glass_path, slices_path : Path
        Output PNG files.
    cut_coords : tuple, optional
        MNI coordinates of the slices (default: the map's peak).
    """
    from nilearn import plotting

    data = np.asarray(image.get_fdata())
    empty = not np.any(data != 0)
    label = f"{title}: no significant cluster" if empty else title
    vmax = None if empty else float(np.abs(data).max())
    figure = plt.figure(figsize=(9, 3.4))
    plotting.plot_glass_brain(
        image,
        figure=figure,
        title=label,
        colorbar=not empty,
        plot_abs=False,
        threshold=DISPLAY_THRESHOLD,
        vmax=vmax,
        cmap=POSITIVE_CMAP if empty or data.min() >= 0 else "RdBu_r",
    )
    save_figure(figure, glass_path)
    if cut_coords is None and not empty:
        peak = np.unravel_index(int(np.argmax(np.abs(data))), data.shape)
        cut_coords = tuple((image.affine @ np.r_[peak, 1])[:3])
    figure = plt.figure(figsize=(9, 3.4))
    if empty:
        # Nothing to overlay: show the template, so the report still has its figure.
        plotting.plot_anat(
            figure=figure,
            title=label,
            display_mode="ortho",
            cut_coords=(0, 0, 0),
            draw_cross=False,
            colorbar=False,
        )
    else:
        plotting.plot_stat_map(
            image,
            figure=figure,
            title=label,
            display_mode="ortho",
            cut_coords=cut_coords,
            colorbar=True,
            cmap=POSITIVE_CMAP if data.min() >= 0 else "RdBu_r",
            threshold=DISPLAY_THRESHOLD,
            vmax=vmax,
            draw_cross=False,
        )
    save_figure(figure, slices_path)
