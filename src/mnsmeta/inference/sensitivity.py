"""Sensitivity: rerun each disorder analysis and its overlap test under a reviewer's variants.

Variants (each against the main run, same seed):

* ``fallback_low`` / ``fallback_high``: experiments without a curated N get the smallest /
  largest N read in the group's sources instead of the median (bounds on the unknown N);
* ``n_patients_only``: a patients-vs-controls experiment's N counts its patients only
  (the main rule counts both groups, whose data both shape a between-group contrast);
* ``cdt_0.005``: cluster-forming threshold p < 0.005 instead of 0.001;
* ``neurosynth_only`` / ``neuroquery_only``: every study's foci from one database; studies
  it lacks are dropped;
* ``voxel_fwe``: the main run's voxel-level FWE map (p < 0.05) instead of cluster-level FWE;
* ``unknown_space_tal`` / ``unknown_space_dropped``: foci whose space no source states
  (NeuroQuery-only studies; used as MNI in the main run) converted from Talairach, or their
  studies dropped;
* ``group_contrasts_only``: only the curated patients-vs-controls contrasts of each study
  (any direction) instead of every database table of it;
* ``mixed_tables_kept``: the included studies whose tables mix in another population,
  connectivity, treatment or independent age groups (``table_mix``), left out of the main run,
  are kept;
* ``roi_kept``: the included studies whose peaks come from ROI/SVC analyses only
  (``coverage = roi``), left out of the main run, are kept;
* ``first_record_per_sample``: of the records of one sample (``sample``), pooled into one
  experiment in the main run, only the first (in file order) enters;
* ``other_copy``: where a curator kept the later of two copies of a table (``keep_copy``),
  the earlier copy instead (the database's order);
* ``mns_fallback_low`` / ``mns_fallback_high``: the MNS reference's experiments without a
  curated N (most of them) get its smallest / largest N read; the meta-analytic mask is
  rebuilt from that ALE and the disorder's main map tested against it.

Every row carries the overlap p-values for each MNS mask, so a change of mask is read
across columns. A conclusion is the set of main clusters (by peak label) and, per mask,
whether the ROI test and the thresholded-overlap test are significant at 0.05; the table says
which of these change.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mnsmeta.curation.analyses import Analysis
from mnsmeta.curation.contrasts import BETWEEN_GROUPS
from mnsmeta.curation.records import Curation
from mnsmeta.data.databases import NEUROQUERY, NEUROSYNTH, study_metadata
from mnsmeta.data.space import KNOWN_SPACES
from mnsmeta.inference.precision import decided

ALPHA = 0.05
#: Notes of a variant that leaves an analysis without data (the others that make a variant
#: "not applicable" leave the analysis as it is).
NO_DATA_NOTES = (
    "no study has a curated patients-vs-controls contrast",
    "no experiment in this variant",
)


def leaves_no_data(conclusion: str) -> bool:
    """Whether a sensitivity row's ``conclusion_changes`` says the variant has no data."""
    return any(note in str(conclusion) for note in NO_DATA_NOTES)


@dataclass(frozen=True)
class Variant:
    """One alternative analysis setting."""

    name: str
    description: str


VARIANTS = (
    Variant("fallback_low", "missing N set to the smallest N read in the group's sources"),
    Variant("fallback_high", "missing N set to the largest N read in the group's sources"),
    Variant(
        "n_patients_only",
        "N of a patients-vs-controls experiment counts the patients only (main: both groups)",
    ),
    Variant("cdt_0.005", "cluster-forming threshold p < 0.005 (main: 0.001)"),
    Variant("neurosynth_only", "foci from Neurosynth only; studies it lacks dropped"),
    Variant("neuroquery_only", "foci from NeuroQuery only; studies it lacks dropped"),
    Variant("voxel_fwe", "voxel-level FWE p < 0.05 instead of cluster-level FWE"),
    Variant(
        "unknown_space_tal",
        "foci of unknown space converted from Talairach (main: used as MNI)",
    ),
    Variant("unknown_space_dropped", "studies whose foci space is unknown dropped"),
    Variant(
        "group_contrasts_only",
        "only curated patients-vs-controls contrasts, any direction (main: every table)",
    ),
    Variant(
        "mixed_tables_kept",
        "studies whose tables mix other groups, connectivity, treatment or ages kept "
        "(main: left out)",
    ),
    Variant("roi_kept", "studies with ROI/SVC peaks only kept (main: left out)"),
    Variant(
        "first_record_per_sample",
        "only the first record of a shared sample (main: its records pooled into one experiment)",
    ),
    Variant("other_copy", "of a table stored twice, the copy the curator did not keep"),
    Variant(
        "mns_fallback_low",
        "MNS reference: missing N set to its smallest N read; meta-analytic mask rebuilt",
    ),
    Variant(
        "mns_fallback_high",
        "MNS reference: missing N set to its largest N read; meta-analytic mask rebuilt",
    ),
)
#: Variants that change the meta-analytic MNS mask, not the disorder analysis.
MASK_VARIANTS = ("mns_fallback_low", "mns_fallback_high")


