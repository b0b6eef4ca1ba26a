"""Incremental reruns: each analysis's cache key names what it depends on, a rerun reuses what
did not change, and its results are the bytes of a clean run."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner

from conftest import MANUAL_HEADER, RECORD_HEADER, record_line
from mnsmeta.cli import main
from mnsmeta.curation.analyses import Analysis
from mnsmeta.curation.records import load_curation
from mnsmeta.data.space import brain_mask_img
from mnsmeta.workflows import run
from mnsmeta.workflows.results import ResultsFolder
from mnsmeta.workflows.run import cache_keys, run_analyses
from mnsmeta.workflows.settings import Settings

SAD = Analysis("SAD", "ale", ("SAD",))
BPD = Analysis("BPD", "ale", ("BPD",))
MNS = Analysis("MNS", "ale", ("MNS",))
POOLED = Analysis("SAD_BPD_pooled", "ale", ("SAD", "BPD"))
VERSUS = Analysis("SAD_vs_BPD", "subtraction", inputs=("SAD", "BPD"))
BOTH = Analysis("SAD_and_BPD", "conjunction", inputs=("SAD", "BPD"))
ANALYSES = [SAD, BPD, POOLED, VERSUS, BOTH]
WITH_SAD = {"SAD", "SAD_BPD_pooled", "SAD_vs_BPD", "SAD_and_BPD"}
N_ITERS = 30  # mechanics, not power
SETTINGS = Settings(n_iters=N_ITERS, seed=3, progress=False)


def write_coordinates(root, changed: str | None = None, bigger_n: str | None = None):
    """SAD, BPD and MNS experiments of 3 typed-in foci each (two near the left amygdala,
    one random), 10 per group. ``changed`` moves that study's first focus by 2 mm;
    ``bigger_n`` adds 5 to that study's N."""
    rng = np.random.default_rng(0)
    mask = brain_mask_img()
    brain_mm = nib.affines.apply_affine(mask.affine, np.argwhere(mask.get_fdata() > 0))
    records, foci = [], []
    for group in ("SAD", "BPD", "MNS"):
        for i in range(10):
            study = f"{group.lower()}{i:02d}"
            n = 20 + i + (5 if study == bigger_n else 0)
            records.append(
                record_line(study, group, n=("", "", n), source_db="manual", n_source="simulated")
            )
            planted = np.array([-22.0, -4.0, -18.0]) + rng.normal(0, 2, (2, 3))
            points = np.vstack([planted, brain_mm[rng.choice(len(brain_mm), 1)]]).round(1)
            if study == changed:
                points[0, 0] += 2.0
            foci += [f"{study}\tc1\tMNI\tTable 1\t{x}\t{y}\t{z}\n" for x, y, z in points]
    (root / "records").mkdir(parents=True, exist_ok=True)
    (root / "manual").mkdir(exist_ok=True)
    (root / "records" / "synthetic.tsv").write_text(RECORD_HEADER + "".join(records))
    (root / "manual" / "synthetic.tsv").write_text(MANUAL_HEADER + "".join(foci))
    curation = load_curation(root)
    assert curation.errors == []
    curation.root = root  # for the tests: the folder checksummed into the provenance
    return curation


@pytest.fixture(scope="module")
def curations(tmp_path_factory):
    root = tmp_path_factory.mktemp("curations")
    return {
        name: write_coordinates(root / name, **change)
        for name, change in {
            "original": {},
            "moved": {"changed": "sad03"},
            "bigger_n": {"bigger_n": "sad03"},
        }.items()
    }


def keys(curation, settings=SETTINGS):
    return cache_keys([*ANALYSES, MNS], curation, settings)


def test_the_same_inputs_give_the_same_keys(curations, tmp_path):
    original = keys(curations["original"])
    assert set(original) == {a.name for a in [*ANALYSES, MNS]}
    assert len(set(original.values())) == 6  # one per analysis
    again = write_coordinates(tmp_path / "again")  # the same files, written anew
    assert keys(again) == original


