"""The ALE pipeline: NiMARE's values, clusters inside the map, same seed same bytes, no half
results."""

from __future__ import annotations

import hashlib
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from conftest import MANUAL_HEADER, RECORD_HEADER, record_line
from mnsmeta import ale, pipeline
from mnsmeta.analyses import Analysis, read_analyses, select
from mnsmeta.brain import brain_mask_img
from mnsmeta.errors import MnsmetaInputError
from mnsmeta.pipeline import RunSettings, run_analyses
from mnsmeta.records import load_curation

N_ITERS = 30  # enough for a null; tests check mechanics, not power


def synthetic_coordinates(root, n_experiments=12, seed=0):
    """Typed-in experiments: each has a focus near the left amygdala plus random foci."""
    rng = np.random.default_rng(seed)
    mask = brain_mask_img()
    brain_voxels_mm = nib.affines.apply_affine(mask.affine, np.argwhere(mask.get_fdata() > 0))
    records, foci = [], []
    for i in range(n_experiments):
        study = f"synthetic{i:02d}"
        records.append(
            record_line(study, n=("", "", 20 + i), source_db="manual", n_source="simulated")
        )
        planted = np.array([-22.0, -4.0, -18.0]) + rng.normal(0, 2, 3)
        spread = brain_voxels_mm[rng.choice(len(brain_voxels_mm), 4)]
        for x, y, z in np.vstack([planted, spread]).round(1):
            foci.append(f"{study}\tc1\tMNI\tTable 1\t{x}\t{y}\t{z}\n")
    (root / "records").mkdir(parents=True, exist_ok=True)
    (root / "manual").mkdir(exist_ok=True)
    (root / "records" / "synthetic.tsv").write_text(RECORD_HEADER + "".join(records))
    (root / "manual" / "synthetic.tsv").write_text(MANUAL_HEADER + "".join(foci))
    return load_curation(root)


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    curation = synthetic_coordinates(root / "coordinates")
    assert curation.problems == []
    results = root / "results"
    settings = RunSettings(n_iters=N_ITERS, seed=3, progress=False)
    summary = run_analyses(
        [Analysis("SAD", "ale", ("SAD",))], curation, root / "coordinates", results, settings
    )
    return curation, root, results, summary


def test_ale_map_equals_nimare_on_the_exported_foci(synthetic_run):
    from nimare.io import convert_sleuth_to_dataset
    from nimare.meta.cbma.ale import ALE

    _, _, results, _ = synthetic_run
    ours = nib.load(results / "SAD" / "stat.nii.gz").get_fdata()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = convert_sleuth_to_dataset(str(results / "SAD" / "foci.txt"), target="mni152_2mm")
        reference = ALE().fit(dataset).get_map("stat", return_type="image").get_fdata()
    # Same foci and sample sizes through GingerALE's text format: equal to float32 precision.
    assert np.abs(ours - reference).max() <= 1e-6 * reference.max()
    assert reference.max() > 0.01


def test_outputs_are_complete(synthetic_run):
    _, _, results, summary = synthetic_run
    folder = results / "SAD"
    for name in [
        "stat.nii.gz",
        "z.nii.gz",
        "p.nii.gz",
        "z_level-cluster_corr-FWE_thresh.nii.gz",
        "mask_level-cluster_corr-FWE_thresh.nii.gz",
        "z_level-voxel_corr-FWE_thresh.nii.gz",
        "clusters.csv",
        "experiments.csv",
        "foci.txt",
        "provenance.json",
        "z_level-cluster_corr-FWE_thresh_glass.png",
        "z_level-cluster_corr-FWE_thresh_slices.png",
    ]:
        assert (folder / name).is_file(), name
    assert (results / "summary.csv").is_file()
    assert (results / "provenance.json").is_file()
    image = nib.load(folder / "z.nii.gz")
    assert image.shape == (91, 109, 91)
    np.testing.assert_array_equal(image.affine, brain_mask_img().affine)  # MNI152 2 mm
    assert np.abs(np.diag(image.affine)[:3]).tolist() == [2, 2, 2]
    assert summary.loc[0, "experiments"] == 12
    assert "low power" in summary.loc[0, "warnings"]  # 12 < 17


