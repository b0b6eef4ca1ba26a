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
from mnsmeta.curation import controls
from mnsmeta.curation.analyses import Analysis, read_analyses, select
from mnsmeta.curation.records import load_curation
from mnsmeta.data.space import brain_mask_img
from mnsmeta.errors import MnsmetaInputError
from mnsmeta.meta_analysis import ale
from mnsmeta.workflows import run
from mnsmeta.workflows.results import ResultsFolder
from mnsmeta.workflows.run import run_analyses
from mnsmeta.workflows.settings import Settings

SAD = Analysis("SAD", "ale", ("SAD",))
BPD = Analysis("BPD", "ale", ("BPD",))
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
    results = ResultsFolder(root / "results")
    settings = Settings(n_iters=N_ITERS, seed=3, progress=False)
    summary, _ = run_analyses([SAD], curation, root / "coordinates", results, settings)
    return curation, root, results, summary


def test_ale_map_equals_nimare_on_the_exported_foci(synthetic_run):
    from nimare.io import convert_sleuth_to_dataset
    from nimare.meta.cbma.ale import ALE

    _, _, results, _ = synthetic_run
    folder = results.analysis(SAD)
    ours = nib.load(folder.map("stat")).get_fdata()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = convert_sleuth_to_dataset(str(folder.sleuth), target="mni152_2mm")
        reference = ALE().fit(dataset).get_map("stat", return_type="image").get_fdata()
    # Same foci and sample sizes through GingerALE's text format: equal to float32 precision.
    assert np.abs(ours - reference).max() <= 1e-6 * reference.max()
    assert reference.max() > 0.01
    # The export holds the experiments and nothing else (no comment read as an experiment).
    assert len(dataset.ids) == 12


def test_outputs_are_complete(synthetic_run):
    _, _, results, summary = synthetic_run
    folder = results.analysis(SAD)
    thresholded = folder.thresholded()
    for path in [
        folder.map("stat"),
        folder.map("z"),
        folder.map("p"),
        thresholded.z,
        thresholded.mask,
        thresholded.labels,
        thresholded.glass,
        thresholded.slices,
        folder.voxel_thresholded,
        folder.clusters,
        folder.peaks,
        folder.experiments,
        folder.foci,
        folder.sleuth,
        folder.provenance,
    ]:
        assert path.is_file(), path.name
    assert results.summary.is_file()
    assert results.provenance.is_file()
    image = nib.load(folder.map("z"))
    assert image.shape == (91, 109, 91)
    np.testing.assert_array_equal(image.affine, brain_mask_img().affine)  # MNI152 2 mm
    assert np.abs(np.diag(image.affine)[:3]).tolist() == [2, 2, 2]
    assert summary.loc[0, "experiments"] == 12
    assert "low power" in summary.loc[0, "warnings"]  # 12 < 17


def test_the_foci_read_back_are_the_foci_used(synthetic_run):
    curation, _, results, _ = synthetic_run
    from mnsmeta.curation.experiments import build_experiments

    used = build_experiments(curation, "SAD")
    back = results.analysis(SAD).read_experiments()
    assert back.ids == used.ids
    np.testing.assert_array_equal(back.xyz, used.xyz)  # the same floats, bit for bit
    np.testing.assert_array_equal(back.sample_sizes, used.sample_sizes)
    np.testing.assert_array_equal(back.counts, used.counts)


def test_planted_convergence_is_found_and_labelled(synthetic_run):
    _, _, results, _ = synthetic_run
    clusters = results.analysis(SAD).read_clusters()
    assert len(clusters) >= 1
    top = clusters.iloc[0]
    assert "Amygdala" in top["Harvard-Oxford peak"] or "Amygdala" in top["Harvard-Oxford cluster"]
    assert top["n_experiments"] >= 8


def test_cluster_peaks_lie_inside_the_thresholded_map(synthetic_run):
    _, _, results, _ = synthetic_run
    folder = results.analysis(SAD)
    thresholded = nib.load(folder.thresholded().z)
    labels = folder.read_labels()
    data = thresholded.get_fdata()
    inverse = np.linalg.inv(thresholded.affine)
    for row in folder.read_clusters().itertuples():
        i, j, k = np.rint(inverse @ [row.peak_x, row.peak_y, row.peak_z, 1])[:3].astype(int)
        assert data[i, j, k] > 0
        assert labels[i, j, k] == row.cluster
        assert (labels == row.cluster).sum() == row.size_voxels


