"""One table of peak coordinates from Neurosynth 0.7 and NeuroQuery 1.

Merge rule (one source per study, never both, so that no focus is counted twice):

1. Neurosynth, when it has foci for the PMID and knows their space (MNI or TAL);
2. otherwise NeuroQuery, when it has foci for the PMID;
3. otherwise Neurosynth (its space is then UNKNOWN).

A curator can override both the source and the space of a study in its record. A table
that a database stores twice is marked as a copy (:mod:`mnsmeta.data.hygiene`).

Space: Neurosynth gives one space per study. NeuroQuery gives none and its coordinates
are as the paper reported them, so a NeuroQuery study takes Neurosynth's space for the same
PMID where Neurosynth knows it, and is UNKNOWN otherwise. Talairach foci are converted to
MNI with the Lancaster icbm2tal transform (``nimare.utils.tal2mni``, as NiMARE does).
Foci of UNKNOWN space are used as reported (that is, as MNI, the majority space) and the
table says so in ``space_rule``, so the assumption is visible wherever they are used.
"""

from __future__ import annotations

from functools import lru_cache

import pandas as pd

from mnsmeta.data import hygiene
from mnsmeta.data.releases import release_path
from mnsmeta.data.space import KNOWN_SPACES, SPACE_RULES, to_mni
from mnsmeta.errors import MnsmetaInputError

NEUROSYNTH = "neurosynth"
NEUROQUERY = "neuroquery"
SOURCES = (NEUROSYNTH, NEUROQUERY)


FOCI_COLUMNS = [
    "pmid",
    "source",
    "table_id",
    "x",
    "y",
    "z",
    "reported_space",
    "space_rule",
]


@lru_cache(maxsize=1)
def study_metadata() -> pd.DataFrame:
    """Return one row per PMID in either database: title, year, space, foci per source.

    Returns
    -------
    pandas.DataFrame
        Indexed by integer ``pmid`` with columns ``title``, ``authors`` (Neurosynth's; missing
        for a NeuroQuery-only study), ``year``, ``neurosynth_space``
        (MNI, TAL, UNKNOWN, or missing when the PMID is not in Neurosynth),
        ``n_foci_neurosynth`` and ``n_foci_neuroquery``.
    """
    ns_meta = pd.read_csv(
        release_path("neurosynth_metadata"),
        sep="\t",
        usecols=["id", "space", "title", "authors", "year"],
    ).set_index("id")
    nq_meta = pd.read_csv(release_path("neuroquery_metadata"), sep="\t").set_index("id")
    coordinates = all_foci()
    counts = coordinates.groupby(["pmid", "source"]).size().unstack(fill_value=0)
    index = ns_meta.index.union(nq_meta.index).union(counts.index)
    table = pd.DataFrame(index=pd.Index(index, name="pmid"))
    table["title"] = ns_meta["title"].reindex(index).fillna(nq_meta["title"].reindex(index))
    table["authors"] = ns_meta["authors"].reindex(index)
    table["year"] = ns_meta["year"].reindex(index).astype("Int64")
    table["neurosynth_space"] = ns_meta["space"].reindex(index)
    for source in SOURCES:
        column = counts[source] if source in counts else 0
        table[f"n_foci_{source}"] = pd.Series(column).reindex(index).fillna(0).astype(int)
    return table


@lru_cache(maxsize=1)
def all_foci() -> pd.DataFrame:
    """Return every focus of both databases, as reported (no space conversion, no merge).

    Returns
    -------
    pandas.DataFrame
        Columns ``pmid`` (int), ``source``, ``table_id`` (str), ``x``, ``y``, ``z``
        (floats, as reported).
    """
    neurosynth = pd.read_csv(
        release_path("neurosynth_coordinates"),
        sep="\t",
        usecols=["id", "table_id", "x", "y", "z"],
        dtype={"table_id": str},
    )
    neuroquery = pd.read_csv(
        release_path("neuroquery_coordinates"),
        sep="\t",
        usecols=["id", "table_id", "x", "y", "z"],
        dtype={"table_id": str},
    )
    neurosynth["source"] = NEUROSYNTH
    neuroquery["source"] = NEUROQUERY
    foci = pd.concat([neurosynth, neuroquery], ignore_index=True)
    foci = foci.rename(columns={"id": "pmid"})
    return foci[["pmid", "source", "table_id", "x", "y", "z"]]


def choose_source(n_foci_neurosynth: int, n_foci_neuroquery: int, neurosynth_space) -> str:
    """Apply the merge rule to one PMID (see the module docstring)."""
    if n_foci_neurosynth > 0 and neurosynth_space in KNOWN_SPACES:
        return NEUROSYNTH
    if n_foci_neuroquery > 0:
        return NEUROQUERY
    return NEUROSYNTH


