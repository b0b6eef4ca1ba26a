"""The claims check: one primary test per claim, a graded verdict, Holm across claims.

The evidence is constructed: clusters are 3 x 3 x 3 cubes at known places, the run's
cluster-size p map gives each cube its p, and the power of a null is handed in (its
simulation is tested in tests/inference/test_power.py), so each rule meets a case with a
known answer.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mnsmeta.claims.certainty import grade
from mnsmeta.claims.verdicts import (
    AGAINST,
    CLUSTER_LOGP,
    INCONCLUSIVE,
    NOT_TESTABLE,
    SUPPORTED,
    Evidence,
    Judge,
    Verdict,
    changed,
    check_claims,
    specificity,
)
from mnsmeta.cli import main
from mnsmeta.curation.analyses import Analysis
from mnsmeta.curation.claims_file import Claim, Regions
from mnsmeta.curation.experiments import ExperimentSet
from mnsmeta.data.space import brain_mask_img
from mnsmeta.meta_analysis.analysis_result import AnalysisResult
from mnsmeta.workflows.results import ResultsFolder, save_map, write_csv

SAD = Analysis("SAD", "ale", ("SAD",))
BPD = Analysis("BPD", "ale", ("BPD",))
CONJUNCTION = Analysis("SAD_and_BPD", "conjunction", inputs=("SAD", "BPD"))
SUBTRACTION = Analysis("SAD_vs_BPD", "subtraction", inputs=("SAD", "BPD"))
ANALYSES = [SAD, BPD, CONJUNCTION, SUBTRACTION]
REGIONS = Regions(
    {
        "amygdala": {"harvard_oxford": ["Amygdala"]},
        "IFG": {
            "harvard_oxford": [
                "Inferior_Frontal_Gyrus_pars_opercularis",
                "Inferior_Frontal_Gyrus_pars_triangularis",
            ]
        },
    },
    atlas="harvard_oxford",
    variant="harvard_oxford",
)
CLUSTER_COLUMNS = ["cluster", "size_mm3", "peak_x", "peak_y", "peak_z", "Harvard-Oxford peak"]
AMYGDALA = (-22, -4, -20)
IFG = (50, 16, 8)
N_ITERS = 10_000


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
    """``n`` experiments, each with one focus in the left amygdala."""
    ids = [f"{name}{i}" for i in range(n)]
    experiments = pd.DataFrame(
        {
            "sample_size": 20,
            "kinds": kinds,
            "source": "neurosynth",
            "sample_size_rule": "n_patients+n_controls",
            "space_rule": "reported MNI",
        },
        index=ids,
    )
    foci = pd.DataFrame(
        {"experiment_id": ids, "contrast": "1", "kind": kinds, "table_id": "", "x": -22.0,
         "y": -4.0, "z": -20.0}
    )  # fmt: skip
    return ExperimentSet(name, experiments, foci)


def _cluster_p(peaks_p):
    """The run's cluster-size p map: -log10 p on each cube (clusters formed at the CDT)."""
    logp = np.zeros(brain_mask_img().shape)
    labels = _labels(*[peak for peak, _ in peaks_p])
    for number, (_, p) in enumerate(peaks_p, start=1):
        logp[labels == number] = -np.log10(p)
    return logp


