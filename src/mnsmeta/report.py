"""``mnsmeta report``: every result in one self-contained HTML page (``results/report.html``).

The page needs nothing but itself: figures are embedded as base64 data URIs, the style sheet
and the small table-sorting script are inline, and nothing is fetched from the network. Each
section reads its own input files and, when they are missing, says which command makes them
instead of failing; a file that cannot be read is reported in its section, never raised.
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

from mnsmeta import __version__
from mnsmeta.errors import MnsmetaInputError
from mnsmeta.ledger import LEDGER_COLUMNS, LEDGER_COMPUTED

LGR = logging.getLogger(__name__)

#: Section anchors and headings, in the order of the page.
SECTIONS = (
    ("flow", "Study flow"),
    ("ledger", "Cited references"),
    ("summary", "Summary of the analyses"),
    ("analyses", "Analyses"),
    ("overlap", "MNS masks and overlap"),
    ("robustness", "Robustness"),
    ("sensitivity", "Sensitivity analyses"),
    ("claims", "Claims of the review"),
    ("provenance", "Provenance"),
)
#: The command that writes each kind of input, named in "not computed yet" notes.
COMMANDS = {
    "flow": "mnsmeta studies --flow",
    "ledger": "mnsmeta studies --cited",
    "run": "mnsmeta run",
    "overlap": "mnsmeta overlap",
    "robustness": "mnsmeta robustness",
    "claims": "mnsmeta claims",
    "fetch": "mnsmeta fetch",
}
NOT_COMPUTED = "not computed yet"
#: Boolean columns where True is a warning, and where False is.
WARN_IF_TRUE = {"dominated", "fragile"}
WARN_IF_FALSE = {"robust", "fsn_robust"}
#: Columns of robustness/clusters.csv already in the analysis's cluster table.
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


def build_report(results_dir: Path, coordinates_dir: Path) -> Path:
    """Write ``results_dir/report.html``, one self-contained page with every result.

    Parameters
    ----------
    results_dir : Path
        The results folder written by ``mnsmeta run`` (and the overlap, robustness and
        claims commands). Sections whose files are missing say which command makes them.
    coordinates_dir : Path
        The curation folder, for the cited-references ledger.

    Returns
    -------
    Path
        The report file. It is written to a temporary file in the same folder and renamed
        into place only when complete.

    Raises
    ------
    MnsmetaInputError
        When ``results_dir`` is not a folder.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise MnsmetaInputError(
            f"{results_dir}: no such folder: run `{COMMANDS['run']}` first or pass --output"
        )
    builders: dict[str, Callable[[], str]] = {
        "flow": lambda: _flow(results_dir),
        "ledger": lambda: _ledger(Path(coordinates_dir)),
        "summary": lambda: _summary(results_dir),
        "analyses": lambda: _analyses(results_dir),
        "overlap": lambda: _overlap(results_dir),
        "robustness": lambda: _robustness(results_dir),
        "sensitivity": lambda: _sensitivity(results_dir),
        "claims": lambda: _claims(results_dir),
        "provenance": lambda: _provenance(results_dir),
    }
    body = [_header(results_dir)]
    for anchor, heading in SECTIONS:
        body.append(
            f'<section id="{anchor}">\n<h2>{html.escape(heading)}</h2>\n'
            f"{_guarded(heading, builders[anchor])}\n</section>"
        )
    page = _page("\n".join(body))
    path = results_dir / "report.html"
    temporary = results_dir / ".report.html.partial"
    try:
        temporary.write_text(page, encoding="utf-8")
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def _guarded(heading: str, builder: Callable[[], str]) -> str:
    """A section's HTML, or a visible note when its files cannot be read."""
    try:
        return builder()
    except Exception as error:  # a bad file must not stop the rest of the report
        LGR.warning("report: %s could not be shown: %s", heading, error)
        LGR.debug("report: %s", heading, exc_info=True)
        return _note(f"could not be shown: {type(error).__name__}: {error}", kind="error")


