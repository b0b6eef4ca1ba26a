"""Foci hygiene: tables that are not coordinates, tables stored twice, repeated foci.

The databases' automatic extraction sometimes stores one table of a paper twice: NeuroQuery 1
under two numbering schemes of the same article (``tbl2`` and ``T2``), Neurosynth 0.7 under two
table ids. Both copies then enter the merge. An exact copy adds no new location to the MA map
(the kernel takes the maximum per voxel) but adds random foci to the Monte Carlo null and
inflates the foci counts; a copy in which the extraction misread one coordinate (a lost minus
sign, a dropped digit) adds a false focus. So a copy is dropped, and a copy that disagrees is
flagged for a curator, who can read the paper and choose the database (``source_db``).

The automatic extraction also stores tables that are not peak coordinates at all: statistics
read as coordinates, row counters, small integer triples such as (1, 2, 3) that land in the
ventricles. ALE cannot tell them from peaks, so a table that is not plausibly a list of
coordinates is dropped before anything else.

Rules, applied within one study and one database (a "table" is the foci of one ``table_id``):

``implausible_table`` (:func:`implausibility`)
    A table of at least 3 foci that no coordinate table looks like (tests in
    ``PLAUSIBILITY_TESTS``): every focus within 10 mm of the origin (``near_origin``); every
    value a whole number of at most 9 mm (``small_integers``: (1, 2, 3), (2, 3, 4)); a column
    stepping by one constant amount over 5 or more foci (``arithmetic_sequence``: a row
    counter); one column constant over 5 or more foci that are otherwise distinct, the midline
    x = 0 excepted (``constant_column``); a column whose every value is a fraction under 10 in
    magnitude (``statistic_like``: t or z values, p values, proportions). The table is dropped;
    a study left with no table is excluded (reason ``implausible_foci``).
``duplicate_table``
    Two tables of at least 2 foci hold exactly the same coordinates (as a multiset, in any
    order). The later table (in database order) is dropped.
``near_copy_table``
    Two tables of the same length, at least 3 foci, share all but at most 10 % of their
    coordinates (at least one differs), and each differing focus pairs with a focus of the
    other table that differs in one coordinate only (``sign`` when only the sign differs). The
    later table is dropped and the differences are listed for a curator: which copy is right
    is not known without the paper.
``repeated_focus`` (applied per experiment, :func:`drop_repeated_foci`)
    Within one experiment a focus counts once: pooled contrasts share peaks (a conjunction
    peak reported in two tables), and a peak twice in one table is an extraction artefact.

Single-focus tables are never called copies: two contrasts of one study can share their one
peak. They still count once within an experiment.
"""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pandas as pd

IMPLAUSIBLE_TABLE = "implausible_table"
DUPLICATE_TABLE = "duplicate_table"
NEAR_COPY_TABLE = "near_copy_table"
REPEATED_FOCUS = "repeated_focus"
#: Every rule, in the order it is applied, with the one line the flow shows for it.
RULES = {
    IMPLAUSIBLE_TABLE: "a database table that is not peak coordinates (statistics, counters, "
    "small integers near the origin): the table is dropped",
    DUPLICATE_TABLE: "a database table stored twice (same foci): the copy is dropped",
    NEAR_COPY_TABLE: "a table stored twice, one coordinate differing in a few foci: the copy "
    "is dropped and the difference flagged for a curator",
    REPEATED_FOCUS: "a focus repeated within one experiment counts once",
}
#: Columns of the table of copies (:func:`find_table_copies`).
COPY_COLUMNS = ["pmid", "source", "table_id", "copy_of", "rule", "n_foci", "differences"]
#: Coordinates are compared at this precision (mm): the databases store at most 2 decimals.
DECIMALS = 2
MIN_COPY_FOCI = {DUPLICATE_TABLE: 2, NEAR_COPY_TABLE: 3}
NEAR_COPY_MAX_DIFFERING = 0.10


#: The plausibility tests of a table (:func:`implausibility`), each with what it catches.
PLAUSIBILITY_TESTS = {
    "near_origin": "every focus within 10 mm of the origin (ventricles)",
    "small_integers": "every value a whole number of at most 9 mm, e.g. (1, 2, 3)",
    "arithmetic_sequence": "a column stepping by one constant amount (a row counter)",
    "constant_column": "one column constant over otherwise distinct foci (midline x = 0 excepted)",
    "statistic_like": "a column of fractions under 10 in magnitude (t, z or p values)",
}
MIN_TABLE_FOCI = 3
NEAR_ORIGIN_MM = 10.0
SMALL_INTEGER_MM = 9
MIN_SEQUENCE_FOCI = 5
STATISTIC_MAX = 10.0


