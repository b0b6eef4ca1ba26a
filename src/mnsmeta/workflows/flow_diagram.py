"""The PRISMA 2020 flow diagram of each group, drawn from its study flow (PNG and SVG).

The layout is the template for new systematic reviews (Page et al., 2021, BMJ 372:n71):
identification, screening (records, retrieval, eligibility) and included, with the
exclusions beside each step and the records found by other methods in their own column.
Every number is read from the flow table (:func:`mnsmeta.curation.flow.prisma_boxes`); a
box the flow has no count for reads "not recorded" and is drawn dashed and grey.
"""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from mnsmeta.curation.flow import NOT_RECORDED, PrismaBox, prisma_boxes
from mnsmeta.filesystem import atomic

FONT = 8.5  # points
PAD = 0.09  # inches between a box's edge and its text
ROW_GAP = 0.32  # inches between rows (room for the arrows)
#: Columns (left edge, width, in inches): the phases, the main flow, the exclusions beside
#: it, the records found by other methods.
PHASE = (0.1, 0.32)
MAIN = (0.6, 3.2)
SIDE = (4.2, 3.2)
OTHER = (7.8, 2.0)
WIDTH = 9.95
#: Where each box sits: (row, column); rows from the top.
PLACES = {
    "identified": (0, MAIN),
    "removed": (0, SIDE),
    "other": (0, OTHER),
    "screened": (1, MAIN),
    "screening_excluded": (1, SIDE),
    "sought": (2, MAIN),
    "not_retrieved": (2, SIDE),
    "assessed": (3, MAIN),
    "excluded": (3, SIDE),
    "included": (4, MAIN),
    "awaiting": (4, SIDE),
}
#: The phase bars at the left: label, first and last row.
PHASES = (("Identification", 0, 0), ("Screening", 1, 3), ("Included", 4, 4))
INK = "#1d2430"
MUTED = "#6b7280"
PHASE_FILL = "#cfe0f3"
FOOTNOTE = (
    "Counts from the study flow (mnsmeta studies --flow). The curation records one "
    "decision per record, with its reason, not the step it was made at: every exclusion is "
    "counted in the box with reasons, and the screening and retrieval steps are not recorded."
)


#: Joins what must not be wrapped apart, and indents: SVG keeps it, where it collapses spaces.
NBSP = "\u00a0"


def box_text(box: PrismaBox) -> list[str]:
    """The lines of a box: its title with its count, then its itemised counts (indented)."""
    head = box.title if not box.total else f"{box.title} {_count(box.count)}"
    return [head, *(f"{NBSP * 2}{label} {_count(n)}" for label, n in box.lines)]


def _count(n: int | None) -> str:
    text = f"(n = {n:,d})" if n is not None else f"({NOT_RECORDED})"
    return text.replace(" ", NBSP)


def _recorded(box: PrismaBox) -> bool:
    """Whether the box holds any number (a box of only "not recorded" is drawn grey)."""
    counts = [box.count] if box.total else []
    return any(n is not None for n in [*counts, *(n for _, n in box.lines)])


def _band(figure, corner, width, height, fill, label, rotation=0) -> None:
    """A rounded band (a column header, a phase of the review) with its bold label centred:
    ``corner`` is its lower left, in inches from the figure's lower left."""
    left, bottom = corner
    figure.add_artist(
        FancyBboxPatch(
            corner,
            width,
            height,
            boxstyle="round,pad=0,rounding_size=0.05",
            facecolor=fill,
            edgecolor="none",
            transform=figure.dpi_scale_trans,
        )
    )
    figure.text(
        left + width / 2,
        bottom + height / 2,
        label,
        rotation=rotation,
        fontsize=FONT + 0.5,
        fontweight="bold",
        ha="center",
        va="center",
        color=INK,
        transform=figure.dpi_scale_trans,
    )


def plot_flow(flow: pd.DataFrame, group: str, png: Path, svg: Path) -> None:
    """Draw a group's PRISMA 2020 flow diagram and write it as PNG and SVG.

    Parameters
    ----------
    flow : pandas.DataFrame
        The study flow (:func:`mnsmeta.curation.flow.study_flow`), one column per group.
    group : str
        The column to draw.
    png, svg : Path
        Output files. The SVG keeps its text as text (a box's numbers can be read back), each
        box's text in a group whose id is ``prisma-<key>`` (:class:`PrismaBox` ``key``).
    """
    boxes = {box.key: box for box in prisma_boxes(flow, group)}
    figure = plt.figure(figsize=(WIDTH, 1))
    try:
        renderer = figure.canvas.get_renderer()
        texts, heights = {}, {}
        for key, box in boxes.items():
            width = PLACES[key][1][1] - 2 * PAD
            text = _wrapped_text(figure, renderer, box, width)
            text.set_gid(f"prisma-{key}")
            texts[key] = text
            heights[key] = text.get_window_extent(renderer).height / figure.dpi + 2 * PAD
        # Rows top-down: each as tall as its tallest box, boxes centred in it.
        rows = 1 + max(row for row, _ in PLACES.values())
        row_height = [max(h for k, h in heights.items() if PLACES[k][0] == r) for r in range(rows)]
        header, title_height, foot_height = 0.42, 0.55, 0.55
        tops = [title_height + header]
        for height in row_height[:-1]:
            tops.append(tops[-1] + height + ROW_GAP)
        total = tops[-1] + row_height[-1] + foot_height
        figure.set_size_inches(WIDTH, total)

        def y(depth: float) -> float:  # inches from the top to the figure's coordinates
            return total - depth

        places = {}  # key -> (left, bottom, width, height) in figure inches
        for key, (row, (left, width)) in PLACES.items():
            top = tops[row] + (row_height[row] - heights[key]) / 2
            places[key] = (left, y(top + heights[key]), width, heights[key])
            recorded = _recorded(boxes[key])
            figure.add_artist(
                FancyBboxPatch(
                    places[key][:2],
                    width,
                    heights[key],
                    boxstyle="round,pad=0,rounding_size=0.05",
                    transform=figure.dpi_scale_trans,
                    facecolor="white" if recorded else "#f3f4f6",
                    edgecolor=INK if recorded else MUTED,
                    linestyle="-" if recorded else (0, (4, 3)),
                    linewidth=0.9,
                )
            )
            texts[key].set_position((left + PAD, y(top + PAD)))
            texts[key].set_color(INK if recorded else MUTED)
        gaps = [
            y(top + height + ROW_GAP / 2) for top, height in zip(tops, row_height, strict=True)
        ]
        _arrows(figure, places, gaps)
        _frame(figure, group, tops, row_height, total)
        with atomic(png) as temporary:
            # No timestamp in the file's metadata, so equal flows give equal bytes.
            figure.savefig(temporary, dpi=100, metadata={"Software": None}, format="png")
        # Text as text (searchable, readable back); a fixed salt keeps the element ids stable.
        with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "mnsmeta"}):
            with atomic(svg) as temporary:
                figure.savefig(temporary, metadata={"Date": None}, format="svg")
    finally:
        plt.close(figure)  # also when drawing fails: pyplot keeps every open figure