# -- sections ---------------------------------------------------------------------------


def _header(results_dir: Path) -> str:
    try:
        finished = _read_json(results_dir / "provenance.json").get("finished", "")
    except (OSError, ValueError):  # the provenance section reports the problem
        finished = ""
    run = f"; results of the run finished {html.escape(str(finished))}" if finished else ""
    toc = "".join(f'<li><a href="#{anchor}">{html.escape(h)}</a></li>' for anchor, h in SECTIONS)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<header>
<h1>mnsmeta report: social anxiety, borderline personality disorder and the mirror neuron
system</h1>
<p class="meta">Generated {generated} by mnsmeta {html.escape(__version__)}{run}.</p>
<p><strong>How to read this report.</strong> Each section shows one output of the pipeline,
read from the results folder. The study flow and cited-references ledger say which
published studies enter the ALE meta-analyses; the summary and the analysis sections show,
for each analysis, where the reported peak coordinates converge (clusters surviving
cluster-level FWE p &lt; 0.05), with figures and atlas labels. The overlap section tests
whether that convergence falls in the mirror neuron system (MNS) masks; robustness and
sensitivity show whether clusters depend on one or two experiments or on analysis choices;
the claims section gives a verdict on each claim of the reviewed paper. Click a table header
to sort by that column. A section that says <em>{NOT_COMPUTED}</em> names the command that
produces its files.</p>
<nav><ol>{toc}</ol></nav>
</header>"""


def _flow(results_dir: Path) -> str:
    path = results_dir / "flow.csv"
    if not path.is_file():
        return _missing(path, COMMANDS["flow"])
    return _table(_read_csv(path), caption="Records per stage and group (PRISMA-style).")


def _ledger(coordinates_dir: Path) -> str:
    path = coordinates_dir / "cited_references.tsv"
    if not path.is_file():
        return _note(f"{NOT_COMPUTED}: {path} not found: the ledger is curated in coordinates/")
    from mnsmeta.ledger import ledger_table
    from mnsmeta.records import load_curation

    curation = load_curation(coordinates_dir)
    if curation.problems:
        return _note(
            f"{NOT_COMPUTED}: {len(curation.problems)} problem(s) in {coordinates_dir}: "
            "run `mnsmeta validate`, fix them, then rebuild this report"
        )
    try:
        table = ledger_table(path, curation)
    except Exception as error:  # typically the databases are not fetched yet
        return _note(
            f"{NOT_COMPUTED}: run `{COMMANDS['fetch']}` then `{COMMANDS['ledger']}` "
            f"({type(error).__name__}: {error})"
        )
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
        f" curation records ({html.escape(str(coordinates_dir))}).</p>"
        + _stats(totals)
        + "<h4>By modality</h4>"
        + _stats(modality.items(), small=True)
        + _table(table[shown], caption="The ledger (`mnsmeta studies --cited`).")
    )


def _summary(results_dir: Path) -> str:
    path = results_dir / "summary.csv"
    if not path.is_file():
        return _missing(path, COMMANDS["run"])
    summary = pd.read_csv(path).dropna(axis="columns", how="all")
    return _table(summary, caption="One row per analysis (results/summary.csv).")


def _analyses(results_dir: Path) -> str:
    summary_path = results_dir / "summary.csv"
    if not summary_path.is_file():
        return _missing(summary_path, COMMANDS["run"])
    summary = pd.read_csv(summary_path)
    contributions = _read_optional_csv(results_dir / "robustness" / "contributions.csv")
    robust_clusters = _read_optional_csv(results_dir / "robustness" / "clusters.csv")
    parts = []
    for row in summary.to_dict("records"):
        parts.append(
            _guarded(
                str(row.get("analysis")),
                lambda row=row: _analysis(results_dir, row, contributions, robust_clusters),
            )
        )
    return "\n".join(parts) or _note("summary.csv lists no analysis")


def _analysis(
    results_dir: Path,
    row: dict,
    contributions: pd.DataFrame | None,
    robust_clusters: pd.DataFrame | None,
) -> str:
    name = str(row["analysis"])
    folder = results_dir / name
    facts = [
        (key, row[key])
        for key in ("experiments", "foci", "clusters")
        if key in row and not _is_missing(row[key])
    ]
    kind = "" if _is_missing(row.get("kind")) else str(row.get("kind"))
    out = [
        f'<h3 id="analysis-{_slug(name)}">{html.escape(name)} '
        f'<small class="kind">{html.escape(kind)}</small></h3>',
        _stats(facts),
    ]
    if not folder.is_dir():
        return "\n".join([*out, _missing(folder, COMMANDS["run"])])
    figures = sorted(folder.glob("*_glass.png")) + sorted(folder.glob("*_slices.png"))
    out.append(_figures(figures) if figures else _note(f"no figures in {folder}"))
    out.append(_clusters(folder / "clusters.csv", str(row.get("kind", ""))))
    if contributions is None or robust_clusters is None:
        missing = "clusters.csv" if contributions is not None else "contributions.csv"
        path = results_dir / "robustness" / missing
        out.append(_missing(path, COMMANDS["robustness"], what="Cluster robustness"))
    else:
        out.append(
            _guarded(
                f"{name} cluster robustness",
                lambda: _cluster_robustness(name, contributions, robust_clusters),
            )
        )
    return "\n".join(out)


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
        return _note("no cluster survived the threshold (clusters.csv is empty)", kind="info")
    headers = dict(CLUSTER_COLUMNS)
    if kind != "ale":
        headers["peak_stat"] = "peak statistic"
    shown = [column for column in headers if column in table.columns]
    table = table[shown].copy()
    if "experiments" in table:
        table["experiments"] = [
            _details(f"{len(ids.split())} ids", ids) if isinstance(ids, str) else ""
            for ids in table["experiments"]
        ]
    return _table(table, headers=headers, caption="Clusters (peak coordinates in MNI mm).")


def _overlap(results_dir: Path) -> str:
    out = ["<h3>Masks</h3>"]
    sidecars = sorted((results_dir / "masks").glob("*.json"))
    if not sidecars:
        out.append(_missing(results_dir / "masks", COMMANDS["overlap"]))
    for sidecar in sidecars:
        out.append(f"<h4>{html.escape(sidecar.stem)}</h4>")
        out.append(_key_values(_read_json(sidecar)))
    for heading, path, caption in (
        (
            "Overlap tests",
            results_dir / "overlap.csv",
            "Analysis × mask × test × statistic: observed, null mean, 95 % interval, p "
            "(p < 0.05 in bold).",
        ),
        (
            "Clusters in the masks",
            results_dir / "overlap" / "overlap_clusters.csv",
            "Voxels of each cluster inside each mask.",
        ),
    ):
        out.append(f"<h3>{heading}</h3>")
        if path.is_file():
            out.append(_table(_read_csv(path), caption=caption))
        else:
            out.append(_missing(path, COMMANDS["overlap"]))
    out.append("<h3>Figures</h3>")
    figures = sorted((results_dir / "overlap").glob("*_masks.png"))
    out.append(
        _figures(figures, wide=True)
        if figures
        else _missing(results_dir / "overlap" / "*_masks.png", COMMANDS["overlap"])
    )
    return "\n".join(out)


def _robustness(results_dir: Path) -> str:
    out = []
    for heading, name, caption in (
        (
            "Leave-one-experiment-out (jackknife)",
            "jackknife.csv",
            "How often each cluster survives when one experiment is left out.",
        ),
        (
            "Fail-safe N",
            "failsafe.csv",
            "Null experiments that can be added before the cluster is lost.",
        ),
    ):
        path = results_dir / "robustness" / name
        out.append(f"<h3>{heading}</h3>")
        if path.is_file():
            out.append(_table(_read_csv(path), caption=caption))
        else:
            out.append(_missing(path, COMMANDS["robustness"]))
    return "\n".join(out)


def _sensitivity(results_dir: Path) -> str:
    path = results_dir / "robustness" / "sensitivity.csv"
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


def _claims(results_dir: Path) -> str:
    path = results_dir / "claims.json"
    if not path.is_file():
        return _missing(path, COMMANDS["claims"])
    data = _read_json(path)
    claims = pd.DataFrame(data.get("claims", []))
    if claims.empty:
        return _note(f"{path} lists no claim")
    counts = claims["verdict"].value_counts() if "verdict" in claims else pd.Series(dtype=int)
    rest = {key: value for key, value in data.items() if key != "claims"}
    return (
        _stats(list(counts.items()))
        + _table(claims, caption="One row per claim of the review, with the test's verdict.")
        + (_key_values(rest) if rest else "")
    )


def _provenance(results_dir: Path) -> str:
    path = results_dir / "provenance.json"
    if not path.is_file():
        return _missing(path, COMMANDS["run"])
    return _key_values(_read_json(path))


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


def _details(summary: str, body: str) -> Html:
    return Html(f"<details><summary>{html.escape(summary)}</summary>{_breakable(body)}</details>")


def _figures(paths: list[Path], wide: bool = False) -> str:
    """PNG files embedded as data URIs, two per row (``wide``: one per row)."""
    figures = []
    for path in paths:
        data = path.read_bytes()
        if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 24:
            figures.append(_note(f"{path} is not a PNG image", kind="error"))
            continue
        width, height = struct.unpack(">II", data[16:24])
        encoded = base64.b64encode(data).decode("ascii")
        name = html.escape(path.name)
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


def _read_optional_csv(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.is_file() else None


def _page(body: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mnsmeta report</title>
<link rel="icon" href="data:,">
<style>{_CSS}</style>
</head>
<body>
<main>
{body}
</main>
<script>{_SCRIPT}</script>
</body>
</html>
"""


