"""``mnsmeta report``: every result in one self-contained HTML page.

The page is a pure function of the results folder: it reads nothing else (no database, no
curation file) and writes only the report. It needs nothing but itself: figures are
embedded as base64 data URIs, the style sheet and the table-sorting script
(``assets/``) are inlined into the page template (``templates/page.html.jinja``), and
nothing is fetched from the network. Each section reads its own input files and, when they
are missing, says which command makes them instead of failing; a file that cannot be read is
reported in its section, never raised.

This module prepares what each section shows (tables of formatted cells, figures, notes);
the HTML is in the templates: ``templates/sections/<section>.html.jinja`` lay out each
section from the pieces of ``templates/macros.html.jinja`` (a table, a cell, tiles, figures,
key/value data, notes).
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import math
import numbers
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from markupsafe import Markup, escape

from mnsmeta import __version__
from mnsmeta.curation.analyses import Analysis
from mnsmeta.curation.ledger import LEDGER_COLUMNS, LEDGER_COMPUTED
from mnsmeta.report.findings import (
    answer_rows,
    limitations,
    mask_agreement_rows,
    mns_grid,
    specificity_overlap_rows,
    specificity_rows,
    variant_matrix,
)
from mnsmeta.workflows.results import ResultsFolder, write_text

ASSETS = Path(__file__).parent / "assets"
TEMPLATES = Path(__file__).parent / "templates"

LGR = logging.getLogger(__name__)

#: Section anchors and headings, in the order of the page.
SECTIONS = (
    ("claims", "Answers: the claims of the review"),
    ("limitations", "Limitations"),
    ("flow", "Study flow"),
    ("studies", "Included studies"),
    ("ledger", "Cited references"),
    ("summary", "Summary of the analyses"),
    ("analyses", "Analyses"),
    ("overlap", "MNS masks and overlap"),
    ("specificity", "Specificity against healthy sets"),
    ("robustness", "Robustness"),
    ("sensitivity", "Sensitivity analyses"),
    ("provenance", "Provenance"),
)
#: The sections of a report on a user's own foci (``mnsmeta ale``).
OWN_FOCI_SECTIONS = ("summary", "analyses", "robustness", "provenance")
#: The command that writes each kind of input, named in "not computed yet" notes.
COMMANDS = {
    "flow": "mnsmeta studies --flow",
    "ledger": "mnsmeta studies --cited",
    "run": "mnsmeta run",
    "overlap": "mnsmeta overlap",
    "robustness": "mnsmeta robustness",
    "specificity": "mnsmeta specificity",
    "claims": "mnsmeta claims",
    "fetch": "mnsmeta fetch",
}
NOT_COMPUTED = "not computed yet"
#: Boolean columns where True is a warning, and where False is.
WARN_IF_TRUE = {"dominated", "fragile"}
WARN_IF_FALSE = {"robust", "fsn_robust"}
#: Columns of the robustness clusters table already in the analysis's cluster table.
ROBUSTNESS_REPEATS = ("analysis", "peak_x", "peak_y", "peak_z", "label", "n_experiments")
#: Fractions (0-1) shown as percentages.
PERCENT_COLUMNS = {"share", "top_share", "top_two_share"}
#: Cluster table columns shown on the page, with their headings.
CLUSTER_COLUMNS = {
    "cluster": "cluster",
    "size_mm3": "size (mm³)",
    "peak_x": "x",
    "peak_y": "y",
    "peak_z": "z",
    "peak_stat": "peak ALE",
    "peak_z_value": "peak z",
    "direction": "direction",
    "Harvard-Oxford peak": "Harvard-Oxford peak",
    "Harvard-Oxford cluster": "Harvard-Oxford cluster",
    "Juelich peak": "Juelich peak",
    "n_experiments": "experiments",
    "experiments": "experiment ids",
}
#: Ledger columns on the page: the file's own (population aside), the computed ones, the note.
LEDGER_SHOWN = [
    *(column for column in LEDGER_COLUMNS if column != "population"),
    *LEDGER_COMPUTED,
    "note",
]
LONG_TEXT = 120  # characters: longer cell texts fold into a <details> (not atlas labels)
TALL_TABLE = 40  # rows: taller tables scroll inside a fixed height, header kept visible
SHORT_TEXT = 24  # characters: shorter cell texts never wrap


@dataclass(frozen=True)
class Cell:
    """What a table cell (or a stat tile) shows, prepared for ``macros.html.jinja``.

    ``kind``: ``text`` (escaped), ``breakable`` (may wrap at underscores), ``details`` (long
    text folded behind ``summary``) or ``percent`` (``text`` with a bar ``width`` % wide).
    """

    text: str = ""
    kind: str = "text"
    sort: str | None = None  # numeric sort key (None: the page sorts by the text)
    classes: tuple[str, ...] = ()
    summary: str = ""
    width: str = ""


@dataclass(frozen=True)
class Table:
    """A table prepared for the ``table`` macro: its rows of cells, or the note of none."""

    rows: list[list[Cell]]
    headers: list[str] | None  # None: no header row
    caption: str = ""
    sortable: bool = False
    classes: tuple[str, ...] = ()
    tall: bool = False  # scrolls inside a fixed height, its header kept visible
    empty: str = "no rows"


@dataclass(frozen=True)
class Figure:
    """A PNG embedded as a data URI, or the error note of a file that is not one."""

    name: str
    data: str = ""
    width: int = 0
    height: int = 0
    error: str = ""


@dataclass(frozen=True)
class KeyValues:
    """A JSON dictionary for the ``key_values`` macro: its plain values as a table, then
    each nested dictionary (``key``, ``data``, ``count``, ``folded``)."""

    table: Table | None
    nested: list[dict]


@functools.cache
def _environment():
    """The templates' environment: HTML escaped, two filters, the notes' wording."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "jinja"]),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=StrictUndefined,  # a name a template misspells fails, never renders empty
    )
    environment.filters["with_code"] = _with_code
    environment.filters["breakable"] = _breakable
    environment.globals.update(not_computed=NOT_COMPUTED, commands=COMMANDS)
    return environment


