"""``mnsmeta report``: every result in one self-contained HTML page.

The page is a pure function of the results folder: it reads nothing else (no database, no
curation file) and writes only the report. It needs nothing but itself: figures are
embedded as base64 data URIs, the style sheet and the table-sorting script
(``assets/``) are inlined into the page template (``templates/page.html.jinja``), and
nothing is fetched from the network. Each section reads its own input files and, when they
are missing, says which command makes them instead of failing; a file that cannot be read is
reported in its section, never raised.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import math
import numbers
import struct
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from markupsafe import Markup

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


class Html(str):
    """Text that is already HTML (escaped where needed): inserted as is."""


def render_report(results: ResultsFolder) -> str:
    """The report page of a results folder, as HTML text.

    Parameters
    ----------
    results : ResultsFolder
        The results folder written by ``mnsmeta run`` (and the overlap, robustness, claims
        and ``studies`` commands). Sections whose files are missing say which command makes
        them.
    """
    from jinja2 import Environment, FileSystemLoader, select_autoescape

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
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "jinja"]),
        keep_trailing_newline=True,
    )
    template = environment.get_template("page.html.jinja")
    sections = [
        {"anchor": anchor, "heading": heading, "body": Markup(_guarded(heading, builders[anchor]))}
        for anchor, heading in shown
    ]
    return template.render(
        css=Markup((ASSETS / "report.css").read_text(encoding="utf-8")),
        script=Markup((ASSETS / "report.js").read_text(encoding="utf-8")),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
        finished=str(finished),
        not_computed=NOT_COMPUTED,
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


def _guarded(heading: str, builder: Callable[[], str]) -> str:
    """A section's HTML, or a visible note when its files cannot be read."""
    try:
        return builder()
    except Exception as error:  # a bad file must not stop the rest of the report
        LGR.warning("report: %s could not be shown: %s", heading, error)
        LGR.debug("report: %s", heading, exc_info=True)
        return _note(f"could not be shown: {type(error).__name__}: {error}", kind="error")


# -- sections ---------------------------------------------------------------------------