_CSS = """
:root { --ink: #1d2430; --muted: #5b6472; --line: #d9dee5; --band: #f4f6f9;
  --good: #dff3e4; --good-ink: #17602e; --bad: #fbe1df; --bad-ink: #8a1f17;
  --grey: #eceef1; --warn: #fff1cc; --accent: #2458a6; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.45;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 1.5rem 1.25rem 4rem; }
h1 { font-size: 1.6rem; margin: 0 0 .4rem; line-height: 1.25; }
h2 { font-size: 1.3rem; margin: 2.5rem 0 .8rem; padding-bottom: .3rem;
  border-bottom: 2px solid var(--line); }
h3 { font-size: 1.1rem; margin: 1.8rem 0 .6rem; }
h4 { font-size: 1rem; margin: 1.2rem 0 .4rem; }
h5 { font-size: .9rem; margin: .8rem 0 .3rem; color: var(--muted); }
p.meta, caption { color: var(--muted); }
nav ol { columns: 3; padding-left: 1.4rem; margin: .6rem 0; }
a { color: var(--accent); }
code { font: .88em ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
  background: var(--band); padding: 0 .25em; border-radius: 3px; }
.note { padding: .5rem .8rem; border-left: 4px solid #c9a227; background: var(--warn);
  border-radius: 3px; }
.note.info { border-color: var(--line); background: var(--band); }
.note.error { border-color: var(--bad-ink); background: var(--bad); }
.stats { display: flex; flex-wrap: wrap; gap: .6rem; margin: .6rem 0 1rem; }
.stats div { background: var(--band); border-radius: 6px; padding: .45rem .8rem;
  min-width: 7rem; }
.stats b { display: block; font-size: 1.25rem; }
.stats span { color: var(--muted); font-size: .85rem; }
.stats.small div { min-width: 0; padding: .3rem .6rem; }
.stats.small b { display: inline; font-size: 1rem; margin-right: .35rem; }
.table-wrap { overflow-x: auto; margin: .4rem 0 1.2rem; border: 1px solid var(--line);
  border-radius: 4px; width: fit-content; max-width: 100%; }
.table-wrap.tall { max-height: 34rem; overflow-y: auto; }
table { border-collapse: collapse; font-size: .85rem; }
caption { caption-side: top; text-align: left; padding: .4rem .6rem; font-size: .85rem; }
th, td { padding: .3rem .55rem; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
th { background: var(--band); position: sticky; top: 0; z-index: 1; font-weight: 600; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th:hover { background: #e6eaf0; }
th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: .7em; }
th[aria-sort="descending"]::after { content: " \\25BC"; font-size: .7em; }
tbody tr:nth-child(even) { background: #fafbfc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.sig { font-weight: 700; }
td.flag { background: var(--warn); font-weight: 600; }
td.verdict { font-weight: 600; white-space: nowrap; }
td.verdict-supported { background: var(--good); color: var(--good-ink); }
td.verdict-not-supported { background: var(--bad); color: var(--bad-ink); }
td.verdict-not-testable { background: var(--grey); color: var(--muted); }
td.short { white-space: nowrap; }
td.text { min-width: 11rem; max-width: 30rem; }
td details { max-width: 30rem; }
td details[open] { min-width: 16rem; }
table.kv td.num { text-align: left; }
table.kv td:first-child { color: var(--muted); }
h3 small.kind { font-weight: 400; color: var(--muted); font-size: .8em; }
details summary { cursor: pointer; color: var(--accent); }
.bar { display: inline-block; width: 3.5rem; height: .5rem; margin-left: .4rem;
  background: var(--grey); border-radius: 2px; vertical-align: middle; }
.bar span { display: block; height: 100%; background: var(--accent); border-radius: 2px; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(440px, 1fr));
  gap: .8rem; margin: .6rem 0 1rem; }
.figures.wide { grid-template-columns: 1fr; }
figure { margin: 0; }
figure img { display: block; width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { font-size: .8rem; color: var(--muted); overflow-wrap: anywhere; }
.nested { margin-left: .6rem; }
@media (max-width: 700px) { nav ol { columns: 1; }
  .figures { grid-template-columns: 1fr; } }
"""