def _template(name: str):
    return _environment().get_template(name)


def _render(section: str, **context) -> Markup:
    """The HTML of ``templates/sections/<section>.html.jinja`` with ``context``."""
    return Markup(_template(f"sections/{section}.html.jinja").render(**context))


def _macro(name: str):
    """A macro of ``templates/macros.html.jinja``, to call from Python (it returns Markup)."""
    return getattr(_template("macros.html.jinja").module, name)


def render_report(results: ResultsFolder) -> str:
    """The report page of a results folder, as HTML text.

    Parameters
    ----------
    results : ResultsFolder
        The results folder written by ``mnsmeta run`` (and the overlap, robustness, claims
        and ``studies`` commands). Sections whose files are missing say which command makes
        them.
    """
    try:
        provenance = results.read_provenance() or {}
    except (OSError, ValueError):  # the provenance section reports the problem
        provenance = {}
    finished = provenance.get("finished", "")
    # A folder of `mnsmeta ale` holds a user's own analyses: no flow, ledger, MNS or claims.
    own = provenance.get("command") == "mnsmeta ale"
    shown = [(a, h) for a, h in SECTIONS if not own or a in OWN_FOCI_SECTIONS]
    if own and not results.robustness.path.is_dir():  # `mnsmeta ale` without --robustness
        shown = [(a, h) for a, h in shown if a != "robustness"]
    builders: dict[str, Callable[[], str]] = {
        "flow": lambda: _flow(results),
        "studies": lambda: _studies(results),
        "ledger": lambda: _ledger(results),
        "summary": lambda: _summary(results),
        "analyses": lambda: _analyses(results, own=own),
        "overlap": lambda: _overlap(results),
        "robustness": lambda: _robustness(results),
        "specificity": lambda: _specificity(results),
        "sensitivity": lambda: _sensitivity(results),
        "claims": lambda: _claims(results),
        "limitations": lambda: _limitations(results),
        "provenance": lambda: _provenance(results),
    }
    sections = [
        {"anchor": anchor, "heading": heading, "body": _guarded(heading, builders[anchor])}
        for anchor, heading in shown
    ]
    return _template("page.html.jinja").render(
        css=Markup((ASSETS / "report.css").read_text(encoding="utf-8")),
        script=Markup((ASSETS / "report.js").read_text(encoding="utf-8")),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
        finished=str(finished),
        sections=sections,
        own_analyses=", ".join(provenance.get("analyses", [])) if own else "",
        stale=_stale(results),
    )


