"""The studies of the curation, as ``mnsmeta studies`` lists them, and the study tables of a
results folder: flow, excluded studies, characteristics, paradigms, and each group's PRISMA
2020 flow diagram."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mnsmeta.curation.analyses import MIN_EXPERIMENTS, underpowered
from mnsmeta.curation.candidates import find_candidates
from mnsmeta.curation.characteristics import paradigm_table, study_characteristics
from mnsmeta.curation.experiments import build_experiments
from mnsmeta.curation.flow import excluded_studies, study_flow
from mnsmeta.curation.groups import GROUPS
from mnsmeta.curation.ledger import ledger_table
from mnsmeta.curation.records import Curation
from mnsmeta.data import hygiene
from mnsmeta.data.databases import study_tables, table_copies
from mnsmeta.errors import MnsmetaInputError
from mnsmeta.workflows.flow_diagram import plot_flow
from mnsmeta.workflows.results import ResultsFolder, write_csv


def write_study_tables(
    curation: Curation, results: ResultsFolder, groups=tuple(GROUPS), flow: pd.DataFrame = None
) -> list[Path]:
    """Write the flow, the excluded studies, the characteristics and the paradigm table, and
    each group's flow diagram (PNG and SVG).

    ``flow`` is the flow table when the caller has it already (:func:`study_flow`).
    """
    flow = study_flow(curation, groups) if flow is None else flow
    characteristics = study_characteristics(curation, groups)
    written = [
        write_csv(flow, results.flow, index=True),
        write_csv(excluded_studies(curation, groups), results.excluded),
        write_csv(characteristics, results.characteristics),
        write_csv(paradigm_table(characteristics), results.paradigms, index=True),
    ]
    for group in flow.columns:
        png, svg = results.flow_diagram(group), results.flow_diagram(group, ".svg")
        plot_flow(flow, group, png, svg)
        written += [png, svg]
    return written


def _table_text(table: pd.DataFrame, width: int = 200, **kwargs) -> str:
    with pd.option_context("display.width", width, "display.max_rows", 500):
        return table.to_string(**kwargs)


def tables_of_study(curation: Curation, pmid: str) -> str:
    """The database tables of one study (ids, source, foci): what a contrast's table_id names."""
    if not str(pmid).isdigit():
        raise MnsmetaInputError(f"--tables {pmid!r}: give a PubMed ID (digits)")
    source = next((r.source_db for r in curation.records if r.pmid == int(pmid)), "")
    return _table_text(study_tables(int(pmid), source), index=False)


def flow_report(
    curation: Curation, groups, results: ResultsFolder, output: Path | None = None
) -> list[str]:
    """The flow table, and where it and the study tables were written (``output``: the flow
    table alone, there)."""
    table = study_flow(curation, groups)
    if output:
        return [table.to_string(), f"wrote {write_csv(table, output, index=True)}"]
    written = write_study_tables(curation, results, groups, flow=table)
    return [table.to_string()] + [f"wrote {path}" for path in written]


def cited_report(
    ledger: Path, curation: Curation, results: ResultsFolder, output: Path | None = None
) -> list[str]:
    """The review's cited-references ledger with its totals, written as CSV."""
    table = ledger_table(ledger, curation)
    shown = ["ref", "short_citation", "modality", "reports_coordinates", "in_database"]
    totals = (
        f"\n{len(table)} references: "
        + ", ".join(f"{k} {v}" for k, v in table["modality"].value_counts().items())
        + f"\nreport peak coordinates: {(table['reports_coordinates'] == 'yes').sum()}; "
        f"in a database: {(table['in_database'] == 'yes').sum()}; "
        f"included in an analysis: {(table['included_in'] != '').sum()}"
    )
    return [
        _table_text(table[[*shown, "included_in", "why_not"]], index=False),
        totals,
        f"wrote {write_csv(table, output or results.ledger)}",
    ]


def copies_report(curation: Curation, groups, output: Path | None = None) -> list[str]:
    """The database tables stored twice among each group's included studies."""
    lines, parts = [], []
    for name in groups:
        records = [r for r in curation.for_group(name) if not r.is_manual]
        found = table_copies(
            [r.pmid for r in records], {r.pmid: r.source_db for r in records if r.source_db}
        )
        parts.append(found.assign(group=name))
        near = found[found["rule"] == "near_copy_table"]
        lines.append(
            f"{name}: {len(found)} tables stored twice in {found['pmid'].nunique()} "
            f"included studies ({int(found['n_foci'].sum())} foci dropped); "
            f"{len(near)} near copies to check against the paper"
        )
        for row in found.itertuples():
            differs = f": {row.differences}" if row.differences else ""
            lines.append(
                f"  {row.pmid} {row.source} {row.table_id} copies {row.copy_of} "
                f"({row.rule}, {row.n_foci} foci){differs}"
            )
    if output:
        lines.append(f"wrote {write_csv(pd.concat(parts), output)}")
    return lines


def candidates_report(curation: Curation, groups, output: Path | None = None) -> list[str]:
    """The candidates each group's selection rule finds, and which are not yet curated."""
    lines, parts = [], []
    for name in groups:
        found = find_candidates(name)
        curated = {r.study_id for r in curation.for_group(name, included_only=False)}
        found["curated"] = [str(pmid) in curated for pmid in found.index]
        found.insert(0, "group", name)
        parts.append(found)
        lines.append(
            f"{name}: {len(found)} candidates, {int((~found['curated']).sum())} not yet "
            f"curated, {int((found['flags'] != '').sum())} flagged"
        )
        for pmid, row in found[~found["curated"]].iterrows():
            lines.append(f"  not curated: {pmid} ({row['source']}) {row['flags']}")
    if output:
        lines.append(f"wrote {write_csv(pd.concat(parts), output, index=True)}")
    return lines


def experiments_report(curation: Curation, groups) -> list[str]:
    """The experiments each group's default analysis would use, with counts."""
    lines = []
    for name in groups:
        records = curation.for_group(name, included_only=False)
        if not curation.for_group(name):
            lines.append(f"{name}: {len(records)} records, none included yet\n")
            continue
        experiment_set = build_experiments(curation, name)
        table = experiment_set.experiments
        shown = ["source", "n_foci", "sample_size", "sample_size_rule", "space_rule"]
        lines.append(_table_text(table[shown], width=140))
        n_fallback = len(experiment_set.with_fallback())
        n_unknown_space = (table["reported_space"] == "UNKNOWN").sum()
        lines.append(
            f"{name}: {len(records)} records, {len(table)} experiments included, "
            f"{int(table['n_foci'].sum())} foci; N curated for {len(table) - n_fallback}, "
            f"fallback N={experiment_set.fallback_sample_size} for {n_fallback}; "
            f"space unknown (MNI assumed) for {n_unknown_space}"
        )
        removed = {rule: int(table[f"foci_removed_{rule}"].sum()) for rule in hygiene.RULES}
        lines.append(
            "  foci removed by hygiene: "
            + ", ".join(f"{rule} {n}" for rule, n in removed.items())
            + " (mnsmeta studies --copies lists the tables)"
        )
        if underpowered(len(table)):
            lines.append(
                f"  warning: {len(table)} experiments < {MIN_EXPERIMENTS}: ALE has little power "
                "to find convergence (Eickhoff et al., 2016)"
            )
        lines.append("")
    return lines