def test_planted_convergence_is_found_and_labelled(synthetic_run):
    _, _, results, _ = synthetic_run
    clusters = pd.read_csv(results / "SAD" / "clusters.csv")
    assert len(clusters) >= 1
    top = clusters.iloc[0]
    assert "Amygdala" in top["Harvard-Oxford peak"] or "Amygdala" in top["Harvard-Oxford cluster"]
    assert top["n_experiments"] >= 8


def test_cluster_peaks_lie_inside_the_thresholded_map(synthetic_run):
    _, _, results, _ = synthetic_run
    folder = results / "SAD"
    thresholded = nib.load(folder / "z_level-cluster_corr-FWE_thresh.nii.gz")
    labels = nib.load(folder / "labels_level-cluster_corr-FWE_thresh.nii.gz").get_fdata()
    data = thresholded.get_fdata()
    inverse = np.linalg.inv(thresholded.affine)
    for row in pd.read_csv(folder / "clusters.csv").itertuples():
        i, j, k = np.rint(inverse @ [row.peak_x, row.peak_y, row.peak_z, 1])[:3].astype(int)
        assert data[i, j, k] > 0
        assert labels[i, j, k] == row.cluster
        assert (labels == row.cluster).sum() == row.size_voxels


def digest(folder):
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.iterdir())
        if path.suffix in (".gz", ".csv", ".txt", ".png")
    }


def test_same_seed_gives_identical_bytes(synthetic_run, tmp_path):
    curation, root, results, _ = synthetic_run
    again = tmp_path / "again"
    settings = RunSettings(n_iters=N_ITERS, seed=3, progress=False)
    run_analyses(
        [Analysis("SAD", "ale", ("SAD",))], curation, root / "coordinates", again, settings
    )
    assert digest(again / "SAD") == digest(results / "SAD")


def test_interrupted_run_leaves_earlier_results_untouched(synthetic_run, tmp_path, monkeypatch):
    curation, root, results, _ = synthetic_run
    before = digest(results / "SAD")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "plot_map", interrupted)
    settings = RunSettings(n_iters=N_ITERS, seed=99, progress=False)
    with pytest.raises(KeyboardInterrupt):
        run_analyses(
            [Analysis("SAD", "ale", ("SAD",))], curation, root / "coordinates", results, settings
        )
    assert digest(results / "SAD") == before
    assert [p.name for p in results.iterdir() if p.name.startswith(".")] == []


def test_conjunction_is_the_minimum_where_both_survive():
    first = np.array([0.0, 3.0, 4.0, 5.0], dtype=np.float32)
    second = np.array([2.0, 0.0, 6.0, 3.5], dtype=np.float32)
    np.testing.assert_array_equal(ale.conjunction_map(first, second), [0, 0, 4, 3.5])


def test_analysis_seeds_are_stable_and_distinct():
    assert ale.analysis_seed(0, "SAD") == ale.analysis_seed(0, "SAD")
    assert ale.analysis_seed(0, "SAD") != ale.analysis_seed(0, "BPD")
    assert ale.analysis_seed(0, "SAD") != ale.analysis_seed(1, "SAD")


def test_default_analyses_file_and_dependency_selection(tmp_path):
    from conftest import REPO

    analyses = read_analyses(REPO / "coordinates" / "analyses.toml")
    names = [a.name for a in analyses]
    assert names == ["SAD", "BPD", "SAD_BPD_pooled", "SAD_vs_BPD", "SAD_and_BPD", "MNS"]
    assert [a.name for a in select(analyses, ["SAD_and_BPD"])] == ["SAD", "BPD", "SAD_and_BPD"]
    with pytest.raises(MnsmetaInputError, match="unknown analysis OCD"):
        select(analyses, ["OCD"])
    bad = tmp_path / "analyses.toml"
    bad.write_text('[[analysis]]\nname = "x"\nkind = "conjunction"\ninputs = ["SAD", "BPD"]\n')
    with pytest.raises(MnsmetaInputError, match=r"analysis 1 \(x\): inputs"):
        read_analyses(bad)


