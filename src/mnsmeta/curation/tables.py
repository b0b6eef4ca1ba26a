"""Foci tables: one row per focus, in CSV, TSV or Excel, as JALE and most supplements have them.

Columns are found by the names the field uses, in any case, spacing or punctuation
(``Author(s)``, ``sample size``, ``X (mm)``): see :data:`COLUMN_NAMES`. A table whose columns
are named otherwise says which column holds what (``--column study=Author --column
n=Subjects``; :func:`column_mapping`). For example::

    study,contrast,n,space,x,y,z
    Smith 2010,faces > shapes,24,MNI,-40,20,10
    Smith 2010,faces > shapes,24,MNI,38,22,8
    Lee 2015,patients > controls,31,TAL,-22,-4,-18

The rows of one study and contrast are one experiment, wherever they are in the table;
without a contrast column, the rows of one study. A row whose study cell is empty continues
the experiment of the row above (JALE's layout, with the study's name, N and space on its
first row only). Every experiment has one N and one space (``MNI``, or ``TAL``, converted to
MNI as Sleuth files are): two different values among its rows are an error naming the rows.
``NA``, ``N/A`` and empty cells are missing values; a UTF-8 byte-order mark is read; a
typographic minus (``−85``) is a minus, with a warning.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mnsmeta.curation.foci_files import (
    FociExperiment,
    check_experiments,
    parse_coordinate,
    read_minus,
)
from mnsmeta.curation.tsv import positive_whole_number, read_text
from mnsmeta.errors import MnsmetaInputError, Problem

#: What a column can hold, in the order a table usually has them.
ROLES = ("study", "contrast", "n", "space", "x", "y", "z")
#: Roles a table must have (the contrast is optional).
REQUIRED = ("study", "n", "space", "x", "y", "z")
#: The names recognised for each role, compared in lower case without spaces or
#: punctuation (``Author(s)`` is ``authors``, ``Sample size`` is ``samplesize``).
COLUMN_NAMES = {
    "study": (
        "study", "studies", "studyname", "studyid", "publication", "publications", "paper",
        "citation", "article", "articles", "author", "authors", "firstauthor", "experiment",
        "experiments",
    ),
    "contrast": ("contrast", "contrasts", "contrastname", "direction", "comparison"),
    "n": (
        "n", "subjects", "nsubjects", "numberofsubjects", "noofsubjects", "samplesize",
        "participants", "nparticipants", "numberofparticipants", "ntotal", "totaln",
    ),
    "space": ("space", "coordinatespace", "referencespace", "stereotaxicspace", "template"),
    **{
        axis: (axis, f"{axis}mm", f"mni{axis}", f"{axis}mni", f"tal{axis}", f"{axis}tal")
        for axis in "xyz"
    },
}  # fmt: skip
#: Cells read as missing values (compared in lower case).
MISSING = {"", "na", "n/a", "nan", "null", "none"}
#: Spellings of the two spaces (compared in lower case without spaces or punctuation).
SPACE_NAMES = {
    "mni": "MNI", "mni152": "MNI", "icbm": "MNI", "icbm152": "MNI",
    "tal": "TAL", "talairach": "TAL",
}  # fmt: skip


def _normal(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", name.lower())


def looks_like_foci_table(columns) -> bool:
    """Whether a header names x, y and z columns (as a foci table's header does)."""
    normal = {_normal(str(column)) for column in columns}
    return all(normal & set(COLUMN_NAMES[axis]) for axis in "xyz")


def column_mapping(values) -> dict[str, str]:
    """Which column holds what: ``["study=Author", "n=Subjects"]`` (the ``--column``
    options) or a dict, checked; ``"contrast="`` says the table has no contrast column
    (its studies' rows are then pooled into one experiment each).

    Raises
    ------
    MnsmetaInputError
        For an item that is not ``ROLE=COLUMN`` or names an unknown role.
    """
    if not values:
        return {}
    items = values.items() if isinstance(values, Mapping) else []
    if not isinstance(values, Mapping):
        pairs = []
        for value in values:
            role, equals, column = str(value).partition("=")
            if not equals:
                raise MnsmetaInputError(
                    f"--column {value!r}: give ROLE=COLUMN, e.g. --column study=Author"
                )
            pairs.append((role, column))
        items = pairs
    mapping = {}
    for role, column in items:
        role = role.strip().lower()
        if role not in ROLES:
            raise MnsmetaInputError(
                f"--column {role}={column}: unknown role {role!r}: use one of "
                f"{', '.join(ROLES)} (e.g. --column study=Author)"
            )
        if not column.strip() and role != "contrast":
            raise MnsmetaInputError(f"--column {role}=: a table needs its {role} column: name it")
        mapping[role] = column.strip()
    return mapping


@dataclass
class _Rows:
    """The experiment being built from a table's rows."""

    study: str
    contrast: str
    line: int
    foci: list[tuple[float, float, float]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    first_at: dict[tuple[float, float, float], int] = field(default_factory=dict)
    sizes: dict[int, list[int]] = field(default_factory=dict)
    spaces: dict[str, list[int]] = field(default_factory=dict)
    rows: list[int] = field(default_factory=list)
    repeated: int = 0
    #: Columns with a value that could not be read (already a problem of its row).
    unreadable: set[str] = field(default_factory=set)

    @property
    def name(self) -> str:
        return f"{self.study}: {self.contrast}" if self.contrast else self.study


def read_table(
    path: Path, problems: list[Problem], columns=None, drop_outside: bool | str = False
) -> list[FociExperiment]:
    """Read a foci table (CSV, TSV or Excel; one row per focus) into experiments.

    Parameters
    ----------
    path : Path
        The table: ``.csv`` (comma, semicolon or tab separated, found from the header),
        ``.tsv``/``.tab``, or ``.xlsx`` (its first sheet).
    problems : list of Problem
        Where problems are recorded, each naming its line (the spreadsheet's row).
    columns : dict or sequence of str, optional
        Which column holds what, for columns named otherwise (:func:`column_mapping`).
    drop_outside : bool or "box"
        As for :func:`~mnsmeta.curation.foci_files.read_foci_file`.

    Returns
    -------
    list of FociExperiment
        One per study (and contrast), in order of first appearance.
    """
    path_s = str(path)
    rows = _rows(Path(path), problems)
    if not rows:
        return []
    header_line, header = rows[0]
    found = _find_columns(header, column_mapping(columns), path_s, header_line, problems)
    if found is None:
        return []
    names = {role: _text(header[i]) for role, i in found.items() if i is not None}
    experiments: dict[tuple[str, str], _Rows] = {}
    current: _Rows | None = None
    for line, cells in rows[1:]:
        extra = [c for c in cells[len(header) :] if not _missing(c)]
        if extra:
            problems.append(
                Problem(
                    path_s,
                    line,
                    f"{len(header) + len(extra)} cells but the header has {len(header)}",
                    'quote a cell that holds the separator ("Smith, 2010"), or name the '
                    "extra column in the header",
                )
            )
            continue
        cell = {role: (cells[i] if i is not None and i < len(cells) else None)
                for role, i in found.items()}  # fmt: skip
        study = _text(cell["study"])
        if study:
            key = (study, _text(cell["contrast"]))
            current = experiments.setdefault(key, _Rows(*key, line))
        elif current is None:
            problems.append(
                Problem(
                    path_s,
                    line,
                    f"no study named in column {names['study']!r} on the first row",
                    "name the study of every row (or of the first row of each study's block)",
                )
            )
            continue
        current.rows.append(line)
        _read_n(cell["n"], names["n"], current, path_s, line, problems)
        _read_space(cell["space"], names["space"], current, path_s, line, problems)
        focus = _read_focus(cell, path_s, line, problems)
        if focus is None:
            continue
        if focus in current.first_at:
            problems.append(
                Problem(
                    path_s,
                    line,
                    f"focus {' '.join(_text(cell[a]) for a in 'xyz')!r} entered twice in "
                    f"experiment {current.name!r} (first at line {current.first_at[focus]})",
                    "it counts once (pooled contrasts share peaks); delete the repeated row "
                    "to silence this",
                    severity="warning",
                )
            )
            current.repeated += 1
            continue
        current.first_at[focus] = line
        current.foci.append(focus)
        current.lines.append(line)
    built = [_experiment(rows, names, path_s, problems) for rows in experiments.values()]
    return check_experiments([e for e in built if e is not None], path_s, problems, drop_outside)


def _experiment(rows: _Rows, names, path: str, problems) -> FociExperiment | None:
    if not rows.foci:
        problems.append(
            Problem(
                path,
                rows.line,
                f"experiment {rows.name!r} has zero foci",
                "skipped; give x, y and z on its rows, or delete them",
                severity="warning",
            )
        )
        return None
    sample_size = _one_value(rows, rows.sizes, "N", names["n"], path, problems)
    space = _one_value(rows, rows.spaces, "space", names["space"], path, problems)
    return FociExperiment(
        rows.name,
        sample_size,
        space or "MNI",
        rows.foci,
        rows.line,
        path,
        study=rows.study,
        contrast=rows.contrast,
        lines=rows.lines,
        repeated=rows.repeated,
        sample_size_rule=f"column {names['n']!r}",
    )


def _one_value(rows: _Rows, values: dict, what: str, column: str, path, problems):
    """The one value an experiment's rows give (N or space); a problem if none or several."""
    if len(values) == 1:
        return next(iter(values))
    if not values and column in rows.unreadable:
        return None  # its rows' values are problems already
    if not values:
        problems.append(
            Problem(
                path,
                rows.line,
                f"experiment {rows.name!r} has no {what} (column {column!r} is empty on its "
                f"rows {_lines(rows.rows)})",
                f"write its {what} in column {column!r}",
            )
        )
        return None
    listed = "; ".join(f"{value} (rows {_lines(lines)})" for value, lines in values.items())
    problems.append(
        Problem(
            path,
            rows.line,
            f"experiment {rows.name!r} has {len(values)} different {what} values: {listed}",
            "one experiment is one sample in one space: correct the value, or give the rows "
            "of each sample their own study or contrast name",
        )
    )
    return None


def _lines(lines: list[int]) -> str:
    shown = ", ".join(map(str, lines[:8]))
    return shown + (f" and {len(lines) - 8} more" if len(lines) > 8 else "")


def _read_n(value, column, rows: _Rows, path, line, problems) -> None:
    text = _text(value)
    if text.lower() in MISSING:
        return
    number = positive_whole_number(text)
    if number is None:
        rows.unreadable.add(column)
        problems.append(
            Problem(
                path,
                line,
                f"{column} = {text!r} is not a positive whole number",
                "write the number of participants, e.g. 24",
            )
        )
        return
    rows.sizes.setdefault(number, []).append(line)


def _read_space(value, column, rows: _Rows, path, line, problems) -> None:
    text = _text(value)
    if text.lower() in MISSING:
        return
    space = SPACE_NAMES.get(_normal(text))
    if space is None:
        rows.unreadable.add(column)
        problems.append(
            Problem(
                path,
                line,
                f"{column} = {text!r} is not a space",
                "write MNI or TAL (Talairach)",
            )
        )
        return
    rows.spaces.setdefault(space, []).append(line)


def _read_focus(cell, path, line, problems) -> tuple[float, float, float] | None:
    """The row's focus; None for a row without coordinates (it may give N or space only)."""
    values = {axis: cell[axis] for axis in "xyz"}
    missing = [axis for axis, value in values.items() if _missing(value)]
    if len(missing) == 3:
        return None
    if missing:
        problems.append(
            Problem(
                path,
                line,
                f"{', '.join(missing)} missing",
                "give x, y and z of every focus, or delete the row",
            )
        )
        return None
    numbers = []
    for axis, value in values.items():
        if isinstance(value, str):
            value = read_minus(value.strip(), path, line, problems)
        numbers.append(parse_coordinate(value, axis, path, line, problems))
    return None if None in numbers else tuple(numbers)


def _missing(value) -> bool:
    return value is None or str(value).strip().lower() in MISSING


def _text(value) -> str:
    """A cell as text: numbers without a trailing ``.0``, missing values empty."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return "" if text.lower() in MISSING else text


def _find_columns(header, mapping, path, line, problems) -> dict[str, int | None] | None:
    """Each role's column index (None: the table has no such column), or None if a needed
    column is missing or ambiguous (recorded as a problem naming the fix)."""
    names = [_text(name) for name in header]
    normal = [_normal(name) for name in names]
    found: dict[str, int | None] = {}
    ok = True
    for role in ROLES:
        if role in mapping:
            wanted = mapping[role]
            if not wanted:
                found[role] = None
                continue
            hits = [i for i, name in enumerate(names) if name == wanted] or [
                i for i, name in enumerate(normal) if name and name == _normal(wanted)
            ]
            if not hits:
                problems.append(
                    Problem(
                        path,
                        line,
                        f"no column {wanted!r} (--column {role}={wanted})",
                        f"use one of the table's columns: {', '.join(map(repr, names))}",
                    )
                )
                ok = False
                continue
        else:
            hits = [i for i, name in enumerate(normal) if name in COLUMN_NAMES[role]]
        if len(hits) > 1:
            problems.append(
                Problem(
                    path,
                    line,
                    f"columns {' and '.join(repr(names[i]) for i in hits)} could both be the "
                    f"{role} column",
                    f"say which: --column {role}={names[hits[0]]}",
                )
            )
            ok = False
            continue
        found[role] = hits[0] if hits else None
        if found[role] is None and role in REQUIRED:
            problems.append(
                Problem(
                    path,
                    line,
                    f"no {role} column (looked for {', '.join(COLUMN_NAMES[role][:6])}, ... in "
                    f"any case)",
                    f"name the column that holds it: --column {role}=NAME (the table's "
                    f"columns: {', '.join(map(repr, names))})",
                )
            )
            ok = False
    return found if ok else None


def _rows(path: Path, problems: list[Problem]) -> list[tuple[int, list]]:
    """The table's non-empty rows with their line (row) numbers, the header first."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        rows = _excel_rows(path, problems)
    else:
        text = read_text(path, problems)
        if text is None:
            return []
        first = next((line for line in text.splitlines() if line.strip()), "")
        if path.suffix.lower() in (".tsv", ".tab"):
            delimiter = "\t"
        else:  # a CSV: commas, or semicolons (decimal-comma locales), or tabs
            delimiter = max(",;\t", key=first.count)
        reader = csv.reader(text.splitlines(), delimiter=delimiter)
        rows = [(reader.line_num, row) for row in reader]
    rows = [(line, cells) for line, cells in rows if any(not _missing(c) for c in cells)]
    if not rows:
        problems.append(Problem(str(path), None, "the table is empty", "add a header and rows"))
    return rows


def _excel_rows(path: Path, problems: list[Problem]) -> list[tuple[int, list]]:
    try:
        from openpyxl import load_workbook

        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises several types for files it cannot open
        problems.append(
            Problem(
                str(path),
                None,
                f"not an Excel workbook that openpyxl can read ({type(error).__name__}: {error})",
                "save it as .xlsx, or export the sheet as CSV",
            )
        )
        return []
    try:
        sheet = workbook.worksheets[0]
        # From row 1, missing rows filled: the numbers are the spreadsheet's row numbers.
        rows = sheet.iter_rows(min_row=1, values_only=True)
        return [(number, list(row)) for number, row in enumerate(rows, start=1)]
    finally:
        workbook.close()