def digest(folder):
    """Every file's checksum but the provenance's (it records times)."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.path.iterdir())
        if path != folder.provenance
    }


def test_same_seed_gives_identical_bytes(synthetic_run, tmp_path):
    curation, root, results, _ = synthetic_run
    again = ResultsFolder(tmp_path / "again")
    settings = Settings(n_iters=N_ITERS, seed=3, progress=False)
    run_analyses([SAD], curation, root / "coordinates", again, settings)
    assert digest(again.analysis(SAD)) == digest(results.analysis(SAD))


def test_interrupted_run_leaves_earlier_results_untouched(synthetic_run, tmp_path, monkeypatch):
    curation, root, results, _ = synthetic_run
    before = digest(results.analysis(SAD))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "plot_map", interrupted)
    settings = Settings(n_iters=N_ITERS, seed=99, progress=False)
    with pytest.raises(KeyboardInterrupt):
        run_analyses([SAD], curation, root / "coordinates", results, settings)
    assert digest(results.analysis(SAD)) == before
    assert [p.name for p in results.path.iterdir() if p.name.startswith(".")] == []


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
    assert names == [
        "SAD",
        "BPD",
        "SAD_BPD_pooled",
        "SAD_vs_BPD",
        "SAD_and_BPD",
        "MNS",
        "MNS_observation",
        "MNS_execution",
        "MNS_expert",
        "SAD_controls",
        "SAD_vs_controls",
        "BPD_controls",
        "BPD_vs_controls",
        "SAD_reference",
        "SAD_vs_reference",
        "BPD_reference",
        "BPD_vs_reference",
        "SAD_patients_gt_controls",
        "SAD_patients_lt_controls",
        "BPD_patients_gt_controls",
        "BPD_patients_lt_controls",
    ]
    directional = {a.name: a.direction for a in analyses if a.contrasts}
    assert set(directional.values()) == {"hyper", "hypo"}
    assert [a.name for a in select(analyses, ["SAD_and_BPD"])] == ["SAD", "BPD", "SAD_and_BPD"]
    with pytest.raises(MnsmetaInputError, match="unknown analysis OCD"):
        select(analyses, ["OCD"])
    bad = tmp_path / "analyses.toml"
    bad.write_text('[[analysis]]\nname = "x"\nkind = "conjunction"\ninputs = ["SAD", "BPD"]\n')
    with pytest.raises(MnsmetaInputError, match=r"analysis 1 \(x\): inputs"):
        read_analyses(bad)


def test_real_bpd_analysis_converges_in_the_amygdala(tmp_path, project_curation):
    """Integration on the curated BPD set from the databases (few iterations)."""
    from conftest import REPO

    settings = Settings(n_iters=N_ITERS, seed=0, jobs=1, progress=False)
    results = ResultsFolder(tmp_path)
    summary, outputs = run_analyses(
        [BPD], project_curation, REPO / "coordinates", results, settings
    )
    # 21 primary studies, of which 5 share samples: 18 experiments
    assert summary.loc[0, "experiments"] == 18
    clusters = results.analysis(BPD).read_clusters()
    assert clusters["Harvard-Oxford peak"].str.contains("Amygdala").sum() >= 1
    # The reruns (overlap, robustness) read the foci back with every row the Monte Carlo
    # null used: 867 stored, less 26 of tables stored twice, 10 of 19651401's near copy and
    # 49 repeated within an experiment (a shared sample's records count as one).
    back = results.load(BPD).experiments
    assert back.counts.sum() == summary.loc[0, "foci"] == 867 - 26 - 10 - 49
    assert len(back.ids) == 18
    assert "19042093+19176280" in back.ids
    np.testing.assert_array_equal(back.ijk(), outputs["BPD"].experiments.ijk())


def test_overlap_tables_and_figures_for_a_run(synthetic_run):
    from mnsmeta.inference.masks import anatomical_mask
    from mnsmeta.workflows.overlap import run_overlap
    from mnsmeta.workflows.settings import Settings

    _, _, results, _ = synthetic_run
    masks = {"anatomical": anatomical_mask()}
    overlap = run_overlap([SAD], masks, results, Settings(n_perm=9, seed=0, progress=False))
    assert results.overlap_table.is_file()
    assert results.overlap.figure("SAD").is_file()
    assert results.masks.image("anatomical").is_file()
    assert results.masks.sidecar("anatomical").is_file()
    roi = overlap.query("test == 'roi_ale' and statistic == 'mean_ale'").iloc[0]
    assert roi["n_perm"] == 9
    assert 0.1 <= roi["p"] <= 1.0  # p is at least 1 / (1 + n)
    stats = set(overlap.query("test == 'thresholded_overlap'")["statistic"])
    assert {"voxels_in_both", "fraction_inside", "enrichment", "dice", "peaks_inside"} <= stats
    # The base-rate test: 9 database sets drawn like SAD, the whole mask and its parts.
    base_rate = overlap[overlap["test"] == "thresholded_base_rate"]
    assert set(base_rate["part"]) == {"", "IFG_opercularis_vPM", "rostral_IPL", "other"}
    assert (base_rate["n_perm"] == 9).all() and base_rate["p"].between(0.1, 1).all()
    roi = overlap.query("test == 'roi_ale_base_rate' and statistic == 'mean_ale' and part == ''")
    assert len(roi) == 1 and "more than typical fMRI foci" in roi["note"].iloc[0]
    assert results.masks.agreement.is_file() and results.masks.figure.is_file()


def test_robustness_tables_for_a_run(synthetic_run):
    from mnsmeta.workflows.robustness import run_review
    from mnsmeta.workflows.settings import Settings

    curation, root, results, summary = synthetic_run
    settings = Settings(n_iters=40, seed=0, sensitivity=False, progress=False)
    tables = run_review([SAD], curation, root / "coordinates", results, settings)
    folder = results.robustness
    for name in folder.TABLES:
        assert folder.table(name).is_file(), name
    assert folder.provenance.is_file()
    assert not list(results.path.glob(".robustness*")), "staging folder left behind"
    clusters = folder.read_table("clusters")
    assert len(clusters) == summary.loc[0, "clusters"] >= 1
    assert (clusters["jackknife_n"] == 12).all()
    assert clusters["jackknife_survived"].between(0, 12).all()
    assert set(tables["failsafe"]["benchmark"]) == {12}
    shares = tables["contributions"].groupby("cluster")["share"].sum()
    np.testing.assert_allclose(shares, 1.0, rtol=1e-9)


def test_a_user_mask_keeps_its_place_in_the_figure_and_the_sensitivity_table(synthetic_run):
    """A mask that is neither the meta-analytic nor the anatomical one is drawn in the overlap
    figure and carried into every sensitivity row (it used to break both)."""
    from mnsmeta.inference.masks import Mask, anatomical_mask
    from mnsmeta.inference.sensitivity import p_columns
    from mnsmeta.workflows.masks import mask_colours
    from mnsmeta.workflows.overlap import run_overlap
    from mnsmeta.workflows.robustness import run_review
    from mnsmeta.workflows.settings import Settings

    curation, root, results, _ = synthetic_run
    brain = np.asarray(brain_mask_img().dataobj) > 0
    left = brain.copy()
    left[45:] = False  # the left hemisphere (x < 0)
    masks = {
        "anatomical": anatomical_mask(),
        "user": Mask("user", left, {"kind": "user"}),
        "left_half": Mask("left_half", left, {"kind": "user"}),
    }
    assert len(set(mask_colours(masks).values())) == 3
    overlap = run_overlap([SAD], masks, results, Settings(n_perm=9, progress=False))
    assert set(overlap["mask"]) == set(masks)
    assert results.overlap.figure("SAD").is_file()
    settings = Settings(n_iters=20, n_perm=20, seed=0, progress=False)
    tables = run_review([SAD], curation, root / "coordinates", results, settings)
    sensitivity = tables["sensitivity"]
    assert set(p_columns(masks)) <= set(sensitivity.columns)
    main = sensitivity[sensitivity["variant"] == "main"].iloc[0]
    assert 0 < main["roi_p_left_half"] <= 1
    assert "cdt_0.005" in set(sensitivity["variant"])


def test_directional_analyses_run_where_contrasts_are_curated_and_are_noted_elsewhere(tmp_path):
    """Half the synthetic studies' contrast is curated as patients < controls: that
    analysis runs (underpowered, and says so); the patients > controls one has no data,
    gets a summary row saying so, and no folder; the study-level analysis is unchanged."""
    from mnsmeta.curation.contrasts import CONTRAST_COLUMNS, CONTRAST_OPTIONAL

    root = tmp_path / "coordinates"
    synthetic_coordinates(root)
    (root / "contrasts").mkdir()
    lines = ["\t".join(CONTRAST_COLUMNS + CONTRAST_OPTIONAL)]
    lines += [f"synthetic{i:02d}\tSAD\tc1\tpatients<controls\t\t\t\tTable 1\t" for i in range(6)]
    (root / "contrasts" / "synthetic.tsv").write_text("\n".join(lines) + "\n")
    curation = load_curation(root)
    assert curation.problems == []
    less = Analysis("SAD_less", "ale", ("SAD",), contrasts=("patients<controls",))
    greater = Analysis("SAD_greater", "ale", ("SAD",), contrasts=("patients>controls",))
    results = ResultsFolder(tmp_path / "results")
    results.analysis(greater).path.mkdir(parents=True)  # a stale folder of an earlier run
    settings = Settings(n_iters=N_ITERS, seed=3, progress=False)
    summary, outputs = run_analyses([SAD, less, greater], curation, root, results, settings)
    summary = summary.set_index("analysis")
    assert summary.loc["SAD", "experiments"] == 12
    assert summary.loc["SAD_less", "experiments"] == 6
    assert "6 experiments < 17: low power" in summary.loc["SAD_less", "warnings"]
    assert summary.loc["SAD_greater", "experiments"] == 0
    assert summary.loc["SAD_greater", "note"].startswith("not computed: no included experiment")
    assert set(outputs) == {"SAD", "SAD_less"}
    assert results.computed(less) and not results.computed(greater)
    kinds = results.analysis(less).read_experiments().experiments["kinds"]
    assert set(kinds) == {"patients<controls"}


def test_a_partial_rerun_keeps_the_other_analyses_in_summary_and_provenance(tmp_path):
    curation = synthetic_coordinates(tmp_path / "coordinates")
    first, second = Analysis("first", "ale", ("SAD",)), Analysis("second", "ale", ("SAD",))
    results = ResultsFolder(tmp_path / "results")
    settings = Settings(n_iters=N_ITERS, seed=0, progress=False)
    run_analyses([first, second], curation, tmp_path / "coordinates", results, settings)
    before = results.read_provenance()["runs"]
    # `mnsmeta run --analyses second`, later, with other settings
    rerun = Settings(n_iters=N_ITERS + 1, seed=1, progress=False)
    run_analyses([second], curation, tmp_path / "coordinates", results, rerun)
    summary = results.read_summary()
    assert summary["analysis"].tolist() == ["first", "second"]
    provenance = results.read_provenance()
    assert provenance["analyses"] == ["first", "second"]
    assert provenance["runs"]["first"] == before["first"]
    assert provenance["runs"]["second"]["settings"]["seed"] == 1
    # an analysis whose folder is gone is not kept
    results.discard(results.analysis(first))
    run_analyses([second], curation, tmp_path / "coordinates", results, rerun)
    assert results.read_summary()["analysis"].tolist() == ["second"]


def test_later_stages_that_predate_a_rerun_are_reported_stale(tmp_path):
    from mnsmeta.workflows.results import write_json

    curation = synthetic_coordinates(tmp_path / "coordinates")
    results = ResultsFolder(tmp_path / "results")
    settings = Settings(n_iters=N_ITERS, seed=0, progress=False)
    assert results.path.mkdir(parents=True) is None and results.stale() == []
    results.overlap.path.mkdir()
    # overlap tests of SAD started long ago
    write_json(
        results.overlap.provenance, {"analyses": ["SAD"], "started": "2000-01-01T00:00:00+00:00"}
    )
    run_analyses([SAD], curation, tmp_path / "coordinates", results, settings)
    assert results.stale() == ["the overlap tests predate the rerun of SAD: run `mnsmeta overlap`"]
    from mnsmeta.report.render import render_report

    assert "Out of date." in render_report(results)


def test_an_interrupted_overlap_with_a_new_mask_leaves_the_old_mask_and_its_p_values(
    synthetic_run, monkeypatch
):
    from mnsmeta.inference.masks import Mask, anatomical_mask
    from mnsmeta.workflows import overlap as overlap_workflow

    _, _, results, _ = synthetic_run
    settings = Settings(n_perm=9, seed=0, progress=False)
    overlap_workflow.run_overlap([SAD], {"anatomical": anatomical_mask()}, results, settings)
    before = results.read_overlap()
    sidecars = [p.name for p in results.masks.sidecars()]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(overlap_workflow, "thresholded_overlap_rows", interrupted)
    new = Mask("user", anatomical_mask().data.copy(), {"kind": "user"})
    with pytest.raises(KeyboardInterrupt):
        overlap_workflow.run_overlap([SAD], {"user": new}, results, settings)
    assert [p.name for p in results.masks.sidecars()] == sidecars  # no new mask written
    assert results.read_overlap().equals(before)
    assert not list(results.path.glob(".*partial*"))  # no staging folder left behind


def test_a_group_declared_by_its_foci_file_runs_beside_the_curated_ones(tmp_path):
    """analyses.toml can name a foci file instead of groups: a PTSD set, a control set."""
    from conftest import sleuth_text

    root = tmp_path / "coordinates"
    curation = synthetic_coordinates(root)
    (root / "ptsd.txt").write_text(sleuth_text(14, seed=3, space="Talairach"))
    (root / "analyses.toml").write_text(
        '[[analysis]]\nname = "SAD"\nkind = "ale"\ngroups = ["SAD"]\n\n'
        '[[analysis]]\nname = "PTSD"\nkind = "ale"\nfoci = "ptsd.txt"\n\n'
        '[[analysis]]\nname = "SAD_vs_PTSD"\nkind = "subtraction"\ninputs = ["SAD", "PTSD"]\n'
    )
    analyses = read_analyses(root / "analyses.toml")
    assert analyses[1].foci == str(root / "ptsd.txt") and analyses[1].groups == ()
    results = ResultsFolder(tmp_path / "results")
    settings = Settings(n_iters=N_ITERS, seed=0, progress=False)
    summary, _ = run_analyses(analyses, curation, root, results, settings)
    rows = summary.set_index("analysis")
    assert rows.loc["PTSD", "experiments"] == 14 and rows.loc["SAD", "experiments"] == 12
    assert "ptsd.txt" in results.read_provenance()["inputs_sha256"]
    back = results.load(analyses[1]).experiments
    assert set(back.experiments["reported_space"]) == {"TAL"}  # converted, and said so


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('foci = "missing.txt"', "foci file 'missing.txt' not found"),
        ('foci = "ptsd.txt"\ngroups = ["SAD"]', "either groups"),
        ('controls = "SAD"\ngroups = ["SAD"]', "groups, a foci file or controls, one of them"),
        ('controls = "MNS"', "controls 'MNS': give one of SAD, BPD"),
        ('foci = "ptsd.txt"\nbalanced = true', "balanced = true is for a subtraction only"),
        ('reference = ["laird2016"]', "name published sets: laird2015"),
        ('reference = ["laird2015"]\ngroups = ["SAD"]', "controls or reference, one of them"),
        ('reference = ["laird2015"]\nmatched_to = "MNS"', "give one of SAD, BPD"),
    ],
)
def test_a_declared_group_is_checked_like_any_analysis(tmp_path, entry, message):
    (tmp_path / "ptsd.txt").write_text("// Reference=MNI\n// A\n// Subjects=10\n1 2 3\n")
    (tmp_path / "analyses.toml").write_text(f'[[analysis]]\nname = "X"\nkind = "ale"\n{entry}\n')
    with pytest.raises(MnsmetaInputError) as raised:
        read_analyses(tmp_path / "analyses.toml")
    assert any(message in str(p) for p in raised.value.problems)


def test_a_control_set_runs_as_an_analysis_with_its_matches_and_balance(
    tmp_path, project_curation
):
    """analyses.toml `controls = "BPD"`: BPD's paradigm-matched healthy-only studies, subtracted."""
    from conftest import REPO

    (tmp_path / "analyses.toml").write_text(
        '[[analysis]]\nname = "BPD"\nkind = "ale"\ngroups = ["BPD"]\n\n'
        '[[analysis]]\nname = "BPD_controls"\nkind = "ale"\ncontrols = "BPD"\n\n'
        '[[analysis]]\nname = "BPD_vs_controls"\nkind = "subtraction"\n'
        'inputs = ["BPD", "BPD_controls"]\n'
    )
    analyses = read_analyses(tmp_path / "analyses.toml")
    settings = Settings(n_iters=N_ITERS, seed=0, jobs=2, progress=False)
    results = ResultsFolder(tmp_path / "results")
    summary, outputs = run_analyses(
        analyses, project_curation, REPO / "coordinates", results, settings
    )
    rows = summary.set_index("analysis")
    folder = results.analysis(analyses[1])
    matches = pd.read_csv(folder.controls)
    pairs = matches[matches["control_pmid"] > 0]
    assert rows.loc["BPD_controls", "experiments"] == len(pairs) >= 12
    assert "paradigm-matched screened healthy-only controls" in rows.loc["BPD_controls", "note"]
    experiments = outputs["BPD_controls"].experiments.experiments
    # Each control has its match's N (the databases have none) and is a database study.
    # (a shared sample is matched by its first record and gives its experiment's N)
    bpd = outputs["BPD"].experiments
    experiment_of = bpd.experiment_of_study()
    ids = [experiment_of[str(pmid)] for pmid in pairs["pmid"]]
    expected = bpd.experiments["sample_size"].reindex(ids).to_numpy()
    np.testing.assert_array_equal(experiments["sample_size"].to_numpy(), expected)
    assert set(pd.read_csv(folder.balance)["term"]) == set(controls.TASK_TERMS)
    # The subtraction ran with its cluster-level FWE null.
    assert rows.loc["BPD_vs_controls", "cluster_size_threshold_voxels"] > 0


