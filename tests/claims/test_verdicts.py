"""The claims check: one verdict per claim, by the documented rules, exit code 0."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mnsmeta.claims.verdicts import (
    NOT_SUPPORTED,
    NOT_TESTABLE,
    SUPPORTED,
    TOO_FEW,
    Evidence,
    check_claims,
)
from mnsmeta.cli import main
from mnsmeta.curation.analyses import Analysis
from mnsmeta.curation.claims_file import Claim
from mnsmeta.curation.experiments import ExperimentSet
from mnsmeta.data.space import brain_mask_img
from mnsmeta.meta_analysis.analysis_result import AnalysisResult
from mnsmeta.workflows.results import ResultsFolder, write_csv

SAD = Analysis("SAD", "ale", ("SAD",))
BPD = Analysis("BPD", "ale", ("BPD",))
CONJUNCTION = Analysis("SAD_and_BPD", "conjunction", inputs=("SAD", "BPD"))
SUBTRACTION = Analysis("SAD_vs_BPD", "subtraction", inputs=("SAD", "BPD"))
ANALYSES = [SAD, BPD, CONJUNCTION, SUBTRACTION]
REGIONS = {
    "amygdala": ["Amygdala"],
    "IFG": ["Inferior_Frontal_Gyrus_pars_opercularis", "Inferior_Frontal_Gyrus_pars_triangularis"],
}
CLUSTER_COLUMNS = ["cluster", "size_mm3", "peak_x", "peak_y", "peak_z", "Harvard-Oxford peak"]
AMYGDALA = (-22, -4, -20)
IFG = (50, 16, 8)


def _labels(*peaks_mm):
    """Cluster k + 1: a 3 x 3 x 3 cube around the k-th peak."""
    mask = brain_mask_img()
    data = np.zeros(mask.shape, dtype=np.int16)
    for number, peak in enumerate(peaks_mm, start=1):
        i, j, k = np.rint(np.linalg.inv(mask.affine) @ [*peak, 1])[:3].astype(int)
        data[i - 1 : i + 2, j - 1 : j + 2, k - 1 : k + 2] = number
    return data


def _clusters(*rows):
    return pd.DataFrame([(1 + n, 216, *peak, label) for n, (peak, label) in enumerate(rows)],
                        columns=CLUSTER_COLUMNS)  # fmt: skip


def _experiments(name, n=10, kinds="unknown"):
    """Experiments: 5 report only increased, 2 only reduced, the others both directions."""
    ids = [f"{name}{i}" for i in range(n)]
    directions = (["hyper"] * 5 + ["hypo"] * 2 + ["mixed"] * n)[:n]
    experiments = pd.DataFrame(
        {"sample_size": 20, "direction": directions, "kinds": kinds}, index=ids
    )
    foci = pd.DataFrame(
        {
            "experiment_id": ids,
            "contrast": "1",
            "kind": kinds,
            "table_id": "",
            "x": 0.0,
            "y": 0.0,
            "z": 0.0,
        }
    )
    return ExperimentSet(name, experiments, foci)


def _results():
    """SAD: one left-amygdala cluster, fragile, in the MNS beyond chance. BPD: no cluster.
    The subtraction: SAD > BPD in the amygdala, BPD > SAD in the right IFG."""
    empty = _clusters()
    subtraction = pd.concat(
        [
            _clusters((AMYGDALA, "Left_Amygdala")).assign(direction="SAD>BPD"),
            _clusters((IFG, "Right_Inferior_Frontal_Gyrus_pars_opercularis")).assign(
                direction="BPD>SAD"
            ),
        ],
        ignore_index=True,
    )
    return {
        "SAD": AnalysisResult(
            SAD, _experiments("SAD"), _clusters((AMYGDALA, "Left_Amygdala")), _labels(AMYGDALA)
        ),
        "BPD": AnalysisResult(BPD, _experiments("BPD"), empty, _labels()),
        "SAD_and_BPD": AnalysisResult(CONJUNCTION, None, empty, _labels()),
        "SAD_vs_BPD": AnalysisResult(
            SUBTRACTION,
            None,
            subtraction,
            None,
            labels_by_direction={("SAD", "BPD"): _labels(AMYGDALA), ("BPD", "SAD"): _labels(IFG)},
        ),
    }


def _overlap():
    rows = []
    for analysis, p in (("SAD", 0.01), ("BPD", 0.5)):
        for mask in ("meta", "anatomical"):
            rows += [
                (analysis, mask, "roi_ale", "mean_ale", 0.01, p),
                (analysis, mask, "roi_ale_gm", "mean_ale", 0.01, p),
                (analysis, mask, "thresholded_overlap", "voxels_in_both", 12, p),
            ]
    return pd.DataFrame(rows, columns=["analysis", "mask", "test", "statistic", "observed", "p"])


ROBUSTNESS = pd.DataFrame(
    [
        {
            "analysis": "SAD",
            "cluster": 1,
            "dominated": True,
            "jackknife_survived": 5,
            "jackknife_n": 10,
            "fragile": True,
            "fsn": "0-9",
            "fsn_benchmark": 10,
        }
    ]
)


@pytest.fixture
def evidence():
    results = _results()
    return Evidence(ANALYSES, lambda a: results[a.name], _overlap(), ROBUSTNESS)


def claim(id_, analysis, test, regions=(), direction="any"):
    return Claim(id_, f"paraphrase of {id_}", analysis, test, tuple(regions), direction)


CASES = [
    (claim("amygdala", "SAD", "convergence", ["amygdala"]), SUPPORTED, "jackknife 5/10"),
    (claim("ifg", "SAD", "convergence", ["IFG"]), NOT_SUPPORTED, "no cluster in IFG"),
    (claim("reduced", "SAD", "convergence", ["IFG"], "hypo"), NOT_TESTABLE, "2 only reduced"),
    (claim("sad_mns", "SAD", "mns_overlap"), SUPPORTED, "meta: ROI p=0.01"),
    (claim("bpd_mns", "BPD", "mns_overlap"), NOT_SUPPORTED, "p=0.5"),
    (claim("fragile", "SAD", "inconsistent", ["amygdala"]), SUPPORTED, "dominated"),
    (claim("absent", "BPD", "inconsistent", ["IFG"]), SUPPORTED, "no significant cluster"),
    (claim("both", "conjunction", "convergence", ["amygdala"]), NOT_SUPPORTED, "SAD n=10"),
    (claim("diff_ifg", "contrast", "convergence", ["IFG"]), SUPPORTED, "cluster BPD>SAD 1"),
    (claim("diff_amy", "contrast", "convergence", ["amygdala"]), SUPPORTED, "SAD>BPD 1 Left"),
]


@pytest.mark.parametrize(("item", "verdict", "text"), CASES, ids=[c[0].id for c in CASES])
def test_each_claim_gets_the_verdict_its_rule_gives(evidence, item, verdict, text):
    (result,) = check_claims([item], REGIONS, evidence)
    assert result.verdict == verdict
    assert text in result.evidence
    assert "\n" not in result.evidence


def test_a_subtraction_cluster_is_placed_by_its_own_direction(evidence):
    # Both directions number their clusters from 1; the IFG claim must find only BPD > SAD.
    (result,) = check_claims([claim("x", "contrast", "convergence", ["IFG"])], REGIONS, evidence)
    assert "1 cluster(s) in IFG" in result.evidence
    assert "SAD>BPD" not in result.evidence


@pytest.fixture
def results_folder(tmp_path):
    """The same results, written through the results contract."""
    results = ResultsFolder(tmp_path / "results")
    for result in _results().values():
        results.save(result)
    write_csv(_overlap(), results.overlap_table)
    results.robustness.path.mkdir(parents=True)
    results.robustness.write_table("clusters", ROBUSTNESS)
    return results


def test_the_claims_command_prints_json_and_exits_zero(results_folder, tmp_path):
    coordinates = tmp_path / "coordinates"
    coordinates.mkdir()
    (coordinates / "claims.toml").write_text(
        '[regions]\nIFG = ["Inferior_Frontal_Gyrus_pars_opercularis"]\n\n'
        '[[claim]]\nid = "x"\nparaphrase = "SAD converges in IFG."\nanalysis = "SAD"\n'
        'test = "convergence"\nregions = ["IFG"]\ndirection = "any"\n\n'
        '[[claim]]\nid = "y"\nparaphrase = "SAD and BPD differ in IFG."\nanalysis = "contrast"\n'
        'test = "convergence"\nregions = ["IFG"]\ndirection = "any"\n'
    )
    (coordinates / "analyses.toml").write_text(
        '[[analysis]]\nname = "SAD"\nkind = "ale"\ngroups = ["SAD"]\n\n'
        '[[analysis]]\nname = "BPD"\nkind = "ale"\ngroups = ["BPD"]\n\n'
        '[[analysis]]\nname = "SAD_vs_BPD"\nkind = "subtraction"\ninputs = ["SAD", "BPD"]\n'
    )
    outcome = CliRunner().invoke(
        main,
        [
            "--coordinates",
            str(coordinates),
            "claims",
            "--output",
            str(results_folder.path),
            "--json",
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    printed = json.loads(outcome.output)
    assert [(c["id"], c["verdict"]) for c in printed] == [("x", NOT_SUPPORTED), ("y", SUPPORTED)]
    written = results_folder.read_claims()
    assert written["claims"] == printed
    # what a reviewer needs beside the verdicts: the rules, the stages' settings, staleness
    assert set(written["rules"]) >= {"convergence", "mns_overlap", "inconsistent", "flipped_by"}
    assert {"generated", "settings", "inputs_sha256", "stale"} <= set(written)


def test_a_missing_results_folder_is_a_clear_error(tmp_path):
    coordinates = tmp_path / "coordinates"
    coordinates.mkdir()
    (coordinates / "claims.toml").write_text(
        '[[claim]]\nid = "x"\nparaphrase = "p"\nanalysis = "SAD"\ntest = "convergence"\n'
        'direction = "any"\n'
    )
    (coordinates / "analyses.toml").write_text(
        '[[analysis]]\nname = "SAD"\nkind = "ale"\ngroups = ["SAD"]\n'
    )
    outcome = CliRunner().invoke(
        main, ["--coordinates", str(coordinates), "claims", "--output", str(tmp_path / "none")]
    )
    assert outcome.exit_code == 1
    assert "no such folder: run `mnsmeta run` first" in outcome.output
    assert "Traceback" not in outcome.output


SAD_LESS = Analysis("SAD_less", "ale", ("SAD",), contrasts=("patients<controls",))
REDUCED_IFG = claim("reduced_ifg", "SAD", "convergence", ["IFG"], "hypo")


def _directional_evidence(n_experiments, peaks, configured=True, computed=True):
    """The study-level SAD result, and (when configured) a patients < controls analysis of
    ``n_experiments`` experiments with clusters at ``peaks``."""
    results = _results()
    less = [p for p in peaks]
    results["SAD_less"] = AnalysisResult(
        SAD_LESS,
        _experiments("SAD", n_experiments, "patients<controls"),
        _clusters(*[(peak, label) for peak, label in less]),
        _labels(*[peak for peak, _ in less]),
    )
    analyses = [*ANALYSES, SAD_LESS] if configured else ANALYSES
    return Evidence(
        analyses,
        lambda a: results[a.name],
        _overlap(),
        ROBUSTNESS,
        computed=lambda a: computed or a.name != "SAD_less",
    )


IFG_CLUSTER = [(IFG, "Right_Inferior_Frontal_Gyrus_pars_opercularis")]
DIRECTIONAL_CASES = [
    # (experiments, clusters, configured, computed) -> verdict, words in the evidence
    ((20, IFG_CLUSTER, True, True), SUPPORTED, "SAD_less (n=20 experiments): 1 cluster(s) in IFG"),
    ((5, IFG_CLUSTER, True, True), SUPPORTED, "underpowered: 5 experiments < 17"),
    ((20, [], True, True), NOT_SUPPORTED, "no significant cluster"),
    ((5, [], True, True), TOO_FEW, "underpowered: 5 experiments < 17"),
    ((0, [], True, False), NOT_TESTABLE, "no included study has a curated patients<controls"),
    ((0, [], False, False), NOT_TESTABLE, "no analysis of patients<controls contrasts"),
]


@pytest.mark.parametrize(
    ("setup", "verdict", "text"),
    DIRECTIONAL_CASES,
    ids=[
        "supported",
        "supported_underpowered",
        "not_supported",
        "too_few",
        "no_data",
        "no_analysis",
    ],
)
def test_a_directional_claim_is_judged_on_its_direction_s_analysis(setup, verdict, text):
    (result,) = check_claims([REDUCED_IFG], REGIONS, _directional_evidence(*setup))
    assert result.verdict == verdict
    assert text in result.evidence
    # The evidence names the experiments of each direction in the study-level analysis.
    assert "SAD: 0 of 10 experiments with a curated patients>controls contrast" in result.evidence


def test_a_verdict_that_a_sensitivity_variant_flips_names_the_variant():
    """SAD has one amygdala cluster and none in the IFG. One variant adds an IFG cluster
    (the IFG claim flips), one keeps no main cluster (the amygdala claim flips), one keeps
    everything; a not-applicable row is ignored."""
    results = _results()
    sensitivity = pd.DataFrame(
        [
            ("SAD", "main", "", "1", "(reference)"),
            ("SAD", "lenient", "Right_Inferior_Frontal_Gyrus_pars_opercularis", "1", "1 new"),
            ("SAD", "one_database", "", "", "loses cluster 1"),
            ("SAD", "same", "", "1", "none"),
            ("SAD", "absent", "", "", "not applicable: no such studies"),
        ],
        columns=["analysis", "variant", "new_labels", "kept_clusters", "conclusion_changes"],
    )
    evidence = Evidence(ANALYSES, lambda a: results[a.name], _overlap(), ROBUSTNESS, sensitivity)
    claims = [
        claim("ifg", "SAD", "convergence", ["IFG"]),
        claim("amygdala", "SAD", "convergence", ["amygdala"]),
        claim("sad_mns", "SAD", "mns_overlap"),
    ]
    verdicts = {v.claim.id: v for v in check_claims(claims, REGIONS, evidence)}
    assert verdicts["ifg"].verdict == NOT_SUPPORTED
    assert verdicts["ifg"].flipped_by == ("lenient",)
    assert verdicts["ifg"].evidence.endswith("the verdict flips under lenient")
    assert verdicts["amygdala"].flipped_by == ("one_database",)
    assert verdicts["sad_mns"].flipped_by == ()  # overlap verdicts: not judged by variants
    assert verdicts["ifg"].as_dict()["flipped_by"] == "lenient"


SAD_CONTROLS = Analysis("SAD_controls", "ale", controls="SAD")
SAD_VS_CONTROLS = Analysis("SAD_vs_controls", "subtraction", inputs=("SAD", "SAD_controls"))


@pytest.mark.parametrize(
    ("beyond_controls", "text"),
    [
        ([AMYGDALA], "1 of 1 cluster(s) overlap SAD > its task-matched healthy-only controls"),
        ([IFG], "0 of 1 cluster(s) overlap SAD > its task-matched healthy-only controls"),
        ([], "SAD exceeds its task-matched healthy-only controls nowhere"),
    ],
)
def test_a_convergence_verdict_says_whether_it_exceeds_task_matched_controls(
    beyond_controls, text
):
    results = _results()
    direction = "SAD>SAD_controls"
    rows = [(peak, "Left_Amygdala") for peak in beyond_controls]
    results["SAD_vs_controls"] = AnalysisResult(
        SAD_VS_CONTROLS,
        None,
        _clusters(*rows).assign(direction=direction) if rows else _clusters(),
        None,
        labels_by_direction={
            ("SAD", "SAD_controls"): _labels(*beyond_controls),
            ("SAD_controls", "SAD"): _labels(),
        },
    )
    analyses = [*ANALYSES, SAD_CONTROLS, SAD_VS_CONTROLS]
    evidence = Evidence(analyses, lambda a: results[a.name], _overlap(), ROBUSTNESS)
    (result,) = check_claims([claim("a", "SAD", "convergence", ["amygdala"])], REGIONS, evidence)
    assert result.verdict == SUPPORTED  # the claim is about convergence; this is its context
    assert f"specificity: {text}" in result.evidence
