"""``mnsmeta claims``: a verdict for each of the review's claims, with its evidence.

Rules (also in the README):

* ``convergence``: *supported* when a cluster-FWE cluster of the analysis lies in one of the
  claim's regions (its peak, or at least 10 % of its voxels, carries one of the region's
  Harvard-Oxford labels); *not supported* otherwise. A directional claim (``hypo`` or
  ``hyper``) is tested on the analysis of that direction's contrasts (patients < controls,
  patients > controls): *not testable* when no such analysis is configured or no included
  study has a curated contrast of that kind; *too few to test* when the analysis has fewer
  than 17 experiments (Eickhoff et al., 2016) and no cluster in the regions, since the
  absence of convergence at that power is no evidence against the claim. The evidence line
  gives the experiments of each direction.
* ``mns_overlap``: *supported* when, for at least one MNS mask, the significant clusters
  overlap the mask more than the same clusters moved at random (p < 0.05) and the ALE inside
  the mask beats the grey-matter relocation null (p < 0.05); *not supported* otherwise;
  *not testable* when the overlap test has not been run.
* ``inconsistent``: *supported* when no cluster lies in the regions, or every such cluster is
  fragile in the jackknife; *not supported* when a robust cluster lies there.

The evidence line names the analysis, its experiments, the clusters with their labels,
jackknife survival and fail-safe N, the overlap p-values, and the sensitivity variants in
which clusters appear in or vanish from the claim's regions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mnsmeta.curation.analyses import (
    DIRECTION_KINDS,
    MIN_EXPERIMENTS,
    Analysis,
    answering,
    underpowered,
)
from mnsmeta.curation.claims_file import Claim
from mnsmeta.curation.contrasts import PATIENTS_GT_CONTROLS, PATIENTS_LT_CONTROLS
from mnsmeta.data.atlases import labels_at, without_hemisphere
from mnsmeta.data.space import brain_mask_img, voxel_to_mm
from mnsmeta.meta_analysis.analysis_result import AnalysisResult

ALPHA = 0.05
#: A cluster is in a region when this share of its voxels carries one of the region's labels.
REGION_SHARE = 0.10
SUPPORTED, NOT_SUPPORTED, NOT_TESTABLE = "supported", "not supported", "not testable"
TOO_FEW = "too few to test"
WORDS = {"hypo": "reduced", "hyper": "increased"}


@dataclass
class Verdict:
    claim: Claim
    analysis: str
    verdict: str
    evidence: str
    #: Sensitivity variants under which the same rule would give another verdict.
    flipped_by: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {
            "id": self.claim.id,
            "paraphrase": self.claim.paraphrase,
            "analysis": self.analysis,
            "test": self.claim.test,
            "regions": list(self.claim.regions),
            "direction": self.claim.direction,
            "verdict": self.verdict,
            "flipped_by": ", ".join(self.flipped_by),
            "evidence": self.evidence,
        }


#: Each test's rule, as ``claims.json`` and the report state it (the module docstring has
#: the reasoning).
RULES = {
    "convergence": "supported when a cluster-FWE cluster lies in one of the claim's regions "
    f"(peak or >= {REGION_SHARE:.0%} of voxels with a region label); a directional claim on "
    "its direction's analysis: not testable without curated contrasts, too few to test below "
    f"{MIN_EXPERIMENTS} experiments without a cluster in the regions",
    "mns_overlap": "supported when, for one MNS mask, the clusters overlap the mask more than "
    f"moved clusters do (p < {ALPHA}) and the ROI ALE beats the grey-matter null (p < {ALPHA})",
    "inconsistent": "supported when no cluster lies in the regions or every such cluster is "
    "fragile in the jackknife",
    "flipped_by": "the sensitivity variants that add a cluster in the regions where the main "
    "analysis has none, or keep none of the main analysis's clusters in the regions",
}


class Evidence:
    """What the verdicts read: each analysis's result and the later stages' tables.

    Parameters
    ----------
    analyses : list of Analysis
        The configured analyses (a conjunction's inputs are looked up here).
    load : callable
        Analysis -> :class:`AnalysisResult` (called once per analysis).
    overlap, robustness, sensitivity : pandas.DataFrame or None
        The overlap table, the robustness clusters table and the sensitivity table, or None
        when the stage has not run.
    computed : callable, optional
        Analysis -> whether it has results (an analysis without data has none).
    """

    def __init__(
        self,
        analyses: list[Analysis],
        load: Callable[[Analysis], AnalysisResult],
        overlap: pd.DataFrame | None = None,
        robustness: pd.DataFrame | None = None,
        sensitivity: pd.DataFrame | None = None,
        computed: Callable[[Analysis], bool] | None = None,
    ):
        self.analyses = {a.name: a for a in analyses}
        self._load = load
        self.computed = computed or (lambda analysis: True)
        self._results: dict[str, AnalysisResult] = {}
        self.overlap = overlap
        self.robustness = robustness
        self.sensitivity = sensitivity

    def result(self, analysis: Analysis | str) -> AnalysisResult:
        name = analysis if isinstance(analysis, str) else analysis.name
        if name not in self._results:
            self._results[name] = self._load(self.analyses[name])
        return self._results[name]

    def clusters(self, analysis: Analysis) -> pd.DataFrame:
        return self.result(analysis).clusters

    def experiments(self, analysis: Analysis | str) -> pd.DataFrame | None:
        experiments = self.result(analysis).experiments
        return None if experiments is None else experiments.experiments


def cluster_regions(result: AnalysisResult, table: pd.DataFrame) -> dict[int, set[str]]:
    """Harvard-Oxford labels (no hemisphere) at each cluster's peak or on >= 10 % of it.

    Keyed by the row's position in ``table`` (a subtraction numbers the clusters of each
    direction from 1).
    """
    out = {}
    for position, (_, row) in enumerate(table.iterrows()):
        xyz = voxel_to_mm(result.cluster_voxels(row))
        names = pd.Series([without_hemisphere(n) for n in labels_at(xyz, "harvard_oxford")])
        shares = names[names != ""].value_counts() / max(len(names), 1)
        found = set(shares[shares >= REGION_SHARE].index)
        peak = labels_at([[row.peak_x, row.peak_y, row.peak_z]], "harvard_oxford")[0]
        if peak:
            found.add(without_hemisphere(peak))
        out[position] = found
    return out


def _short(label: str) -> str:
    return str(label).replace("_", " ")


def _robust_text(evidence: Evidence, analysis: Analysis, cluster: int, peak) -> tuple[str, bool]:
    """Jackknife and fail-safe N of a cluster, and whether it is fragile."""
    table = evidence.robustness
    if table is None:
        return "robustness not computed", False
    if analysis.is_conjunction:
        # A conjunction cluster is as robust as the input clusters under its peak.
        parts, fragile = [], False
        for name in analysis.inputs:
            rows = table[table["analysis"] == name]
            labels = evidence.result(name).labels
            ijk = np.rint(np.linalg.inv(brain_mask_img().affine) @ [*peak, 1])[:3].astype(int)
            number = int(labels[tuple(ijk)])
            hit = rows[rows["cluster"] == number]
            if len(hit):
                r = hit.iloc[0]
                parts.append(
                    f"{name} cluster {number}: jackknife {r.jackknife_survived}/{r.jackknife_n}, "
                    f"FSN {r.fsn}"
                )
                fragile |= bool(r.fragile)
        return "; ".join(parts) or "robustness not computed", fragile
    rows = table[(table["analysis"] == analysis.name) & (table["cluster"] == cluster)]
    if not len(rows):
        return "robustness not computed", False
    r = rows.iloc[0]
    flag = ", dominated by one or two experiments" if bool(r.dominated) else ""
    return (
        f"jackknife {r.jackknife_survived}/{r.jackknife_n}, FSN {r.fsn} "
        f"(benchmark {r.fsn_benchmark}){flag}",
        bool(r.fragile),
    )


def _new_labels(row) -> set[str]:
    """The peak labels (without hemisphere) of a sensitivity row's new clusters."""
    return {without_hemisphere(x.strip()) for x in str(row.new_labels).split(",")}