def test_the_methods_paragraph_of_a_project_run_states_every_rule_it_used():
    """Data, fallback N, space, masks, both overlap tests, robustness and verdict rules."""
    from mnsmeta.workflows.boilerplate import methods_text
    from mnsmeta.workflows.settings import Settings

    analyses = [Analysis("SAD", "ale", ("SAD",))]
    summary = pd.DataFrame([{"analysis": "SAD", "experiments": 12, "foci": 311}])
    text = methods_text(analyses, summary, Settings(), {"nimare": "0.0"})
    for words in (
        "Neurosynth 0.7 and NeuroQuery 1",
        "the median N of its group's experiments",
        "MNI assumed",
        "moved rigidly at random in the brain (at least 10,000 placements)",
        "relocated at random in the brain or in grey matter",
        "noise experiments uniform in grey matter, 10 noise draws",
        "after Holm's correction across the claims' primary tests",
        "Holm S (1979)",
        "Acar F, Seurinck R",
    ):
        assert words in text, words


def test_a_published_reference_enters_whole_or_matched_to_a_disorders_paradigms(project_curation):
    from mnsmeta.workflows.run import _reference_set, reference_note

    settings = Settings(n_iters=N_ITERS, seed=0, progress=False)
    whole = Analysis("faces", "ale", reference=("laird2015",))
    experiments, table, balance = _reference_set(project_curation, whole, settings)
    assert len(experiments.experiments) == len(table) == 386 and balance is None
    assert reference_note(whole, None) == "published reference: laird2015 (every experiment)"
    matched = Analysis("SAD_ref", "ale", reference=("laird2015",), matched_to="SAD")
    experiments, selection, balance = _reference_set(project_curation, matched, settings)
    assert set(selection["paradigm"]) == {"emotional_faces"}  # Laird's only label rule
    faces = balance.set_index("paradigm").loc["emotional_faces"]
    assert faces["selected"] == len(experiments.experiments) > faces["disorder_experiments"]
    assert "no reference for" in reference_note(matched, balance)