def _stale(results: ResultsFolder) -> list[str]:
    try:
        return results.stale()
    except (OSError, ValueError):  # an unreadable provenance is reported in its section
        return []


def build_report(results: ResultsFolder) -> Path:
    """Write the results folder's ``report.html``: one self-contained page with every result.

    Returns
    -------
    Path
        The report file. It is written to a temporary file in the same folder and renamed
        into place only when complete.

    Raises
    ------
    MnsmetaInputError
        When the results folder does not exist.
    """
    results.require()
    return write_text(results.report, render_report(results))


def _guarded(heading: str, builder: Callable[[], str]) -> Markup:
    """A section's HTML, or a visible note when its files cannot be read."""
    try:
        return Markup(builder())
    except Exception as error:  # a bad file must not stop the rest of the report
        LGR.warning("report: %s could not be shown: %s", heading, error)
        LGR.debug("report: %s", heading, exc_info=True)
        return _note(f"could not be shown: {type(error).__name__}: {error}", kind="error")


# -- sections: each reads its files and hands what it shows to its template --------------


def _flow(results: ResultsFolder) -> str:
    """Each group's PRISMA 2020 diagram, the flow table, and the excluded studies."""
    path = results.flow
    if not path.is_file():
        return _missing(path, COMMANDS["flow"])
    flow = _read_csv(path)
    groups = [str(group) for group in flow.columns if group != "stage"]
    drawn = [group for group in groups if results.flow_diagram(group).is_file()]
    captions = [
        f"{group}: PRISMA 2020 flow diagram ({results.flow_diagram(group).name}; "
        f"{results.flow_diagram(group, '.svg').name} beside it)"
        for group in drawn
    ]
    undrawn = [str(results.flow_diagram(group)) for group in groups if group not in drawn]
    excluded = _read_csv(results.excluded) if results.excluded.is_file() else None
    return _render(
        "flow",
        diagrams=_figures([results.flow_diagram(group) for group in drawn], captions=captions),
        undrawn=", ".join(undrawn),
        table=_table(flow, caption="Records per stage and group (PRISMA-style)."),
        excluded=None
        if excluded is None
        else _table(excluded, caption="One row per excluded record (coordinates/records/)."),
        n_excluded=0 if excluded is None else len(excluded),
    )


def _studies(results: ResultsFolder) -> str:
    """The characteristics of the included studies and the paradigms they probe."""
    path = results.characteristics
    if not path.is_file():
        return _missing(path, COMMANDS["flow"])
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    primary = table[table["enters"] == "primary"]
    fwhm = pd.to_numeric(table["kernel_fwhm_mm"])
    totals = [
        ("included studies", len(table)),
        ("in the primary analyses", len(primary)),
        ("only in a sensitivity variant", len(table) - len(primary)),
        ("kernel FWHM (mm)", f"{fwhm.min():.1f}-{fwhm.max():.1f}"),
    ]
    paradigms = pd.read_csv(results.paradigms) if results.paradigms.is_file() else None
    return _render(
        "studies",
        totals=_stats(totals),
        paradigms=None
        if paradigms is None
        else _table(
            paradigms,
            caption="Included studies per paradigm and group; the last rows count the studies "
            "that probe action observation, imitation or execution at all.",
            sortable=False,
        ),
        n_studies=len(table),
        characteristics=_table(
            table, caption="Study characteristics (one row per included study)."
        ),
    )