def _sensitivity_text(evidence, analysis, region_labels: set[str]) -> str:
    table = evidence.sensitivity
    if table is None or not analysis.is_ale:
        return ""
    rows = table[(table["analysis"] == analysis.name) & (table["variant"] != "main")]
    notes = []
    for row in rows.itertuples():
        if _new_labels(row) & region_labels:
            notes.append(f"{row.variant} adds a cluster here")
    return ("; sensitivity: " + ", ".join(notes)) if notes else ""


def _regional(claim, analysis, evidence, regions):
    """Positions (in the cluster table) of the clusters in the claim's regions."""
    region_labels = {label for r in claim.regions for label in regions[r]}
    table = evidence.clusters(analysis)
    if not len(table):
        return [], region_labels, table
    found = cluster_regions(evidence.result(analysis), table)
    inside = [position for position, names in found.items() if names & region_labels]
    return inside, region_labels, table


def _n_text(evidence, analysis) -> str:
    experiments = evidence.experiments(analysis)
    if experiments is None:
        names = analysis.inputs
        counts = [len(evidence.experiments(n)) for n in names]
        return ", ".join(f"{n} n={c}" for n, c in zip(names, counts, strict=True))
    return f"n={len(experiments)} experiments"


def _convergence(claim, analysis, evidence, regions, inconsistent=False):
    inside, region_labels, table = _regional(claim, analysis, evidence, regions)
    where = "/".join(claim.regions)
    head = f"{analysis.name} ({_n_text(evidence, analysis)})"
    if not len(table):
        text = f"{head}: no significant cluster at all"
        return (SUPPORTED if inconsistent else NOT_SUPPORTED), text
    listing = ", ".join(
        f"{r['cluster']} {_short(r['Harvard-Oxford peak'])} ({r['size_mm3']:g} mm3)"
        for _, r in table.iterrows()
    )
    sensitivity = _sensitivity_text(evidence, analysis, region_labels)
    if not inside:
        text = f"{head}: no cluster in {where}; clusters: {listing}{sensitivity}"
        return (SUPPORTED if inconsistent else NOT_SUPPORTED), text
    details, fragile = [], []
    for position in inside:
        row = table.iloc[position]
        c = int(row["cluster"])
        robust, is_fragile = _robust_text(
            evidence, analysis, c, (row.peak_x, row.peak_y, row.peak_z)
        )
        fragile.append(is_fragile)
        direction = f"{row['direction']} " if "direction" in table else ""
        details.append(
            f"cluster {direction}{c} {_short(row['Harvard-Oxford peak'])} "
            f"({row.peak_x:g},{row.peak_y:g},{row.peak_z:g}; {row.size_mm3:g} mm3; {robust})"
        )
    text = f"{head}: {len(inside)} cluster(s) in {where}: " + "; ".join(details) + sensitivity
    text += _specificity_text(evidence, analysis, table, inside)
    if inconsistent:
        return (SUPPORTED if all(fragile) else NOT_SUPPORTED), text
    return SUPPORTED, text


