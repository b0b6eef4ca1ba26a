"""``mnsmeta validate``: check every curation file and report all problems at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mnsmeta.curation.contrasts import read_contrasts
from mnsmeta.curation.foci_files import NIMADS_SUFFIXES, TABLE_SUFFIXES, read_foci_file
from mnsmeta.curation.records import (
    Curation,
    check_consistency,
    load_curation,
    read_manual_foci,
    read_records,
)
from mnsmeta.curation.tables import looks_like_foci_table
from mnsmeta.curation.tsv import read_text
from mnsmeta.errors import MnsmetaInputError, Problem, errors_in

# The database, ledger and claims checks import pandas and the databases' readers, and are
# imported where they run: validating a Sleuth file answers at once. A foci file is read as
# `mnsmeta ale` and `mnsmeta import` read it (mnsmeta.curation.foci_files).

LEDGER_FILE = "cited_references.tsv"
#: Suffixes always read as foci files; a ``.tsv`` is one when it is no curation file.
FOCI_SUFFIXES = (".txt", *NIMADS_SUFFIXES, *(s for s in TABLE_SUFFIXES if s != ".tsv"))
CLAIMS_FILE = "claims.toml"
ANALYSES_FILE = "analyses.toml"


def check_analyses(path: Path, problems: list[Problem]) -> None:
    """Read the analyses file with the rules ``mnsmeta run`` applies; record its problems."""
    from mnsmeta.curation.analyses import read_analyses
    from mnsmeta.errors import MnsmetaInputError

    try:
        read_analyses(path)
    except MnsmetaInputError as error:
        problems.extend(error.problems or [Problem(str(path), None, str(error), "fix it")])


@dataclass
class ValidationReport:
    """What ``validate`` read and what is wrong with it."""

    curation: Curation = field(default_factory=Curation)
    #: Experiments read from foci files (Sleuth, NIMADS, tables).
    foci_experiments: int = 0
    files: int = 0

    @property
    def problems(self) -> list[Problem]:
        return self.curation.problems

    def verdict(self, strict: bool = False) -> str:
        """One line: what was read and how many warnings.

        Raises
        ------
        MnsmetaInputError
            When there are errors, or warnings and ``strict``.
        """
        errors = errors_in(self.problems)
        n_warnings = len(self.problems) - len(errors)
        if errors or (strict and n_warnings):
            raise MnsmetaInputError(
                f"{len(errors)} error(s), {n_warnings} warning(s) found"
                + (" (--strict)" if strict and not errors else "")
            )
        curation = self.curation
        included = sum(r.included for r in curation.records)
        sleuth = (
            f", {self.foci_experiments} experiments in foci files" if self.foci_experiments else ""
        )
        return (
            f"ok: {self.files} file(s), {len(curation.records)} records ({included} included), "
            f"{len(curation.manual_foci)} manual foci{sleuth}"
            + (f"; {n_warnings} warning(s)" if n_warnings else "")
        )


def _kind_of_tsv(path: Path, problems: list[Problem]) -> str | None:
    text = read_text(path, problems)
    if text is None:
        return None
    header = next(
        (line for line in text.splitlines() if line.strip() and not line.startswith("#")), ""
    )
    columns = {c.strip() for c in header.split("\t")}
    if "short_citation" in columns:
        return "ledger"
    if {"contrast", "kind"} <= columns:
        return "contrasts"
    if "status" in columns:
        return "records"
    if {"x", "y", "z"} <= columns and columns & {"study_id", "table"}:
        return "manual"
    if looks_like_foci_table(columns):
        return "foci table"
    problems.append(
        Problem(
            str(path),
            None,
            "not a records file (with a 'status' column), a coordinates file "
            "(with study_id and x, y, z columns), a contrasts file (with contrast and kind), "
            "the ledger (with short_citation) or a foci table (study, n, space, x, y, z)",
            "see coordinates/README.md for the curation files, docs/inputs.md for foci tables",
        )
    )
    return None


def check_against_database(curation: Curation) -> None:
    """Check included database studies: they have foci, and their flags were decided on.

    A flag (more than 100 foci, foci outside the brain) must be copied into the record's
    ``flags`` column, so that keeping a flagged study is a visible decision, never silent.
    """
    from mnsmeta.curation.candidates import flags_for
    from mnsmeta.data import databases

    records = [r for r in curation.records if r.included and not r.is_manual and r.pmid]
    if not records:
        return
    studies = databases.study_metadata()
    known = [r for r in records if r.pmid in studies.index]
    flags = flags_for(
        [r.pmid for r in known],
        source_overrides={r.pmid: r.source_db for r in known if r.source_db},
    )
    for record in known:
        expected = flags.get(record.pmid, "")
        if record.flags != expected:
            curation.problems.append(
                Problem(
                    record.file,
                    record.line,
                    f"study {record.pmid} is flagged {expected or '(nothing)'} but its flags "
                    f"column says {record.flags or '(nothing)'}",
                    "decide on the flag (keep it with a note, or exclude the study with reason "
                    "implausible_foci) and write the flag exactly in the flags column",
                )
            )
    check_contrast_tables(curation, [r for r in known if r.pmid in studies.index])
    check_near_copies(curation, known)
    check_plausibility(curation, known)
    for record in records:
        if record.pmid not in studies.index:
            curation.problems.append(
                Problem(
                    record.file,
                    record.line,
                    f"PMID {record.pmid} is in neither Neurosynth 0.7 nor NeuroQuery 1",
                    "check the PMID; for a study missing from the databases, type its foci into "
                    "coordinates/manual/ and set source_db to manual",
                )
            )
            continue
        row = studies.loc[record.pmid]
        source = record.source_db or databases.choose_source(
            row.n_foci_neurosynth, row.n_foci_neuroquery, row.neurosynth_space
        )
        if row[f"n_foci_{source}"] == 0:
            curation.problems.append(
                Problem(
                    record.file,
                    record.line,
                    f"experiment {record.pmid} has zero foci in {source}",
                    "choose the other source_db, enter its foci by hand, or exclude it "
                    "(reason no_coordinates)",
                )
            )


def check_near_copies(curation: Curation, records) -> None:
    """Warn of a table stored twice with coordinates that differ: a curator reads the paper."""
    from mnsmeta.data import databases
    from mnsmeta.data.hygiene import NEAR_COPY_TABLE

    copies = databases.table_copies(
        [r.pmid for r in records], {r.pmid: r.source_db for r in records if r.source_db}
    )
    by_pmid = {r.pmid: r for r in records}
    for copy in copies[copies["rule"] == NEAR_COPY_TABLE].itertuples():
        record = by_pmid[copy.pmid]
        if record.keep_copy in (str(copy.table_id), str(copy.copy_of)):
            continue  # decided by a curator (keep_copy, evidence in the note)
        curation.problems.append(
            Problem(
                record.file,
                record.line,
                f"{copy.source} stores table {copy.copy_of} of study {copy.pmid} twice, the copy "
                f"{copy.table_id} with {copy.differences}",
                f"the copy is dropped; check {copy.copy_of} against the paper and, if the copy "
                "is right, set source_db to the other database or type the table in",
                severity="warning",
            )
        )


def check_plausibility(curation: Curation, records) -> None:
    """List the tables that are not plausibly coordinates (dropped), and the studies left
    with none (an error: they must be excluded as ``implausible_foci``); check ``keep_copy``.
    """
    from mnsmeta.data import databases, hygiene

    overrides = {r.pmid: r.source_db for r in records if r.source_db}
    foci = databases.merged_foci(source_overrides=overrides, pmids=[r.pmid for r in records])
    by_pmid = {r.pmid: r for r in records}
    tables = foci.groupby("pmid")["table_id"].nunique()
    flagged = hygiene.implausible_tables(foci)
    for pmid, study in flagged.groupby("pmid"):
        record = by_pmid[pmid]
        listed = "; ".join(
            f"{t.source} table {t.table_id} ({t.n_foci} foci: {t.tests})"
            for t in study.itertuples()
        )
        if len(study) == tables.get(pmid, 0):
            curation.problems.append(
                Problem(
                    record.file,
                    record.line,
                    f"no table of study {pmid} is plausibly coordinates: {listed}",
                    "exclude it with reason implausible_foci (or type its foci in from the paper)",
                )
            )
        else:
            curation.problems.append(
                Problem(
                    record.file,
                    record.line,
                    f"study {pmid}: {listed} is not peak coordinates (plausibility rule)",
                    "the table is dropped; nothing to do unless the paper shows it is real",
                    severity="warning",
                )
            )
    copies = foci[foci["copy_rule"] != ""]
    for record in records:
        if not record.keep_copy:
            continue
        study = copies[copies["pmid"] == record.pmid]
        pairs = set(study["table_id"].astype(str)) | set(study["copy_of"].astype(str))
        if record.keep_copy not in pairs:
            curation.problems.append(
                Problem(
                    record.file,
                    record.line,
                    f"keep_copy {record.keep_copy!r} is not a table stored twice in study "
                    f"{record.pmid} (copies: {', '.join(sorted(pairs)) or 'none'})",
                    "name one table of a copied pair (`mnsmeta studies --tables "
                    f"{record.pmid}`), or clear keep_copy",
                )
            )


def check_contrast_tables(curation: Curation, records) -> None:
    """A database study's contrast names one of the tables its foci come from."""
    from mnsmeta.data import databases

    curated = [(r, c) for r in records for c in curation.contrasts_of(r)]
    if not curated:
        return
    foci = databases.merged_foci(
        source_overrides={r.pmid: r.source_db for r, _ in curated if r.source_db},
        pmids=sorted({r.pmid for r, _ in curated}),
    )
    tables = foci.groupby("pmid")["table_id"].agg(lambda ids: set(map(str, ids)))
    for record, contrast in curated:
        known = tables.get(record.pmid, set())
        if contrast.table_id and contrast.table_id not in known:
            curation.problems.append(
                Problem(
                    contrast.file,
                    contrast.line,
                    f"table_id {contrast.table_id!r} is not a table of study {record.pmid} "
                    f"(its tables: {', '.join(sorted(known)) or 'none'})",
                    f"use one of them (`mnsmeta studies --tables {record.pmid}`)",
                )
            )


