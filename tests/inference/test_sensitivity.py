"""Sensitivity variants: what each one changes in the inputs, and how changes are reported."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mnsmeta.curation.analyses import Analysis
from mnsmeta.data.databases import study_metadata
from mnsmeta.inference import sensitivity
from mnsmeta.workflows.settings import Settings

SAD = Analysis("SAD", "ale", ("SAD",))
VARIANTS = {v.name: v for v in sensitivity.VARIANTS}


def test_fallback_variants_bound_the_missing_sizes_by_those_read_in_sources(project_curation):
    known = sensitivity.known_sizes(project_curation, SAD)
    for name, expected in (("fallback_low", min(known)), ("fallback_high", max(known))):
        changed, settings, note = sensitivity.variant_inputs(
            VARIANTS[name], project_curation, SAD, Settings()
        )
        assert changed is project_curation
        assert settings.sample_size_fallback == expected
        assert f"N={expected}" in note


def test_cluster_forming_variant_changes_only_the_threshold(project_curation):
    _, settings, _ = sensitivity.variant_inputs(
        VARIANTS["cdt_0.005"], project_curation, SAD, Settings()
    )
    assert settings.cluster_forming_p == 0.005
    assert settings.sample_size_fallback == "median" and settings.n_iters == 10_000


def test_single_database_variants_take_every_study_from_that_database(project_curation):
    metadata = study_metadata()
    for source in ("neurosynth", "neuroquery"):
        changed, dropped = sensitivity.single_source(project_curation, ("SAD",), source)
        kept = changed.for_group("SAD")
        assert all(r.source_db in (source, "manual") for r in kept)
        assert all(metadata.at[r.pmid, f"n_foci_{source}"] > 0 for r in kept if r.pmid)
        assert len(kept) + dropped == len(project_curation.for_group("SAD"))
        # Other groups are untouched.
        assert changed.for_group("BPD") == project_curation.for_group("BPD")


def test_kept_and_new_clusters_compare_maps_voxel_by_voxel():
    main = np.zeros((10, 10, 10), int)
    main[1:3, 1:3, 1:3] = 1
    main[6:8, 6:8, 6:8] = 2
    variant = np.zeros_like(main)
    variant[2, 2, 2] = 1  # touches main cluster 1
    variant[4, 4, 4] = 2  # touches nothing
    assert sensitivity.kept_clusters(main, variant) == [1]
    assert sensitivity.new_clusters(main, variant) == [2]


def test_changed_conclusions_are_named_and_unchanged_ones_say_none():
    table = pd.DataFrame({"cluster": [1, 2], "Harvard-Oxford peak": ["Left_Amygdala", "Insula"]})
    main = {
        "clusters": [1, 2],
        "roi_p_meta": 0.01,
        "roi_p_anatomical": 0.2,
        "overlap_p_meta": 0.5,
        "overlap_p_anatomical": np.nan,
    }
    same = {**main, "kept": [1, 2], "new": [], "new_labels": ""}
    assert sensitivity.describe_changes(main, same, table) == "none"
    changed = {**same, "kept": [1], "roi_p_meta": 0.08, "new": [3], "new_labels": "Right_IFG"}
    text = sensitivity.describe_changes(main, changed, table)
    assert "loses cluster 2 (Insula)" in text
    assert "1 new cluster(s): Right_IFG" in text
    assert "roi_p_meta 0.01 -> 0.08 (loses significance)" in text


def test_a_p_that_crosses_alpha_within_its_monte_carlo_error_says_so():
    """The audit's case: 0.041 -> 0.0529 from 1,000 relocations is not a change one can call."""
    table = pd.DataFrame({"cluster": [1], "Harvard-Oxford peak": ["Left_Amygdala"]})
    main = {"clusters": [1], "roi_p_meta": 0.041, "n_roi_p_meta": 1000}
    main.update({"overlap_p_meta": 0.5, "n_overlap_p_meta": 10_000})
    variant = {**main, "kept": [1], "new": [], "new_labels": "", "roi_p_meta": 0.0529}
    text = sensitivity.describe_changes(main, variant, table, masks=("meta",))
    assert text == "roi_p_meta 0.041 -> 0.0529 (loses significance, within Monte Carlo error)"
    # Both p clear of alpha by their intervals: a change one can call.
    firm = {**main, "roi_p_meta": 0.01}
    clear = {**variant, "roi_p_meta": 0.3}
    assert "within" not in sensitivity.describe_changes(firm, clear, table, masks=("meta",))


def test_unknown_space_variants_convert_or_drop_only_the_studies_no_source_places(
    project_curation,
):
    spaces = study_metadata()["neurosynth_space"]
    unknown = [
        r
        for r in project_curation.for_group("SAD")
        if not r.is_manual and not r.space and spaces.get(r.pmid) not in ("MNI", "TAL")
    ]
    assert unknown  # NeuroQuery-only studies whose space nobody read
    as_tal, n = sensitivity.unknown_space(project_curation, ("SAD",), "TAL")
    assert n == len(unknown)
    assert {r.study_id for r in as_tal.for_group("SAD") if r.space == "TAL"} >= {
        r.study_id for r in unknown
    }
    dropped, n = sensitivity.unknown_space(project_curation, ("SAD",), "drop")
    assert len(dropped.for_group("SAD")) == len(project_curation.for_group("SAD")) - len(unknown)
    assert dropped.for_group("MNS") == project_curation.for_group("MNS")


def test_group_contrasts_variant_selects_every_between_group_kind(project_curation):
    variant = VARIANTS["group_contrasts_only"]
    analysis = sensitivity.variant_analysis(variant, SAD)
    assert set(analysis.contrasts) == {
        "patients>controls",
        "patients<controls",
        "patients<>controls",
    }
    assert sensitivity.variant_analysis(VARIANTS["cdt_0.005"], SAD) is SAD
    changed, _, note = sensitivity.variant_inputs(variant, project_curation, SAD, Settings())
    assert changed is project_curation and note.endswith("studies with a curated group contrast")
    directional = Analysis("SAD_gt", "ale", ("SAD",), contrasts=("patients>controls",))
    assert (
        sensitivity.variant_inputs(variant, project_curation, directional, Settings())[0] is None
    )


def test_mns_fallback_variants_bound_the_reference_s_missing_sizes(project_curation):
    mns = Analysis("MNS", "ale", ("MNS",))
    known = sensitivity.known_sizes(project_curation, mns)
    missing = sum(r.sample_size()[0] is None for r in project_curation.for_group("MNS"))
    assert missing > len(known)  # most MNS experiments have no N in their abstracts
    for name, expected in (("mns_fallback_low", min(known)), ("mns_fallback_high", max(known))):
        _, settings, note = sensitivity.variant_inputs(
            VARIANTS[name], project_curation, mns, Settings()
        )
        assert settings.sample_size_fallback == expected
        assert note == f"{missing} experiments get N={expected}"
