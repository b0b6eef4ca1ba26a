"""Progress: a bar on a terminal, one plain line per stage in a log, nothing for inner steps."""

from __future__ import annotations

import re

from mnsmeta import progress as progress_module
from mnsmeta.progress import StageLine, progress


def test_a_stage_in_a_log_writes_one_line_with_its_count_and_duration(capsys, monkeypatch):
    monkeypatch.setattr(progress_module, "on_terminal", lambda: False)
    bar = progress(["SAD", "BPD", "MNS"], desc="analyses", unit="analysis")
    assert isinstance(bar, StageLine)
    for name in bar:
        bar.set_description(f"{name} (ale)")  # tqdm's interface, harmless here
    err = capsys.readouterr().err
    assert re.fullmatch(r"analyses: 3 analysis in \d+\.\d s\n", err)
    assert "\x1b" not in err and "\r" not in err  # no cursor escape codes


def test_inner_steps_and_hidden_bars_write_nothing_in_a_log(capsys, monkeypatch):
    monkeypatch.setattr(progress_module, "on_terminal", lambda: False)
    with progress(total=10_000, desc="Monte Carlo", stage=False) as bar:
        bar.update(10_000)
    for _ in progress(range(3), desc="hidden", show=False):
        pass
    assert capsys.readouterr().err == ""


def test_a_terminal_gets_a_tqdm_bar(monkeypatch):
    from tqdm.auto import tqdm

    monkeypatch.setattr(progress_module, "on_terminal", lambda: True)
    bar = progress(range(2), desc="overlap", unit="analysis")
    assert isinstance(bar, tqdm)
    assert list(bar) == [0, 1]