def _wrapped_text(figure, renderer, box: PrismaBox, width: float):
    """The box's text, its lines wrapped to fit ``width`` inches (measured, not guessed)."""
    columns = int(width / (0.42 * FONT / 72))  # a guess, narrowed until it fits
    while True:
        lines = []
        for line in box_text(box):
            indent = NBSP * (len(line) - len(line.lstrip(NBSP)) + 2)
            lines += textwrap.wrap(line, columns, subsequent_indent=indent)
        text = figure.text(
            0,
            0,
            "\n".join(lines),
            fontsize=FONT,
            va="top",
            ha="left",
            linespacing=1.35,
            transform=figure.dpi_scale_trans,
        )
        if text.get_window_extent(renderer).width / figure.dpi <= width or columns < 12:
            return text
        text.remove()
        columns -= 2


def _arrows(figure, places: dict, gaps: list[float]) -> None:
    """Arrows down the main flow, out to each exclusion, in from the other methods.

    ``gaps``: the height (figure inches) of the middle of the gap below each row, where
    the branches run without crossing a box.
    """

    def line(xs, ys):
        figure.add_artist(
            Line2D(xs, ys, color=INK, linewidth=0.9, transform=figure.dpi_scale_trans)
        )

    def arrow(start, end):
        figure.add_artist(
            FancyArrowPatch(
                start,
                end,
                arrowstyle="-|>",
                mutation_scale=9,
                linewidth=0.9,
                color=INK,
                transform=figure.dpi_scale_trans,
                shrinkA=0,
                shrinkB=0,
            )
        )

    def centre_x(key):
        left, _, width, _ = places[key]
        return left + width / 2

    def middle_y(key):
        _, bottom, _, height = places[key]
        return bottom + height / 2

    def top(key):
        _, bottom, _, height = places[key]
        return bottom + height

    column = ["identified", "screened", "sought", "assessed", "included"]
    for above, below in itertools.pairwise(column):
        arrow((centre_x(above), places[above][1]), (centre_x(below), top(below)))
    for main, side in (
        ("identified", "removed"),
        ("screened", "screening_excluded"),
        ("sought", "not_retrieved"),
        ("assessed", "excluded"),
    ):
        left, _, width, _ = places[main]
        arrow((left + width, middle_y(main)), (places[side][0], middle_y(side)))
    # Records added by hand join the main flow in the gap above the screening.
    line([centre_x("other")] * 2 + [centre_x("screened")], [places["other"][1], *[gaps[0]] * 2])
    # Records awaiting classification leave it in the gap below the assessment.
    line([centre_x("assessed"), centre_x("awaiting")], [gaps[3]] * 2)
    arrow((centre_x("awaiting"), gaps[3]), (centre_x("awaiting"), top("awaiting")))


def _frame(figure, group: str, tops: list, row_height: list, total: float) -> None:
    """The title, the column headers, the phase bars and the footnote."""
    figure.text(
        MAIN[0],
        total - 0.18,
        f"{group}: PRISMA 2020 flow diagram",
        fontsize=FONT + 3,
        fontweight="bold",
        va="top",
        color=INK,
        transform=figure.dpi_scale_trans,
    )
    header_top = tops[0] - 0.42
    for left, width, label in (
        (MAIN[0], SIDE[0] + SIDE[1] - MAIN[0], "Identification of studies via databases"),
        (OTHER[0], OTHER[1], "Via other methods"),
    ):
        _band(figure, (left, total - header_top - 0.3), width, 0.3, "#f2c94c", label)
    for label, first, last in PHASES:
        top = tops[first]
        bottom = tops[last] + row_height[last]
        left, width = PHASE
        _band(figure, (left, total - bottom), width, bottom - top, PHASE_FILL, label, rotation=90)
    figure.text(
        MAIN[0],
        0.42,
        "\n".join(textwrap.wrap(FOOTNOTE, 150)),
        fontsize=FONT - 1,
        va="top",
        color=MUTED,
        transform=figure.dpi_scale_trans,
    )
