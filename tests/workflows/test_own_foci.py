"""``mnsmeta ale``: anyone's Sleuth file or studyset to maps, tables and a report."""

from __future__ import annotations

import json
import warnings

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner

from conftest import CENTRES, jale_example, lotter_csv, sleuth_text
from mnsmeta.cli import main
from mnsmeta.curation.analyses import Analysis
from mnsmeta.curation.inputs import read_experiments
from mnsmeta.data.space import brain_mask_img, to_mni
from mnsmeta.errors import MnsmetaInputError
from mnsmeta.workflows.results import ResultsFolder

ALE_AFFINE = brain_mask_img().affine


def test_a_talairach_sleuth_file_becomes_mni_experiments_one_per_block(tmp_path):
    path = tmp_path / "tal.txt"
    path.write_text(
        "// Reference=Talairach\n// Lee 2015: faces\n// Subjects=20\n-40 20 10\n\n"
        "// Lee 2015: voices\n// Subjects=18\n-24 -4 -18\n30 4 -16\n"
    )
    experiments, warned = read_experiments(path, "tal")
    assert warned == []
    assert experiments.ids == ["Lee 2015: faces", "Lee 2015: voices"]
    np.testing.assert_array_equal(experiments.sample_sizes, [20, 18])
    expected = to_mni(
        np.array([[-40.0, 20, 10], [-24, -4, -18], [30, 4, -16]]), np.array(["TAL"] * 3)
    )
    np.testing.assert_allclose(experiments.xyz, expected)
    assert set(experiments.experiments["reported_space"]) == {"TAL"}


def test_a_repeated_focus_is_a_warning_and_counts_once(tmp_path):
    path = tmp_path / "repeats.txt"
    path.write_text("// Reference=MNI\n// A: x\n// Subjects=20\n-40 20 10\n-40 20 10\n30 4 -16\n")
    experiments, warned = read_experiments(path, "repeats")
    assert len(experiments.foci) == 2
    assert experiments.experiments["foci_removed_repeated_focus"].tolist() == [1]
    assert [w.severity for w in warned] == ["warning"]
    assert "entered twice" in warned[0].message and warned[0].line == 5


def test_a_focus_just_outside_the_brain_is_kept_with_a_warning(tmp_path):
    path = tmp_path / "edge.txt"
    # 14 mm lateral to the right temporal lobe: inside the MNI box, outside the brain mask
    path.write_text("// Reference=MNI\n// A: x\n// Subjects=20\n84 -20 0\n30 4 -16\n")
    experiments, warned = read_experiments(path, "edge")
    assert len(experiments.foci) == 2
    assert len(warned) == 1 and "outside the brain mask" in warned[0].message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("// A: x\n-40 20 10\n", "no '// Subjects=' line"),
        ("// A: x\n// Subjects=0\n-40 20 10\n", "not a positive whole number"),
        ("// A: x\n// Subjects=20\n-40 20\n", "has 2 values, not 3"),
        ("// A: x\n// Subjects=20\n-40 20 400\n", "outside the MNI152 bounding box"),
    ],
)
def test_errors_stop_with_the_line_and_the_fix(tmp_path, body, message):
    path = tmp_path / "bad.txt"
    path.write_text("// Reference=MNI\n" + body)
    with pytest.raises(MnsmetaInputError) as raised:
        read_experiments(path, "bad")
    assert any(message in p.message and p.line for p in raised.value.problems)
    assert all(str(path) in str(p) for p in raised.value.problems)


def test_repeated_experiment_names_are_numbered(tmp_path):
    path = tmp_path / "same.txt"
    path.write_text(
        "// Reference=MNI\n// A\n// Subjects=20\n1 2 3\n\n// A\n// Subjects=21\n4 5 6\n"
    )
    experiments, _ = read_experiments(path, "same")
    assert experiments.ids == ["A (1)", "A (2)"]


def test_a_nimads_studyset_gives_one_experiment_per_analysis(tmp_path):
    studyset = {
        "id": "s",
        "name": "two studies",
        "studies": [
            {
                "id": f"study{i}",
                "name": f"Study {i}",
                "analyses": [
                    {
                        "id": f"a{i}{j}",
                        "name": f"contrast {j}",
                        "metadata": {"sample_sizes": [20 + i]},
                        "points": [
                            {"space": "MNI", "coordinates": [10.0 * j, 20.0, 30.0]},
                            {"space": "MNI", "coordinates": [-30.0, 4.0, -16.0 + i]},
                        ],
                    }
                    for j in (1, 2)
                ],
            }
            for i in (1, 2)
        ],
    }
    path = tmp_path / "set.json"
    path.write_text(json.dumps(studyset))
    experiments, _ = read_experiments(path, "set")
    assert len(experiments.ids) == 4
    np.testing.assert_array_equal(experiments.sample_sizes, [21, 21, 22, 22])
    assert len(experiments.foci) == 8