def _ledger(results: ResultsFolder) -> str:
    path = results.ledger
    if not path.is_file():
        return _missing(path, COMMANDS["ledger"])
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    included = table["included_in"].fillna("") != ""
    totals = [
        ("references", len(table)),
        ("report peak coordinates", int((table["reports_coordinates"] == "yes").sum())),
        ("in a database", int((table["in_database"] == "yes").sum())),
        ("entering an analysis", int(included.sum())),
    ]
    shown = [column for column in LEDGER_SHOWN if column in table.columns]
    return _render(
        "ledger",
        totals=_stats(totals),
        modality=_stats(table["modality"].value_counts().items()),
        table=_table(table[shown], caption="The ledger (`mnsmeta studies --cited`)."),
    )


def _summary(results: ResultsFolder) -> str:
    path = results.summary
    if not path.is_file():
        return _missing(path, COMMANDS["run"])
    summary = pd.read_csv(path).dropna(axis="columns", how="all")
    return _render("table", table=_table(summary, caption=f"One row per analysis ({path})."))


def _analyses(results: ResultsFolder, own: bool = False) -> str:
    """Each analysis's section; ``own`` (a folder of ``mnsmeta ale``) adds slice viewers."""
    summary = results.read_summary()
    if summary is None:
        return _missing(results.summary, COMMANDS["run"])
    contributions = results.robustness.read_table("contributions")
    robust_clusters = results.robustness.read_table("clusters")
    parts = [
        _guarded(
            str(row.get("analysis")),
            lambda row=row: _analysis(results, row, contributions, robust_clusters, own),
        )
        for row in summary.to_dict("records")
    ]
    return "\n".join(parts) or _note("the summary lists no analysis")


def _analysis(
    results: ResultsFolder,
    row: dict,
    contributions: pd.DataFrame | None,
    robust_clusters: pd.DataFrame | None,
    own: bool = False,
) -> str:
    name = str(row["analysis"])
    facts = [
        (key, row[key])
        for key in ("experiments", "foci", "clusters")
        if key in row and not _is_missing(row[key])
    ]
    kind = "" if _is_missing(row.get("kind")) else str(row.get("kind"))
    folder = results.analysis(Analysis(name, kind))
    note = "" if _is_missing(row.get("note")) else str(row.get("note"))
    warning = "" if _is_missing(row.get("warnings")) else str(row.get("warnings") or "")
    context = {
        "name": name,
        "slug": _slug(name),
        "kind": kind,
        "facts": _stats(facts),
        "not_computed_note": note if note.startswith("not computed") else "",
        "warning": warning,
        "folder": folder.path if not folder.path.is_dir() else None,
    }
    if context["not_computed_note"] or context["folder"] is not None:
        return _render("analysis", **context)
    figures = folder.figures()
    robustness, robustness_missing = None, None
    if contributions is not None and robust_clusters is not None:
        robustness = _guarded(
            f"{name} cluster robustness",
            lambda: _cluster_robustness(name, contributions, robust_clusters),
        )
    elif not own:  # `mnsmeta ale` checks clusters only when asked (--robustness)
        missing = "clusters" if contributions is not None else "contributions"
        robustness_missing = results.robustness.table(missing)
    viewer = own and kind == "ale" and folder.thresholded().z.is_file()
    return _render(
        "analysis",
        **context,
        figures=_figures(figures) if figures else [],
        no_figures=f"no figures in {folder.path}",
        viewer=_viewer(folder.thresholded().z, name) if viewer else "",
        clusters=_clusters(folder.clusters, kind),
        peaks=_peaks(folder.peaks),
        experiments=_experiments(folder.experiments) if folder.experiments.is_file() else None,
        robustness=robustness,
        robustness_missing=robustness_missing,
    )


def _viewer(path: Path, name: str) -> Markup | str:
    """nilearn's interactive slice viewer of a thresholded map, inlined: it works offline."""
    import warnings

    import nibabel as nib
    from nilearn import plotting

    image = nib.load(path)
    if not np.any(np.asarray(image.dataobj)):
        return ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nilearn's notes on resampling the background
        view = plotting.view_img(
            image, threshold=1e-6, cmap="hot", symmetric_cmap=False, title=name, colorbar=True
        )
    return _render("viewer", name=name, page=view.get_standalone())