def validate_paths(paths: list[Path], use_database: bool = True, columns=None) -> ValidationReport:
    """Validate folders (``coordinates/``), records, coordinate files and foci files.

    Parameters
    ----------
    paths : list of Path
        Folders laid out like ``coordinates/`` (``records/`` and ``manual/``), or single files:
        ``.tsv`` records, manual coordinates, contrasts or ledger; foci files as ``mnsmeta
        ale`` and ``mnsmeta import`` read them: ``.txt`` Sleuth, ``.json`` NIMADS, ``.csv``,
        ``.tsv`` or ``.xlsx`` tables.
    use_database : bool
        Also check included studies against the databases (fetched on first use).
    columns : dict or sequence of str, optional
        For foci tables: which column holds what (``["study=Author", "n=Subjects"]``).

    Returns
    -------
    ValidationReport
    """
    from mnsmeta.curation.claims_file import read_claims
    from mnsmeta.curation.ledger import read_ledger

    report = ValidationReport()
    curation = report.curation
    for path in map(Path, paths):
        if path.is_dir():
            found = load_curation(path)
            curation.records += found.records
            curation.manual_foci += found.manual_foci
            curation.contrasts += found.contrasts
            curation.problems += found.problems
            report.files += sum(
                len(list(path.glob(f"{folder}/*.tsv")))
                for folder in ("records", "manual", "contrasts")
            )
            if (path / LEDGER_FILE).is_file():
                read_ledger(path / LEDGER_FILE, curation.problems)
                report.files += 1
            if (path / CLAIMS_FILE).is_file():
                read_claims(path / CLAIMS_FILE, curation.problems)
                report.files += 1
            if (path / ANALYSES_FILE).is_file():
                check_analyses(path / ANALYSES_FILE, curation.problems)
                report.files += 1
            continue
        if not path.is_file():
            curation.problems.append(
                Problem(str(path), None, "no such file or folder", "check the path")
            )
            continue
        report.files += 1
        suffix = path.suffix.lower()
        kind = _kind_of_tsv(path, curation.problems) if suffix == ".tsv" else None
        if suffix in FOCI_SUFFIXES or kind == "foci table":
            experiments = read_foci_file(path, curation.problems, columns)
            report.foci_experiments += len(experiments)
        elif suffix == ".tsv":
            if kind == "records":
                curation.records += read_records(path, curation.problems)
            elif kind == "manual":
                curation.manual_foci += read_manual_foci(path, curation.problems)
            elif kind == "ledger":
                read_ledger(path, curation.problems)
            elif kind == "contrasts":
                curation.contrasts += read_contrasts(path, curation.problems)
        elif suffix == ".toml":
            text = read_text(path, curation.problems) or ""
            if "[[analysis]]" in text.replace(" ", ""):
                check_analyses(path, curation.problems)
            else:
                read_claims(path, curation.problems)
        else:
            curation.problems.append(
                Problem(
                    str(path),
                    None,
                    f"unknown file type {path.suffix!r}",
                    "validate .tsv records, coordinates, contrasts or ledger files, foci files "
                    "(.txt Sleuth, .json NIMADS, .csv/.tsv/.xlsx tables), or the .toml analyses "
                    "and claims files",
                )
            )
    if any(not p.is_dir() for p in map(Path, paths)):
        # Folder checks already ran per folder; re-run across single files given together.
        extra = Curation(curation.records, curation.manual_foci, [], curation.contrasts)
        check_consistency(extra)
        seen = set(map(str, curation.problems))
        curation.problems += [p for p in extra.problems if str(p) not in seen]
    if use_database:
        check_against_database(curation)
    return report
