"""Acquisition of the coordinate databases: pinned URLs, SHA-256 checks, a local cache.

The release files of Neurosynth 0.7 and NeuroQuery 1 are never part of this repository.
They are downloaded from pinned commits of their public repositories, or copied from a
local mirror folder (``MNSMETA_DATA_MIRROR``), verified against the SHA-256 sums below,
and kept in a cache folder outside git (``MNSMETA_DATA_DIR``, default
``~/.cache/mnsmeta``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from mnsmeta.errors import MnsmetaInputError
from mnsmeta.progress import progress as progress_bar

LGR = logging.getLogger(__name__)

NEUROSYNTH_COMMIT = "209c33cd009d0b069398a802198b41b9c488b9b7"
NEUROQUERY_COMMIT = "4580f86267fb7c14ac1f601e298cbed898d79f2d"
_RAW = "https://raw.githubusercontent.com"


@dataclass(frozen=True)
class ReleaseFile:
    """One pinned file of a database release.

    Parameters
    ----------
    key : str
        Short name used in code (for example ``"neurosynth_coordinates"``).
    relpath : str
        Path inside the cache and inside a mirror folder.
    url : str
        Pinned public URL.
    sha256 : str
        Expected SHA-256 of the file's bytes.
    """

    key: str
    relpath: str
    url: str
    sha256: str


def _neurosynth(key: str, name: str, sha256: str) -> ReleaseFile:
    return ReleaseFile(
        key,
        f"neurosynth-v7/{name}",
        f"{_RAW}/neurosynth/neurosynth-data/{NEUROSYNTH_COMMIT}/{name}",
        sha256,
    )


def _neuroquery(key: str, name: str, sha256: str) -> ReleaseFile:
    return ReleaseFile(
        key,
        f"neuroquery-v1/{name}",
        f"{_RAW}/neuroquery/neuroquery_data/{NEUROQUERY_COMMIT}/data/{name}",
        sha256,
    )


_NQ = "data-neuroquery_version-1"
_NQ_VOCAB = f"{_NQ}_vocab-neuroquery7547"

RELEASE_FILES: tuple[ReleaseFile, ...] = (
    _neurosynth(
        "neurosynth_coordinates",
        "data-neurosynth_version-7_coordinates.tsv.gz",
        "17135be3e08a0ab045896c77217e8463086543a0817d52a6a88c8e32c1161616",
    ),
    _neurosynth(
        "neurosynth_metadata",
        "data-neurosynth_version-7_metadata.tsv.gz",
        "8acde7de2a14ee2a12b406e50a8805e83288b0bc78924ddb36879d496dfb757b",
    ),
    _neuroquery(
        "neuroquery_coordinates",
        f"{_NQ}_coordinates.tsv.gz",
        "b97cf50346dc8a6f78b3c02c8a19680679d7dbdf35f760a1032e46c2cad3666c",
    ),
    _neuroquery(
        "neuroquery_metadata",
        f"{_NQ}_metadata.tsv.gz",
        "d84d2c7b2e2ca1692381419833fde043fb42d279014104c3c957feeeece140ea",
    ),
    _neuroquery(
        "neuroquery_vocabulary",
        f"{_NQ_VOCAB}_vocabulary.txt",
        "ae4a13380451797735d3df142fb8b4b3792056fbf79471454aa40e12bec7717b",
    ),
    _neuroquery(
        "neuroquery_abstract_counts",
        f"{_NQ_VOCAB}_source-abstract_type-count_features.npz",
        "79c38b2515a316b711eef1ef1737ba57ce720d79d8506b7a08da6639418cf60a",
    ),
    _neuroquery(
        "neuroquery_keywords_counts",
        f"{_NQ_VOCAB}_source-keywords_type-count_features.npz",
        "01c51de4b0f58194725c0c160e529c1c59cd812b83e51a693924be824f0e9c1b",
    ),
    _neuroquery(
        "neuroquery_title_counts",
        f"{_NQ_VOCAB}_source-title_type-count_features.npz",
        "c8243762f0f4c705c7ec60246c25e36785f0ea555dc914f85ede08a623afec74",
    ),
)

#: neurostuff/neurometabench: expert-curated meta-analytic foci sets that their authors shared.
NEUROMETABENCH_COMMIT = "a6b59be129ab652d5b4f5b4de6be8a05b418af77"
_BENCH = "raw/meta-datasets"


def _published(key: str, relpath: str, path: str, sha256: str) -> ReleaseFile:
    url = f"{_RAW}/neurostuff/neurometabench/{NEUROMETABENCH_COMMIT}/{_BENCH}/{path}"
    return ReleaseFile(key, f"published/{relpath}", url.replace(" ", "%20"), sha256)


_RIEDEL = "12. Emotion - Riedel/Emotion_Cluster_07132016"
#: The published reference sets' files (read by :mod:`mnsmeta.data.published`).
PUBLISHED_FILES: tuple[ReleaseFile, ...] = (
    _published(
        "laird2015",
        "laird2015/Faces.txt",
        "16. Face Perception - Laird/Faces.txt",
        "865c3ee2f1866d14d2553b6764b0a7b0fdc166127853e1a1bee84415bcfd306f",
    ),
    _published(
        "morawetz2020",
        "morawetz2020/ALL.txt",
        "6. Emotion Regulation - Morawetz/ALL.txt",
        "26e4a4c04fe910b05ac746621358e4fb3666cec668162bb1ea171a14a235dc63",
    ),
    _published(
        "pintoslobo2022_mni",
        "pintoslobo2022/ALL-MNI.txt",
        "1. Social - Pintos Lobo/ALL-MNI.txt",
        "8cf324301c28ccd8490262d02ae7f3420d551e440afb81476e42e3e10c52a11c",
    ),
    _published(
        "pintoslobo2022_tal",
        "pintoslobo2022/ALL-Talairach.txt",
        "1. Social - Pintos Lobo/ALL-Talairach.txt",
        "07c7bce934f9ee59c8846fb740d65071a3f4f46b2f140dcfcd82967b0a177eb1",
    ),
    *(
        _published(
            f"riedel2018_{part}",
            f"riedel2018/Emotion_Cluster_07132016_{part}_of_5.txt",
            f"{_RIEDEL}_{part}_of_5.txt",
            sha256,
        )
        for part, sha256 in enumerate(
            (
                "a9c6c12666909c02407a86b7b01e493792900661b6e58970b324285ae7f0f7e0",
                "2aad849e3faccc1ee4c49a4c4d5017809e1fe92d8ce6995dbfa0785bd0ade542",
                "7066c44af1a7bfe7664eba6c1908e4bed64e35501532e39c553704225b7759e5",
                "55e78dea5b0926869e17fefe295e476e2197b12a192c279761b7a47b301cffd0",
                "0fb3d9606ce96fba11c28bf9a400cef1eeeffb2eed7551eb25a2d0871b33cae2",
            ),
            start=1,
        )
    ),
)

_BY_KEY = {release.key: release for release in RELEASE_FILES + PUBLISHED_FILES}


def data_dir() -> Path:
    """Return the cache folder for the databases (``MNSMETA_DATA_DIR`` overrides)."""
    if os.environ.get("MNSMETA_DATA_DIR"):
        return Path(os.environ["MNSMETA_DATA_DIR"]).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home) / "mnsmeta"


def mirror_dir() -> Path | None:
    """Return the local mirror folder named by ``MNSMETA_DATA_MIRROR``, if any."""
    value = os.environ.get("MNSMETA_DATA_MIRROR", "").strip()
    return Path(value).expanduser() if value else None


def sha256_of(path: Path) -> str:
    """Return the SHA-256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _copy_from_mirror(release: ReleaseFile, mirror: Path, target: Path) -> None:
    source = mirror / release.relpath
    if not source.is_file():
        raise MnsmetaInputError(
            f"{source}: not found in the mirror folder: check MNSMETA_DATA_MIRROR "
            f"(it must hold {release.relpath}), or unset it to download from {release.url}"
        )
    shutil.copyfile(source, target)