class World:
    """SAD: an amygdala cluster (p = 0.002) and a sub-threshold IFG one (p = 0.3);
    BPD: nothing. The subtraction: SAD > BPD in the amygdala."""

    def __init__(self, sad_p=0.002, sad_n=10, bpd_n=20, kinds="unknown"):
        empty = _clusters()
        self.results = {
            "SAD": AnalysisResult(
                SAD,
                _experiments("SAD", sad_n, kinds),
                _clusters((AMYGDALA, "Left_Amygdala")) if sad_p < 0.05 else empty,
                _labels(AMYGDALA) if sad_p < 0.05 else _labels(),
            ),
            "BPD": AnalysisResult(BPD, _experiments("BPD", bpd_n, kinds), empty, _labels()),
            "SAD_and_BPD": AnalysisResult(CONJUNCTION, None, empty, _labels()),
            "SAD_vs_BPD": AnalysisResult(
                SUBTRACTION,
                None,
                _clusters((AMYGDALA, "Left_Amygdala")).assign(direction="SAD>BPD"),
                None,
                labels_by_direction={("SAD", "BPD"): _labels(AMYGDALA), ("BPD", "SAD"): _labels()},
            ),
        }
        self.maps = {
            ("SAD", CLUSTER_LOGP): _cluster_p([(AMYGDALA, sad_p), (IFG, 0.3)]),
            ("BPD", CLUSTER_LOGP): np.zeros(brain_mask_img().shape),
        }

    def evidence(self, overlap=None, robustness=None):
        return Evidence(
            ANALYSES,
            lambda a: self.results[a.name],
            overlap=overlap,
            robustness=robustness,
            load_map=lambda a, name: self.maps.get((a.name, name)),
            n_iters=N_ITERS,
        )


def claim(id_, analysis, test, regions=(), direction="any", **extra):
    return Claim(id_, f"paraphrase of {id_}", analysis, test, tuple(regions), direction, **extra)


def power(mde, n=10, k_effect=4, hits=None):
    """A power summary as the simulation gives it (``mde`` None: never reached 80 %)."""
    out = {"n_experiments": n, "k_effect": k_effect, "mde_k": mde, "curve": []}
    if hits is not None:
        out["hits"] = hits
    return out


def judge(claims, evidence, powers):
    return {v.claim.id: v for v in Judge(REGIONS, evidence, powers).judge_all(claims)}


def test_a_planted_convergence_in_the_regions_is_supported():
    verdict = judge([claim("amy", "SAD", "convergence", ["amygdala"])], World().evidence(), {})
    (v,) = verdict.values()
    assert v.verdict == SUPPORTED
    assert v.p == pytest.approx(0.002)
    low, high = v.p_interval  # exact binomial interval of a p from 10,000 iterations
    assert low < 0.002 < high and high < 0.003
    assert "the primary test rejects" in v.reason


def test_a_null_with_power_is_evidence_against_and_without_power_inconclusive():
    ifg = claim("ifg", "SAD", "convergence", ["IFG"])
    powered = judge([ifg], World().evidence(), {"ifg": power(mde=3)})["ifg"]
    assert powered.p == pytest.approx(0.3)  # the sub-threshold IFG cluster's p
    assert powered.verdict == AGAINST
    weak = judge([ifg], World().evidence(), {"ifg": power(mde=7)})["ifg"]
    assert weak.verdict == INCONCLUSIVE
    assert "too little power" in weak.reason and "MDE 7" in weak.reason
    never = judge([ifg], World().evidence(), {"ifg": power(mde=None)})["ifg"]
    assert never.verdict == INCONCLUSIVE


def test_holm_across_the_claims_can_turn_a_raw_rejection_into_inconclusive():
    """p = 0.03 rejects alone; beside a second claim at p = 0.3 Holm doubles it to 0.06."""
    world = World(sad_p=0.03)
    amy = claim("amy", "SAD", "convergence", ["amygdala"])
    alone = judge([amy], world.evidence(), {"amy": power(mde=None)})["amy"]
    assert alone.verdict == SUPPORTED and alone.p_adjusted == pytest.approx(0.03)
    ifg = claim("ifg", "SAD", "convergence", ["IFG"])
    both = judge([amy, ifg], world.evidence(), {"amy": power(None), "ifg": power(None)})
    assert both["amy"].p_adjusted == pytest.approx(0.06)
    assert both["amy"].verdict == INCONCLUSIVE
    assert both["ifg"].p_adjusted == pytest.approx(0.3)


