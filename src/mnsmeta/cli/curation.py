"""The commands of the curation: fetch, validate, studies, import, export."""

from __future__ import annotations

from pathlib import Path

import click

from mnsmeta.cli.options import COLUMN, GROUP, err, results_folder
from mnsmeta.curation.groups import GROUPS
from mnsmeta.errors import MnsmetaInputError


@click.command()
@click.option(
    "--mirror",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Copy from this local folder instead of downloading (overrides $MNSMETA_DATA_MIRROR).",
)
def fetch(mirror):
    """Download (or copy) the database release files and the published reference sets, and
    verify their SHA-256.

    Example: MNSMETA_DATA_MIRROR=../shared/data mnsmeta fetch
    """
    from mnsmeta.data.releases import PUBLISHED_FILES, RELEASE_FILES, data_dir, fetch_file

    files = RELEASE_FILES + PUBLISHED_FILES
    for release in files:
        path = fetch_file(release, mirror=mirror)
        click.echo(f"ok  {path.stat().st_size:>10,d}  {release.relpath}")
    click.echo(f"{len(files)} files verified in {data_dir()}")


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--no-database", is_flag=True, help="Skip the checks against the databases.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit non-zero).")
@COLUMN
@click.pass_obj
def validate(obj, paths, no_database, strict, columns):
    """Check records, manual coordinates and foci files; list every problem.

    PATHS are folders laid out like coordinates/, .tsv curation files, or foci files as
    `mnsmeta ale` and `mnsmeta import` read them: Sleuth .txt, NIMADS .json, or a table
    (.csv, .tsv, .xlsx) with one row per focus (default: the coordinates folder). Each
    problem is printed as FILE:LINE: what is wrong: how to fix it. Errors (a short row, a
    non-number, no reference space, a missing N or two N for one experiment, a focus outside
    the MNI box) exit non-zero; warnings do not, unless --strict (a repeated focus counts
    once; an experiment without foci is skipped; two experiments with the same foci are
    named; a typographic minus is read as a minus; a focus outside the brain mask is used as
    given, as GingerALE and NiMARE do). docs/inputs.md lists the formats and column names.

    \b
    Example: mnsmeta validate coordinates/ my_new_study.txt
    Example: mnsmeta validate supplement.xlsx --column study=Author --column n=Subjects
    """
    from mnsmeta.curation.validate import validate_paths

    report = validate_paths(
        list(paths) or [obj["coordinates"]], use_database=not no_database, columns=columns
    )
    for problem in report.problems:
        err(str(problem))
    click.echo(report.verdict(strict))


@click.command()
@GROUP
@click.option(
    "--candidates",
    is_flag=True,
    help="List the candidates the selection rule finds, and which are not yet curated.",
)
@click.option("--flow", is_flag=True, help="PRISMA-style counts per group (also written as CSV).")
@click.option("--cited", is_flag=True, help="The review's cited-references ledger, with totals.")
@click.option(
    "--tables",
    "tables_of",
    metavar="PMID",
    help="The database tables of one study "
    "(their ids, source and foci): what a contrast's table_id names.",
)
@click.option(
    "--copies",
    is_flag=True,
    help="The database tables stored twice among the "
    "included studies: dropped as copies, near copies flagged for a curator with the "
    "coordinates that differ.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV file for --flow, --cited, --copies or --candidates (default for --flow "
    "and --cited: in results/, where the report reads them).",
)
@click.pass_obj
def studies(obj, group, candidates, flow, cited, tables_of, copies, output):
    """List the experiments each group's default analysis would use, with counts.

    \b
    --candidates  studies the selection rule finds in the databases, curated or not
    --flow        identified / merged / screened / excluded by reason / awaiting / included
                  and primary; also writes results/excluded.csv, characteristics.csv
                  (one row per included study) and paradigms.csv
    --cited       every reference of the review: modality, in a database, included
    --copies      tables a database stores twice (dropped; near copies flagged)

    Example: mnsmeta studies --group SAD
    """
    from mnsmeta.curation.records import load_valid_curation
    from mnsmeta.workflows import studies as listing

    curation = load_valid_curation(obj["coordinates"])
    groups = [group] if group else list(GROUPS)
    results = results_folder(Path("results"))
    if tables_of:
        lines = [listing.tables_of_study(curation, tables_of)]
    elif flow:
        lines = listing.flow_report(curation, groups, results, output)
    elif cited:
        ledger = obj["coordinates"] / "cited_references.tsv"
        lines = listing.cited_report(ledger, curation, results, output)
    elif copies:
        lines = listing.copies_report(curation, groups, output)
    elif candidates:
        lines = listing.candidates_report(curation, groups, output)
    else:
        lines = listing.experiments_report(curation, groups)
    for line in lines:
        click.echo(line)


@click.command("import")
@click.argument("input_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@GROUP
@click.option(
    "--modality",
    default="task_fmri",
    show_default=True,
    help="Modality of every imported experiment.",
)
@click.option(
    "--design",
    default="patients_vs_controls",
    show_default=True,
    help="Design of every imported experiment.",
)
@click.option("--source", "source_text", default="", help="Where the foci were read (citation).")
@COLUMN
@click.pass_obj
def import_(obj, input_file, group, modality, design, source_text, columns):
    """Add the studies of a Sleuth text file, a NIMADS studyset (.json) or a foci table
    (.csv, .tsv, .xlsx; one row per focus) to coordinates/.

    \b
    Each block of a Sleuth file ('// Study: contrast'), each analysis of a NIMADS study,
    and each study and contrast of a table (columns study, contrast, n, space, x, y, z, or
    named with --column) is one contrast of a study typed in by hand:
      coordinates/manual/<file>.tsv     its foci, in the space the file states
      coordinates/contrasts/<file>.tsv  its kind, from the label ('SAD > HC' is
                                        patients>controls) or the metadata
      coordinates/records/<group>.tsv   one record per study (source_db manual)

    Example: mnsmeta import smith2020_table2.txt --group SAD --source "Smith 2020, Table 2"
    Example: mnsmeta import supplement.csv --group BPD --column study=Author --column n=N_total
    """
    from mnsmeta.curation.importing import import_studies

    if not group:
        raise MnsmetaInputError("import needs --group: SAD, BPD or MNS")
    written = import_studies(
        input_file, obj["coordinates"], group, modality, design, source_text, columns
    )
    for line in written:
        click.echo(line)


@click.command()
@GROUP
@click.option(
    "--contrast",
    "contrast_kind",
    help="Only the contrasts of this kind "
    "(patients>controls, patients<controls, ...), each study's pooled into one "
    "experiment as the analysis pools them.",
)
@click.option(
    "--format",
    "format_",
    type=click.Choice(["sleuth", "nimare", "nimads"]),
    default="sleuth",
    show_default=True,
    help="Sleuth text (GingerALE), NiMARE "
    "dataset JSON, or a NIMADS studyset (studies with their contrasts as analyses, "
    "kinds in the metadata).",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
@click.pass_obj
def export(obj, group, contrast_kind, format_, output, force):
    """Write the exact foci and sample sizes of a group's analysis (MNI).

    The Sleuth text opens in GingerALE and in NiMARE (nimare.io.convert_sleuth_to_dataset):
    one block per experiment, as the ALE uses them. The NIMADS studyset keeps each study's
    contrasts apart (NeuroStore, nimare.nimads.Studyset); `mnsmeta import` reads it back.

    Example: mnsmeta export --group SAD --contrast "patients<controls" -o sad_reduced.txt
    """
    from mnsmeta.workflows.stages import export_stage

    click.echo(export_stage(obj["coordinates"], group, contrast_kind, output, format_, force))