def known_sizes(curation: Curation, analysis: Analysis) -> list[int]:
    """Sample sizes read in a source for the analysis's included studies."""
    sizes = []
    for group in analysis.groups:
        for record in curation.for_group(group):
            n, _ = record.sample_size()
            if n is not None:
                sizes.append(n)
    return sizes


def single_source(curation: Curation, groups, source: str) -> tuple[Curation, int]:
    """The curation with every database study's foci from ``source``.

    Studies without foci in ``source`` are excluded. Returns the new curation and how many
    studies were dropped.
    """
    metadata = study_metadata()
    column = f"n_foci_{source}"
    records, dropped = [], 0
    for record in curation.records:
        if record.group in groups and record.included and not record.is_manual:
            pmid = record.pmid
            has = pmid in metadata.index and metadata.at[pmid, column] > 0
            if has:
                record = dataclasses.replace(record, source_db=source)
            else:
                dropped += record.admitted(curation.admit)
                record = dataclasses.replace(record, status="excluded", reason="variant")
        records.append(record)
    return dataclasses.replace(curation, records=records), dropped


def unknown_space(curation: Curation, groups, mode: str) -> tuple[Curation, int]:
    """The curation with the unknown-space studies of ``groups`` as Talairach, or dropped.

    A study's space is unknown when no curator read it and Neurosynth does not state it
    (:mod:`mnsmeta.data.databases`). ``mode`` is ``"TAL"`` or ``"drop"``; returns the new
    curation and how many studies changed.
    """
    spaces = study_metadata()["neurosynth_space"]
    records, changed = [], 0
    for record in curation.records:
        unknown = (
            record.group in groups
            and record.included
            and not record.is_manual
            and not record.space
            and spaces.get(record.pmid) not in KNOWN_SPACES
        )
        if unknown:
            changed += record.admitted(curation.admit)
            if mode == "drop":
                record = dataclasses.replace(record, status="excluded", reason="variant")
            else:
                record = dataclasses.replace(record, space="TAL")
        records.append(record)
    return dataclasses.replace(curation, records=records), changed


def variant_analysis(variant: Variant, analysis: Analysis) -> Analysis:
    """The analysis a variant runs: the same, or restricted to group-difference contrasts."""
    if variant.name == "group_contrasts_only":
        return dataclasses.replace(analysis, contrasts=BETWEEN_GROUPS)
    return analysis


def variant_inputs(variant: Variant, curation: Curation, analysis: Analysis, settings):
    """The curation and run settings of a variant, and a note (or None if not applicable).

    For a mask variant (``MASK_VARIANTS``) ``analysis`` is the MNS reference analysis.
    """
    if variant.name in MASK_VARIANTS:
        variant = Variant(variant.name.removeprefix("mns_"), variant.description)
    if variant.name.startswith("fallback"):
        sizes = known_sizes(curation, analysis)
        missing = sum(
            r.sample_size()[0] is None for g in analysis.groups for r in curation.for_group(g)
        )
        if not missing:
            return None, None, "no experiment uses the fallback N"
        n = min(sizes) if variant.name == "fallback_low" else max(sizes)
        changed = dataclasses.replace(settings, sample_size_fallback=n)
        return curation, changed, f"{missing} experiments get N={n}"
    if variant.name == "n_patients_only":
        changed = [
            r
            for g in analysis.groups
            for r in curation.for_group(g)
            if r.design == "patients_vs_controls"
            and r.n_patients
            and r.sample_size()[0] not in (None, r.n_patients)
        ]
        if not changed:
            return None, None, "no experiment has a patient count apart from its total N"
        rule = dataclasses.replace(settings, n_rule="patients_only")
        return curation, rule, f"{len(changed)} experiments get their patients' N"
    if variant.name == "cdt_0.005":
        return curation, dataclasses.replace(settings, cluster_forming_p=0.005), ""
    if variant.name in ("neurosynth_only", "neuroquery_only"):
        source = NEUROSYNTH if variant.name == "neurosynth_only" else NEUROQUERY
        changed, dropped = single_source(curation, analysis.groups, source)
        return changed, settings, f"{dropped} studies without {source} foci dropped"
    if variant.name.startswith("unknown_space"):
        mode = "drop" if variant.name == "unknown_space_dropped" else "TAL"
        changed, n = unknown_space(curation, analysis.groups, mode)
        if not n:
            return None, None, "every study's space is known"
        verb = "dropped" if mode == "drop" else "converted from Talairach"
        return changed, settings, f"{n} studies of unknown space {verb}"
    if variant.name == "group_contrasts_only":
        if analysis.contrasts:
            return None, None, "the analysis already selects contrasts"
        studies = {
            r.study_id
            for g in analysis.groups
            for r in curation.for_group(g)
            for c in curation.contrasts_of(r)
            if c.kind in BETWEEN_GROUPS
        }
        if not studies:
            return None, None, NO_DATA_NOTES[0]
        return curation, settings, f"{len(studies)} studies with a curated group contrast"
    if variant.name in ("mixed_tables_kept", "roi_kept", "first_record_per_sample", "other_copy"):
        return _curation_variant(variant.name, curation, analysis, settings)
    raise ValueError(variant.name)


