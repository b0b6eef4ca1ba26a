"""The one exception type for problems a user can fix, and how they are reported."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One problem found in an input file.

    Parameters
    ----------
    file : str
        The file the problem is in.
    line : int or None
        1-based line number, or None when the problem concerns the whole file.
    message : str
        What is wrong, naming the bad value.
    fix : str
        What the user should do about it (for a warning: what the analysis does with it).
    severity : {"error", "warning"}
        An error means the file cannot be read as intended, and stops the command; a
        warning is read and used as documented (a repeated focus counts once), and stops
        nothing unless ``--strict`` is given.
    """

    file: str
    line: int | None
    message: str
    fix: str
    severity: str = "error"

    @property
    def is_warning(self) -> bool:
        return self.severity == "warning"

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        prefix = "warning: " if self.is_warning else ""
        return f"{where}: {prefix}{self.message}: {self.fix}"


def errors_in(problems: list[Problem]) -> list[Problem]:
    """The problems that stop a command (every one but the warnings)."""
    return [problem for problem in problems if not problem.is_warning]


class MnsmetaInputError(Exception):
    """A problem with the user's input, reported without a traceback.

    Parameters
    ----------
    message : str
        One-line summary, or the whole message when there are no problems.
    problems : list of Problem, optional
        Every problem found, so that the user can fix them all at once.
    """

    def __init__(self, message: str, problems: list[Problem] | None = None):
        self.problems = list(problems or [])
        super().__init__(message)

    def __str__(self) -> str:
        head = super().__str__()
        if not self.problems:
            return head
        return "\n".join([head, *(str(problem) for problem in self.problems)])