def _controls_subtraction(evidence, name: str) -> Analysis | None:
    """The subtraction of analysis ``name`` minus a task-matched control set, if configured."""
    for analysis in evidence.analyses.values():
        if analysis.is_subtraction and analysis.inputs[0] == name:
            second = evidence.analyses.get(analysis.inputs[1])
            if second is not None and second.controls:
                return analysis
    return None


def _specificity_text(evidence, analysis, table, positions) -> str:
    """Whether the claim's clusters exceed what the same tasks give healthy people.

    For each disorder ALE behind ``analysis`` (itself, or a conjunction's inputs) whose
    subtraction from its task-matched healthy-only controls was run: how many of the clusters
    at ``positions`` overlap a cluster of disorder > controls (cluster-FWE).
    """
    result = evidence.result(analysis)
    voxels = [result.cluster_voxels(table.iloc[p]) for p in positions]
    names = [analysis.name] if analysis.is_ale else list(analysis.inputs)
    parts = []
    for name in names:
        subtraction = _controls_subtraction(evidence, name)
        if subtraction is None or not evidence.computed(subtraction):
            continue
        controls = subtraction.inputs[1]
        found = evidence.result(subtraction)
        rows = found.clusters
        if not len(rows) or not (rows["direction"] == f"{name}>{controls}").any():
            parts.append(
                f"{name} exceeds its task-matched healthy-only controls nowhere "
                f"({subtraction.name}: no cluster survives cluster-FWE)"
            )
            continue
        labels = found.labels_by_direction[name, controls]
        overlapping = sum(bool((labels[tuple(v.T)] > 0).any()) for v in voxels)
        parts.append(
            f"{overlapping} of {len(voxels)} cluster(s) overlap {name} > its task-matched "
            f"healthy-only controls ({subtraction.name}, cluster-FWE)"
        )
    return "; specificity: " + "; ".join(parts) if parts else ""


def _direction_counts(evidence, study_level: Analysis) -> str:
    """Experiments of the study-level analysis by the kinds of their curated contrasts."""
    experiments = evidence.experiments(study_level)
    if experiments is None:
        return ""
    kinds = experiments.get("kinds", pd.Series("", index=experiments.index)).fillna("")
    greater = int(kinds.str.contains(PATIENTS_GT_CONTROLS, regex=False).sum())
    less = int(kinds.str.contains(PATIENTS_LT_CONTROLS, regex=False).sum())
    directions = experiments["direction"].fillna("").value_counts()
    return (
        f"{study_level.name}: {greater} of {len(experiments)} experiments with a curated "
        f"{PATIENTS_GT_CONTROLS} contrast, {less} with {PATIENTS_LT_CONTROLS}; by their "
        f"abstracts {directions.get('hyper', 0)} report only increased, "
        f"{directions.get('hypo', 0)} only reduced, {directions.get('mixed', 0)} both"
    )


