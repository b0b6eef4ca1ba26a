"""Progress: a bar on a terminal, one line per stage in a log.

On a terminal a tqdm bar shows how far a long step is. Without one (CI, ``make run > log``)
a bar writes cursor escape codes into the log, so there a stage writes one plain line when it
ends instead (what it did, how many, how long), and the steps inside a stage (the Monte
Carlo iterations of one analysis, a jackknife subset) write nothing.
"""

from __future__ import annotations

import sys
import time


def on_terminal() -> bool:
    """Whether progress goes to a terminal (standard error is one)."""
    return sys.stderr.isatty()


def progress(iterable=None, *, total=None, desc="", unit="it", show=True, stage=True, **options):
    """A tqdm bar on a terminal; otherwise a :class:`StageLine`.

    Parameters
    ----------
    iterable : iterable, optional
    total : int, optional
    desc, unit : str
        What is counted (the bar's label, and the log line's).
    show : bool
        False: nothing at all.
    stage : bool
        True: a stage of a command (its bar stays; in a log, one line when it ends); False:
        a step inside one (its bar vanishes when done; in a log, nothing).
    **options
        Passed to tqdm (``unit_scale``...).
    """
    if show and on_terminal():
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=stage, **options)
    return StageLine(iterable, total, desc, unit, show and stage)


class StageLine:
    """Counts like a tqdm bar; writes ``desc: n unit in t s`` to standard error when closed
    (if ``write``)."""

    def __init__(self, iterable, total, desc: str, unit: str, write: bool):
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.write = write
        self.n = 0
        self._started = time.perf_counter()
        self._closed = False

    def __iter__(self):
        try:
            for item in self.iterable:
                yield item
                self.n += 1
        finally:
            self.close()

    def __len__(self):
        return len(self.iterable) if self.total is None else self.total

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_description(self, desc: str = "", refresh: bool = True) -> None:
        """Kept for tqdm's interface: the line names the stage, not its last item."""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.write:
            seconds = time.perf_counter() - self._started
            sys.stderr.write(f"{self.desc}: {self.n:,} {self.unit} in {seconds:.1f} s\n")
