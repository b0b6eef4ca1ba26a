"""Reference spaces: the MNI152 2 mm grid, NiMARE's brain mask, Talairach to MNI.

Every focus is analysed in MNI space on NiMARE's default grid (MNI152 2 mm) and brain mask.
Talairach foci are converted with the Lancaster icbm2tal transform, as NiMARE converts them.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

import numpy as np

KNOWN_SPACES = ("MNI", "TAL")
SPACE_RULES = {
    "MNI": "reported MNI",
    "TAL": "reported TAL, converted to MNI (Lancaster icbm2tal)",
    "UNKNOWN": "space unknown, used as reported (MNI assumed)",
}

#: A focus farther than this from the brain mask is almost surely a typo or a wrong space.
FAR_OUTSIDE_MM = 10.0


#: NiMARE's file of its default ALE mask (``get_template("mni152_2mm", mask="brain")``).
BRAIN_MASK_FILE = "tpl-MNI152NLin6Asym_res-02_desc-brain_mask.nii.gz"


def brain_mask_file() -> Path:
    """The path of NiMARE's MNI152 2 mm brain mask, found without importing NiMARE."""
    spec = find_spec("nimare")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("NiMARE is not installed (pip install nimare)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return folder / "resources" / "templates" / BRAIN_MASK_FILE


@lru_cache(maxsize=1)
def brain_mask_img():
    """Return NiMARE's default ALE mask: the MNI152 2 mm brain mask."""
    from nimare.utils import get_template

    return get_template("mni152_2mm", mask="brain")


@lru_cache(maxsize=1)
def _geometry():
    # The mask file itself, read without importing NiMARE (seconds at start-up): checking a
    # typed-in focus must answer at once.
    import nibabel as nib

    img = nib.load(brain_mask_file())
    mask = np.asanyarray(img.dataobj).astype(bool)
    zooms = np.asarray(img.header.get_zooms()[:3], dtype=float)
    corners = np.array([[0, 0, 0], np.array(mask.shape) - 1])
    bounds = (img.affine @ np.c_[corners, np.ones(2)].T)[:3].T
    return img.affine, mask, zooms, np.sort(bounds, axis=0)


@lru_cache(maxsize=1)
def _brain_voxels() -> np.ndarray:
    """(n, 3) voxel indices of the brain mask, for distances from the few foci outside it."""
    return np.argwhere(_geometry()[1])


def mni_bounds() -> np.ndarray:
    """Return the (2, 3) array of the grid's lowest and highest x, y, z in mm."""
    return _geometry()[3]


def outside_bounding_box(xyz: np.ndarray) -> np.ndarray:
    """Return, per focus, whether it lies outside the MNI152 2 mm bounding box."""
    xyz = np.asarray(xyz, dtype=float).reshape(-1, 3)
    low, high = mni_bounds()
    return np.any((xyz < low) | (xyz > high), axis=1)


def distance_to_brain(xyz: np.ndarray) -> np.ndarray:
    """Return each focus's distance in mm to the nearest brain-mask voxel (inf if off grid).

    The distance between voxel centres, as a Euclidean distance transform gives it; computed
    only for the foci outside the mask (a whole-grid transform costs a second at start-up).
    """
    affine, mask, zooms, _ = _geometry()
    xyz = np.asarray(xyz, dtype=float).reshape(-1, 3)
    ijk = np.rint(np.c_[xyz, np.ones(len(xyz))] @ np.linalg.inv(affine).T)[:, :3].astype(int)
    on_grid = np.all((ijk >= 0) & (ijk < np.array(mask.shape)), axis=1)
    result = np.full(len(xyz), np.inf)
    result[on_grid] = 0.0
    outside = np.flatnonzero(on_grid)[~mask[tuple(ijk[on_grid].T)]]
    if len(outside):
        brain = _brain_voxels()
        for focus in outside:
            offsets = (brain - ijk[focus]) * zooms
            result[focus] = np.sqrt(np.einsum("ij,ij->i", offsets, offsets).min())
    return result


def to_mni(xyz: np.ndarray, spaces: np.ndarray) -> np.ndarray:
    """Convert the Talairach rows of ``xyz`` to MNI with NiMARE's Lancaster transform.

    Parameters
    ----------
    xyz : (n, 3) array
        Coordinates as reported.
    spaces : (n,) array of str
        Space of each row: ``"MNI"``, ``"TAL"`` or ``"UNKNOWN"`` (left as reported).

    Returns
    -------
    (n, 3) array
        Coordinates in MNI space.
    """
    xyz = np.array(xyz, dtype=float, copy=True).reshape(-1, 3)
    is_tal = np.asarray(spaces) == "TAL"
    if is_tal.any():
        # Imported only when needed: importing NiMARE takes seconds.
        from nimare.utils import tal2mni

        xyz[is_tal] = tal2mni(xyz[is_tal])
    return xyz


def mm_to_voxel(xyz: np.ndarray) -> np.ndarray:
    """Voxel indices of MNI coordinates on the grid, rounded as NiMARE rounds them."""
    from nimare.utils import mm2vox

    return mm2vox(np.asarray(xyz, dtype=float).reshape(-1, 3), brain_mask_img().affine)


def voxel_to_mm(ijk: np.ndarray) -> np.ndarray:
    """MNI coordinates of voxel centres."""
    ijk = np.asarray(ijk).reshape(-1, 3)
    return (np.c_[ijk, np.ones(len(ijk))] @ brain_mask_img().affine.T)[:, :3]