def test_an_altered_activity_claim_without_group_contrasts_is_not_testable_as_stated():
    altered = claim("amy", "SAD", "convergence", ["amygdala"], requires="group_contrasts")
    (v,) = judge([altered], World().evidence(), {}).values()
    assert v.verdict == NOT_TESTABLE
    assert "0 of 10 experiments have one" in v.reason
    # ... and says, neutrally, what the data do show.
    assert v.neutral.startswith("foci of SAD's 10 experiments converge in 1 Left Amygdala")
    assert "1 in amygdala" in v.neutral
    # With direction-known contrasts for most experiments the same claim is tested.
    directed = World(kinds="patients>controls").evidence()
    (tested,) = judge([altered], directed, {}).values()
    assert tested.verdict == SUPPORTED


def test_a_directional_claim_without_its_direction_s_analysis_is_not_testable():
    reduced = claim("reduced", "SAD", "convergence", ["IFG"], direction="hypo")
    (v,) = judge([reduced], World().evidence(), {}).values()
    assert v.verdict == NOT_TESTABLE
    assert "no analysis of that direction's contrasts" in v.reason


def _overlap(analysis, p, n_perm=1000, observed=12):
    """The primary test (base-rate null, anatomical mask) has ``p``; the others p = 0.001."""
    base_rate = "thresholded_base_rate"
    return pd.DataFrame(
        [
            (analysis, "anatomical", base_rate, "voxels_in_both", observed, p, n_perm, 4.0),
            (analysis, "anatomical", "thresholded_overlap", "voxels_in_both", observed, 0.001,
             10_000, 1.0),
            (analysis, "anatomical", "roi_ale", "mean_ale", 0.01, 0.001, 1000, 0.005),
            (analysis, "meta", base_rate, "voxels_in_both", 3, 0.001, n_perm, 0.5),
        ],
        columns=["analysis", "mask", "test", "statistic", "observed", "p", "n_perm", "null_mean"],
    )  # fmt: skip


def test_the_mns_claim_is_decided_by_its_one_mask_and_test_never_against():
    """Secondary tests (the non-uniformity nulls, the other masks) are reported and do not
    decide: the claim's mask under the base-rate null does."""
    mns = claim("mns", "SAD", "mns_overlap", mask="anatomical")
    weak = judge([mns], World().evidence(overlap=_overlap("SAD", 0.2)), {})["mns"]
    assert weak.verdict == INCONCLUSIVE  # though the meta mask's p is 0.001
    assert (
        "base-rate null in every mask: anatomical p=0.2, meta p=0.001 (below 0.05 in 1 of 2 masks)"
    ) in weak.evidence
    assert "anatomical moved clusters (are the foci non-uniform?) p=0.001" in weak.evidence
    assert "power is not simulated" in weak.reason
    strong = judge([mns], World().evidence(overlap=_overlap("SAD", 0.004)), {})["mns"]
    assert strong.verdict == SUPPORTED
    assert strong.n_draws == 1000
    assert "(base-rate p=0.004: 4 voxels in database sets drawn like it)" in strong.evidence


def test_a_supported_overlap_needs_a_robust_cluster_in_the_mask():
    robustness = pd.DataFrame(
        [{"analysis": "SAD", "cluster": 1, "dominated": False, "jackknife_survived": 7,
          "jackknife_n": 10, "fragile": True, "fsn": 3, "fsn_benchmark": 10,
          "fsn_robust": False}]
    )  # fmt: skip
    in_mask = pd.DataFrame(
        [{"analysis": "SAD", "mask": "anatomical", "cluster": 1, "voxels_in_mask": 12}]
    )
    evidence = World().evidence(overlap=_overlap("SAD", 0.004), robustness=robustness)
    evidence.overlap_clusters = in_mask
    mns = claim("mns", "SAD", "mns_overlap")
    (v,) = judge([mns], evidence, {}).values()
    assert v.verdict == INCONCLUSIVE
    assert "no cluster in the mask passes the jackknife" in v.reason
    evidence.robustness = robustness.assign(fragile=False, fsn_robust=True)
    (w,) = judge([mns], evidence, {}).values()
    assert w.verdict == SUPPORTED