@pytest.mark.parametrize("change", ["moved", "bigger_n"])
def test_a_changed_sad_experiment_changes_exactly_the_keys_built_on_sad(curations, change):
    original, changed = keys(curations["original"]), keys(curations[change])
    differ = {name for name in original if original[name] != changed[name]}
    assert differ == WITH_SAD  # not BPD, not MNS


@pytest.mark.parametrize(
    "field", [{"n_iters": N_ITERS + 1}, {"cluster_forming_p": 0.005}, {"seed": 4}]
)
def test_a_setting_that_changes_results_changes_every_key(curations, field):
    original = keys(curations["original"])
    other = keys(curations["original"], dataclasses.replace(SETTINGS, **field))
    assert all(original[name] != other[name] for name in original)


def test_threads_progress_and_later_stages_settings_change_no_key(curations):
    original = keys(curations["original"])
    same = dataclasses.replace(SETTINGS, jobs=2, progress=True, n_perm=7, sensitivity=False)
    assert keys(curations["original"], same) == original


def test_a_code_change_changes_every_key(curations, monkeypatch):
    original = keys(curations["original"])
    from mnsmeta.workflows import cache

    changed = {**cache.engine_version(), "source_sha256": "0" * 64}
    monkeypatch.setattr(cache, "engine_version", lambda: changed)
    other = keys(curations["original"])
    assert all(original[name] != other[name] for name in original)


def spy_on_fits(monkeypatch) -> list:
    """The datasets of every ALE fitted from now on (a list that grows)."""
    fitted = []
    fit_ale = run.ale.fit_ale

    def spy(dataset, *args, **kwargs):
        fitted.append(dataset)
        return fit_ale(dataset, *args, **kwargs)

    monkeypatch.setattr(run.ale, "fit_ale", spy)
    return fitted