_SCRIPT = """
(function () {
  "use strict";
  function key(cell) {
    var sort = cell.getAttribute("data-sort");
    if (sort !== null) { return { empty: false, number: parseFloat(sort), text: "" }; }
    var text = cell.textContent.trim();
    return { empty: text === "", number: NaN, text: text.toLowerCase() };
  }
  function compare(a, b) {
    if (a.empty || b.empty) { return a.empty === b.empty ? 0 : (a.empty ? 1 : -1); }
    var aNumber = !isNaN(a.number), bNumber = !isNaN(b.number);
    if (aNumber && bNumber) { return a.number - b.number; }
    if (aNumber !== bNumber) { return aNumber ? -1 : 1; }
    return a.text.localeCompare(b.text, undefined, { numeric: true });
  }
  function sortBy(table, header, column) {
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    var headers = table.tHead.rows[0].cells;
    for (var i = 0; i < headers.length; i++) { headers[i].removeAttribute("aria-sort"); }
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (x, y) {
      var a = key(x.cells[column]), b = key(y.cells[column]);
      if (a.empty || b.empty) { return compare(a, b); }  // empty cells stay last
      return ascending ? compare(a, b) : compare(b, a);
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    if (!table.tHead || !table.tBodies.length) { return; }
    var headers = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(headers, function (header, column) {
      header.addEventListener("click", function () { sortBy(table, header, column); });
    });
  });
})();
"""