def implausibility(xyz) -> list[str]:
    """The plausibility tests one table of foci fails (empty when it looks like coordinates).

    Parameters
    ----------
    xyz : array-like, shape (n_foci, 3)
        The table's coordinates in mm, as the database stores them (in the table's order).

    Returns
    -------
    list of str
        Names of the failed tests (``PLAUSIBILITY_TESTS``), in that order. Tables of fewer
        than 3 foci pass: two real peaks can share any pattern.
    """
    xyz = np.asarray(xyz, dtype=float).reshape(-1, 3)
    n = len(xyz)
    if n < MIN_TABLE_FOCI:
        return []
    failed = []
    if (np.linalg.norm(xyz, axis=1) <= NEAR_ORIGIN_MM).all():
        failed.append("near_origin")
    if (np.abs(xyz) <= SMALL_INTEGER_MM).all() and (xyz == np.round(xyz)).all():
        failed.append("small_integers")
    if n >= MIN_SEQUENCE_FOCI:
        steps = np.diff(xyz, axis=0)
        if any(steps[0, c] != 0 and (steps[:, c] == steps[0, c]).all() for c in range(3)):
            failed.append("arithmetic_sequence")
        distinct = len(np.unique(xyz, axis=0)) >= MIN_TABLE_FOCI
        constant = [c for c in range(3) if (xyz[:, c] == xyz[0, c]).all()]
        # Midline foci (x = 0) are real locations, say seeds along the midline.
        if distinct and any(not (c == 0 and xyz[0, 0] == 0) for c in constant):
            failed.append("constant_column")
    fractions = (np.abs(xyz) < STATISTIC_MAX) & (xyz != np.round(xyz))
    if fractions.all(axis=0).any():
        failed.append("statistic_like")
    return failed


def mark_implausible_tables(
    foci: pd.DataFrame, keys=("pmid", "source", "table_id")
) -> pd.DataFrame:
    """Add ``implausible``: the failed plausibility tests of each focus's table (or empty).

    ``keys`` name a table: a database table by study, source and table id; a typed-in table by
    experiment and table.
    """
    foci = foci.copy()
    marks = np.full(len(foci), "", dtype=object)
    xyz = foci[["x", "y", "z"]].to_numpy(float)
    for rows in foci.groupby(list(keys), sort=False).indices.values():
        failed = implausibility(xyz[rows])
        if failed:
            marks[rows] = "; ".join(failed)
    foci["implausible"] = marks
    return foci


def implausible_tables(foci: pd.DataFrame) -> pd.DataFrame:
    """The tables :func:`mark_implausible_tables` marked, one row each.

    Columns ``pmid``, ``source``, ``table_id``, ``n_foci`` and ``tests``.
    """
    marked = foci[foci["implausible"] != ""]
    return (
        marked.groupby(["pmid", "source", "table_id"], sort=False)
        .agg(n_foci=("implausible", "size"), tests=("implausible", "first"))
        .reset_index()
    )


def find_table_copies(foci: pd.DataFrame) -> pd.DataFrame:
    """Find the tables that are copies of an earlier table of the same study and database.

    Parameters
    ----------
    foci : pandas.DataFrame
        Columns ``pmid``, ``source``, ``table_id``, ``x``, ``y``, ``z``, in database order.

    Returns
    -------
    pandas.DataFrame
        One row per copy (``COPY_COLUMNS``): the dropped ``table_id``, the earlier table it
        copies (``copy_of``), the rule, its foci, and for a near copy the differing
        coordinates (``x 19 vs -19 (sign)``).
    """
    rows = []
    # Only tables of equal length can be copies: look at the studies that have two.
    sizes = foci.groupby(["pmid", "source", "table_id"], sort=False).size().rename("n")
    sizes = sizes[sizes >= min(MIN_COPY_FOCI.values())].reset_index()
    paired = sizes[sizes.duplicated(["pmid", "source", "n"], keep=False)]
    candidates = pd.MultiIndex.from_frame(paired[["pmid", "source"]]).unique()
    foci = foci[pd.MultiIndex.from_frame(foci[["pmid", "source"]]).isin(candidates)]
    for (pmid, source), study in foci.groupby(["pmid", "source"], sort=False):
        tables = {
            table: [tuple(p) for p in np.round(part[["x", "y", "z"]].to_numpy(float), DECIMALS)]
            for table, part in study.groupby("table_id", sort=False)
        }
        if len(tables) < 2:
            continue
        copied = set()
        for (first, a), (later, b) in itertools.combinations(tables.items(), 2):
            if later in copied or first in copied or len(a) != len(b):
                continue
            rule, differences = _compare(a, b)
            if rule is not None:
                copied.add(later)
                rows.append([pmid, source, later, first, rule, len(b), differences])
    return pd.DataFrame(rows, columns=COPY_COLUMNS)


def _compare(a: list[tuple], b: list[tuple]) -> tuple[str | None, str]:
    """The copy rule two equally long tables meet (or None), and their differences."""
    only_a = list((Counter(a) - Counter(b)).elements())
    only_b = list((Counter(b) - Counter(a)).elements())
    if not only_a:
        return (DUPLICATE_TABLE, "") if len(a) >= MIN_COPY_FOCI[DUPLICATE_TABLE] else (None, "")
    allowed = max(1, int(NEAR_COPY_MAX_DIFFERING * len(a)))
    if len(a) < MIN_COPY_FOCI[NEAR_COPY_TABLE] or len(only_a) > allowed:
        return None, ""
    differences = []
    unmatched = list(only_b)
    for p in only_a:
        match = next((q for q in unmatched if _one_coordinate_differs(p, q)), None)
        if match is None:
            return None, ""
        unmatched.remove(match)
        axis = next(i for i in range(3) if p[i] != match[i])
        sign = " (sign)" if p[axis] == -match[axis] else ""
        differences.append(f"{'xyz'[axis]} {p[axis]:g} vs {match[axis]:g}{sign}")
    return NEAR_COPY_TABLE, "; ".join(differences)


