"""The claims check: one verdict per claim, by the documented rules, exit code 0."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mnsmeta.analyses import Analysis
from mnsmeta.brain import brain_mask_img
from mnsmeta.claims import Claim
from mnsmeta.cli import main
from mnsmeta.verdicts import NOT_SUPPORTED, NOT_TESTABLE, SUPPORTED, check_claims

ANALYSES = [
    Analysis("SAD", "ale", ("SAD",)),
    Analysis("BPD", "ale", ("BPD",)),
    Analysis("SAD_and_BPD", "conjunction", inputs=("SAD", "BPD")),
]
REGIONS = {
    "amygdala": ["Amygdala"],
    "IFG": ["Inferior_Frontal_Gyrus_pars_opercularis", "Inferior_Frontal_Gyrus_pars_triangularis"],
}
CLUSTER_COLUMNS = "cluster,size_mm3,peak_x,peak_y,peak_z,Harvard-Oxford peak,n_experiments"


def _labels(folder, name, peak_mm=None):
    mask = brain_mask_img()
    data = np.zeros(mask.shape, dtype=np.int16)
    if peak_mm is not None:
        i, j, k = np.rint(np.linalg.inv(mask.affine) @ [*peak_mm, 1])[:3].astype(int)
        data[i - 1 : i + 2, j - 1 : j + 2, k - 1 : k + 2] = 1
    nib.Nifti1Image(data, mask.affine).to_filename(folder / name)


@pytest.fixture
def results(tmp_path):
    """SAD: one left-amygdala cluster, fragile, in the MNS beyond chance. BPD: no cluster."""
    root = tmp_path / "results"
    for name in ("SAD", "BPD", "SAD_and_BPD"):
        (root / name).mkdir(parents=True)
    (root / "SAD" / "clusters.csv").write_text(
        CLUSTER_COLUMNS + "\n1,216,-22,-4,-20,Left_Amygdala,6\n"
    )
    _labels(root / "SAD", "labels_level-cluster_corr-FWE_thresh.nii.gz", (-22, -4, -20))
    for name in ("BPD", "SAD_and_BPD"):
        (root / name / "clusters.csv").write_text(CLUSTER_COLUMNS + "\n")
    _labels(root / "BPD", "labels_level-cluster_corr-FWE_thresh.nii.gz")
    _labels(root / "SAD_and_BPD", "labels_desc-conjunction_thresh.nii.gz")
    directions = ["hyper"] * 5 + ["hypo"] * 2 + ["mixed"] * 3
    for name in ("SAD", "BPD"):
        pd.DataFrame(
            {"experiment_id": [f"{name}{i}" for i in range(10)], "direction": directions}
        ).to_csv(root / name / "experiments.csv", index=False)
    rows = []
    for analysis, p in (("SAD", 0.01), ("BPD", 0.5)):
        for mask in ("meta", "anatomical"):
            rows += [
                (analysis, mask, "roi_ale", "mean_ale", 0.01, p),
                (analysis, mask, "roi_ale_gm", "mean_ale", 0.01, p),
                (analysis, mask, "thresholded_overlap", "voxels_in_both", 12, p),
            ]
    pd.DataFrame(rows, columns=["analysis", "mask", "test", "statistic", "observed", "p"]).to_csv(
        root / "overlap.csv", index=False
    )
    (root / "robustness").mkdir()
    pd.DataFrame(
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
    ).to_csv(root / "robustness" / "clusters.csv", index=False)
    return root


def claim(id_, analysis, test, regions=(), direction="any"):
    return Claim(id_, f"paraphrase of {id_}", analysis, test, tuple(regions), direction)


CASES = [
    (claim("amygdala", "SAD", "convergence", ["amygdala"]), SUPPORTED, "jackknife 5/10"),
    (claim("ifg", "SAD", "convergence", ["IFG"]), NOT_SUPPORTED, "no cluster in IFG"),
    (claim("reduced", "SAD", "convergence", ["IFG"], "hypo"), NOT_TESTABLE, "2 experiments"),
    (claim("sad_mns", "SAD", "mns_overlap"), SUPPORTED, "meta: ROI p=0.01"),
    (claim("bpd_mns", "BPD", "mns_overlap"), NOT_SUPPORTED, "p=0.5"),
    (claim("fragile", "SAD", "inconsistent", ["amygdala"]), SUPPORTED, "dominated"),
    (claim("absent", "BPD", "inconsistent", ["IFG"]), SUPPORTED, "no significant cluster"),
    (claim("both", "conjunction", "convergence", ["amygdala"]), NOT_SUPPORTED, "SAD n=10"),
]


@pytest.mark.parametrize(("item", "verdict", "evidence"), CASES, ids=[c[0].id for c in CASES])
def test_each_claim_gets_the_verdict_its_rule_gives(results, item, verdict, evidence):
    (result,) = check_claims([item], REGIONS, ANALYSES, results)
    assert result.verdict == verdict
    assert evidence in result.evidence
    assert "\n" not in result.evidence


def test_the_claims_command_prints_json_and_exits_zero(results, tmp_path):
    coordinates = tmp_path / "coordinates"
    coordinates.mkdir()
    (coordinates / "claims.toml").write_text(
        '[regions]\nIFG = ["Inferior_Frontal_Gyrus_pars_opercularis"]\n\n'
        '[[claim]]\nid = "x"\nparaphrase = "SAD converges in IFG."\nanalysis = "SAD"\n'
        'test = "convergence"\nregions = ["IFG"]\ndirection = "any"\n'
    )
    (coordinates / "analyses.toml").write_text(
        '[[analysis]]\nname = "SAD"\nkind = "ale"\ngroups = ["SAD"]\n'
    )
    outcome = CliRunner().invoke(
        main, ["--coordinates", str(coordinates), "claims", "--output", str(results), "--json"]
    )
    assert outcome.exit_code == 0, outcome.output
    printed = json.loads(outcome.output)
    assert [(c["id"], c["verdict"]) for c in printed] == [("x", NOT_SUPPORTED)]
    written = json.loads((results / "claims.json").read_text())
    assert written["claims"] == printed


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
    assert "clusters.csv: missing: run `mnsmeta run` first" in outcome.output
