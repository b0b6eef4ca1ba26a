"""Cache keys of the analyses and tests of ``mnsmeta run``: a rerun recomputes only what
changed.

An analysis's key is the SHA-256 of everything its files depend on: its definition (the
entry of ``analyses.toml``), the settings that change results, the seed it draws from, the
engine (the package's own source and the versions of the packages that shape results) and
what it reads: an ALE's experiments and foci (and, for a control set or a published
reference, what selected them), a subtraction's or conjunction's inputs' keys. A change in
SAD therefore changes the keys of SAD, the pooled analysis, the conjunction and every
subtraction with SAD, and of nothing else. The key is stored in each analysis's provenance;
``mnsmeta run`` reuses a folder whose key is the one it would compute.

The robustness checks of an analysis (contributions, jackknife, fail-safe N) are keyed by
its key and the settings they read (:func:`robustness_key`); each sensitivity rerun is an
analysis and overlap test of its own, keyed as above in its variant's folder.

The overlap tests of an analysis are keyed by the analysis's key, the masks' voxels and the
settings (:func:`overlap_key`): a change in SAD recomputes the tests of SAD, the pooled
analysis and the conjunction, and a changed MNS reference (hence meta-analytic mask) every
test. A subtraction's specificity tables are keyed by its inputs' keys, the claim regions'
and MNS masks' voxels and every setting of the stage (:func:`specificity_key`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from mnsmeta.curation.analyses import Analysis
from mnsmeta.meta_analysis import ale
from mnsmeta.workflows.provenance import package_versions
from mnsmeta.workflows.settings import Settings

#: Settings that leave an analysis's bytes as they are: threads and processes (the Monte
#: Carlo draws the same stream for any number of them, tests/meta_analysis/test_montecarlo.py
#: and test_scaleout.py), progress bars, and the fields of the later stages (overlap,
#: robustness), which ``run_analyses`` never reads.
NOT_IN_KEY = frozenset({"jobs", "progress", "n_perm", "base_rate", "sensitivity"})


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def digest(content) -> str:
    """SHA-256 (hex) of JSON-ready ``content`` written canonically (sorted keys): every
    cache key is one."""
    return _sha256(json.dumps(content, sort_keys=True, default=str))


@functools.cache
def engine_version() -> dict[str, str]:
    """The engine's version: a hash of the package's own source files (any change to the
    code invalidates every key) and the versions of Python and of the packages that shape
    the results."""
    package = Path(__file__).resolve().parents[1]  # src/mnsmeta (or the installed copy)
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py"), key=lambda p: p.relative_to(package).as_posix()):
        digest.update(path.relative_to(package).as_posix().encode("utf-8") + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return {"source_sha256": digest.hexdigest(), **package_versions()}


def canonical(value) -> object:
    """``value`` as JSON-ready data whose text is the same exactly when the content is.

    Tables become the SHA-256 of their CSV text (index and columns included; floats as
    their shortest round-trip repr), dataclasses their fields, anything else its JSON or
    ``str``.
    """
    if isinstance(value, pd.DataFrame | pd.Series):
        return _sha256(value.to_csv())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return value


def result_settings(settings: Settings) -> dict:
    """The settings an analysis's files depend on (all but :data:`NOT_IN_KEY`)."""
    return {k: v for k, v in dataclasses.asdict(settings).items() if k not in NOT_IN_KEY}


def analysis_key(analysis: Analysis, settings: Settings, reads) -> str:
    """The cache key of one analysis.

    Parameters
    ----------
    analysis : Analysis
    settings : Settings
    reads : object
        What the analysis reads: for an ALE its experiment set (and the control matches or
        reference selection behind it), for a subtraction or conjunction its inputs' keys.

    Returns
    -------
    str
        SHA-256 (hex) of the canonical JSON of the definition, the settings that change
        results, the seed used, the engine's version and ``reads``.
    """
    content = {
        "analysis": canonical(dataclasses.asdict(analysis)),
        "settings": result_settings(settings),
        "seed_used": ale.analysis_seed(settings.seed, analysis.name),
        "engine": engine_version(),
        "reads": canonical(reads),
    }
    return digest(content)


#: The settings the overlap stage reads that change its tables (the analysis's own settings
#: reach the key through the analysis's key; threads and progress bars change nothing).
OVERLAP_SETTINGS = ("n_perm", "seed", "base_rate")


def mask_digest(data: np.ndarray) -> str:
    """SHA-256 of a mask's voxels (its shape and which voxels are in it)."""
    voxels = np.ascontiguousarray(np.asarray(data) > 0)
    digest = hashlib.sha256(str(voxels.shape).encode("utf-8"))
    digest.update(np.packbits(voxels).tobytes())
    return digest.hexdigest()


def overlap_key(analysis_key: str, masks: dict[str, str], settings: Settings) -> str:
    """The cache key of one analysis's overlap tests.

    Parameters
    ----------
    analysis_key : str
        The analysis's own key (:func:`analysis_key`; a conjunction's covers its inputs').
    masks : dict
        Mask name -> :func:`mask_digest` of every mask tested.
    settings : Settings

    Returns
    -------
    str
        SHA-256 (hex) of the canonical JSON of all of them and the engine's version.
    """
    content = {
        "analysis": analysis_key,
        "masks": masks,
        "settings": {name: getattr(settings, name) for name in OVERLAP_SETTINGS},
        "engine": engine_version(),
    }
    return digest(content)


def plain(value):
    """``value`` with NumPy scalars as Python ones, for JSON that reads back equal."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


#: The settings the jackknife and fail-safe N read.
ROBUSTNESS_SETTINGS = ("n_iters", "seed", "cluster_forming_p", "cluster_p")


def robustness_key(analysis_key: str, settings: Settings) -> str:
    """The cache key of one analysis's contributions, jackknife and fail-safe N."""
    content = {
        "analysis": analysis_key,
        "settings": {name: getattr(settings, name) for name in ROBUSTNESS_SETTINGS},
        "engine": engine_version(),
    }
    return digest(content)


def specificity_key(input_keys: list[str], regions: dict[str, str], settings: dict) -> str:
    """The cache key of one subtraction's specificity tables.

    Parameters
    ----------
    input_keys : list of str
        The keys of the subtraction's two input analyses (their experiments and clusters).
    regions : dict
        Region name -> :func:`mask_digest` of every claim region and MNS mask.
    settings : dict
        Every field of the stage's settings and the seed the subtraction uses.
    """
    content = {
        "inputs": input_keys,
        "regions": regions,
        "settings": settings,
        "engine": engine_version(),
    }
    return digest(content)


def table_to_json(table: pd.DataFrame) -> dict:
    """A table as JSON-ready columns and rows that :func:`table_from_json` reads back equal."""
    return {"columns": [str(c) for c in table.columns], "rows": plain(table.values.tolist())}


def table_from_json(content: dict) -> pd.DataFrame:
    """The table :func:`table_to_json` wrote (columns in order, each column's type inferred
    from its values as when the table was built from rows)."""
    return pd.DataFrame.from_records(
        [tuple(row) for row in content["rows"]], columns=content["columns"]
    )