def test_an_overlap_claim_on_nothing_is_inconclusive_and_outside_holm():
    shared = claim("shared", "conjunction", "mns_overlap")
    overlap = _overlap("SAD_and_BPD", 1.0, n_perm=0, observed=0)
    (v,) = judge([shared], World().evidence(overlap=overlap), {}).values()
    assert v.verdict == INCONCLUSIVE and not v.in_family
    assert "no significant cluster to place in the mask" in v.reason


@pytest.mark.parametrize(
    ("hits", "mde", "expected", "words"),
    [
        (8, 6, SUPPORTED, "8 of 20 experiments report foci in the regions"),
        (8, 9, INCONCLUSIVE, "found < 80 % of the time"),
        (3, 2, INCONCLUSIVE, "only 3 of 20 experiments report foci there"),
    ],
)
def test_inconsistency_needs_reports_no_convergence_and_the_power_to_see_it(
    hits, mde, expected, words
):
    """BPD has no cluster in the IFG; whether that is inconsistency depends on how many
    experiments report foci there and whether their convergence would have been found."""
    world = World()
    # ``hits`` BPD experiments report a focus in the IFG.
    foci = world.results["BPD"].experiments.foci
    foci.loc[: hits - 1, ["x", "y", "z"]] = IFG
    inconsistent = claim("bpd", "BPD", "inconsistent", ["IFG"])
    (v,) = judge([inconsistent], world.evidence(), {"bpd": power(mde, n=20)}).values()
    assert v.verdict == expected
    assert words in v.reason
    assert "experiments with a focus in IFG" in v.evidence


def test_inconsistency_reports_hit_rates_per_region_and_for_all_of_them():
    world = World()
    world.results["BPD"].experiments.foci.loc[:7, ["x", "y", "z"]] = IFG  # 8 of 20 in IFG
    both = claim("bpd", "BPD", "inconsistent", ["IFG", "amygdala"])
    (v,) = judge([both], world.evidence(), {"bpd": power(6, n=20)}).values()
    assert "experiments with a focus in IFG/amygdala (Harvard-Oxford): BPD 20/20" in v.evidence
    assert "in IFG (Harvard-Oxford): BPD 8/20 (40%)" in v.evidence
    assert "in amygdala (Harvard-Oxford): BPD 12/20 (60%)" in v.evidence


def test_a_robust_cluster_in_the_regions_is_evidence_against_inconsistency():
    robustness = pd.DataFrame(
        [{"analysis": "SAD", "cluster": 1, "dominated": False, "jackknife_survived": 10,
          "jackknife_n": 10, "fragile": False, "fsn": 30, "fsn_benchmark": 10}]
    )  # fmt: skip
    claim_ = claim("sad", "SAD", "inconsistent", ["amygdala"])
    (v,) = judge([claim_], World().evidence(robustness=robustness), {"sad": power(3)}).values()
    assert v.verdict == AGAINST
    fragile = robustness.assign(fragile=True, jackknife_survived=8)
    (w,) = judge([claim_], World().evidence(robustness=fragile), {"sad": power(3)}).values()
    assert w.verdict == INCONCLUSIVE and "passes the jackknife" in w.reason


def test_a_supported_convergence_needs_a_cluster_that_passes_the_robustness_checks():
    """The robustness requirement of inconsistency claims holds for convergence too."""
    row = {"analysis": "SAD", "cluster": 1, "dominated": False, "jackknife_survived": 10,
           "jackknife_n": 10, "fragile": False, "fsn": 30, "fsn_benchmark": 10,
           "fsn_robust": True}  # fmt: skip
    amy = claim("amy", "SAD", "convergence", ["amygdala"])
    for change, expected in (({}, SUPPORTED), ({"fsn_robust": False, "fsn": 4}, INCONCLUSIVE)):
        robustness = pd.DataFrame([{**row, **change}])
        (v,) = judge([amy], World().evidence(robustness=robustness), {}).values()
        assert v.verdict == expected
    assert "fail-safe N benchmark" in v.reason


