"""The HTML report: one self-contained page, every section, notes where inputs are missing.

The fabricated results folder follows the formats of ``mnsmeta run``, ``mnsmeta overlap``,
``mnsmeta studies --flow/--cited``, the robustness tables and the claims, and is laid out by
the results contract. The report reads nothing else. The last tests open the page in a real
headless Chromium (Debian's ``/usr/bin/chromium``, driven by playwright).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
from click.testing import CliRunner

from conftest import synthetic_flow
from mnsmeta.cli import main
from mnsmeta.curation.analyses import Analysis
from mnsmeta.errors import MnsmetaInputError
from mnsmeta.report.render import build_report, render_report
from mnsmeta.workflows.results import ResultsFolder

HEADINGS = [
    "Answers: the claims of the review",
    "Limitations",
    "Study flow",
    "Included studies",
    "Cited references",
    "Summary of the analyses",
    "Analyses",
    "MNS masks and overlap",
    "Specificity against healthy sets",
    "Robustness",
    "Sensitivity analyses",
    "Provenance",
]
ANCHORS = [
    "claims",
    "limitations",
    "flow",
    "studies",
    "ledger",
    "summary",
    "analyses",
    "overlap",
    "specificity",
    "robustness",
    "sensitivity",
    "provenance",
]
# The ledger as `mnsmeta studies --cited` writes it: the curated columns and the computed ones.
# An included SAD study, a review, and an fMRI study missing from both databases.
LEDGER = """ref,short_citation,year,pmid,doi,modality,study_type,population,reports_coordinates,source_url,note,database_pmid,in_database,included_in,why_not
1,Stein et al. 2002,2002,12147314,,fMRI,primary,SAD,yes,https://pubmed.ncbi.nlm.nih.gov/12147314/,,12147314,yes,SAD,
2,Bonini et al. 2022,2022,,10.1016/j.tics.2022.06.003,review,review,monkeys,no,,,,no,,review: not a primary study
3,New et al. 2024,2024,,10.9999/not.in.any.database,fMRI,primary,BPD,yes,,,,no,,not in Neurosynth 0.7 / NeuroQuery 1 (published 2024)
"""
SUMMARY = """analysis,kind,experiments,foci,clusters,largest_cluster_mm3,largest_cluster_peak,largest_cluster_label,warnings,note
SAD,ale,31,806,2,2408,"(-22, -4, -20)",Left_Amygdala,,
BPD,ale,33,1139,1,2296,"(-22, -4, -16)",Left_Amygdala,,
SAD_vs_BPD,subtraction,64,1945,0,0,,,,
MNS,ale,94,94,1,24112,"(50, -66, -2)",Right_Lateral_Occipital_Cortex_inferior_division,,
"""
CLUSTER_HEADER = (
    "cluster,size_voxels,size_mm3,peak_x,peak_y,peak_z,peak_stat,peak_z_value,"
    "Harvard-Oxford peak,Harvard-Oxford cluster,Juelich peak,Juelich cluster,"
    "n_experiments,experiments\n"
)
CLUSTERS = {
    "SAD": [
        "1,301,2408,-22,-4,-20,0.0449692,6.08121,Left_Amygdala,Left_Amygdala 77%; Left_Hippocampus 11%,"
        "GM_Amygdala_laterobasal_group_L,GM_Amygdala_laterobasal_group_L 52%,3,12147314; 15601601; 15860337\n",
        "2,207,1656,40,22,-2,0.0373434,5.30381,Right_Insular_Cortex,Right_Insular_Cortex 27%,"
        "(no label),(no label) 95%,2,15860337 18353521\n",
    ],
    "BPD": [
        "1,287,2296,-22,-4,-16,0.0495,6.35,Left_Amygdala,Left_Amygdala 75%,"
        "GM_Amygdala_laterobasal_group_L,GM_Amygdala_laterobasal_group_L 60%,2,17064731 17601709\n"
    ],
    "MNS": [
        "1,3014,24112,50,-66,-2,0.108,8.79,Right_Lateral_Occipital_Cortex_inferior_division,"
        "Right_Lateral_Occipital_Cortex_inferior_division 24%,GM_Visual_cortex_V5_R,"
        "GM_Visual_cortex_V5_R 30%,2,12122033 12522194\n"
    ],
}
ROBUST_CLUSTERS = """analysis,cluster,peak_x,peak_y,peak_z,label,n_experiments,top_share,top_two_share,dominated,jackknife_survived,jackknife_n,fragile,dropped_by,fsn,fsn_benchmark,fsn_robust
SAD,1,-22,-4,-20,Left_Amygdala,3,0.625,0.9,True,2,3,True,12147314,9–15,6,True
SAD,2,40,22,-2,Right_Insular_Cortex,2,0.4,0.7,False,2,2,False,,>= 62,4,True
BPD,1,-22,-4,-16,Left_Amygdala,2,0.5,1.0,False,2,2,False,,3,4,False
"""
CONTRIBUTIONS = """analysis,cluster,study_id,share,rank
SAD,1,12147314,0.625,1
SAD,1,15601601,0.275,2
SAD,1,15860337,0.1,3
SAD,2,15860337,0.6,1
SAD,2,18353521,0.4,2
BPD,1,17064731,0.5,1
BPD,1,17601709,0.5,2
"""
JACKKNIFE = """analysis,cluster,label,survived,n_loo,fragile,dropped_by
SAD,1,Left_Amygdala,2,3,True,12147314
SAD,2,Right_Insular_Cortex,2,2,False,
"""
FAILSAFE = """analysis,cluster,label,n_experiments,fsn,benchmark,robust
SAD,1,Left_Amygdala,3,9–15,6,True
BPD,1,Left_Amygdala,2,3,4,False
"""
SENSITIVITY = """analysis,variant,description,experiments,clusters,kept_main_clusters,new_clusters,roi_p_meta,roi_p_anatomical,overlap_p_meta,overlap_p_anatomical,conclusion_changes
SAD,curated_n_only,only experiments with a sample size read in a source,25,2,2,0,0.08,0.002,1,0.4,none
BPD,no_unknown_space,experiments in a known space only,30,1,1,0,0.001,0.001,0.2,1,MNS overlap no longer significant
"""
OVERLAP = """analysis,mask,test,statistic,observed,null_mean,null_ci_low,null_ci_high,p,n_perm,note
SAD,meta,roi_ale,mean_ale,0.00360605,0.00316442,0.0025437,0.00382663,0.0789211,1000,
SAD,anatomical,roi_ale,mean_ale,0.00438954,0.00304497,0.00233191,0.00380374,0.000999001,1000,
"""
OVERLAP_CLUSTERS = """cluster,mask,size_voxels,voxels_in_mask,fraction_in_mask,peak_in_mask,peak_x,peak_y,peak_z,Harvard-Oxford peak,Juelich peak,analysis
1,meta,301,0,0,False,-22,-4,-20,Left_Amygdala,GM_Amygdala_laterobasal_group_L,SAD
2,anatomical,207,11,0.0531401,False,40,22,-2,Right_Insular_Cortex,(no label),SAD
"""
CLAIMS = {
    "claims": [
        {
            "id": "both_amygdala",
            "paraphrase": "SAD and BPD share amygdala hyperactivity <script>alert(1)</script>",
            "analysis": "SAD",
            "test": "convergence",
            "verdict": "supported",
            "reason": "the primary test rejects",
            "primary_test": "cluster-level FWE p of the strongest cluster in amygdala",
            "p": 0.0021,
            "p_mc_low": 0.0013,
            "p_mc_high": 0.0031,
            "p_holm": 0.0063,
            "power": {},
            "certainty": "low",
            "certainty_reasons": ["imprecision (-1): 3 experiments < 17"],
            "evidence": "conjunction clusters in both amygdalae",
        },
        {
            "id": "sad_mns_reduced",
            "paraphrase": "SAD shows reduced MNS activity",
            "analysis": "SAD",
            "test": "convergence",
            "verdict": "inconclusive",
            "reason": "no convergence, too little power",
            "p": 1.0,
            "power": {
                "n_experiments": 12,
                "k_effect": 4,
                "mde_k": 6,
                "curve": [],
                "power_at_effect": 0.21,
            },
            "certainty": "very low",
            "evidence": "no SAD cluster inside an MNS mask",
        },
        {
            "id": "bpd_mns_inconsistent",
            "paraphrase": "BPD findings in the MNS are inconsistent",
            "analysis": "BPD",
            "test": "inconsistent",
            "verdict": "not testable",
            "reason": "altered activity needs group contrasts",
            "neutral": "foci of BPD's 2 experiments converge in the left amygdala",
            "certainty": "not applicable",
            "evidence": "",
        },
    ],
    "n_iters": 10000,
}
PROVENANCE = {
    "command": "mnsmeta run",
    "started": "2026-11-25T17:15:48+00:00",
    "finished": "2026-11-25T17:25:26+00:00",
    "analyses": ["SAD", "BPD", "SAD_vs_BPD", "MNS"],
    "settings": {"n_iters": 10000, "seed": 0, "cluster_forming_p": 0.001},
    "versions": {"mnsmeta": "0.1.0", "nimare": "0.22.1"},
    "inputs_sha256": {"coordinates/records/sad.tsv": "58f769f9" * 8},
}
MASKS = {
    "meta": {"kind": "meta-analytic", "voxels": 10464, "experiments": ["12122033"] * 40},
    "anatomical": {"kind": "anatomical", "voxels": 10744, "labels": ["BA44", "BA45"]},
}


def _png(path: Path, title: str) -> None:
    figure, axis = plt.subplots(figsize=(4, 1.6), dpi=50)
    axis.plot([0, 1, 2], [0, 1, 0])
    axis.set_title(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


SPECIFICITY_DIFFERENCES = """analysis,first,second,region,direction,voxels,max_difference,peak_x,peak_y,peak_z,ale_first,ale_second,voxel_p,voxels_p05,p_fwe,mean_difference,p_mean,n_perm
SAD_vs_BPD,SAD,BPD,amygdala,SAD>BPD,1171,0.0036,-22,-4,-18,0.02,0.0164,0.3,0,0.959,-0.001,0.8,10000
SAD_vs_BPD,SAD,BPD,amygdala,BPD>SAD,1171,0.0325,-22,-4,-16,0.001,0.0335,0.002,40,0.0116,0.001,0.2,10000
"""
SPECIFICITY_POWER = """analysis,first,second,region,direction,k,detected,replicates,power,power_low,power_high,n_planted,k_of_interest,target
SAD_vs_BPD,SAD,BPD,amygdala,SAD>BPD,4,12,100,0.12,0.06,0.2,12,4,a voxel of the region per replicate
SAD_vs_BPD,SAD,BPD,amygdala,BPD>SAD,6,90,100,0.9,0.82,0.95,18,6,"observed peak (-22, -4, -16)"
"""
SPECIFICITY_OVERLAP = """analysis,first,second,mask,share_first,share_second,difference,p,n_perm
SAD_vs_BPD,SAD,BPD,anatomical,0.058,0.104,-0.046,0.97,10000
"""


#: SAD's local maxima as ``peaks.csv`` holds them: cluster 1's peak and one sub-peak.
PEAKS = (
    "cluster,peak,x,y,z,stat,z_value,Harvard-Oxford,Juelich\n"
    "1,1,-22,-4,-18,0.0231,5.1,Left Amygdala 77%,Left Amygdala (LB) 60%\n"
    "1,2,-30,4,-22,0.0172,4.2,Left Temporal Pole 41%,(no label)\n"
)


def fabricate_results(root: Path) -> ResultsFolder:
    """A small results folder in the formats the pipeline writes, where it writes them."""
    results = ResultsFolder(root / "results")
    results.robustness.path.mkdir(parents=True)
    synthetic_flow().to_csv(results.flow)
    for group in ("SAD", "BPD", "MNS"):  # the diagrams of `mnsmeta studies --flow`
        _png(results.flow_diagram(group), f"{group}: PRISMA 2020 flow diagram")
    results.excluded.write_text(
        "group,study_id,reason,meaning,note\n"
        "SAD,19559343,duplicate_sample,same participants as another included study,"
        "same sample as 18771714\n"
    )
    results.characteristics.write_text(
        "group,study_id,first_author,year,kernel_n,kernel_fwhm_mm,paradigm,table_mix,coverage,"
        "enters\nSAD,19717138,Goldin PR,2009,54,8.6,self_referential,connectivity,whole_brain,"
        "mixed_tables_kept only (connectivity)\nBPD,19042093,Wingenfeld K,2009,40,8.8,"
        "cognitive_control,none,whole_brain,primary\n"
    )
    results.paradigms.write_text(
        "paradigm,SAD included,SAD primary\nself_referential,1,0\n"
        '"probe action observation, imitation or execution",0,0\nstudies,1,0\n'
    )
    results.ledger.write_text(LEDGER)
    results.summary.write_text(SUMMARY)
    for name, rows in CLUSTERS.items():
        folder = results.analysis(Analysis(name, "ale", (name,)))
        folder.path.mkdir()
        folder.clusters.write_text(CLUSTER_HEADER + "".join(rows))
        _png(folder.thresholded().glass, f"{name} glass")
        _png(folder.thresholded().slices, f"{name} slices")
    results.analysis(Analysis("SAD", "ale", ("SAD",))).peaks.write_text(PEAKS)
    subtraction = results.analysis(Analysis("SAD_vs_BPD", "subtraction", inputs=("SAD", "BPD")))
    subtraction.path.mkdir()
    subtraction.clusters.write_text(
        "cluster,size_voxels,size_mm3,peak_x,peak_y,peak_z,peak_stat,direction\n"
    )
    _png(subtraction.thresholded(("SAD", "BPD")).glass, "SAD > BPD")
    robustness = results.robustness
    robustness.table("clusters").write_text(ROBUST_CLUSTERS)
    robustness.table("contributions").write_text(CONTRIBUTIONS)
    robustness.table("jackknife").write_text(JACKKNIFE)
    robustness.table("failsafe").write_text(FAILSAFE)
    robustness.table("sensitivity").write_text(SENSITIVITY)
    results.masks.path.mkdir()
    for name, sidecar in MASKS.items():
        results.masks.sidecar(name).write_text(json.dumps(sidecar))
    results.overlap_table.write_text(OVERLAP)
    results.overlap.path.mkdir()
    results.overlap.clusters.write_text(OVERLAP_CLUSTERS)
    _png(results.overlap.figure("SAD"), "SAD and the MNS masks")
    results.specificity.path.mkdir()
    results.specificity.table("differences").write_text(SPECIFICITY_DIFFERENCES)
    results.specificity.table("power").write_text(SPECIFICITY_POWER)
    results.specificity.table("overlap").write_text(SPECIFICITY_OVERLAP)
    results.claims.write_text(json.dumps(CLAIMS))
    results.provenance.write_text(json.dumps(PROVENANCE))
    return results


def section(page: str, anchor: str) -> str:
    """The HTML of one section of the page."""
    match = re.search(rf'<section id="{anchor}">(.*?)</section>', page, re.DOTALL)
    assert match, f"no section {anchor}"
    return match.group(1)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """The report of a complete fabricated results folder (built once for this module)."""
    root = tmp_path_factory.mktemp("report")
    return build_report(fabricate_results(root))


@pytest.fixture(scope="module")
def page(report) -> str:
    return report.read_text(encoding="utf-8")


def test_report_is_written_into_the_results_folder_without_leftovers(report):
    assert report == ResultsFolder(report.parent).report
    assert sorted(report.parent.glob("*report*")) == [report]
    assert not list(report.parent.glob(".partial*"))


def test_page_is_self_contained(page):
    # Nothing is fetched: no remote src/href, no external script or style sheet, no font.
    assert re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page) == []
    assert re.findall(r"<script[^>]*\bsrc=", page) == []
    assert re.findall(r"<link[^>]*stylesheet", page) == []
    assert re.findall(r"""url\((?!\s*["']?data:)""", page) == []
    assert "@import" not in page and "@font-face" not in page


def test_every_png_is_embedded_as_a_data_uri(report, page):
    pngs = sorted(report.parent.rglob("*.png"))
    assert len(pngs) == 11
    for png in pngs:
        encoded = base64.b64encode(png.read_bytes()).decode("ascii")
        assert f'src="data:image/png;base64,{encoded}"' in page, png
    # The answers repeat the glass-brain maps of the claims' analyses (SAD and BPD).
    assert page.count("<img ") == len(pngs) + 2


def test_every_section_heading_is_present_in_order(page):
    found = re.findall(r'<section id="([^"]+)">\s*<h2>([^<]+)</h2>', page)
    assert found == list(zip(ANCHORS, HEADINGS, strict=True))
    assert "How to read this report" in page


def test_complete_results_show_no_missing_or_error_note(page):
    for anchor in ANCHORS:
        text = section(page, anchor)
        assert "not computed yet" not in text, anchor
        assert "could not be shown" not in text, anchor


def test_the_specificity_section_reads_each_test_with_its_power(page):
    text = section(page, "specificity")
    assert "inconclusive (power 12%)" in text  # SAD > BPD: a null without power
    assert "exceeds" in text  # BPD > SAD: p_fwe 0.0116
    assert "observed peak (-22, -4, -16)" in text  # the power curve's target


def test_ledger_shows_totals_and_the_computed_columns(page):
    ledger = section(page, "ledger")
    totals = dict(
        (name, int(value))
        for value, name in re.findall(r"<div><b>(\d+)</b><span>([^<]+)</span></div>", ledger)
    )
    assert totals["references"] == 3
    assert totals["in a database"] == 1
    assert totals["entering an analysis"] == 1
    assert totals["fMRI"] == 2 and totals["review"] == 1
    assert "review: not a primary study" in ledger
    assert "not in Neurosynth 0.7 / NeuroQuery 1 (published 2024)" in ledger
    # Source URLs are curation provenance, not links the page would follow.
    assert "pubmed.ncbi.nlm.nih.gov" not in ledger


def test_analysis_sections_show_figures_clusters_and_robustness(page):
    analyses = section(page, "analyses")
    headings = re.findall(r'<h3 id="analysis-[^"]*">([^<]+?) <small', analyses)
    assert headings == ["SAD", "BPD", "SAD_vs_BPD", "MNS"]
    sad = analyses.split('id="analysis-bpd"')[0]
    assert sad.count("<img ") == 2
    assert "Left Amygdala 77%; Left Hippocampus 11%" in sad  # atlas labels read with spaces
    assert "<details><summary>3 ids</summary>12147314; 15601601; 15860337</details>" in sad
    assert '<td data-sort="2408.0" class="num">2,408</td>' in sad
    # Flags: the dominated and fragile cluster is highlighted; contributions are percentages.
    assert '<td data-sort="1" class="flag">yes</td>' in sad
    assert "62.5 %" in sad
    subtraction = analyses.split('id="analysis-sad-vs-bpd"')[1].split('id="analysis-mns"')[0]
    assert "no cluster survived the threshold" in subtraction


def test_each_cluster_table_has_its_local_maxima_folded_beneath(page):
    analyses = section(page, "analyses")
    sad = analyses.split('id="analysis-bpd"')[0]
    assert (
        "<summary>Local maxima (2): the peak and sub-peaks of each cluster, more than 8 mm" in sad
    )
    assert sad.index("Local maxima") > sad.index("Left Amygdala 77%; Left Hippocampus 11%")
    assert "Left Temporal Pole 41%" in sad  # the sub-peak, with its label
    bpd = analyses.split('id="analysis-bpd"')[1].split('id="analysis-sad-vs-bpd"')[0]
    assert "Local maxima" not in bpd  # a folder without peaks.csv (older results): nothing


def test_tables_of_robustness_sensitivity_and_overlap(page):
    robustness = section(page, "robustness")
    assert "9–15" in robustness and "&gt;= 62" not in robustness  # failsafe.csv as written
    assert '<td data-sort="0" class="flag">no</td>' in robustness  # BPD cluster not robust
    assert "MNS overlap no longer significant" in section(page, "sensitivity")
    overlap = section(page, "overlap")
    assert "mns_meta" in overlap and "mns_anatomical" in overlap  # the sidecars' names
    assert "<summary>40 items</summary>" in overlap  # the mask's experiment list folds away
    assert '<td data-sort="0.000999001" class="num sig">0.000999</td>' in overlap


def test_the_page_opens_with_the_answers_then_the_limitations(page):
    found = re.findall(r'<section id="([^"]+)">', page)
    assert found[:2] == ["claims", "limitations"]
    claims = section(page, "claims")
    assert '<td class="verdict verdict-supported short">supported</td>' in claims
    assert '<td class="verdict verdict-inconclusive short">inconclusive</td>' in claims
    assert '<td class="verdict verdict-not-testable short">not testable</td>' in claims
    # The primary test's p with its Monte Carlo interval, Holm, and the power of a null.
    assert "0.0021 (0.0013-0.0031)" in claims and "0.0063" in claims
    assert "MDE 6 of 12 experiments; power 0.21 at 4" in claims
    assert "foci of BPD&#39;s 2 experiments converge in the left amygdala" in claims
    glass = ResultsFolder(Path("results")).analysis(Analysis("SAD", "ale")).thresholded().glass
    assert f"SAD: {glass.name}" in claims  # the maps the verdicts read
    limitations = section(page, "limitations")
    assert "sad_mns_reduced rests on a null without the power" in limitations
    assert "The meta MNS mask (meta-analytic) is a proxy" in limitations


def test_claim_values_are_escaped(page):
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section(page, "claims")
    assert "<script>alert" not in page


def test_provenance_shows_versions_and_checksums(page):
    provenance = section(page, "provenance")
    assert "nimare" in provenance and "0.22.1" in provenance
    assert "58f769f9" * 8 in provenance


def test_missing_inputs_show_not_computed_notes(tmp_path):
    results = ResultsFolder(tmp_path / "results")
    results.path.mkdir()
    page = build_report(results).read_text()
    found = re.findall(r'<section id="([^"]+)">\s*<h2>([^<]+)</h2>', page)
    assert found == list(zip(ANCHORS, HEADINGS, strict=True))
    expected = {
        "limitations": "mnsmeta run",
        "flow": "mnsmeta studies --flow",
        "studies": "mnsmeta studies --flow",
        "ledger": "mnsmeta studies --cited",
        "summary": "mnsmeta run",
        "analyses": "mnsmeta run",
        "overlap": "mnsmeta overlap",
        "specificity": "mnsmeta specificity",
        "robustness": "mnsmeta robustness",
        "sensitivity": "mnsmeta robustness",
        "claims": "mnsmeta claims",
        "provenance": "mnsmeta run",
    }
    for anchor, command in expected.items():
        text = section(page, anchor)
        assert "not computed yet: run <code>" + command + "</code>" in text, anchor
    assert "<img " not in page


def test_missing_robustness_is_noted_in_each_analysis(tmp_path):
    results = fabricate_results(tmp_path)
    shutil.rmtree(results.robustness.path)
    page = build_report(results).read_text()
    analyses = section(page, "analyses")
    assert analyses.count("Cluster robustness: not computed yet") == 4
    assert "Left Amygdala 77%" in analyses  # the clusters are still shown


def test_unreadable_file_is_reported_in_its_section_only(tmp_path):
    results = fabricate_results(tmp_path)
    results.claims.write_text("{not json")
    results.robustness.table("clusters").write_text("cluster,fragile\n1,True\n")
    page = build_report(results).read_text()
    assert "could not be shown: JSONDecodeError" in section(page, "claims")
    assert "could not be shown" not in section(page, "provenance")
    # A robustness table without its analysis column: noted per analysis, clusters still shown.
    analyses = section(page, "analyses")
    assert analyses.count("could not be shown: KeyError") == 4
    assert "Left Amygdala 77%" in analyses


def test_the_page_is_a_function_of_the_results_folder_alone(tmp_path, monkeypatch):
    """No curation folder and no database cache or mirror: the page is still complete."""
    monkeypatch.setenv("MNSMETA_DATA_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("MNSMETA_DATA_MIRROR", str(tmp_path / "no-mirror"))
    monkeypatch.chdir(tmp_path)
    page = build_report(fabricate_results(tmp_path)).read_text()
    for anchor in ANCHORS:
        assert "not computed yet" not in section(page, anchor), anchor
        assert "could not be shown" not in section(page, anchor), anchor
    assert not (tmp_path / "empty-cache").exists()


def test_missing_results_folder_is_an_input_error(tmp_path):
    with pytest.raises(MnsmetaInputError, match="no such folder"):
        build_report(ResultsFolder(tmp_path / "nowhere"))


def test_report_command_writes_the_page_and_prints_its_path(tmp_path):
    results = fabricate_results(tmp_path)
    result = CliRunner().invoke(
        main,
        ["--coordinates", str(tmp_path / "none"), "report", "--output", str(results.path)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert str(results.report) in result.output
    assert results.report.is_file()
    assert "Example:" in CliRunner().invoke(main, ["report", "--help"]).output


# -- in a real browser ------------------------------------------------------------------


@pytest.fixture
def opened(browser, report):
    """The report open in a laptop-sized page, with every console error and request kept."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    seen = {"errors": [], "requests": []}
    page.on(
        "console",
        lambda message: seen["errors"].append(message.text) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: seen["errors"].append(str(error)))
    page.on("request", lambda request: seen["requests"].append(request.url))
    page.goto(report.as_uri(), wait_until="load")
    yield page, seen
    context.close()


def test_page_renders_in_chromium_without_errors_or_requests(opened, tmp_path):
    page, seen = opened
    assert seen["errors"] == []
    assert [url for url in seen["requests"] if not url.startswith(("file:", "data:"))] == []
    images = page.evaluate(
        "Array.from(document.images, i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight])"
    )
    assert len(images) == 13  # 11 figures, 2 repeated in the answers
    assert [name for name, complete, width, height in images if not (complete and width > 0)] == []
    assert page.title() == "mnsmeta report"
    screenshot = tmp_path / "report.png"
    page.screenshot(path=str(screenshot), full_page=True)
    data = screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width == 1366 and height > 3000  # every section, laid out one under the other
    assert len(data) > 100_000
    assert seen["errors"] == []


def test_clicking_a_header_sorts_the_table(opened):
    page, seen = opened
    table = page.locator("#summary table")

    def column(name):
        header = [h.strip() for h in table.locator("th").all_inner_texts()].index(name)
        return [
            row[header]
            for row in table.locator("tbody tr").evaluate_all(
                "rows => rows.map(r => Array.from(r.cells, c => c.textContent.trim()))"
            )
        ]

    assert column("analysis") == ["SAD", "BPD", "SAD_vs_BPD", "MNS"]
    table.locator("th", has_text="analysis").click()
    assert column("analysis") == ["BPD", "MNS", "SAD", "SAD_vs_BPD"]
    table.locator("th", has_text="analysis").click()
    assert column("analysis") == ["SAD_vs_BPD", "SAD", "MNS", "BPD"]
    # Numbers sort as numbers, not as their formatted text ("1,945" < "806" as text).
    table.locator("th", has_text=re.compile(r"^foci$")).click()
    assert column("foci") == ["94", "806", "1,139", "1,945"]
    assert table.locator("th", has_text=re.compile(r"^foci$")).get_attribute("aria-sort") == (
        "ascending"
    )
    assert seen["errors"] == []


def test_directional_analyses_and_experiments_show_beside_the_study_level_ones(tmp_path):
    results = fabricate_results(tmp_path)
    with results.summary.open("a") as stream:
        stream.write(
            "SAD_patients_lt_controls,ale,0,,0,0,,,,not computed: no included experiment has "
            "a curated patients<controls contrast\n"
        )
    sad = results.analysis(Analysis("SAD", "ale", ("SAD",)))
    sad.experiments.write_text(
        "experiment_id,n_foci,sample_size,sample_size_rule,contrasts,kinds\n"
        "12147314,12,20,n_total,SAD > HC; HC > SAD,patients<controls; patients>controls\n"
    )
    analyses = section(build_report(results).read_text(), "analyses")
    directional = analyses.split('id="analysis-sad-patients-lt-controls"')[1]
    assert "not computed: no included experiment has a curated patients&lt;controls" in directional
    assert "not computed yet" not in directional
    assert (
        "<summary>Experiments (1): sample sizes, contrasts and their kinds</summary>" in analyses
    )
    assert "patients&lt;controls; patients&gt;controls" in analyses


def test_the_flow_section_lists_the_excluded_studies_with_their_reasons(tmp_path):
    page = render_report(fabricate_results(tmp_path))
    flow = page[page.index('id="flow"') : page.index('id="ledger"')]
    assert "The 1 excluded studies and why" in flow
    assert "19559343" in flow and "same sample as 18771714" in flow


def test_the_flow_section_shows_each_group_s_prisma_diagram_before_the_table(report, page):
    flow = section(page, "flow")
    results = ResultsFolder(report.parent)
    for group in ("SAD", "BPD", "MNS"):
        png = results.flow_diagram(group)
        encoded = base64.b64encode(png.read_bytes()).decode("ascii")
        assert f'src="data:image/png;base64,{encoded}"' in flow, group
        assert f'alt="{group}: PRISMA 2020 flow diagram ({png.name}; ' in flow
    assert flow.index("<img ") < flow.index("<table")
    # The table's counts as flow.csv holds them (SAD: 42 screened, 22 included).
    assert re.search(r"screened \(curation record\)</td><td[^>]*>42</td>", flow)
    assert re.search(r"included \(eligible\)</td><td[^>]*>22</td>", flow)


def test_a_flow_without_its_diagrams_names_the_command_that_draws_them(tmp_path):
    results = fabricate_results(tmp_path)
    results.flow_diagram("BPD").unlink()
    flow = section(render_report(results), "flow")
    assert flow.count("<img ") == 2
    assert (
        "PRISMA 2020 flow diagrams: not computed yet: run <code>mnsmeta studies --flow</code> "
        f"(no {results.flow_diagram('BPD')})" in flow
    )
    assert "Records per stage and group" in flow  # the table is still shown


def test_the_studies_section_shows_characteristics_kernels_and_paradigms(tmp_path):
    page = build_report(fabricate_results(tmp_path)).read_text()
    studies = section(page, "studies")
    assert "Characteristics of the 2 included studies" in studies
    assert "8.6-8.8" in studies  # the kernels' FWHM range (mm)
    assert "kept only (connectivity)" in studies  # the variant that admits the study
    assert "probe action observation, imitation or execution" in studies


def test_the_results_page_is_generated_from_the_results_folder(tmp_path):
    """docs/results.md is written by `mnsmeta report --page`: every number from the files."""
    results = fabricate_results(tmp_path)
    page = tmp_path / "docs" / "results.md"
    outcome = CliRunner().invoke(
        main, ["report", "--output", str(results.path), "--page", str(page)]
    )
    assert outcome.exit_code == 0, outcome.output
    text = page.read_text()
    assert text.startswith("<!-- Generated by `mnsmeta report --page`")
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings[:2] == ["## Answers: the review's claims", "## Limitations"]
    assert "| both_amygdala | supported | low | the primary test rejects |" in text
    assert "| 0.0021 (0.0013-0.0031) | 0.0063 |" in text
    assert "- **bpd_mns_inconsistent**: foci of BPD's 2 experiments converge" in text
    assert "- sad_mns_reduced rests on a null without the power" in text
    # The analyses' rows come from summary.csv and the cluster tables.
    assert "| SAD | ale | 31 | 2 | 1: Left Amygdala (-22, -4, -20), 2,408 mm³" in text
    assert "9–15" in text  # the fail-safe N as the robustness table holds it
    # The specificity readings, each with its power.
    assert "## Specificity: each subtraction in the claim regions" in text
    assert "| SAD_vs_BPD | amygdala | SAD>BPD |" in text and "inconclusive (power 12%)" in text
    # The maps it shows are copied beside it, from the results folder.
    glass = results.analysis(Analysis("SAD", "ale")).thresholded().glass
    assert f"![SAD: cluster-FWE map](figures/sad_map{glass.suffix})" in text
    copied = page.parent / "figures" / f"sad_map{glass.suffix}"
    assert copied.read_bytes() == glass.read_bytes()
    # Each group's flow diagram, after the limitations, copied beside the page too.
    assert headings[2] == "## Study flow (PRISMA 2020)"
    for group in ("SAD", "BPD", "MNS"):
        name = f"flow_{group.lower()}.png"
        assert f"![{group}: PRISMA 2020 flow diagram](figures/{name})" in text
        diagram = results.flow_diagram(group)
        assert (page.parent / "figures" / name).read_bytes() == diagram.read_bytes()
