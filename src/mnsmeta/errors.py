"""The one exception type for problems a user can fix, and how they are reported."""

from __future__ import annotations

import errno
from dataclasses import dataclass

#: What to do about a file system error, by its errno.
FILESYSTEM_FIXES = {
    errno.EACCES: "make it writable (chmod), or choose another folder (--output)",
    errno.EPERM: "make it writable (chmod), or choose another folder (--output)",
    errno.EROFS: "the file system is read-only: choose another folder (--output)",
    errno.ENOSPC: "the disk is full: free some space, then run the command again",
    errno.EDQUOT: "the disk quota is full: free some space, then run the command again",
    errno.ENOTDIR: "a file stands where a folder should be: rename or remove it, or choose "
    "another folder (--output)",
    errno.EEXIST: "a file stands where a folder should be: rename or remove it, or choose "
    "another folder (--output)",
    errno.EISDIR: "a folder stands where a file should be: rename or remove it",
    errno.ENOENT: "check that the path exists",
}


def filesystem_message(error: OSError) -> str:
    """One line: the path, what the system said, and what to do."""
    path = error.filename or "a file"
    if error.filename2:
        path = f"{path} -> {error.filename2}"
    what = error.strerror or type(error).__name__
    fix = FILESYSTEM_FIXES.get(error.errno, "check the path and its permissions, then retry")
    return f"{path}: {what}: {fix} (the previous results are unchanged)"


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