def _without_times(value):
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if k not in ("started", "finished")}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def snapshot(results: ResultsFolder) -> dict:
    """Every file under the folder: JSON without its time stamps, anything else its SHA-256."""
    files = {}
    for path in sorted(p for p in results.path.rglob("*") if p.is_file()):
        if path in (results.lock_file, results.lock_holder):
            continue
        name = path.relative_to(results.path).as_posix()
        if path.suffix == ".json":
            files[name] = _without_times(json.loads(path.read_text()))
        else:
            files[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def test_an_incremental_rerun_reuses_what_did_not_change_and_equals_a_clean_run(
    curations, tmp_path, monkeypatch
):
    original = curations["original"]
    clean = ResultsFolder(tmp_path / "clean")
    run_analyses(ANALYSES, original, original.root, clean, SETTINGS, reuse=True)

    # B: first with SAD's study sad03 moved by 2 mm, then with the original inputs again.
    rerun = ResultsFolder(tmp_path / "rerun")
    moved = curations["moved"]
    run_analyses(ANALYSES, moved, moved.root, rerun, SETTINGS, reuse=True)
    fitted = spy_on_fits(monkeypatch)
    said = []
    run_analyses(ANALYSES, original, original.root, rerun, SETTINGS, reuse=True, say=said.append)

    assert said == [
        "reused (unchanged inputs and settings): BPD; "
        "recomputed: SAD, SAD_BPD_pooled, SAD_vs_BPD, SAD_and_BPD"
    ]
    assert len(fitted) == 2  # SAD and pooled; BPD read back
    assert snapshot(rerun) == snapshot(clean)
    assert rerun.summary.read_bytes() == clean.summary.read_bytes()  # dtypes and all
    stored = {a.name: rerun.analysis(a).read_provenance()["cache_key"] for a in ANALYSES}
    assert stored == cache_keys(ANALYSES, original, SETTINGS)

    # Nothing changed: everything reused, no file rewritten but the provenance.
    before = {p: p.stat().st_mtime_ns for p in rerun.path.rglob("*.nii.gz")}
    said.clear()
    run_analyses(ANALYSES, original, original.root, rerun, SETTINGS, reuse=True, say=said.append)
    assert said[0].startswith(
        "reused (unchanged inputs and settings): SAD, BPD, SAD_BPD_pooled, SAD_vs_BPD, "
        "SAD_and_BPD; recomputed: none"
    )
    assert len(fitted) == 2
    assert {p: p.stat().st_mtime_ns for p in rerun.path.rglob("*.nii.gz")} == before
    assert snapshot(rerun) == snapshot(clean)


def test_a_folder_missing_a_file_is_recomputed(curations, tmp_path):
    original = curations["original"]
    results = ResultsFolder(tmp_path / "results")
    run_analyses([BPD], original, original.root, results, SETTINGS, reuse=True)
    results.analysis(BPD).clusters.unlink()
    said = []
    run_analyses([BPD], original, original.root, results, SETTINGS, reuse=True, say=said.append)
    assert said == ["reused (unchanged inputs and settings): none; recomputed: BPD"]
    assert results.analysis(BPD).clusters.is_file()


def test_run_reuses_by_default_and_force_recomputes(tmp_path, monkeypatch):
    root = tmp_path / "coordinates"
    write_coordinates(root)
    (root / "analyses.toml").write_text(
        '[[analysis]]\nname = "BPD"\nkind = "ale"\ngroups = ["BPD"]\n'
    )
    output = tmp_path / "results"
    command = ["--coordinates", root, "run", "--n-iters", N_ITERS, "--output", output]
    fitted = spy_on_fits(monkeypatch)

    def invoke(*extra):
        result = CliRunner().invoke(main, list(map(str, [*command, *extra])))
        assert result.exit_code == 0, result.output
        return result.output, ResultsFolder(output).analysis(BPD).read_provenance()["cache_key"]

    first, key = invoke()
    assert "reused (unchanged inputs and settings): none; recomputed: BPD" in first
    assert len(fitted) == 1
    second, same_key = invoke()
    assert "reused (unchanged inputs and settings): BPD; recomputed: none" in second
    assert len(fitted) == 1 and same_key == key
    third, forced_key = invoke("--force")
    assert "recomputed without reuse (--force): BPD" in third
    assert len(fitted) == 2 and forced_key == key


# The overlap tests: keyed by the analysis's key, the masks' voxels and the overlap settings.
OVERLAP_SETTINGS = dataclasses.replace(SETTINGS, n_perm=20, base_rate=False)
TESTED = {"SAD", "BPD", "SAD_BPD_pooled", "SAD_and_BPD"}


def box_masks(shift: int = 0) -> dict:
    """Two box masks near the planted amygdala foci (``shift`` moves the second by voxels)."""
    from mnsmeta.inference.masks import Mask

    brain = np.asarray(brain_mask_img().get_fdata()) > 0
    first, second = np.zeros_like(brain), np.zeros_like(brain)
    first[52:60, 55:65, 22:30] = True
    second[30 + shift : 40 + shift, 50:60, 30:40] = True
    return {"near": Mask("near", first & brain), "far": Mask("far", second & brain)}


def run_with_overlap(curation, results, masks=None, settings=OVERLAP_SETTINGS, say=None):
    from mnsmeta.workflows.overlap import run_overlap

    _, outputs = run_analyses(ANALYSES, curation, curation.root, results, SETTINGS, reuse=True)
    masks = box_masks() if masks is None else masks
    return run_overlap(ANALYSES, masks, results, settings, outputs, reuse=True, say=say)


def spy_on_overlap_tests(monkeypatch) -> list:
    """The analyses whose thresholded-overlap rows are computed from now on."""
    from mnsmeta.workflows import overlap

    computed = []
    rows = overlap.thresholded_overlap_rows

    def spy(name, *args, **kwargs):
        computed.append(name)
        return rows(name, *args, **kwargs)

    monkeypatch.setattr(overlap, "thresholded_overlap_rows", spy)
    return computed


def test_a_changed_mask_or_overlap_setting_recomputes_every_test(curations, tmp_path, monkeypatch):
    original = curations["original"]
    results = ResultsFolder(tmp_path / "results")
    run_with_overlap(original, results)
    computed = spy_on_overlap_tests(monkeypatch)
    run_with_overlap(original, results, masks=box_masks(shift=1))
    assert set(computed) == TESTED
    computed.clear()
    run_with_overlap(original, results, settings=dataclasses.replace(OVERLAP_SETTINGS, n_perm=21))
    assert set(computed) == TESTED
    computed.clear()  # threads and progress bars change no test
    run_with_overlap(
        original,
        results,
        settings=dataclasses.replace(OVERLAP_SETTINGS, n_perm=21, jobs=2, progress=True),
    )
    assert computed == []


def test_the_overlap_stage_reads_no_setting_outside_its_key():
    """A setting the overlap stage read but its key left out would let a rerun reuse tests
    made under another value of it."""
    import re

    from mnsmeta.workflows import cache, overlap

    source = open(overlap.__file__, encoding="utf-8").read()
    read = set(re.findall(r"settings\.(\w+)", source))
    assert read - {"jobs", "progress", "__dict__"} <= set(cache.OVERLAP_SETTINGS)


# The robustness checks and sensitivity reruns: by the analysis's key (and the variants' own).
REVIEW_SETTINGS = dataclasses.replace(OVERLAP_SETTINGS, n_iters=N_ITERS, sensitivity=False)


@pytest.fixture
def few_noise_draws(monkeypatch):
    """The fail-safe N with 2 noise draws on 3 levels (mechanics, not estimates): its
    observed fits are NiMARE's, a few seconds each."""
    import functools

    from mnsmeta.workflows import robustness

    fail_safe_n = functools.partial(
        robustness.robustness.fail_safe_n, draws=2, multiples=(0.5, 1, 2)
    )
    monkeypatch.setattr(robustness.robustness, "fail_safe_n", fail_safe_n)


def review(curation, results, say=None, settings=REVIEW_SETTINGS):
    """``mnsmeta run`` (analyses, overlap tests) and ``mnsmeta robustness``, reusing."""
    from mnsmeta.workflows.robustness import run_review

    run_with_overlap(curation, results, say=say)
    return run_review(ANALYSES, curation, curation.root, results, settings, reuse=True, say=say)


def test_an_incremental_rerun_recomputes_the_tests_and_checks_of_what_sad_changed_and_equals_a_clean_run(
    curations, tmp_path, monkeypatch, few_noise_draws
):
    original, moved = curations["original"], curations["moved"]
    clean = ResultsFolder(tmp_path / "clean")
    review(original, clean)

    rerun = ResultsFolder(tmp_path / "rerun")
    review(moved, rerun)
    computed, said = spy_on_overlap_tests(monkeypatch), []
    review(original, rerun, say=said.append)
    assert said == [
        "overlap tests: reused BPD (unchanged); recomputed SAD, SAD_BPD_pooled, SAD_and_BPD",
        "robustness checks: reused BPD; recomputed SAD, SAD_BPD_pooled",
    ]
    assert set(computed) == {"SAD", "SAD_BPD_pooled", "SAD_and_BPD"}
    assert snapshot(rerun) == snapshot(clean)
    for table in (rerun.overlap_table, rerun.overlap.cache, rerun.robustness.cache):
        assert (
            table.read_bytes() == clean.path.joinpath(table.relative_to(rerun.path)).read_bytes()
        )
    assert set(rerun.overlap.read_cache()["analyses"]) == TESTED

    computed.clear()
    said.clear()
    review(original, rerun, say=said.append)  # nothing changed: nothing computed
    assert said == [
        "overlap tests: reused SAD, BPD, SAD_BPD_pooled, SAD_and_BPD (unchanged); recomputed none",
        "robustness checks: reused SAD, BPD, SAD_BPD_pooled; recomputed none",
    ]
    assert computed == []
    assert snapshot(rerun) == snapshot(clean)


def test_sensitivity_reruns_are_reused_from_their_variants_folders(
    curations, tmp_path, monkeypatch, few_noise_draws
):
    original = curations["original"]
    results = ResultsFolder(tmp_path / "results")
    settings = dataclasses.replace(REVIEW_SETTINGS, sensitivity=True)
    said = []
    review(original, results, settings=settings, say=said.append)
    first = said[-1]
    recomputed = int(first.split("sensitivity reruns: 0 reused, ")[1].split()[0])
    assert recomputed > 0
    before = snapshot(results)

    said.clear()
    computed = spy_on_overlap_tests(monkeypatch)
    review(original, results, settings=settings, say=said.append)
    assert computed == []  # no overlap test of the main run or of a variant rerun
    assert said[-1] == (
        "robustness checks: reused SAD, BPD, SAD_BPD_pooled; recomputed none; "
        f"sensitivity reruns: {recomputed} reused, 0 recomputed"
    )
    assert snapshot(results) == before


def test_the_robustness_checks_read_no_setting_outside_their_key():
    import inspect
    import re

    from mnsmeta.workflows import cache, robustness

    source = inspect.getsource(robustness._robustness) + inspect.getsource(
        robustness._iterations_bar
    )
    read = set(re.findall(r"settings\.(\w+)", source))
    assert read, "the checks read their settings from `settings`"
    assert read - {"jobs", "progress"} <= set(cache.ROBUSTNESS_SETTINGS)


BPD_VS_MNS = Analysis("BPD_vs_MNS", "subtraction", inputs=("BPD", "MNS"))
SPECIFICITY_ANALYSES = [SAD, BPD, MNS, VERSUS, BPD_VS_MNS]


def specificity(curation, results, say=None, settings=None, jobs=1):
    """Analyses (reused where unchanged), then the specificity stage reusing its cache."""
    from mnsmeta.curation.claims_file import Regions
    from mnsmeta.workflows.specificity import SpecificitySettings, run_specificity

    regions = Regions({"amygdala": {"harvard_oxford": ["Amygdala"]}}, atlas="harvard_oxford")
    settings = settings or SpecificitySettings(seed=1, n_perm=40, replicates=3)
    run_analyses(SPECIFICITY_ANALYSES, curation, curation.root, results, SETTINGS, reuse=True)
    return run_specificity(
        SPECIFICITY_ANALYSES, regions, results, settings, reuse=True, say=say, jobs=jobs
    )


def test_specificity_recomputes_the_subtractions_of_what_changed_and_equals_a_clean_run(
    curations, tmp_path
):
    from mnsmeta.workflows.specificity import SpecificitySettings

    original, moved = curations["original"], curations["moved"]
    clean = ResultsFolder(tmp_path / "clean")
    specificity(original, clean)

    rerun = ResultsFolder(tmp_path / "rerun")
    specificity(moved, rerun)
    said = []
    # Recomputed in two threads: the power curves do not depend on them.
    specificity(original, rerun, said.append, jobs=2)
    assert said == ["specificity: reused BPD_vs_MNS; recomputed SAD_vs_BPD"]

    def written(results):
        folder = results.specificity
        return [folder.table(name).read_bytes() for name in folder.TABLES] + [
            folder.cache.read_bytes()
        ]

    assert written(rerun) == written(clean)
    assert len(rerun.specificity.read_table("power")) > 0

    said.clear()
    specificity(original, rerun, said.append)
    assert said == ["specificity: reused SAD_vs_BPD, BPD_vs_MNS; recomputed none"]
    assert snapshot(rerun) == snapshot(clean)

    said.clear()
    more = SpecificitySettings(seed=1, n_perm=40, replicates=4)
    specificity(original, rerun, said.append, more)
    assert said == ["specificity: reused none; recomputed SAD_vs_BPD, BPD_vs_MNS"]