def _cluster_robustness(
    name: str, contributions: pd.DataFrame, robust_clusters: pd.DataFrame
) -> str:
    """Flags of each cluster of one analysis, and each experiment's share of its ALE."""
    flags = robust_clusters[robust_clusters["analysis"].astype(str) == name]
    flags = flags.drop(columns=[c for c in ROBUSTNESS_REPEATS if c in flags.columns])
    mine = contributions[contributions["analysis"].astype(str) == name]
    return _render(
        "cluster_robustness",
        flags=_table(
            flags,
            caption="Dominated: one or two experiments make most of the cluster's ALE; "
            "fragile: the cluster is lost when one experiment is left out; fsn: fail-safe N.",
            empty="no clusters to test",
        ),
        n_contributions=len(mine),
        contributions=None
        if mine.empty
        else _table(
            mine.drop(columns="analysis"), caption="share: fraction of the cluster's ALE."
        ),
    )


def _clusters(path: Path, kind: str) -> Markup:
    if not path.is_file():
        return _missing(path, COMMANDS["run"])
    table = pd.read_csv(path, dtype={"experiments": str})
    if table.empty:
        return _note("no cluster survived the threshold (the cluster table is empty)", kind="info")
    headers = dict(CLUSTER_COLUMNS)
    if kind != "ale":
        headers["peak_stat"] = "peak statistic"
    shown = [column for column in headers if column in table.columns]
    table = table[shown].copy()
    if "experiments" in table:
        table["experiments"] = [
            _details(f"{len(ids.split('; '))} ids", ids) if isinstance(ids, str) else ""
            for ids in table["experiments"]
        ]
    return _render(
        "table",
        table=_table(table, headers=headers, caption="Clusters (peak coordinates in MNI mm)."),
    )


def _peaks(path: Path) -> Markup | str:
    """Each cluster's peak and sub-peaks (more than 8 mm apart), as GingerALE and NiMARE's
    cluster tables list them; nothing for a results folder written before peaks.csv."""
    if not path.is_file():
        return ""
    table = pd.read_csv(path)
    if table.empty:
        return ""
    headers = {"stat": "ALE / statistic", "z_value": "z"}
    summary = (
        f"Local maxima ({len(table)}): the peak and sub-peaks of each cluster, more than 8 mm "
        "apart, with their labels"
    )
    caption = "Peak 1 is the cluster's maximum; MNI mm."
    return _render("peaks", summary=summary, table=_table(table, headers=headers, caption=caption))


#: Experiment table columns shown on the page: what each experiment is made of.
EXPERIMENT_COLUMNS = (
    "experiment_id",
    "n_foci",
    "sample_size",
    "sample_size_rule",
    "contrasts",
    "kinds",
    "direction",
)