def _directional(claim, analysis, study_level, evidence, regions):
    """A ``hypo`` or ``hyper`` claim, on the analysis of that direction's contrasts."""
    word = WORDS[claim.direction]
    kinds = " / ".join(DIRECTION_KINDS[claim.direction])
    counts = _direction_counts(evidence, study_level)
    if analysis is None:
        text = (
            f"no analysis of {kinds} contrasts in analyses.toml (an ale analysis with "
            f'contrasts = ["{kinds}"]) to test {word} activity; {counts}'
        )
        return NOT_TESTABLE, None, text
    if not evidence.computed(analysis):
        text = (
            f"{analysis.name}: no included study has a curated {kinds} contrast, so {word} "
            f"activity cannot be tested; {counts}"
        )
        return NOT_TESTABLE, analysis, text
    verdict, text = _convergence(claim, analysis, evidence, regions)
    n = len(evidence.experiments(analysis))
    if underpowered(n):
        text += f"; underpowered: {n} experiments < {MIN_EXPERIMENTS} (Eickhoff et al., 2016)"
        if verdict == NOT_SUPPORTED:
            verdict = TOO_FEW
    return verdict, analysis, f"{text}; {counts}"


def _mns_overlap(claim, analysis, evidence):
    overlap = evidence.overlap
    head = f"{analysis.name} ({_n_text(evidence, analysis)})"
    if overlap is None or not (overlap["analysis"] == analysis.name).any():
        return NOT_TESTABLE, f"{head}: overlap test not run (mnsmeta overlap)"
    rows = overlap[overlap["analysis"] == analysis.name]

    def p(mask, test, statistic):
        hit = rows[(rows["mask"] == mask) & (rows["test"] == test)]
        hit = hit[hit["statistic"] == statistic]
        return (float(hit["p"].iloc[0]), float(hit["observed"].iloc[0])) if len(hit) else None

    parts, supported = [], False
    for mask in rows["mask"].unique():
        roi = p(mask, "roi_ale", "mean_ale")
        roi_gm = p(mask, "roi_ale_gm", "mean_ale")
        both = p(mask, "thresholded_overlap", "voxels_in_both")
        if None in (roi, roi_gm, both):
            continue
        parts.append(
            f"{mask}: ROI p={roi[0]:.3g} (grey-matter null {roi_gm[0]:.3g}), "
            f"{both[1]:g} cluster voxels in the mask (p={both[0]:.3g})"
        )
        supported |= both[0] < ALPHA and roi_gm[0] < ALPHA
    return (SUPPORTED if supported else NOT_SUPPORTED), f"{head}: " + "; ".join(parts)


def check_claims(
    claims: list[Claim], regions: dict[str, list[str]], evidence: Evidence
) -> list[Verdict]:
    """One verdict per claim, from the evidence of the results."""
    analyses = list(evidence.analyses.values())
    verdicts = []
    for claim in claims:
        analysis = answering(claim.analysis, analyses)
        if claim.test == "mns_overlap":
            verdict, text = _mns_overlap(claim, analysis, evidence)
        elif claim.direction in WORDS and claim.test == "convergence":
            directed = answering(claim.analysis, analyses, claim.direction)
            verdict, tested, text = _directional(claim, directed, analysis, evidence, regions)
            analysis = tested or analysis
        else:
            verdict, text = _convergence(
                claim, analysis, evidence, regions, inconsistent=claim.test == "inconsistent"
            )
        tested = verdict in (SUPPORTED, NOT_SUPPORTED) and claim.direction not in WORDS
        flips = _flipping_variants(claim, analysis, evidence, regions) if tested else ()
        if flips:
            text += f"; the verdict flips under {', '.join(flips)}"
        verdicts.append(Verdict(claim, analysis.name, verdict, text, flips))
    return verdicts


def _flipping_variants(claim, analysis, evidence, regions) -> tuple[str, ...]:
    """Variants under which a regional claim's verdict changes (see ``RULES``)."""
    table = evidence.sensitivity
    if table is None or claim.test == "mns_overlap" or not analysis.is_ale:
        return ()
    inside, region_labels, clusters = _regional(claim, analysis, evidence, regions)
    numbers = {int(clusters.iloc[i]["cluster"]) for i in inside}
    rows = table[(table["analysis"] == analysis.name) & (table["variant"] != "main")]
    flips = []
    for row in rows.itertuples():
        if str(getattr(row, "conclusion_changes", "")).startswith("not applicable"):
            continue
        adds = bool(_new_labels(row) & region_labels)
        kept_text = getattr(row, "kept_clusters", np.nan)
        kept = {int(c) for c in str(kept_text).split()} if pd.notna(kept_text) else None
        loses_all = bool(numbers) and kept is not None and not (kept & numbers) and not adds
        if (not numbers and adds) or loses_all:
            flips.append(str(row.variant))
    return tuple(flips)