def _curation_variant(name: str, curation: Curation, analysis: Analysis, settings):
    """The curation variants: who enters (table mix, coverage), how samples enter, copies."""
    records = [r for g in analysis.groups for r in curation.for_group(g, included_only=False)]
    if name in ("mixed_tables_kept", "roi_kept"):
        admit = "mixed_tables" if name == "mixed_tables_kept" else "roi_coverage"
        changed = dataclasses.replace(curation, admit=(*curation.admit, admit))
        added = sum(r.admitted(changed.admit) and not r.admitted(curation.admit) for r in records)
        if not added:
            return None, None, "no included study is left out for this reason"
        return changed, settings, f"{added} studies added"
    if name == "first_record_per_sample":
        entering = [r for g in analysis.groups for r in curation.for_group(g)]
        keys = [r.sample_key for r in entering]
        pooled = len(keys) - len(set(keys))
        if not pooled:
            return None, None, "no two records of one sample enter"
        return (
            dataclasses.replace(curation, sample_rule="first"),
            settings,
            f"{pooled} records of shared samples dropped",
        )
    chosen = [r for r in records if r.keep_copy and r.admitted(curation.admit)]
    if not chosen:
        return None, None, "no curator chose between copies"
    others = [dataclasses.replace(r, keep_copy="") if r in chosen else r for r in curation.records]
    return (
        dataclasses.replace(curation, records=others),
        settings,
        f"{len(chosen)} studies take the other copy",
    )


def kept_clusters(main_labels: np.ndarray, variant_map: np.ndarray) -> list[int]:
    """Main clusters that the variant's thresholded map still overlaps."""
    return [int(c) for c in np.unique(main_labels[(variant_map > 0) & (main_labels > 0)])]


def new_clusters(main_labels: np.ndarray, variant_labels: np.ndarray) -> list[int]:
    """Variant clusters that overlap no main cluster."""
    return [
        int(c)
        for c in np.unique(variant_labels)
        if c > 0 and not (main_labels[variant_labels == c] > 0).any()
    ]


#: The built-in MNS masks, whose p-values every sensitivity row carries.
DEFAULT_MASKS = ("meta", "anatomical")


def p_columns(masks=DEFAULT_MASKS) -> list[str]:
    """The sensitivity table's p-value columns: ROI test, then thresholded overlap, per mask."""
    return [f"{key}_{mask}" for key in ("roi_p", "overlap_p") for mask in masks]


def overlap_ps(overlap: pd.DataFrame, analysis: str, masks=DEFAULT_MASKS) -> dict[str, float]:
    """ROI (brain null, mean ALE) and thresholded-overlap p per mask, from an overlap table.

    Each ``<key>_<mask>`` comes with ``n_<key>_<mask>``, the draws behind it (for its Monte
    Carlo interval; not a column of the sensitivity table).
    """
    rows = overlap[overlap["analysis"] == analysis]
    out = {}
    for mask in masks:
        for key, test, statistic in (
            ("roi_p", "roi_ale", "mean_ale"),
            ("overlap_p", "thresholded_overlap", "voxels_in_both"),
        ):
            hit = rows[(rows["mask"] == mask) & (rows["test"] == test)]
            hit = hit[hit["statistic"] == statistic]
            out[f"{key}_{mask}"] = float(hit["p"].iloc[0]) if len(hit) else np.nan
            draws = hit["n_perm"].iloc[0] if len(hit) and "n_perm" in hit else 0
            out[f"n_{key}_{mask}"] = int(draws) if pd.notna(draws) else 0
    return out


def describe_changes(main: dict, row: dict, main_table: pd.DataFrame, masks=DEFAULT_MASKS) -> str:
    """Which conclusions of the main analysis the variant changes, in words."""
    changes = []
    lost = sorted(set(main["clusters"]) - set(row["kept"]))
    if lost:
        names = [
            f"{c} ({main_table.loc[main_table['cluster'] == c, 'Harvard-Oxford peak'].iloc[0]})"
            for c in lost
        ]
        changes.append("loses cluster " + ", ".join(names))
    if row["new"]:
        changes.append(f"{len(row['new'])} new cluster(s): {row['new_labels']}")
    for key in p_columns(masks):
        before, after = main[key], row[key]
        if np.isnan(before) or np.isnan(after):
            continue
        if (before < ALPHA) != (after < ALPHA):
            verb = "becomes significant" if after < ALPHA else "loses significance"
            # A p from n draws is not told from alpha within its Monte Carlo interval.
            n_before, n_after = main.get(f"n_{key}", 0), row.get(f"n_{key}", 0)
            if (
                n_before
                and n_after
                and not (decided(before, n_before, ALPHA) and decided(after, n_after, ALPHA))
            ):
                verb += ", within Monte Carlo error"
            changes.append(f"{key} {before:.3g} -> {after:.3g} ({verb})")
    return "; ".join(changes) if changes else "none"