def _experiments(path: Path) -> dict:
    """The experiments of an analysis: N, rule, and the contrasts and kinds pooled in each."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    shown = [column for column in EXPERIMENT_COLUMNS if column in table.columns]
    return {
        "count": len(table),
        "table": _table(
            table[shown], caption="One row per experiment (a study's selected contrasts)."
        ),
    }


def _overlap(results: ResultsFolder) -> str:
    sidecars = results.masks.sidecars()
    tables = []
    for heading, path, caption in (
        (
            "Overlap tests",
            results.overlap_table,
            "Analysis × mask × test × statistic: observed, null mean, 95 % interval, p "
            "(p < 0.05 in bold).",
        ),
        (
            "Clusters in the masks",
            results.overlap.clusters,
            "Voxels of each cluster inside each mask.",
        ),
    ):
        table = _table(_read_csv(path), caption=caption) if path.is_file() else None
        tables.append({"heading": heading, "path": path, "table": table})
    figures = results.overlap.figures()
    return _render(
        "overlap",
        masks_path=results.masks.path,
        sidecars=[(sidecar.stem, _key_values(_read_json(sidecar))) for sidecar in sidecars],
        agreement=_table(
            mask_agreement_rows(results),
            caption="Each mask's size, its coverage of the places the mirror system is "
            "expected (IFG pars opercularis with ventral premotor, rostral IPL, pSTS/LOTC) "
            "and its Dice with the others.",
        ),
        masks_figure=_figures([results.masks.figure]) if results.masks.figure.is_file() else [],
        grid=_table(
            mns_grid(results),
            caption="p of each analysis's overlap with each mask. Base-rate: ranked among "
            "database sets drawn like the analysis (more than typical fMRI foci would?; "
            "primary). Moved clusters, uniform, grey matter: are the foci non-uniform?",
        ),
        tables=tables,
        figures=_figures(figures) if figures else [],
        figures_path=results.overlap.figure("*"),
    )


def _robustness(results: ResultsFolder) -> str:
    parts = []
    for heading, name, caption in (
        (
            "Leave-one-experiment-out (jackknife)",
            "jackknife",
            "How often each cluster survives when one experiment is left out.",
        ),
        (
            "Fail-safe N",
            "failsafe",
            "Null experiments that can be added before the cluster is lost.",
        ),
    ):
        path = results.robustness.table(name)
        table = _table(_read_csv(path), caption=caption) if path.is_file() else None
        parts.append({"heading": heading, "path": path, "table": table})
    return _render("robustness", parts=parts)


def _specificity(results: ResultsFolder) -> str:
    rows = specificity_rows(results)
    if not len(rows):
        return _missing(results.specificity.table("differences"), COMMANDS["specificity"])
    return _render(
        "tables",
        tables=[
            _table(
                rows,
                caption="Each subtraction in each claim region, both ways: the largest ALE "
                "difference, its FWE p over the region's voxels (experiments exchanged between "
                "the sets), and the power to find a third of the larger set's experiments "
                "converging there; a null below 80 % power reads inconclusive.",
            ),
            _table(
                specificity_overlap_rows(results),
                caption="Share of each set's foci inside each MNS mask, and the permutation p "
                "that the first set's share is larger.",
            ),
            _table(
                results.specificity.read_table("power"),
                caption="The power curves: k experiments of the set that should be larger "
                "converge at the target; power with its exact 95 % interval.",
            ),
        ],
    )


def _sensitivity(results: ResultsFolder) -> str:
    path = results.robustness.table("sensitivity")
    if not path.is_file():
        return _missing(path, COMMANDS["robustness"])
    table = _read_csv(path)
    if "conclusion_changes" in table and "variant" in table:  # the answer first, then details
        columns = list(table.columns)
        columns.remove("conclusion_changes")
        columns.insert(columns.index("variant") + 1, "conclusion_changes")
        table = table[columns]
    return _render(
        "table",
        table=_table(
            table,
            caption="Each variant of the analysis and what it changes (p: ROI and"
            " overlap tests against the meta-analytic and anatomical masks).",
        ),
    )


def _claims(results: ResultsFolder) -> str:
    """Each claim's verdict, certainty, reason and primary test; then the maps and matrix."""
    path = results.claims
    if not path.is_file():
        return _missing(path, COMMANDS["claims"])
    data = _read_json(path)
    claims = data.get("claims", [])
    if not claims:
        return _note(f"{path} lists no claim")
    counts = pd.Series([c.get("verdict") for c in claims]).value_counts()
    maps, captions = [], []
    summary = results.read_summary()
    kinds = {} if summary is None else dict(zip(summary["analysis"], summary["kind"], strict=True))
    for name in dict.fromkeys(c.get("analysis", "") for c in claims):
        kind = kinds.get(name, "ale")
        if kind == "subtraction":
            continue
        glass = results.analysis(Analysis(name, kind)).thresholded().glass
        if glass.is_file():
            maps.append(glass)
            captions.append(f"{name}: {glass.name}")
    matrix = variant_matrix(results)
    details = pd.DataFrame(
        [
            {
                "claim": c["id"],
                "the claim in words": c.get("paraphrase", ""),
                "estimand": c.get("estimand", ""),
                "certainty reasons": "; ".join(c.get("certainty_reasons") or []),
                "evidence": c.get("evidence", ""),
            }
            for c in claims
        ]
    )
    rest = {key: value for key, value in data.items() if key != "claims"}
    return _render(
        "claims",
        counts=_stats(list(counts.items())),
        answers=_table(
            answer_rows(data),
            caption="One row per claim: the verdict of its one primary test (Holm-corrected "
            "across claims), the certainty grade, why, and the power behind a null (MDE: "
            "experiments that must converge for 80 % detection).",
        ),
        neutral=[(c["id"], c["neutral"]) for c in claims if c.get("neutral")],
        maps=_figures(maps, captions=captions) if maps else [],
        matrix=None
        if matrix is None
        else _table(
            matrix,
            caption="Verdict of each claim under each sensitivity variant and the atlas "
            "variant (written by `mnsmeta claims`).",
        ),
        details=_table(details),
        rest=_key_values(rest) if rest else None,
    )