def _download(release: ReleaseFile, target: Path, progress: bool) -> None:
    try:
        with urllib.request.urlopen(release.url, timeout=60) as response:
            expected = int(response.headers.get("Content-Length") or 0)
            received = 0
            with (
                open(target, "wb") as stream,
                progress_bar(
                    total=expected or None,
                    unit="B",
                    unit_scale=True,
                    desc=Path(release.relpath).name,
                    show=progress,
                ) as bar,
            ):
                for block in iter(lambda: response.read(1 << 16), b""):
                    stream.write(block)
                    received += len(block)
                    bar.update(len(block))
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise MnsmetaInputError(
            f"{release.url}: download failed ({error}): check the network, or set "
            "MNSMETA_DATA_MIRROR to a folder holding the release files"
        ) from error
    if expected and received != expected:
        raise MnsmetaInputError(
            f"{release.relpath}: download truncated ({received} of {expected} bytes): "
            "run `mnsmeta fetch` again"
        )


def fetch_file(release: ReleaseFile, *, mirror: Path | None = None, progress: bool = True) -> Path:
    """Make one release file available in the cache and return its path.

    The file is written to a temporary name beside its final place, verified, and only
    then renamed, so that the cache never holds a partial or corrupt file.

    Parameters
    ----------
    release : ReleaseFile
        The file to fetch.
    mirror : Path, optional
        Local folder to copy from instead of downloading (default: ``MNSMETA_DATA_MIRROR``).
    progress : bool
        Show a progress bar while downloading.

    Returns
    -------
    Path
        The verified file in the cache.

    Raises
    ------
    MnsmetaInputError
        If the file cannot be obtained or its checksum does not match.
    """
    target = data_dir() / release.relpath
    if target.is_file() and sha256_of(target) == release.sha256:
        return target
    if target.is_file():
        LGR.warning("%s: cached copy has a wrong checksum; fetching it again", target)
    mirror = mirror if mirror is not None else mirror_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(handle)
    temporary = Path(temporary)
    try:
        if mirror is not None:
            _copy_from_mirror(release, mirror, temporary)
            origin = str(mirror / release.relpath)
        else:
            _download(release, temporary, progress)
            origin = release.url
        actual = sha256_of(temporary)
        if actual != release.sha256:
            raise MnsmetaInputError(
                f"{origin}: SHA-256 mismatch for {release.relpath} (got {actual[:12]}..., "
                f"expected {release.sha256[:12]}...): the file is corrupt, truncated or not "
                "the pinned release; replace it, or unset MNSMETA_DATA_MIRROR to download it"
            )
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target


def fetch_all(*, mirror: Path | None = None, progress: bool = True) -> dict[str, Path]:
    """Fetch every release file; return a mapping from file key to cached path."""
    return {
        release.key: fetch_file(release, mirror=mirror, progress=progress)
        for release in RELEASE_FILES
    }


def release_path(key: str) -> Path:
    """Return the cached path of one release file, fetching it on first use."""
    return fetch_file(_BY_KEY[key], progress=True)