def _flow(results: ResultsFolder) -> str:
    path = results.flow
    if not path.is_file():
        return _missing(path, COMMANDS["flow"])
    html_text = _table(_read_csv(path), caption="Records per stage and group (PRISMA-style).")
    if results.excluded.is_file():
        excluded = _read_csv(results.excluded)
        table = _table(excluded, caption="One row per excluded record (coordinates/records/).")
        html_text += _folded(f"The {len(excluded)} excluded studies and why", table)
    return html_text


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
    html_text = (
        '<p class="meta">One row per included study (coordinates/records/): N as read, the N '
        "and Gaussian kernel (FWHM, Eickhoff et al. 2009) it gets, paradigm, the database "
        "tables pooled into it and what they mix in, whether its peaks are whole-brain or "
        "ROI/SVC, its shared sample, the space its foci were reported in, and whether it "
        "enters the primary analysis or only a sensitivity variant.</p>" + _stats(totals)
    )
    if results.paradigms.is_file():
        paradigms = pd.read_csv(results.paradigms)
        html_text += _table(
            paradigms,
            caption="Included studies per paradigm and group; the last rows count the studies "
            "that probe action observation, imitation or execution at all.",
            sortable=False,
        )
    return html_text + _folded(
        f"Characteristics of the {len(table)} included studies",
        _table(table, caption="Study characteristics (one row per included study)."),
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
    modality = table["modality"].value_counts()
    shown = [column for column in LEDGER_SHOWN if column in table.columns]
    return (
        '<p class="meta">The references of the reviewed paper; whether each is in Neurosynth 0.7'
        " / NeuroQuery 1 and enters an analysis is computed from the databases and the"
        " curation records.</p>"
        + _stats(totals)
        + "<h4>By modality</h4>"
        + _stats(modality.items(), small=True)
        + _table(table[shown], caption="The ledger (`mnsmeta studies --cited`).")
    )


def _summary(results: ResultsFolder) -> str:
    path = results.summary
    if not path.is_file():
        return _missing(path, COMMANDS["run"])
    summary = pd.read_csv(path).dropna(axis="columns", how="all")
    return _table(summary, caption=f"One row per analysis ({path}).")


def _analyses(results: ResultsFolder, own: bool = False) -> str:
    """Each analysis's section; ``own`` (a folder of ``mnsmeta ale``) adds slice viewers."""
    summary = results.read_summary()
    if summary is None:
        return _missing(results.summary, COMMANDS["run"])
    contributions = results.robustness.read_table("contributions")
    robust_clusters = results.robustness.read_table("clusters")
    parts = []
    for row in summary.to_dict("records"):
        parts.append(
            _guarded(
                str(row.get("analysis")),
                lambda row=row: _analysis(results, row, contributions, robust_clusters, own),
            )
        )
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
    out = [
        f'<h3 id="analysis-{_slug(name)}">{html.escape(name)} '
        f'<small class="kind">{html.escape(kind)}</small></h3>',
        _stats(facts),
    ]
    note = "" if _is_missing(row.get("note")) else str(row.get("note"))
    if note.startswith("not computed"):
        return "\n".join([*out, _note(note, kind="info")])
    if not _is_missing(row.get("warnings")) and row.get("warnings"):
        out.append(_note(f"warning: {row['warnings']}", kind="warning"))
    if not folder.path.is_dir():
        return "\n".join([*out, _missing(folder.path, COMMANDS["run"])])
    figures = folder.figures()
    out.append(_figures(figures) if figures else _note(f"no figures in {folder.path}"))
    if own and kind == "ale" and folder.thresholded().z.is_file():
        out.append(_viewer(folder.thresholded().z, name))
    out.append(_clusters(folder.clusters, kind))
    if folder.experiments.is_file():
        out.append(_experiments(folder.experiments))
    if contributions is not None and robust_clusters is not None:
        out.append(
            _guarded(
                f"{name} cluster robustness",
                lambda: _cluster_robustness(name, contributions, robust_clusters),
            )
        )
    elif not own:  # `mnsmeta ale` checks clusters only when asked (--robustness)
        missing = "clusters" if contributions is not None else "contributions"
        path = results.robustness.table(missing)
        out.append(_missing(path, COMMANDS["robustness"], what="Cluster robustness"))
    return "\n".join(out)


def _viewer(path: Path, name: str) -> str:
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
    page = html.escape(view.get_standalone(), quote=True)
    return _folded(
        "Interactive slices (click a view to move the cursor)",
        f'<iframe class="viewer" title="{html.escape(name)}: slices" srcdoc="{page}"></iframe>',
    )


def _cluster_robustness(
    name: str, contributions: pd.DataFrame, robust_clusters: pd.DataFrame
) -> str:
    """Flags of each cluster of one analysis, and each experiment's share of its ALE."""
    flags = robust_clusters[robust_clusters["analysis"].astype(str) == name]
    flags = flags.drop(columns=[c for c in ROBUSTNESS_REPEATS if c in flags.columns])
    mine = contributions[contributions["analysis"].astype(str) == name]
    out = ["<h4>Cluster robustness</h4>"]
    out.append(
        _table(
            flags,
            caption="Dominated: one or two experiments make most of the cluster's ALE; "
            "fragile: the cluster is lost when one experiment is left out; fsn: fail-safe N.",
            empty="no clusters to test",
        )
    )
    if not mine.empty:
        out.append(
            "<details><summary>Contributions of each experiment to each cluster "
            f"({len(mine)} rows)</summary>"
            + _table(
                mine.drop(columns="analysis"), caption="share: fraction of the cluster's ALE."
            )
            + "</details>"
        )
    return "\n".join(out)


def _clusters(path: Path, kind: str) -> str:
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
    return _table(table, headers=headers, caption="Clusters (peak coordinates in MNI mm).")


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


def _experiments(path: Path) -> str:
    """The experiments of an analysis: N, rule, and the contrasts and kinds pooled in each."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    shown = [column for column in EXPERIMENT_COLUMNS if column in table.columns]
    return (
        f"<details><summary>Experiments ({len(table)}): sample sizes, contrasts and their "
        "kinds</summary>"
        + _table(table[shown], caption="One row per experiment (a study's selected contrasts).")
        + "</details>"
    )


def _overlap(results: ResultsFolder) -> str:
    out = ["<h3>Masks</h3>"]
    sidecars = results.masks.sidecars()
    if not sidecars:
        out.append(_missing(results.masks.path, COMMANDS["overlap"]))
    agreement = mask_agreement_rows(results)
    if len(agreement):
        out.append(
            _table(
                agreement,
                caption="Each mask's size, its coverage of the places the mirror system is "
                "expected (IFG pars opercularis with ventral premotor, rostral IPL, pSTS/LOTC) "
                "and its Dice with the others.",
            )
        )
    if results.masks.figure.is_file():
        out.append(_figures([results.masks.figure], wide=True))
    for sidecar in sidecars:
        out.append(f"<details><summary>{html.escape(sidecar.stem)}</summary>")
        out.append(_key_values(_read_json(sidecar)) + "</details>")
    grid = mns_grid(results)
    if len(grid):
        out.append("<h3>Every mask, every null</h3>")
        out.append(
            _table(
                grid,
                caption="p of each analysis's overlap with each mask. Base-rate: ranked among "
                "database sets drawn like the analysis (more than typical fMRI foci would?; "
                "primary). Moved clusters, uniform, grey matter: are the foci non-uniform?",
            )
        )
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
        out.append(f"<h3>{heading}</h3>")
        if path.is_file():
            out.append(_table(_read_csv(path), caption=caption))
        else:
            out.append(_missing(path, COMMANDS["overlap"]))
    out.append("<h3>Figures</h3>")
    figures = results.overlap.figures()
    out.append(
        _figures(figures, wide=True)
        if figures
        else _missing(results.overlap.figure("*"), COMMANDS["overlap"])
    )
    return "\n".join(out)


def _robustness(results: ResultsFolder) -> str:
    out = []
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
        out.append(f"<h3>{heading}</h3>")
        if path.is_file():
            out.append(_table(_read_csv(path), caption=caption))
        else:
            out.append(_missing(path, COMMANDS["robustness"]))
    return "\n".join(out)


def _specificity(results: ResultsFolder) -> str:
    rows = specificity_rows(results)
    if not len(rows):
        return _missing(results.specificity.table("differences"), COMMANDS["specificity"])
    return "\n".join(
        [
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
        ]
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
    return _table(
        table,
        caption="Each variant of the analysis and what it changes (p: ROI and"
        " overlap tests against the meta-analytic and anatomical masks).",
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
    html_text = _stats(list(counts.items())) + _table(
        answer_rows(data),
        caption="One row per claim: the verdict of its one primary test (Holm-corrected "
        "across claims), the certainty grade, why, and the power behind a null (MDE: "
        "experiments that must converge for 80 % detection).",
    )
    neutral = [c for c in claims if c.get("neutral")]
    if neutral:
        html_text += "<h4>What the data do show where a claim is not testable as stated</h4>"
        html_text += (
            "<ul>"
            + "".join(
                f"<li><strong>{html.escape(c['id'])}</strong>: {html.escape(c['neutral'])}</li>"
                for c in neutral
            )
            + "</ul>"
        )
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
    if maps:
        html_text += "<h4>The maps the verdicts read</h4>" + _figures(maps, captions=captions)
    matrix = variant_matrix(results)
    if matrix is not None:
        html_text += _folded(
            "Every claim under every variant (* changed beyond Monte Carlo error)",
            _table(matrix, caption="Verdict of each claim under each sensitivity variant and "
                   "the atlas variant (written by `mnsmeta claims`)."),
        )  # fmt: skip
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
    return (
        html_text
        + _folded("Claims in words, estimands, certainty reasons and evidence", _table(details))
        + (_folded("Rules, settings and inputs", _key_values(rest)) if rest else "")
    )


def _limitations(results: ResultsFolder) -> str:
    """What the data lack, generated from the results folder."""
    if not results.summary.is_file():
        return _missing(results.summary, COMMANDS["run"])
    lines = limitations(results)
    if not lines:
        return _note("no limitation found in the results folder", kind="info")
    return "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>"


def _provenance(results: ResultsFolder) -> str:
    path = results.provenance
    if not path.is_file():
        return _missing(path, COMMANDS["run"])
    methods = ""
    if results.boilerplate.is_file():
        paragraphs = results.boilerplate.read_text(encoding="utf-8").strip().split("\n\n")
        methods = _folded(
            f"Methods, as a paper would state them ({results.boilerplate.name})",
            "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs),
        )
    return methods + _key_values(_read_json(path))


# -- HTML pieces ------------------------------------------------------------------------


def _note(text: str, kind: str = "missing") -> str:
    """A visible note; text between backticks is shown as code."""
    return f'<p class="note {kind}">{_with_code(text)}</p>'


def _missing(path: Path, command: str, what: str = "") -> str:
    lead = f"{what}: " if what else ""
    return _note(f"{lead}{NOT_COMPUTED}: run `{command}` (no {path})")


def _stats(items: Iterable[tuple[str, object]], small: bool = False) -> str:
    cells = "".join(
        f"<div><b>{_format(value, name)[0]}</b><span>{html.escape(str(name))}</span></div>"
        for name, value in items
    )
    kind = "stats small" if small else "stats"
    return f'<div class="{kind}">{cells}</div>' if cells else ""


def _folded(summary: str, body_html: str) -> str:
    """A <details> block around HTML that is already built (a table, paragraphs, a viewer)."""
    return f"<details><summary>{html.escape(summary)}</summary>{body_html}</details>"


def _details(summary: str, body: str) -> Html:
    return Html(f"<details><summary>{html.escape(summary)}</summary>{_breakable(body)}</details>")


def _figures(paths: list[Path], wide: bool = False, captions: list[str] | None = None) -> str:
    """PNG files embedded as data URIs, two per row (``wide``: one per row)."""
    figures = []
    for number, path in enumerate(paths):
        data = path.read_bytes()
        if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 24:
            figures.append(_note(f"{path} is not a PNG image", kind="error"))
            continue
        width, height = struct.unpack(">II", data[16:24])
        encoded = base64.b64encode(data).decode("ascii")
        name = html.escape(captions[number] if captions else path.name)
        figures.append(
            f'<figure><img src="data:image/png;base64,{encoded}" width="{width}" '
            f'height="{height}" style="max-width: {width}px" alt="{name}">'
            f"<figcaption>{name}</figcaption></figure>"
        )
    kind = "figures wide" if wide else "figures"
    return f'<div class="{kind}">{"".join(figures)}</div>'


def _key_values(data: dict) -> str:
    """A nested dictionary (a JSON file) as key/value tables; long lists fold away."""
    rows, nested = [], []
    for key, value in data.items():
        if isinstance(value, dict):
            nested.append((key, value))
            continue
        if isinstance(value, list):
            text = ", ".join(str(item) for item in value)
            shown = _details(f"{len(value)} items", text) if len(text) > LONG_TEXT else text
        elif isinstance(value, str):
            shown = Html(_breakable(value))
        else:
            shown = value
        rows.append({"key": Html(_breakable(str(key))), "value": shown})
    out = [_table(pd.DataFrame(rows), sortable=False, headers={}, kind="kv")] if rows else []
    for key, value in nested:
        inner = _key_values(value)
        if len(value) > 12:
            inner = f"<details><summary>{len(value)} entries</summary>{inner}</details>"
        out.append(f'<div class="nested"><h5>{html.escape(str(key))}</h5>{inner}</div>')
    return "\n".join(out)


def _table(
    frame: pd.DataFrame,
    *,
    caption: str = "",
    headers: dict[str, str] | None = None,
    sortable: bool = True,
    empty: str = "no rows",
    kind: str = "",
) -> str:
    """An HTML table of every column of ``frame``, values escaped and formatted.

    ``headers`` renames columns (default: underscores shown as spaces; an empty mapping
    hides the header row); ``kind`` is an extra CSS class of the table.
    """
    if frame.empty:
        return _note(empty, kind="info")
    head = ""
    if headers is None or headers:
        names = [
            (headers or {}).get(str(column), str(column).replace("_", " "))
            for column in frame.columns
        ]
        hint = ' title="click to sort"' if sortable else ""
        head = "<thead><tr>" + "".join(f"<th{hint}>{html.escape(n)}</th>" for n in names)
        head += "</tr></thead>"
    rows = []
    for values in frame.itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, values, strict=True):
            text, sort_key, classes = _format(value, str(column))
            attributes = f' data-sort="{sort_key}"' if sort_key is not None else ""
            attributes += f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{attributes}>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    classes = [c for c in ("sortable" if sortable and head else "", kind) if c]
    wrapper = "table-wrap tall" if len(frame) > TALL_TABLE else "table-wrap"
    caption_html = f"<caption>{_with_code(caption)}</caption>" if caption else ""
    return (
        f'<div class="{wrapper}"><table class="{" ".join(classes)}">{caption_html}{head}'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _format(value, column: str) -> tuple[str, str | None, list[str]]:
    """Cell HTML, numeric sort key (or None to sort by text) and CSS classes of a value."""
    if isinstance(value, Html):
        return str(value), None, []
    if _is_missing(value):
        return "", None, ["empty"]
    if isinstance(value, str) and value in ("True", "False"):
        value = value == "True"
    if isinstance(value, bool | np.bool_):
        flag = (value and column in WARN_IF_TRUE) or (not value and column in WARN_IF_FALSE)
        return ("yes" if value else "no"), str(int(value)), (["flag"] if flag else [])
    if isinstance(value, numbers.Number):
        number = float(value)
        classes = ["num"]
        if _is_p_column(column) and number < 0.05:
            classes.append("sig")
        if column in PERCENT_COLUMNS:
            width = min(max(number, 0.0), 1.0) * 100
            text = (
                f'{number * 100:.1f} %<span class="bar"><span style="width:{width:.0f}%">'
                "</span></span>"
            )
        elif number.is_integer() and abs(number) < 1e15:
            thousands = "mm3" in column or "voxels" in column or column in ("foci", "n_foci")
            text = f"{int(number):,d}" if thousands else str(int(number))
        elif abs(number) >= 1000:
            text = f"{number:,.0f}"
        else:
            text = f"{number:.3g}"
        return text, repr(number), classes
    text = str(value)
    classes = []
    if column == "verdict":
        classes.append("verdict verdict-" + _slug(text))
    if _is_label_column(column):  # atlas labels read better with spaces; they wrap there
        return html.escape(text.replace("_", " ")), None, [*classes, "text"]
    if len(text) > LONG_TEXT:
        return str(_details(text[:60].rsplit(" ", 1)[0] + " …", text)), None, classes
    if len(text) <= SHORT_TEXT:
        return html.escape(text), None, [*classes, "short"]
    return _breakable(text), None, [*classes, "text"]


def _breakable(text: str) -> str:
    """Escape text and let long atlas labels (joined by underscores) wrap."""
    return html.escape(text).replace("_", "_<wbr>")


def _with_code(text: str) -> str:
    """Escape text and show the parts between backticks as code."""
    pieces = html.escape(text).split("`")
    for index in range(1, len(pieces), 2):
        pieces[index] = f"<code>{pieces[index]}</code>"
    return "".join(pieces)


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