def test_real_sad_analysis_converges_in_the_amygdala(tmp_path):
    """Integration on the curated SAD set from the databases (few iterations)."""
    from conftest import REPO

    curation = load_curation(REPO / "coordinates")
    settings = RunSettings(n_iters=N_ITERS, seed=0, jobs=1, progress=False)
    summary = run_analyses(
        [Analysis("SAD", "ale", ("SAD",))], curation, REPO / "coordinates", tmp_path, settings
    )
    assert summary.loc[0, "experiments"] == 31
    clusters = pd.read_csv(tmp_path / "SAD" / "clusters.csv")
    assert clusters.loc[0, "Harvard-Oxford peak"] == "Left_Amygdala"
    assert clusters["Harvard-Oxford peak"].str.contains("Amygdala").sum() >= 2
    # The reruns (overlap, robustness) read foci.txt back with every row the Monte Carlo
    # null used, repeated peaks of pooled contrasts included.
    from mnsmeta.robustness import Experiments
    from mnsmeta.sleuth import read_sleuth

    back = Experiments.from_sleuth(read_sleuth(tmp_path / "SAD" / "foci.txt", [], True))
    assert back.counts.sum() == summary.loc[0, "foci"] == 806
    assert len(back.ids) == 31


def test_overlap_tables_and_figures_for_a_run(synthetic_run):
    from mnsmeta.masks import anatomical_mask
    from mnsmeta.overlap_report import OverlapSettings, run_overlap

    _, _, results, _ = synthetic_run
    masks = {"anatomical": anatomical_mask()}
    overlap = run_overlap(
        [Analysis("SAD", "ale", ("SAD",))],
        masks,
        results,
        OverlapSettings(n_perm=9, seed=0, progress=False),
    )
    assert (results / "overlap.csv").is_file()
    assert (results / "overlap" / "SAD_masks.png").is_file()
    assert (results / "masks" / "mns_anatomical.nii.gz").is_file()
    assert (results / "masks" / "mns_anatomical.json").is_file()
    roi = overlap.query("test == 'roi_ale' and statistic == 'mean_ale'").iloc[0]
    assert roi["n_perm"] == 9
    assert 0.1 <= roi["p"] <= 1.0  # p is at least 1 / (1 + n)
    stats = set(overlap.query("test == 'thresholded_overlap'")["statistic"])
    assert {"voxels_in_both", "fraction_inside", "enrichment", "dice", "peaks_inside"} <= stats


def test_robustness_tables_for_a_run(synthetic_run):
    from mnsmeta.review import ReviewSettings, run_review

    curation, root, results, summary = synthetic_run
    settings = ReviewSettings(n_iters=40, seed=0, sensitivity=False, progress=False)
    tables = run_review(
        [Analysis("SAD", "ale", ("SAD",))], curation, root / "coordinates", results, settings
    )
    folder = results / "robustness"
    for name in ("contributions", "jackknife", "failsafe", "failsafe_levels", "clusters"):
        assert (folder / f"{name}.csv").is_file(), name
    assert (folder / "provenance.json").is_file()
    assert not list(results.glob(".robustness*")), "staging folder left behind"
    clusters = pd.read_csv(folder / "clusters.csv")
    assert len(clusters) == summary.loc[0, "clusters"] >= 1
    assert (clusters["jackknife_n"] == 12).all()
    assert clusters["jackknife_survived"].between(0, 12).all()
    assert set(tables["failsafe"]["benchmark"]) == {12}
    shares = tables["contributions"].groupby("cluster")["share"].sum()
    np.testing.assert_allclose(shares, 1.0, rtol=1e-9)