def _limitations(results: ResultsFolder) -> str:
    """What the data lack, generated from the results folder."""
    if not results.summary.is_file():
        return _missing(results.summary, COMMANDS["run"])
    lines = limitations(results)
    if not lines:
        return _note("no limitation found in the results folder", kind="info")
    return _render("limitations", lines=lines)


def _provenance(results: ResultsFolder) -> str:
    path = results.provenance
    if not path.is_file():
        return _missing(path, COMMANDS["run"])
    paragraphs = []
    if results.boilerplate.is_file():
        paragraphs = results.boilerplate.read_text(encoding="utf-8").strip().split("\n\n")
    return _render(
        "provenance",
        methods=f"Methods, as a paper would state them ({results.boilerplate.name})",
        paragraphs=paragraphs,
        provenance=_key_values(_read_json(path)),
    )


# -- what the templates show: notes, tiles, figures, tables and cells ----------------------


def _note(text: str, kind: str = "missing") -> Markup:
    """A visible note; text between backticks is shown as code."""
    return _macro("note")(text, kind=kind)


def _missing(path: Path, command: str, what: str = "") -> Markup:
    return _macro("missing")(str(path), command, what=what)


def _stats(items: Iterable[tuple[str, object]]) -> list[tuple[Cell, str]]:
    """Headline numbers (name, value) as tiles: each value formatted as a cell would be."""
    return [(_format(value, str(name)), str(name)) for name, value in items]


def _details(summary: str, body: str) -> Cell:
    """Text folded behind a summary (it may wrap at underscores)."""
    return Cell(body, kind="details", summary=summary)


def _figures(paths: list[Path], captions: list[str] | None = None) -> list[Figure]:
    """PNG files to embed as data URIs (a file that is not a PNG gets an error note)."""
    figures = []
    for number, path in enumerate(paths):
        data = path.read_bytes()
        name = captions[number] if captions else path.name
        if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 24:
            figures.append(Figure(name, error=f"{path} is not a PNG image"))
            continue
        width, height = struct.unpack(">II", data[16:24])
        figures.append(Figure(name, base64.b64encode(data).decode("ascii"), width, height))
    return figures


def _key_values(data: dict) -> KeyValues:
    """A nested dictionary (a JSON file) as key/value tables; long lists fold away."""
    rows, nested = [], []
    for key, value in data.items():
        if isinstance(value, dict):
            nested.append(
                {
                    "key": str(key),
                    "data": _key_values(value),
                    "count": len(value),
                    "folded": len(value) > 12,
                }
            )
            continue
        if isinstance(value, list):
            text = ", ".join(str(item) for item in value)
            shown = _details(f"{len(value)} items", text) if len(text) > LONG_TEXT else text
        elif isinstance(value, str):
            shown = Cell(value, kind="breakable")
        else:
            shown = value
        rows.append({"key": Cell(str(key), kind="breakable"), "value": shown})
    table = _table(pd.DataFrame(rows), sortable=False, headers={}, kind="kv") if rows else None
    return KeyValues(table, nested)