def test_a_subtraction_claim_rests_on_its_clusters_outside_holm():
    diff = claim("diff", "contrast", "convergence", ["amygdala"])
    (v,) = judge([diff], World().evidence(), {}).values()
    assert v.verdict == SUPPORTED and not v.in_family
    assert "1 SAD>BPD Left Amygdala" in v.evidence


def _verdict(verdict, p, n_draws=10_000):
    return Verdict(claim("x", "SAD", "convergence"), "SAD", verdict, "", "", p=p, n_draws=n_draws)


@pytest.mark.parametrize(
    ("main_p", "variant_p", "n_draws", "counts"),
    [
        (0.04, 0.2, 10_000, True),  # both far from 0.05: a real change
        (0.049, 0.052, 10_000, False),  # both within their Monte Carlo intervals of 0.05
        (0.04, 0.06, 1000, False),  # at 1,000 draws 0.04 and 0.06 are not told apart
        (0.01, 0.0501, 10_000, False),  # the variant's p is within its interval of alpha
    ],
)
def test_a_variant_changes_a_verdict_only_beyond_monte_carlo_error(
    main_p, variant_p, n_draws, counts
):
    main_verdict = _verdict(SUPPORTED, main_p, n_draws)
    variant = _verdict(INCONCLUSIVE, variant_p, n_draws)
    assert changed(main_verdict, variant) is counts
    assert not changed(main_verdict, _verdict(SUPPORTED, variant_p, n_draws))


def test_the_certainty_grade_is_computed_from_the_evidence_with_reasons():
    world = World(sad_n=10)
    evidence = world.evidence()
    (v,) = judge([claim("amy", "SAD", "convergence", ["amygdala"])], evidence, {}).values()
    level, reasons = grade(v, evidence)
    # Database extraction for all (risk of bias), 10 < 17 experiments (imprecision), no
    # direction-known contrast (indirectness): three levels down.
    assert level == "very low"
    assert [r.split(" (")[0] for r in reasons] == ["risk of bias", "imprecision", "indirectness"]
    v.flipped_by = ("cdt_0.005",)
    assert grade(v, evidence)[1][-1] == "fragility (-1): changed by cdt_0.005"
    # Direct evidence from enough experiments, typed in by hand: high.
    better = World(sad_n=20, kinds="patients>controls")
    for result in better.results.values():
        if result.experiments is not None:
            result.experiments.experiments["source"] = "manual"
    good_evidence = better.evidence()
    (w,) = judge([claim("amy", "SAD", "convergence", ["amygdala"])], good_evidence, {}).values()
    assert grade(w, good_evidence) == ("high", ())
    untestable = _verdict(NOT_TESTABLE, np.nan, 0)
    assert grade(untestable, good_evidence) == ("not applicable", ())


def test_check_claims_is_the_judge_with_its_options():
    verdicts = check_claims(
        [claim("amy", "SAD", "convergence", ["amygdala"])], REGIONS, World().evidence(), power={}
    )
    assert [v.verdict for v in verdicts] == [SUPPORTED]


@pytest.fixture
def results_folder(tmp_path):
    """The same world, written through the results contract."""
    world = World()
    results = ResultsFolder(tmp_path / "results")
    for result in world.results.values():
        results.save(result)
    save_map(world.maps["SAD", CLUSTER_LOGP], results.analysis(SAD).map(CLUSTER_LOGP))
    save_map(world.maps["BPD", CLUSTER_LOGP], results.analysis(BPD).map(CLUSTER_LOGP))
    write_csv(_overlap("SAD", 0.2), results.overlap_table)
    results.robustness.path.mkdir(parents=True)
    return results


