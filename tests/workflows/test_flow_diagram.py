"""The PRISMA 2020 flow diagram: every box reads its number from the flow table, a step the
flow does not count reads "not recorded", and every group gets one (PNG and SVG)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import REPO, synthetic_flow
from mnsmeta.cli import main
from mnsmeta.workflows.flow_diagram import plot_flow
from mnsmeta.workflows.results import ResultsFolder

SVG = "{http://www.w3.org/2000/svg}"
#: The PRISMA boxes the curation never counts apart: each always reads "not recorded".
NEVER_RECORDED = ("screening_excluded", "sought", "not_retrieved", "assessed")


def read_boxes(svg) -> dict[str, str]:
    """Box key -> its text (one line per SVG text element), read back from the SVG.

    The diagram joins a count to its words with no-break spaces; they read as spaces here.
    """
    root = ET.parse(svg).getroot()
    boxes = {}
    for group in root.iter(f"{SVG}g"):
        key = group.get("id", "")
        if key.startswith("prisma-"):
            lines = ["".join(text.itertext()) for text in group.iter(f"{SVG}text")]
            boxes[key.removeprefix("prisma-")] = "\n".join(lines).replace("\xa0", " ")
    return boxes


def numbers(text: str) -> list[int]:
    """The counts of a box, in reading order ("n = 1,234" -> 1234)."""
    return [int(n.replace(",", "")) for n in re.findall(r"n = ([\d,]+)", text)]


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """The synthetic flow's three diagrams, as written: group -> (png, svg)."""
    root = tmp_path_factory.mktemp("flow")
    flow = synthetic_flow()
    paths = {}
    for group in flow.columns:
        paths[group] = (root / f"{group}.png", root / f"{group}.svg")
        plot_flow(flow, group, *paths[group])
    return flow, paths


@pytest.mark.parametrize("group", ["SAD", "BPD", "MNS"])
def test_every_number_in_the_boxes_is_the_flow_table_s(drawn, group):
    flow, paths = drawn
    column = flow[group]
    boxes = read_boxes(paths[group][1])
    databases = [
        column["identified: Neurosynth titles"],
        column["identified: NeuroQuery titles"],
    ]
    if group != "MNS":  # MNS is searched by titles only: no abstract/keyword line
        databases.append(column["identified: NeuroQuery abstract/keyword terms"])
    assert numbers(boxes["identified"]) == [sum(databases), *databases]
    # Duplicates: records found by more than one search, merged by PMID.
    assert numbers(boxes["removed"]) == [
        sum(databases) - column["candidates after merging by PMID"]
    ]
    assert numbers(boxes["other"]) == [column["added by hand (not candidates)"]]
    assert numbers(boxes["screened"]) == [
        column["screened (curation record)"],
        column["candidates not yet curated"],
    ]
    reasons = column[column.index.str.startswith("excluded: ") & (column > 0)]
    assert numbers(boxes["excluded"]) == [column["excluded (total)"], *reasons]
    for stage in reasons.index:  # each reason named beside its count
        assert stage.removeprefix("excluded: ").replace("_", " ") in boxes["excluded"]
    assert numbers(boxes["awaiting"]) == [column["awaiting classification"]]
    assert numbers(boxes["included"]) == [
        column["included (eligible)"],
        column["included: primary analysis (studies)"],
        column["included: primary analysis (experiments, one per sample)"],
        column["sensitivity only: tables mix other groups, connectivity, treatment or ages"],
        column["sensitivity only: ROI/SVC peaks only"],
    ]
    # What the diagram adds up is what the flow adds up: screened = excluded + awaiting +
    # included (SAD 42 = 18 + 2 + 22).
    screened = numbers(boxes["screened"])[0]
    assert screened == sum(numbers(boxes[k])[0] for k in ("excluded", "awaiting", "included"))