@pytest.fixture(scope="module")
def ale_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("own")
    (root / "faces.txt").write_text(sleuth_text(20, seed=1))
    (root / "voices.txt").write_text(sleuth_text(16, seed=2, space="Talairach", name="Other"))
    out = root / "out"
    result = CliRunner().invoke(
        main,
        ["ale", str(root / "faces.txt"), "--minus", str(root / "voices.txt"), "--output",
         str(out), "--n-iters", "40", "--seed", "1", "--no-progress", "--robustness", "20",
         "--tfce", "--balanced", "3"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return root, out, result.output


def test_ale_equals_nimare_on_the_same_sleuth_file(ale_run):
    from nimare.io import convert_sleuth_to_dataset
    from nimare.meta.cbma.ale import ALE

    root, out, _ = ale_run
    for name in ("faces", "voices"):  # MNI, and Talairach converted as NiMARE converts it
        folder = ResultsFolder(out).analysis(Analysis(name, "ale"))
        ours = nib.load(folder.map("stat")).get_fdata()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = convert_sleuth_to_dataset(str(root / f"{name}.txt"), target="mni152_2mm")
            reference = ALE().fit(dataset).get_map("stat", return_type="image").get_fdata()
        assert np.abs(ours - reference).max() <= 1e-6 * reference.max()
        assert reference.max() > 0.01


def test_one_command_writes_the_results_contract_and_a_report(ale_run):
    _, out, output = ale_run
    results = ResultsFolder(out)
    summary = results.read_summary()
    assert summary["analysis"].tolist() == [
        "faces",
        "voices",
        "faces_minus_voices",
        "faces_minus_voices_balanced",
    ]
    assert summary.loc[0, "experiments"] == 20 and summary.loc[1, "experiments"] == 16
    clusters = results.analysis(Analysis("faces", "ale")).read_clusters()
    assert len(clusters) >= 1
    # the synthetic foci gather around (-22, -4, -18) and (44, 16, 4)
    peaks = clusters[["peak_x", "peak_y", "peak_z"]].to_numpy(float)
    assert min(np.linalg.norm(peaks - CENTRES[0], axis=1)) <= 6
    assert clusters["Harvard-Oxford peak"].notna().all()
    provenance = results.read_provenance()
    assert provenance["command"] == "mnsmeta ale"
    assert set(provenance["inputs_sha256"]) == {"faces.txt", "voices.txt"}
    assert "faces: 20 experiments" in output
    assert results.report.stat().st_size > 10_000  # written by the same command
    rerender = CliRunner().invoke(main, ["report", "--output", str(out)])
    assert rerender.exit_code == 0, rerender.output


def test_every_cluster_table_has_its_peak_table_beside_it(ale_run):
    """ALE and subtraction alike: each cluster's local maxima, the first at the cluster's
    highest value and inside it. On an ALE map it is the cluster table's peak; a subtraction's
    z is flat over a cluster (a capped permutation z), whose one peak is then its centre, as
    nilearn reports a flat cluster, where the cluster table names its first voxel."""
    _, out, _ = ale_run
    results = ResultsFolder(out)
    seen = set()
    for row in results.read_summary().itertuples():
        analysis = Analysis(row.analysis, row.kind, inputs=("faces", "voices"))
        folder = results.analysis(analysis)
        clusters, peaks = folder.read_clusters(), folder.read_peaks()
        keys = ["direction", "cluster"] if "direction" in clusters else ["cluster"]
        firsts = peaks[peaks["peak"] == 1].set_index(keys).sort_index()
        expected = clusters.set_index(keys).sort_index()
        assert len(expected) and firsts.index.equals(expected.index)
        np.testing.assert_allclose(firsts["stat"], expected["peak_stat"], rtol=1e-5)
        for key, first in firsts.iterrows():
            direction = tuple(key[0].split(">")) if len(keys) == 2 else None
            labels = folder.read_labels(direction)
            ijk = np.rint(np.linalg.solve(ALE_AFFINE, [first.x, first.y, first.z, 1])[:3])
            assert labels[tuple(ijk.astype(int))] == (key[1] if direction else key)
        if analysis.is_ale:
            np.testing.assert_array_equal(
                firsts[["x", "y", "z"]].to_numpy(), expected[["peak_x", "peak_y", "peak_z"]]
            )
            assert (firsts["Harvard-Oxford"] == expected["Harvard-Oxford peak"]).all()
        seen.add(row.kind)
    assert seen == {"ale", "subtraction"}


def test_a_missing_input_is_one_line(tmp_path):
    result = CliRunner().invoke(
        main, ["ale", str(tmp_path / "nope.txt"), "--output", str(tmp_path)]
    )
    assert result.exit_code != 0
    assert "no such file" in result.output and "Traceback" not in result.output


def test_robustness_checks_each_input_s_clusters(ale_run):
    _, out, output = ale_run
    clusters = ResultsFolder(out).robustness.read_table("clusters")
    assert set(clusters["analysis"]) <= {"faces", "voices"}
    faces = clusters[clusters["analysis"] == "faces"]
    assert len(faces) >= 1 and (faces["jackknife_n"] == 20).all()
    assert faces["top_share"].between(0, 1).all()
    assert "fsn" in output  # the terminal shows the cluster table of the checks


def test_a_methods_paragraph_and_a_bids_description_come_with_the_maps(ale_run):
    _, out, _ = ale_run
    results = ResultsFolder(out)
    methods = results.boilerplate.read_text()
    assert "faces: 20 experiments" in methods and "voices: 16 experiments" in methods
    assert "40 iterations" in methods and "p < 0.001" in methods and "random seed 1" in methods
    assert "subtraction" in methods  # --minus was given: its method and reference
    assert "Eickhoff SB, Bzdok D, Laird AR, et al. (2011)" in methods
    description = json.loads(results.dataset_description.read_text())
    assert description["DatasetType"] == "derivative"
    assert description["GeneratedBy"][0]["Name"] == "mnsmeta"
    assert "Methods, as a paper would state them" in results.report.read_text()


def test_the_report_s_slice_viewer_runs_offline_in_chromium(browser, ale_run):
    """nilearn's viewer is inlined into the page: it draws with no request leaving the file."""
    _, out, _ = ale_run
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    errors, requests = [], []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("request", lambda request: requests.append(request.url))
    page.goto(ResultsFolder(out).report.as_uri(), wait_until="load")
    assert page.locator("iframe.viewer").count() == 2  # faces and voices, not the subtraction
    page.locator("details:has(iframe.viewer) > summary").first.click()
    viewer = page.frame_locator("iframe.viewer").first
    viewer.locator("canvas").first.wait_for(state="attached", timeout=15_000)
    assert viewer.locator("canvas").count() >= 1
    assert errors == []
    assert [url for url in requests if not url.startswith(("file:", "data:", "about:"))] == []
    page.close()


def test_tfce_adds_its_map_its_fwe_map_and_summary_columns(ale_run):
    _, out, _ = ale_run
    results = ResultsFolder(out)
    folder = results.analysis(Analysis("faces", "ale"))
    tfce = nib.load(folder.tfce).get_fdata()
    z = nib.load(folder.map("z")).get_fdata()
    assert tfce.max() > 0 and (tfce[z <= 0] == 0).all()  # enhances positive z only
    thresholded = nib.load(folder.tfce_thresholded).get_fdata()
    logp = nib.load(folder.tfce_logp).get_fdata()
    assert (logp[thresholded > 0] > -np.log10(0.05)).all()
    row = results.read_summary().set_index("analysis").loc["faces"]
    assert row["tfce_voxels"] == (thresholded > 0).sum() > 0
    assert tfce[thresholded > 0].min() >= row["tfce_threshold"] * 0.999


def test_balanced_adds_the_size_balanced_subtraction_beside_the_permutation_one(ale_run):
    _, out, _ = ale_run
    results = ResultsFolder(out)
    balanced = Analysis("faces_minus_voices_balanced", "subtraction",
                        inputs=("faces", "voices"), balanced=True)  # fmt: skip
    folder = results.analysis(balanced)
    z = nib.load(folder.subtraction_map("z_desc-balancedGroup1MinusGroup2")).get_fdata()
    probability = nib.load(folder.subtraction_map("prob_desc-group1")).get_fdata()
    assert 0 <= probability.min() and probability.max() <= 1
    row = results.read_summary().set_index("analysis").loc["faces_minus_voices_balanced"]
    assert row["balanced_low"] <= 0 <= row["balanced_high"]
    significant = nib.load(folder.thresholded(("faces", "voices")).z).get_fdata() > 0
    np.testing.assert_array_equal(significant, z > 0)


def test_balanced_needs_a_subtraction(tmp_path):
    (tmp_path / "a.txt").write_text(sleuth_text(3, seed=1))
    result = CliRunner().invoke(main, ["ale", str(tmp_path / "a.txt"), "--balanced", "10"])
    assert result.exit_code != 0
    assert "--balanced needs --minus OTHER" in result.output


def test_cluster_mass_inference_keeps_the_clusters_whose_mass_is_significant(tmp_path):
    (tmp_path / "studies.txt").write_text(sleuth_text(18, seed=4))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        ["ale", str(tmp_path / "studies.txt"), "--output", str(out), "--n-iters", "40",
         "--cluster-statistic", "mass", "--no-report", "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    folder = ResultsFolder(out).analysis(Analysis("studies", "ale"))
    mass = nib.load(folder.map("logp_desc-mass_level-cluster_corr-FWE_method-montecarlo"))
    kept = nib.load(folder.thresholded().z).get_fdata() > 0
    assert kept.any()
    np.testing.assert_array_equal(kept, mass.get_fdata() > -np.log10(0.05))
    methods = ResultsFolder(out).boilerplate.read_text()
    assert "cluster mass" in methods


# -- foci outside: refused with the fix named, or dropped and listed ---------------------

OUTSIDE = (
    "// Reference=MNI\n// A 2010: x\n// Subjects=20\n-40 20 10\n1 -200 3\n84 -20 0\n30 4 -16\n"
)


def test_a_focus_outside_the_box_stops_ale_and_the_error_names_the_option(tmp_path):
    path = tmp_path / "outside.txt"
    path.write_text(OUTSIDE)
    result = CliRunner().invoke(main, ["ale", str(path), "--output", str(tmp_path / "out")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"error: {path}: 1 error(s); nothing analysed" in result.output
    assert (
        f"{path}:5: focus (1, -200, 3) (MNI) lies outside the MNI152 bounding box: check the "
        "sign and order of x, y, z and the space; or drop such foci, each listed: "
        "`mnsmeta ale --drop-outside`"
    ) in result.output


def test_drop_outside_drops_the_foci_outside_the_box_or_brain_and_lists_them(tmp_path):
    from mnsmeta.workflows.own_foci import read_input

    path = tmp_path / "outside.txt"
    path.write_text(OUTSIDE)
    own = read_input(str(path), tmp_path, drop_outside=True)
    np.testing.assert_array_equal(own.experiments.xyz, [[-40, 20, 10], [30, 4, -16]])
    assert [str(w) for w in own.warnings] == [
        f"{path}:5: warning: focus '1 -200 3' of experiment 'A 2010: x' lies outside the "
        "MNI152 bounding box: dropped (it cannot be placed on the grid); check the paper's "
        "table",
        f"{path}:6: warning: focus '84 -20 0' of experiment 'A 2010: x' lies 14 mm outside "
        "the brain mask: dropped (--drop-outside); check the paper's table",
        f"{path}: warning: 2 focus(es) outside the MNI152 box or more than 10 mm outside the "
        "brain mask dropped (--drop-outside): each is listed above with its experiment, "
        "coordinates and line",
    ]


def _summary_row(out, name):
    return ResultsFolder(out).read_summary().set_index("analysis").loc[name]


def test_jale_s_excel_input_runs_end_to_end(tmp_path):
    """JALE's example (the installed wheel's file, read where it is): 56 experiments; the
    five foci more than 10 mm outside the brain are kept, as JALE keeps them."""
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        ["ale", str(jale_example()), "--output", str(out), "--n-iters", "20", "--no-report",
         "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "experiment_info: 56 experiments, 1145 foci (7 repeated foci counted once)" in (
        result.output
    )
    assert result.output.count("outside the brain mask: it is used as given") == 5
    row = _summary_row(out, "experiment_info")
    assert (row["experiments"], row["foci"]) == (56, 1145)


def test_lotter_s_csv_runs_end_to_end_as_the_authors_pooled_it(tmp_path):
    """Lotter et al. 2023's table (from the mirror) with its contrasts pooled per
    publication, as the authors read it: the paper's 22 experiments."""
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        ["ale", str(lotter_csv()), "--column", "contrast=", "--output", str(out), "--n-iters",
         "20", "--no-report", "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "ale_coordinates: 22 experiments, 313 foci, N 10-66" in result.output
    row = _summary_row(out, "ale_coordinates")
    assert (row["experiments"], row["foci"]) == (22, 313)
