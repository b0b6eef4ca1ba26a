"""Database acquisition: pinned files, checksums, mirror, nothing corrupt in the cache."""

from __future__ import annotations

import hashlib

import pytest

from mnsmeta.data import releases
from mnsmeta.data.releases import RELEASE_FILES, ReleaseFile, fetch_file, sha256_of
from mnsmeta.errors import MnsmetaInputError


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("MNSMETA_DATA_DIR", str(folder))
    return folder


@pytest.fixture
def tiny_release(tmp_path):
    """A fake release file of 1,000 bytes in a mirror folder of its own."""
    mirror = tmp_path / "mirror"
    (mirror / "db").mkdir(parents=True)
    payload = bytes(range(250)) * 4
    (mirror / "db" / "file.bin").write_bytes(payload)
    release = ReleaseFile(
        "tiny",
        "db/file.bin",
        "https://example.invalid/file.bin",
        hashlib.sha256(payload).hexdigest(),
    )
    return release, mirror


def test_release_files_are_pinned_to_commits_and_checksums():
    assert len(RELEASE_FILES) == 8
    for release in RELEASE_FILES:
        assert (
            releases.NEUROSYNTH_COMMIT in release.url or releases.NEUROQUERY_COMMIT in release.url
        )
        assert len(release.sha256) == 64


def test_checksums_match_the_shared_mirror_sums_file():
    mirror = releases.mirror_dir()
    if mirror is None or not (mirror / "SHA256SUMS").is_file():
        pytest.skip("no local mirror with a SHA256SUMS file")
    listed = dict(
        reversed(line.split()) for line in (mirror / "SHA256SUMS").read_text().splitlines()
    )
    assert {r.relpath: r.sha256 for r in RELEASE_FILES} == listed


def test_mirror_copy_is_verified_and_cached(cache, tiny_release):
    release, mirror = tiny_release
    path = fetch_file(release, mirror=mirror, progress=False)
    assert path == cache / "db" / "file.bin"
    assert sha256_of(path) == release.sha256
    # A second call uses the cache even when the mirror is gone.
    (mirror / "db" / "file.bin").unlink()
    assert fetch_file(release, mirror=mirror, progress=False) == path


def test_corrupt_mirror_file_names_the_file_and_leaves_nothing_in_cache(cache, tiny_release):
    release, mirror = tiny_release
    (mirror / "db" / "file.bin").write_bytes(b"not the release")
    with pytest.raises(MnsmetaInputError, match=r"file\.bin.*SHA-256 mismatch"):
        fetch_file(release, mirror=mirror, progress=False)
    assert not any(p.is_file() for p in cache.rglob("*"))


def test_truncated_mirror_file_is_rejected(cache, tiny_release):
    release, mirror = tiny_release
    source = mirror / "db" / "file.bin"
    source.write_bytes(source.read_bytes()[:500])
    with pytest.raises(MnsmetaInputError, match="SHA-256 mismatch"):
        fetch_file(release, mirror=mirror, progress=False)
    assert not (cache / "db" / "file.bin").exists()


def test_corrupt_cached_file_is_replaced(cache, tiny_release):
    release, mirror = tiny_release
    (cache / "db").mkdir(parents=True)
    (cache / "db" / "file.bin").write_bytes(b"stale")
    path = fetch_file(release, mirror=mirror, progress=False)
    assert sha256_of(path) == release.sha256


def test_missing_mirror_file_says_which_path_to_provide(cache, tiny_release, tmp_path):
    release, _ = tiny_release
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MnsmetaInputError, match=r"db/file\.bin"):
        fetch_file(release, mirror=empty, progress=False)


def test_all_release_files_fetch_from_the_mirror(cache):
    if releases.mirror_dir() is None:
        pytest.skip("no local mirror (MNSMETA_DATA_MIRROR)")
    paths = releases.fetch_all(progress=False)
    assert set(paths) == {r.key for r in RELEASE_FILES}
    for release in RELEASE_FILES:
        assert sha256_of(paths[release.key]) == release.sha256