def merged_foci(
    source_overrides: dict[int, str] | None = None,
    space_overrides: dict[int, str] | None = None,
    pmids=None,
) -> pd.DataFrame:
    """Return the merged coordinate table: one source per study, all foci in MNI.

    Parameters
    ----------
    source_overrides : dict, optional
        PMID -> ``"neurosynth"`` or ``"neuroquery"``, from curation records.
    space_overrides : dict, optional
        PMID -> ``"MNI"`` or ``"TAL"``: the space a curator read in the paper.
    pmids : iterable of int, optional
        Restrict the table to these studies.

    Returns
    -------
    pandas.DataFrame
        Columns ``pmid``, ``source``, ``table_id``, ``x``, ``y``, ``z`` (MNI),
        ``reported_space``, ``space_rule``, ``title``, ``year``, and ``copy_of``,
        ``copy_rule`` and ``copy_differences``: a table stored twice is marked (not dropped)
        as a copy of the earlier one; and ``implausible``: the plausibility tests its table
        fails (:mod:`mnsmeta.data.hygiene`).
    """
    source_overrides = source_overrides or {}
    space_overrides = space_overrides or {}
    studies = study_metadata()
    if pmids is not None:
        studies = studies.loc[studies.index.intersection(pd.Index(list(pmids), dtype=int))]
    chosen = pd.Series(
        [
            source_overrides.get(
                pmid,
                choose_source(row.n_foci_neurosynth, row.n_foci_neuroquery, row.neurosynth_space),
            )
            for pmid, row in zip(studies.index, studies.itertuples(), strict=True)
        ],
        index=studies.index,
        name="source",
    )
    space = studies["neurosynth_space"].where(
        studies["neurosynth_space"].isin(KNOWN_SPACES), "UNKNOWN"
    )
    space = space.mask(space.index.isin(list(space_overrides)), pd.Series(space_overrides))
    foci = all_foci()
    wanted = pd.MultiIndex.from_arrays([chosen.index, chosen.to_numpy()])
    keep = pd.MultiIndex.from_frame(foci[["pmid", "source"]]).isin(wanted)
    # Plausibility is judged on the coordinates as reported, before any space conversion.
    foci = hygiene.mark_implausible_tables(foci.loc[keep])
    foci["reported_space"] = foci["pmid"].map(space)
    foci[["x", "y", "z"]] = to_mni(foci[["x", "y", "z"]].to_numpy(), foci["reported_space"])
    foci["space_rule"] = foci["reported_space"].map(SPACE_RULES)
    foci["title"] = foci["pmid"].map(studies["title"])
    foci["year"] = foci["pmid"].map(studies["year"])
    return hygiene.mark_table_copies(foci.reset_index(drop=True))


def study_tables(pmid: int, source: str = "") -> pd.DataFrame:
    """The database tables of one study as the merge uses them.

    Columns: source, table id, foci, the plausibility tests the table fails (``implausible``,
    empty for a table of coordinates), and for a table stored twice the table it copies, the
    rule and the differing coordinates (:mod:`mnsmeta.data.hygiene`). ``source`` overrides
    the merge rule (a record's ``source_db``). A contrast's ``table_id`` names one of these
    tables.

    Raises
    ------
    MnsmetaInputError
        If neither database has foci for the PMID.
    """
    overrides = {pmid: source} if source else None
    foci = merged_foci(source_overrides=overrides, pmids=[pmid])
    if foci.empty:
        raise MnsmetaInputError(f"PMID {pmid}: no foci in Neurosynth 0.7 or NeuroQuery 1")
    tables = (
        foci.groupby(["source", "table_id"], sort=False)
        .agg(foci=("x", "size"), implausible=("implausible", "first"))
        .reset_index()
    )
    copies = hygiene.marked_copies(foci).drop(columns=["pmid", "n_foci"])
    tables = tables.merge(copies, on=["source", "table_id"], how="left")
    return tables.fillna({"copy_of": "", "rule": "", "differences": ""})


def implausible_tables(pmids=None, source_overrides: dict[int, str] | None = None) -> pd.DataFrame:
    """The tables that are not plausibly coordinates among these studies' merged tables
    (every study of both databases when ``pmids`` is None): ``pmid``, ``source``,
    ``table_id``, ``n_foci``, ``tests`` (:func:`mnsmeta.data.hygiene.implausibility`)."""
    return hygiene.implausible_tables(merged_foci(source_overrides=source_overrides, pmids=pmids))


def table_copies(pmids, source_overrides: dict[int, str] | None = None) -> pd.DataFrame:
    """The tables stored twice among these studies' tables (``hygiene.COPY_COLUMNS``)."""
    return hygiene.marked_copies(merged_foci(source_overrides=source_overrides, pmids=pmids))