def test_the_claims_command_writes_graded_verdicts_and_exits_zero(results_folder, tmp_path):
    coordinates = tmp_path / "coordinates"
    coordinates.mkdir()
    (coordinates / "claims.toml").write_text(
        'atlas = "harvard_oxford"\n[regions.IFG]\n'
        'harvard_oxford = ["Inferior_Frontal_Gyrus_pars_opercularis"]\n\n'
        '[[claim]]\nid = "x"\nparaphrase = "SAD is in the MNS."\nanalysis = "SAD"\n'
        'test = "mns_overlap"\ndirection = "any"\n\n'
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
        ["--coordinates", str(coordinates), "claims", "--output", str(results_folder.path),
         "--json"],
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.output
    printed = json.loads(outcome.output)
    assert [(c["id"], c["verdict"]) for c in printed] == [
        ("x", INCONCLUSIVE),
        ("y", INCONCLUSIVE),
    ]
    first = printed[0]
    assert first["p"] == 0.2 and first["p_mc_low"] < 0.2 < first["p_mc_high"]
    assert first["p_holm"] == 0.2  # the only claim in the Holm family
    assert first["certainty"] in ("high", "moderate", "low", "very low")
    written = results_folder.read_claims()
    assert written["claims"] == printed
    assert set(written["rules"]) >= {"supported", "evidence against", "inconclusive", "variants"}
    assert {"generated", "settings", "inputs_sha256", "stale"} <= set(written)
    assert results_folder.claims_variants.is_file()
    # The terminal gives the same, in words.
    text = CliRunner().invoke(
        main, ["--coordinates", str(coordinates), "claims", "--output", str(results_folder.path)]
    )
    assert text.exit_code == 0, text.output
    assert "x: INCONCLUSIVE, certainty " in text.output
    assert (
        "primary test: overlap with the anatomical MNS mask, ranked among database sets drawn "
        "like the analysis (base-rate null): p 0.2 (" in text.output
    )
    assert "variants: 0 of 1 change it" in text.output  # the atlas variant


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


def test_every_claim_is_judged_under_every_variant_with_its_primary_test(tmp_path):
    """A variant that loses SAD's amygdala cluster changes the verdict; one that leaves SAD
    as it is keeps it, marked as not rerun; the atlas variant always runs."""
    from mnsmeta.workflows.claims import run_claims

    main_world, weaker = World(), World(sad_p=0.3)
    results = ResultsFolder(tmp_path / "results")
    for result in main_world.results.values():
        results.save(result)
    save_map(main_world.maps["SAD", CLUSTER_LOGP], results.analysis(SAD).map(CLUSTER_LOGP))
    results.robustness.path.mkdir(parents=True)
    dropped = results.robustness.sensitivity_variant("drop")
    dropped.save(weaker.results["SAD"])
    save_map(weaker.maps["SAD", CLUSTER_LOGP], dropped.analysis(SAD).map(CLUSTER_LOGP))
    untouched = results.robustness.sensitivity_variant("bpd_only")
    untouched.save(main_world.results["BPD"])
    amy = claim("amy", "SAD", "convergence", ["amygdala"])
    (verdict,) = run_claims([amy], REGIONS, ANALYSES, results)
    assert verdict.verdict == SUPPORTED
    assert verdict.variants == {
        "atlas_variant": SUPPORTED,
        "bpd_only": f"{SUPPORTED} (not rerun)",
        "drop": f"{INCONCLUSIVE} (changed)",
    }
    assert verdict.flipped_by == ("drop",)
    matrix = pd.read_csv(results.claims_variants).set_index("variant")
    assert matrix.loc["drop", "p"] == pytest.approx(0.3)
    assert bool(matrix.loc["drop", "changed"]) and not bool(matrix.loc["bpd_only", "rerun"])
    # The change costs the verdict a level of certainty (fragility).
    assert any(r.startswith("fragility (-1): changed by drop") for r in verdict.certainty_reasons)


# -- specificity: each healthy set, in the claim's direction, with its power ------------

CONTROLS = Analysis("SAD_controls", "ale", controls="SAD")
VS_CONTROLS = Analysis("SAD_vs_controls", "subtraction", inputs=("SAD", "SAD_controls"))


def _specificity_evidence():
    world = World()
    keys = {"analysis": "SAD_vs_controls", "first": "SAD", "second": "SAD_controls"}
    rows = [
        ("amygdala", "SAD>SAD_controls", 0.4, 0.5, "inconclusive (power 50%)"),
        ("amygdala", "SAD_controls>SAD", 0.01, 0.9, "exceeds"),
        ("MNS anatomical", "SAD>SAD_controls", 0.3, 0.85, "does not exceed (power 85%)"),
    ]
    difference = {"analysis": "SAD_vs_BPD", "first": "SAD", "second": "BPD", "region": "IFG"}
    table = pd.DataFrame(
        [
            {**keys, "region": r, "direction": d, "max_difference": 0.01, "p_fwe": p,
             "k_of_interest": 4, "n_planted": 10, "power": q, "mde": np.nan, "reading": text}
            for r, d, p, q, text in rows
        ]
        + [
            {**difference, "direction": d, "max_difference": 0.01, "p_fwe": 0.5,
             "k_of_interest": 4, "n_planted": 10, "power": q, "mde": np.nan, "reading": text}
            for d, q, text in (("SAD>BPD", 0.3, "inconclusive (power 30%)"),
                               ("BPD>SAD", 0.9, "does not exceed (power 90%)"))
        ]
    )  # fmt: skip
    share = pd.DataFrame(
        [{**keys, "mask": "anatomical", "share_first": 0.073, "share_second": 0.056,
          "difference": 0.017, "p": 0.21, "n_perm": 10_000}]
    )  # fmt: skip
    return Evidence(
        [*ANALYSES, CONTROLS, VS_CONTROLS],
        lambda a: world.results[a.name],
        overlap=pd.concat([_overlap("SAD", 0.2), _overlap("SAD_controls", 0.01, observed=40)]),
        load_map=lambda a, name: world.maps.get((a.name, name)),
        n_iters=N_ITERS,
        specificity=table,
        specificity_overlap=share,
    )


def test_a_convergence_claim_reports_its_specificity_against_each_healthy_set():
    amy = claim("amy", "SAD", "convergence", ["amygdala"])
    (v,) = judge([amy], _specificity_evidence(), {"amy": power(mde=3)}).values()
    assert (
        "specificity (region-wise permutation tests): SAD>SAD_controls (screened "
        "paradigm-matched database controls): amygdala inconclusive (power 50%) (p_fwe=0.4)"
    ) in v.evidence
    assert [(r["region"], r["reading"], r["power"]) for r in v.specificity] == [
        ("amygdala", "inconclusive (power 50%)", 0.5)
    ]
    assert v.as_dict()["specificity"] == v.specificity
    # Reduced activity is asked the other way: the healthy set larger.
    text, rows = specificity(_specificity_evidence(), ["SAD"], ["amygdala"], "hypo")
    assert "SAD_controls>SAD" in text and [r["reading"] for r in rows] == ["exceeds"]


def test_an_excess_from_a_set_with_denser_experiments_is_flagged():
    evidence = _specificity_evidence()
    table = evidence.specificity
    table.loc[1, "density_ratio"] = 4.2  # SAD_controls > SAD in the amygdala: exceeds
    text, rows = specificity(evidence, ["SAD"], ["amygdala"], "hypo")
    assert (
        "amygdala exceeds (p_fwe=0.01), but with 4.2 times the foci per experiment: a denser "
        "set converges more anywhere"
    ) in text
    assert rows[0]["density_ratio"] == 4.2


def test_an_mns_claim_reports_its_overlap_against_the_healthy_set():
    mns = claim("mns", "SAD", "mns_overlap", mask="anatomical")
    (v,) = judge([mns], _specificity_evidence(), {}).values()
    assert "MNS anatomical does not exceed (power 85%)" in v.evidence
    # The healthy set's own overlap test, beside the disorder's (secondary).
    assert "healthy SAD_controls anatomical base-rate 40 voxels p=0.01" in v.evidence
    assert v.p == pytest.approx(0.2)  # the disorder's test still decides
    assert (
        "foci in the anatomical mask SAD 7.3% vs SAD_controls 5.6% (permutation p=0.21)"
    ) in v.evidence


def test_a_null_difference_claim_quotes_its_region_wise_tests_and_their_power():
    ifg = claim("ifg", "contrast", "convergence", ["IFG"])
    (v,) = judge([ifg], _specificity_evidence(), {}).values()
    assert v.verdict == INCONCLUSIVE
    assert v.reason == (
        "no cluster-FWE cluster in the regions; region-wise tests: IFG SAD>BPD inconclusive "
        "(power 30%), IFG BPD>SAD does not exceed (power 90%)"
    )


def test_without_the_specificity_stage_nothing_is_claimed_about_it():
    amy = claim("amy", "SAD", "convergence", ["amygdala"])
    (v,) = judge([amy], World().evidence(), {"amy": power(mde=3)}).values()
    assert "specificity" not in v.evidence and v.specificity == []


def test_the_specificity_stage_writes_differences_power_and_readings(results_folder):
    """On the written world (SAD: 10 experiments at the amygdala; BPD: 20 there too)."""
    from mnsmeta.workflows.specificity import SpecificitySettings, describe, run_specificity

    settings = SpecificitySettings(n_perm=200, replicates=5)
    tables = run_specificity(ANALYSES, REGIONS, results_folder, settings)
    differences = tables["differences"]
    assert set(differences["region"]) == {"amygdala", "IFG"}  # no MNS masks were written
    assert set(differences["direction"]) == {"SAD>BPD", "BPD>SAD"}
    assert (differences["analysis"] == "SAD_vs_BPD").all()
    curves = tables["power"]
    # Curves at 1/6, 1/3 (the effect of interest), 1/2, 2/3 and all of each planted set.
    assert sorted(curves.loc[curves["direction"] == "SAD>BPD", "k"].unique()) == [2, 4, 5, 7, 10]
    assert set(curves["k_of_interest"]) == {4, 7}
    # Each set converges at the amygdala: its effect is planted at its own cluster's peak.
    amygdala = curves[(curves["region"] == "amygdala") & (curves["direction"] == "SAD>BPD")]
    assert (amygdala["target"] == "observed peak (-22, -4, -20)").all()
    for name in ("differences", "power"):
        read = results_folder.specificity.read_table(name)
        assert len(read) == len(tables[name])
    assert results_folder.specificity.provenance.is_file()
    assert "SAD_vs_BPD" in describe(tables) and "p_fwe" in describe(tables)


def test_an_mns_claim_reports_each_cluster_moved_alone_without_deciding_on_it():
    alone = pd.DataFrame(
        [("SAD", "anatomical", "cluster_overlap", "voxels_in_both", 12, 0.003, 10_000, 1)],
        columns=["analysis", "mask", "test", "statistic", "observed", "p", "n_perm", "cluster"],
    )
    overlap = pd.concat([_overlap("SAD", 0.2), alone], ignore_index=True)
    mns = claim("mns", "SAD", "mns_overlap", mask="anatomical")
    (v,) = judge([mns], World().evidence(overlap=overlap), {}).values()
    assert "each cluster moved alone: 1 12 voxels p=0.003" in v.evidence
    assert v.p == pytest.approx(0.2) and v.verdict == INCONCLUSIVE  # the whole map decides
