"""Faults a shared lab machine sees: a second writer, unwritable or full disks, a file where a
folder should be, a corrupt cache. Each is one line on stderr, a non-zero exit, no traceback,
and no earlier result lost."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
import time

import pytest
from click.testing import CliRunner

from conftest import REPO
from mnsmeta.cli import main
from mnsmeta.workflows.results import ResultsFolder


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(result, *words):
    """Exit 1, no traceback, and the output ends with one ``error:`` line naming ``words``."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert errors == [lines[-1]], result.output
    for word in words:
        assert word in lines[-1], lines[-1]


@pytest.fixture
def results(tmp_path):
    """A results folder with a report and a claims file (what a second command must not lose)."""
    folder = ResultsFolder(tmp_path / "results")
    folder.path.mkdir()
    folder.report.write_text("<html>earlier report</html>")
    return folder


HOLDER = textwrap.dedent(
    """
    import sys, time
    from mnsmeta.workflows.results import ResultsFolder
    with ResultsFolder(sys.argv[1]).locked("mnsmeta run"):
        print("locked", flush=True)
        time.sleep(60)
    """
)


def test_a_second_writer_is_told_who_holds_the_folder_and_a_killed_holder_frees_it(results):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(results.path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        second = invoke("report", "--output", results.path)
        one_line_error(second, "in use by `mnsmeta run`", f"process {holder.pid}", "--wait")
        assert results.report.read_text() == "<html>earlier report</html>"
    finally:
        holder.kill()  # as kill -9: the lock must not outlive its process
        holder.wait()
    again = invoke("report", "--output", results.path)
    assert again.exit_code == 0, again.output
    assert "earlier report" not in results.report.read_text()


def test_wait_queues_behind_the_holder(results):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HOLDER.replace("time.sleep(60)", "time.sleep(2)"),
            str(results.path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    started = time.monotonic()
    result = invoke("report", "--output", results.path, "--wait")
    holder.wait()
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started > 0.5


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.EACCES, ("Permission denied", "make it writable")),
        (errno.ENOSPC, ("No space left on device", "the disk is full")),
        (errno.EROFS, ("Read-only file system", "read-only")),
    ],
)
def test_a_write_that_fails_is_one_line_and_the_earlier_report_stays(
    results, monkeypatch, code, words
):
    from mnsmeta.report import render

    def failing(path, text):
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(render, "write_text", failing)
    result = invoke("report", "--output", results.path)
    one_line_error(result, str(results.report), *words)
    assert results.report.read_text() == "<html>earlier report</html>"


def test_the_atomic_writer_leaves_no_partial_file_when_the_disk_fills(tmp_path):
    from mnsmeta.filesystem import atomic

    target = tmp_path / "table.csv"
    target.write_text("old\n")
    with pytest.raises(OSError), atomic(target) as temporary:
        temporary.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device", str(temporary))
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]


def test_a_file_where_the_results_folder_should_be_is_a_usage_error(tmp_path):
    where = tmp_path / "results"
    where.write_text("not a folder")
    result = invoke("--coordinates", REPO / "coordinates", "claims", "--output", where)
    assert result.exit_code == 2  # click's own check of --output, before any work
    assert f"Invalid value for '--output': Directory '{where}' is a file" in result.output
    assert "Traceback" not in result.output


def test_a_results_folder_under_a_file_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = invoke(
        "--coordinates",
        REPO / "coordinates",
        "studies",
        "--flow",
        "-o",
        blocker / "flow" / "stages.csv",
    )
    one_line_error(result, str(blocker), "a file stands where a folder should be")


def test_export_does_not_overwrite_without_force(tmp_path, make_coordinates):
    from conftest import record_line

    root = make_coordinates([record_line("19717138", n=(27, 27, ""))])
    out = tmp_path / "sad.txt"
    out.write_text("precious")
    refused = invoke("--coordinates", root, "export", "-g", "SAD", "-o", out)
    one_line_error(refused, str(out), "--force")
    assert out.read_text() == "precious"
    forced = invoke("--coordinates", root, "export", "-g", "SAD", "-o", out, "--force")
    assert forced.exit_code == 0, forced.output
    assert out.read_text().startswith("// Reference=MNI")


def test_a_corrupt_atlas_cache_is_computed_again(tmp_path, monkeypatch, caplog):
    from mnsmeta.data import atlases

    monkeypatch.setenv("MNSMETA_DATA_DIR", str(tmp_path / "cache"))
    atlases.maxprob_image.cache_clear()
    first = atlases.maxprob_image("juelich")
    cached = next((tmp_path / "cache" / "atlases").glob("*.nii.gz"))
    cached.write_bytes(cached.read_bytes()[:1000])  # truncated
    atlases.maxprob_image.cache_clear()
    again = atlases.maxprob_image("juelich")
    assert "fails its checksum" in caplog.text
    assert (again.get_fdata() == first.get_fdata()).all()
    atlases.maxprob_image.cache_clear()