def _one_coordinate_differs(p: tuple, q: tuple) -> bool:
    return sum(u != v for u, v in zip(p, q, strict=True)) == 1


def mark_table_copies(foci: pd.DataFrame) -> pd.DataFrame:
    """Add ``copy_of``, ``copy_rule`` and ``copy_differences`` to each focus (empty for a
    table kept).

    The foci are annotated, not dropped, so that each consumer counts what it drops
    (:func:`marked_copies` lists the copies again, without searching twice).
    """
    copies = find_table_copies(foci)
    key = pd.MultiIndex.from_frame(foci[["pmid", "source", "table_id"]].astype(str))
    copy_key = pd.MultiIndex.from_frame(copies[["pmid", "source", "table_id"]].astype(str))
    position = copy_key.get_indexer(key)
    hit = position >= 0
    foci = foci.copy()
    for column, source in (("copy_of", "copy_of"), ("copy_rule", "rule"),
                           ("copy_differences", "differences")):  # fmt: skip
        foci[column] = ""
        foci.loc[hit, column] = copies[source].astype(str).to_numpy()[position[hit]]
    return foci


def marked_copies(foci: pd.DataFrame) -> pd.DataFrame:
    """The tables :func:`mark_table_copies` marked as copies, one row each (``COPY_COLUMNS``)."""
    copies = foci[foci["copy_rule"] != ""]
    table = (
        copies.groupby(["pmid", "source", "table_id"], sort=False)
        .agg(
            copy_of=("copy_of", "first"),
            rule=("copy_rule", "first"),
            n_foci=("copy_rule", "size"),
            differences=("copy_differences", "first"),
        )
        .reset_index()
    )
    return table.reindex(columns=COPY_COLUMNS)


def drop_repeated_foci(foci: pd.DataFrame, experiment: str = "experiment_id") -> pd.DataFrame:
    """Keep the first of the foci that repeat one location within one experiment."""
    rounded = foci[["x", "y", "z"]].astype(float).round(DECIMALS)
    repeated = pd.concat([foci[[experiment]], rounded], axis=1).duplicated()
    return foci.loc[~repeated.to_numpy()]


def prefer_copy(foci: pd.DataFrame, pmid, table_id: str) -> pd.DataFrame:
    """Keep ``table_id`` of a study and drop the table it copies (a curator's choice).

    The copy rules keep the earlier of two tables; when a curator decides that the later one
    is right (say the copies differ in a sign and the study names the region of the other
    sign), the marks of the pair are swapped. Nothing changes when ``table_id`` is no copy.
    """
    study = foci["pmid"] == pmid
    table = study & (foci["table_id"].astype(str) == str(table_id))
    if not table.any() or not (foci.loc[table, "copy_rule"] != "").any():
        return foci
    foci = foci.copy()
    first = str(foci.loc[table, "copy_of"].iloc[0])
    marks = foci.loc[table, ["copy_rule", "copy_differences"]].iloc[0]
    other = study & (foci["table_id"].astype(str) == first)
    foci.loc[table, ["copy_of", "copy_rule", "copy_differences"]] = ""
    foci.loc[other, "copy_of"] = str(table_id)
    foci.loc[other, "copy_rule"] = marks["copy_rule"]
    foci.loc[other, "copy_differences"] = marks["copy_differences"]
    return foci


def apply_rules(foci: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """Drop implausible tables, marked table copies, then repeated foci: every analysis's
    hygiene, in order.

    ``foci`` has an ``implausible`` column (:func:`mark_implausible_tables`), the merge's
    ``copy_rule`` column (:func:`mark_table_copies`) and an ``experiment_id``. Returns the kept
    foci and, per rule, the foci removed per experiment.
    """
    removed = {}
    if "implausible" not in foci:
        foci = mark_implausible_tables(foci, keys=("experiment_id", "table_id"))
    implausible = foci["implausible"] != ""
    removed[IMPLAUSIBLE_TABLE] = foci.loc[implausible].groupby("experiment_id").size()
    foci = foci.loc[~implausible]
    for rule in (DUPLICATE_TABLE, NEAR_COPY_TABLE):
        copies = foci["copy_rule"] == rule
        removed[rule] = foci.loc[copies].groupby("experiment_id").size()
        foci = foci.loc[~copies]
    kept = drop_repeated_foci(foci)
    before, after = foci.groupby("experiment_id").size(), kept.groupby("experiment_id").size()
    removed[REPEATED_FOCUS] = before.sub(after, fill_value=0)
    return kept, removed
