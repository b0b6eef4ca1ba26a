"""Provenance: versions, parameters and input checksums of every results folder."""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from mnsmeta.data.releases import RELEASE_FILES, sha256_of

PACKAGES = (
    "mnsmeta",
    "nimare",
    "nilearn",
    "nibabel",
    "numpy",
    "scipy",
    "pandas",
    "matplotlib",
    "numba",
)


def package_versions() -> dict[str, str]:
    """Return the versions of Python and the packages that shape the results."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def input_checksums(coordinates_dir: Path | None, files=()) -> dict[str, str]:
    """Return SHA-256 of the inputs: the database releases and every curation file used,
    or (without a curation folder) the foci files given."""
    if coordinates_dir is None:
        return {Path(path).name: sha256_of(Path(path)) for path in files}
    checksums = {f"database/{r.relpath}": r.sha256 for r in RELEASE_FILES}
    coordinates_dir = Path(coordinates_dir)
    for path in sorted(coordinates_dir.rglob("*")):
        if path.is_file() and path.suffix in (".tsv", ".toml", ".txt"):
            checksums[f"coordinates/{path.relative_to(coordinates_dir)}"] = sha256_of(path)
    checksums.update({Path(path).name: sha256_of(Path(path)) for path in files})
    return checksums


def now() -> str:
    """Current UTC time, ISO 8601."""
    return datetime.now(UTC).isoformat(timespec="seconds")