def test_the_curated_mirror_mask_conjoins_hand_and_body_observation_with_execution(
    project_curation,
):
    """The two halves of the curated MNS mask: watching hand, arm or body actions, and
    imitating or executing them (Molenberghs et al. 2012); no face, vocal, auditory or
    imagery study in either (the audit's examples), and no sample in both."""
    from conftest import REPO
    from mnsmeta.curation.experiments import build_experiments

    analyses = {a.name: a for a in read_analyses(REPO / "coordinates" / "analyses.toml")}
    observation, execution = analyses["MNS_observation"], analyses["MNS_execution"]
    assert observation.mask == execution.mask == "curated" and observation.makes_mask
    assert not observation.is_mns_reference and analyses["MNS"].is_mns_reference
    assert not analyses["MNS_expert"].tested_for_overlap  # it makes a mask, is not tested
    sets = [
        build_experiments(project_curation, "MNS", paradigms=a.paradigms, effectors=a.effectors)
        for a in (observation, execution)
    ]
    studies = [{s for i in e.ids for s in i.split("+")} for e in sets]
    assert [len(e.ids) for e in sets] == [25, 23]
    assert not studies[0] & studies[1]
    audit = {"12682281", "22772979", "23450458", "24012546", "25671563", "18276163",
             "26696298"}  # fmt: skip
    assert not audit & (studies[0] | studies[1])
    records = {r.study_id: r for r in project_curation.for_group("MNS")}
    assert {records[s].paradigm for s in studies[0]} == {"action_observation"}
    assert {records[s].effector for s in studies[0] | studies[1]} <= {"hand_arm", "body", "mixed"}