def test_the_steps_the_curation_does_not_record_read_not_recorded(drawn):
    _, paths = drawn
    boxes = read_boxes(paths["SAD"][1])
    for key in NEVER_RECORDED:
        assert numbers(boxes[key]) == [] and boxes[key].endswith("(not recorded)"), key
    assert "Registers (not recorded)" in boxes["identified"]
    assert "Reports of included studies (not recorded)" in boxes["included"]


def test_a_count_missing_from_the_flow_is_not_recorded_never_a_number(tmp_path):
    flow = synthetic_flow().drop(["awaiting classification", "identified: NeuroQuery titles"])
    plot_flow(flow, "BPD", tmp_path / "BPD.png", tmp_path / "BPD.svg")
    boxes = read_boxes(tmp_path / "BPD.svg")
    assert boxes["awaiting"] == "Awaiting classification (not recorded)"
    # Without one search's count, neither the total nor the duplicates can be counted.
    assert boxes["identified"].startswith("Records identified from databases (not recorded)")
    assert numbers(boxes["identified"]) == [31, 27]  # the two searches the flow counts
    assert "NeuroQuery 1, titles (not recorded)" in boxes["identified"]
    assert numbers(boxes["removed"]) == []
    assert numbers(boxes["included"])[0] == 29  # the rest is drawn as before


def test_equal_flows_give_equal_files(drawn, tmp_path):
    flow, paths = drawn
    png, svg = tmp_path / "again.png", tmp_path / "again.svg"
    plot_flow(flow, "MNS", png, svg)
    assert png.read_bytes() == paths["MNS"][0].read_bytes()
    assert svg.read_bytes() == paths["MNS"][1].read_bytes()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_studies_flow_draws_every_group_from_the_committed_curation(tmp_path, monkeypatch):
    """`mnsmeta studies --flow` writes each group's diagram beside flow.csv, from its counts."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        main, ["--coordinates", str(REPO / "coordinates"), "studies", "--flow"]
    )
    assert result.exit_code == 0, result.output
    results = ResultsFolder(tmp_path / "results")
    flow = pd.read_csv(results.flow, index_col="stage")
    assert list(flow.columns) == ["SAD", "BPD", "MNS"]
    for group in flow.columns:
        png, svg = results.flow_diagram(group), results.flow_diagram(group, ".svg")
        assert f"wrote {png.relative_to(tmp_path)}" in result.output
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        boxes = read_boxes(svg)
        assert numbers(boxes["screened"])[0] == flow.loc["screened (curation record)", group]
        assert numbers(boxes["excluded"])[0] == flow.loc["excluded (total)", group]
        assert numbers(boxes["awaiting"]) == [flow.loc["awaiting classification", group]]
        assert numbers(boxes["included"])[:3] == [
            flow.loc["included (eligible)", group],
            flow.loc["included: primary analysis (studies)", group],
            flow.loc["included: primary analysis (experiments, one per sample)", group],
        ]
    # The committed curation's SAD: 91 screened, 57 excluded, 4 awaiting, 30 included.
    sad = read_boxes(results.flow_diagram("SAD", ".svg"))
    assert [numbers(sad[k])[0] for k in ("screened", "excluded", "awaiting", "included")] == [
        91,
        57,
        4,
        30,
    ]


def test_a_titles_only_search_shows_no_abstract_search_line():
    from conftest import synthetic_flow
    from mnsmeta.curation.flow import prisma_boxes

    flow = synthetic_flow()
    lines = {group: dict(prisma_boxes(flow, group)[0].lines) for group in ("SAD", "MNS")}
    assert "NeuroQuery 1, abstract/keyword terms" in lines["SAD"]
    # MNS candidates are found by titles only: its terms row (0) is no search result.
    assert "NeuroQuery 1, abstract/keyword terms" not in lines["MNS"]
    searched = [n for n in lines["MNS"].values() if n is not None]
    assert prisma_boxes(flow, "MNS")[0].count == sum(searched)