def _table(
    frame: pd.DataFrame,
    *,
    caption: str = "",
    headers: dict[str, str] | None = None,
    sortable: bool = True,
    empty: str = "no rows",
    kind: str = "",
) -> Table:
    """Every column of ``frame`` as a table of formatted cells.

    ``headers`` renames columns (default: underscores shown as spaces; an empty mapping
    hides the header row); ``kind`` is an extra CSS class of the table.
    """
    if frame.empty:
        return Table(rows=[], headers=None, empty=empty)
    names = None
    if headers is None or headers:
        names = [
            (headers or {}).get(str(column), str(column).replace("_", " "))
            for column in frame.columns
        ]
    rows = [
        [_format(value, str(column)) for column, value in zip(frame.columns, values, strict=True)]
        for values in frame.itertuples(index=False)
    ]
    return Table(
        rows=rows,
        headers=names,
        caption=caption,
        sortable=sortable and names is not None,
        classes=tuple(c for c in ("sortable" if sortable and names else "", kind) if c),
        tall=len(frame) > TALL_TABLE,
        empty=empty,
    )


def _format(value, column: str) -> Cell:
    """A value as a cell: its text, numeric sort key (None: sort by text) and CSS classes."""
    if isinstance(value, Cell):
        return value
    if _is_missing(value):
        return Cell(classes=("empty",))
    if isinstance(value, str) and value in ("True", "False"):
        value = value == "True"
    if isinstance(value, bool | np.bool_):
        flag = (value and column in WARN_IF_TRUE) or (not value and column in WARN_IF_FALSE)
        return Cell(
            "yes" if value else "no", sort=str(int(value)), classes=("flag",) if flag else ()
        )
    if isinstance(value, numbers.Number):
        number = float(value)
        classes = ("num", "sig") if _is_p_column(column) and number < 0.05 else ("num",)
        if column in PERCENT_COLUMNS:
            width = min(max(number, 0.0), 1.0) * 100
            return Cell(
                f"{number * 100:.1f} %",
                kind="percent",
                width=f"{width:.0f}",
                sort=repr(number),
                classes=classes,
            )
        if number.is_integer() and abs(number) < 1e15:
            thousands = "mm3" in column or "voxels" in column or column in ("foci", "n_foci")
            text = f"{int(number):,d}" if thousands else str(int(number))
        elif abs(number) >= 1000:
            text = f"{number:,.0f}"
        else:
            text = f"{number:.3g}"
        return Cell(text, sort=repr(number), classes=classes)
    text = str(value)
    verdict = ("verdict", "verdict-" + _slug(text)) if column == "verdict" else ()
    if _is_label_column(column):  # atlas labels read better with spaces; they wrap there
        return Cell(text.replace("_", " "), classes=(*verdict, "text"))
    if len(text) > LONG_TEXT:
        summary = text[:60].rsplit(" ", 1)[0] + " …"
        return Cell(text, kind="details", summary=summary, classes=verdict)
    if len(text) <= SHORT_TEXT:
        return Cell(text, classes=(*verdict, "short"))
    return Cell(text, kind="breakable", classes=(*verdict, "text"))


def _breakable(text) -> Markup:
    """Escape text and let long atlas labels (joined by underscores) wrap."""
    return Markup(str(escape(str(text))).replace("_", "_<wbr>"))


def _with_code(text) -> Markup:
    """Escape text and show the parts between backticks as code."""
    pieces = str(escape(str(text))).split("`")
    for index in range(1, len(pieces), 2):
        pieces[index] = f"<code>{pieces[index]}</code>"
    return Markup("".join(pieces))


# -- small helpers ----------------------------------------------------------------------


def _is_missing(value) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _is_label_column(column: str) -> bool:
    return "Harvard-Oxford" in column or "Juelich" in column or column.endswith("label")


def _is_p_column(column: str) -> bool:
    return column == "p" or column.startswith("p_") or "_p_" in column or column.endswith("_p")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def _read_csv(path: Path) -> pd.DataFrame:
    """Read a results table, with its ``analysis`` column (if any) first."""
    table = pd.read_csv(path)
    if "analysis" in table.columns:
        table = table[["analysis", *(c for c in table.columns if c != "analysis")]]
    return table
