"""Reading the project's tab-separated files with line numbers, for errors a user can act on."""

from __future__ import annotations

import codecs
import csv
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

from mnsmeta.errors import Problem

LGR = logging.getLogger(__name__)


@dataclass
class Row:
    """One data row of a TSV file: its 1-based line number and its fields by column."""

    line: int
    fields: dict[str, str]

    def __getitem__(self, column: str) -> str:
        return self.fields.get(column, "")


def read_text(path: Path, problems: list[Problem]) -> str | None:
    """Read a text file; record a problem and return None if it is empty or undecodable.

    UTF-8 (with or without a byte-order mark) is read as is. Two encodings that Windows tools
    write are detected and decoded, with a warning: UTF-16 with its byte-order mark, and
    Windows-1252 (a file that is not UTF-8 but decodes there to ordinary text). Anything
    else is a problem that names the first undecodable byte.
    """
    data = Path(path).read_bytes()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            text = None
        if text is not None:
            LGR.warning(
                "%s: decoded as UTF-16 (saved by a Windows tool); UTF-8 is preferred", path
            )
            data = text.encode("utf-8")
    if not data.strip():
        problems.append(Problem(str(path), None, "the file is empty", "add content or delete it"))
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        windows = _windows_1252(data)
        if windows is not None:
            LGR.warning(
                "%s: not UTF-8, decoded as Windows-1252 (saved by a Windows tool); "
                "UTF-8 is preferred",
                path,
            )
            return windows
        line = data[: error.start].count(b"\n") + 1
        problems.append(
            Problem(
                str(path),
                line,
                f"not UTF-8 (byte 0x{data[error.start]:02x})",
                "save the file as UTF-8 (in a spreadsheet: 'UTF-8 CSV/TSV')",
            )
        )
        return None


def _windows_1252(data: bytes) -> str | None:
    """The text, if the bytes are Windows-1252 text (no undefined byte, no control
    character but tab and line ends); else None."""
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    if any(ord(c) < 32 and c not in "\t\r\n" for c in text):
        return None
    return text


def read_tsv(
    path: Path,
    required: list[str],
    optional: list[str],
    problems: list[Problem],
) -> list[Row]:
    """Read a TSV file with a header line; lines starting with ``#`` are comments.

    Parameters
    ----------
    path : Path
        The file.
    required, optional : list of str
        Columns that must be present, and columns that may be.
    problems : list of Problem
        Problems found are appended here; reading goes on past them where it can.

    Returns
    -------
    list of Row
        Data rows with their line numbers, fields stripped of surrounding spaces.
    """
    text = read_text(path, problems)
    if text is None:
        return []
    lines = [
        (number, line)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        problems.append(Problem(str(path), None, "no header line", "add a header line"))
        return []
    header_line, header = lines[0]
    columns = [name.strip() for name in next(csv.reader([header], delimiter="\t"))]
    missing = [name for name in required if name not in columns]
    if missing:
        problems.append(
            Problem(
                str(path),
                header_line,
                f"missing column(s) {', '.join(missing)}",
                f"the header must hold these tab-separated columns: {', '.join(required)}",
            )
        )
        return []
    unknown = [name for name in columns if name not in required + optional]
    if unknown:
        problems.append(
            Problem(
                str(path),
                header_line,
                f"unknown column(s) {', '.join(unknown)}",
                f"use only {', '.join(required + optional)} (check spelling and tabs)",
            )
        )
    rows = []
    for number, line in lines[1:]:
        values = next(csv.reader([line], delimiter="\t"))
        if len(values) > len(columns):
            problems.append(
                Problem(
                    str(path),
                    number,
                    f"{len(values)} fields but the header has {len(columns)}",
                    "separate fields with single tabs; remove extra tabs",
                )
            )
            continue
        values += [""] * (len(columns) - len(values))
        rows.append(Row(number, {c: v.strip() for c, v in zip(columns, values, strict=True)}))
    return rows


def positive_whole_number(value: str) -> int | None:
    """``"24"`` or ``"24.0"`` -> 24; anything else (0, -3, 12.5, nan, text) -> None."""
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number) or number != int(number) or number <= 0:
        return None
    return int(number)


def participant_count(row: Row, column: str, path: str, problems: list[Problem]) -> int | None:
    """A column holding a number of participants: empty is missing, else a positive whole
    number; anything else is recorded as a problem (and read as missing)."""
    value = row[column]
    if value == "":
        return None
    number = positive_whole_number(value)
    if number is None:
        problems.append(
            Problem(
                path,
                row.line,
                f"{column} = {value!r} is not a positive whole number",
                "write the number of participants as read in the source, or leave it empty",
            )
        )
    return number


def toml_entry_lines(text: str, array: str) -> list[dict[str, int]]:
    """Line numbers in a TOML text of each ``[[array]]`` entry's header and keys.

    ``tomllib`` keeps no positions; an error about an entry names the line of its key (or of
    its header, ``""``). Entry ``i`` of the returned list is the ``i``-th ``[[array]]``.
    """
    entries: list[dict[str, int]] = []
    current: dict[str, int] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            current = {"": number} if stripped.replace(" ", "") == f"[[{array}]]" else None
            if current is not None:
                entries.append(current)
            continue
        key = re.match(r"^([A-Za-z0-9_-]+)\s*=", stripped)
        if current is not None and key:
            current.setdefault(key.group(1), number)
    return entries


def unknown_keys(
    entry: dict, known, lines: dict[str, int], path: str, where: str
) -> list[Problem]:
    """A problem for each key of a TOML entry that is not among ``known``."""
    return [
        Problem(
            path,
            lines.get(key, lines.get("")),
            f"{where}: unknown key {key!r}",
            f"use only {', '.join(known)} (check the spelling)",
        )
        for key in entry
        if key not in known
    ]
