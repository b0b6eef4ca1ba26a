"""``mnsmeta claims``: a verdict for each of the review's claims, on a graded scale.

Each claim of ``claims.toml`` is one pre-specified test with its alpha; every other test is
reported and does not decide. The scale:

* **supported**: the primary test rejects its null after Holm's correction across the
  claims' primary tests (and, when the verdict rests on clusters in the claim's regions or
  MNS mask, one of them passes the jackknife and reaches its fail-safe N benchmark);
* **evidence against**: the primary test does not reject, and it had the power to: a
  convergence planted in the claim's share of experiments (``effect_of_interest``, one third)
  is found at least 80 % of the time (:mod:`mnsmeta.inference.power`);
* **inconclusive**: neither;
* **not testable**: the design cannot answer the claim as worded (a claim of *altered*
  activity when fewer than half of the experiments are direction-known patients-vs-controls
  contrasts; a directional claim without contrasts of that direction; an overlap test not run).
  The verdict then says what the data do show, in a neutral sentence.

The primary test of each kind of claim (``test`` in ``claims.toml``):

* ``convergence``: the cluster-level FWE p of the strongest cluster, formed at the
  cluster-forming threshold, that lies in the claim's regions (its peak, or >= 10 % of its
  voxels, carries a region label of the claims' atlas); p = 1 when no such cluster formed. A
  conjunction takes the larger p of its inputs (intersection-union) and needs a conjunction
  cluster in the regions.
* ``mns_overlap``: the base-rate test of the claim's MNS mask (``mask``; the anatomical
  one by default): voxels of the significant clusters inside the mask, ranked among sets of
  whole database experiments drawn with the analysis's foci counts and N and thresholded
  like it ("more than typical fMRI foci would?"; ``--n-perm`` sets, 1,000 by default). Its
  power is not simulated, so a non-significant overlap is inconclusive, never evidence
  against. Every other mask's base-rate p is quoted (and whether it is below alpha in every
  mask); the moved-cluster and uniform/grey-matter ROI tests are secondary: they ask whether
  foci are non-uniform, which any fMRI literature is (on random database sets the uniform
  ROI test rejects for about 90 %).
* ``inconsistent`` (a positive criterion): *supported* when at least the effect share of the
  experiments report a focus in the regions, those foci do not converge (convergence p >=
  alpha, uncorrected: correcting would make "no convergence" easier), and a convergence of as
  many experiments as report foci there would have been found (power >= 80 %); *evidence
  against* when a cluster in the regions survives, passes the jackknife and reaches its
  fail-safe N benchmark;
  *inconclusive* otherwise. Not in the Holm family (its support is a non-rejection).

Every permutation p carries its exact Monte Carlo interval; a verdict changes under a
sensitivity variant only when the variant's p lies beyond alpha by more than that interval.
The certainty grade is :mod:`mnsmeta.claims.certainty`'s.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import ndimage

from mnsmeta.curation.analyses import Analysis, answering, mns_reference
from mnsmeta.curation.claims_file import Claim, Regions
from mnsmeta.curation.contrasts import direction_known
from mnsmeta.data.atlases import ATLAS_TITLES
from mnsmeta.data.space import mm_to_voxel
from mnsmeta.inference.power import (
    REGION_SHARE,
    TARGET_POWER,
    PlantingDesign,
    detection_power,
    in_region,
    minimum_detectable,
    region_mask,
)
from mnsmeta.inference.precision import decided, holm, mc_interval
from mnsmeta.inference.specificity import DENSITY_RATIO, MASK_PREFIX
from mnsmeta.meta_analysis.ale import CLUSTER_LOGP
from mnsmeta.meta_analysis.analysis_result import AnalysisResult
from mnsmeta.meta_analysis.clusters import CONNECTIVITY

SUPPORTED, INCONCLUSIVE = "supported", "inconclusive"
AGAINST, NOT_TESTABLE = "evidence against", "not testable"
WORDS = {"hypo": "reduced", "hyper": "increased"}
#: An "altered activity" claim needs at least this share of direction-known group contrasts.
MIN_GROUP_CONTRAST_SHARE = 0.5

#: Each rule in one sentence, as claims.json, the report and the README state it.
RULES = {
    "supported": "the claim's one primary test rejects its null at the claim's alpha after "
    "Holm's correction across the claims' primary tests (a cluster it rests on must pass the "
    "jackknife and its fail-safe N benchmark)",
    "evidence against": "the primary test does not reject and would have (>= 80 % power) had "
    "the effect involved the claim's share of experiments (one third)",
    "inconclusive": "neither: no rejection and too little power to call the null evidence",
    "not testable": "the design cannot answer the claim as worded (altered activity without "
    "direction-known group contrasts for at least half the experiments; a direction without "
    "contrasts of that direction; a test not run)",
    "convergence": "primary test: cluster-level FWE p of the strongest cluster in the claim's "
    f"regions (peak or >= {REGION_SHARE:.0%} of voxels with a region label)",
    "mns_overlap": "primary test: voxels of the significant clusters in the claim's MNS mask "
    "against the same clusters moved at random (>= 10,000 placements); power not simulated, "
    "so never evidence against",
    "inconsistent": "supported when >= the effect share of experiments report foci in the "
    "regions, they do not converge, and a convergence of that many would have been found "
    "(power >= 80 %); evidence against when a robust cluster lies there",
    "variants": "a variant changes a verdict only when its primary p lies across alpha by more "
    "than its Monte Carlo interval; power is the main analysis's",
}


@dataclass
class Verdict:
    """One claim's verdict and everything behind it (one entry of ``claims.json``)."""

    claim: Claim
    analysis: str
    verdict: str
    reason: str
    evidence: str
    primary: str = ""
    p: float = np.nan
    n_draws: int = 0
    p_adjusted: float = np.nan
    #: Whether the claim's primary p is in the Holm family.
    in_family: bool = False
    power: dict = field(default_factory=dict)
    certainty: str = ""
    certainty_reasons: tuple[str, ...] = ()
    #: Variant -> verdict under it (the verdict x variant matrix row).
    variants: dict = field(default_factory=dict)
    flipped_by: tuple[str, ...] = ()
    #: What the data show, when the claim is not testable as worded.
    neutral: str = ""
    #: Numbers of the clusters the verdict rests on, per analysis.
    clusters: dict = field(default_factory=dict)
    #: A significant cluster lies in the claim's regions; one of them is jackknife-fragile;
    #: one is dominated by one or two experiments.
    inside: bool = False
    fragile: bool = False
    dominated: bool = False
    #: One of those clusters passes the jackknife and its fail-safe N benchmark (None: no
    #: robustness check covers them). Every supported verdict resting on a cluster needs it.
    robust: bool | None = None
    #: The specificity readings behind the claim: one dict per healthy set, region and
    #: direction (``results/specificity/``), for the reader and the verdicts' consumers.
    specificity: list = field(default_factory=list)

    @property
    def p_interval(self) -> tuple[float, float]:
        return mc_interval(self.p, self.n_draws)

    def as_dict(self) -> dict:
        low, high = self.p_interval
        return {
            "id": self.claim.id,
            "paraphrase": self.claim.paraphrase,
            "estimand": self.claim.estimand,
            "analysis": self.analysis,
            "test": self.claim.test,
            "primary_test": self.primary,
            "alpha": self.claim.alpha,
            "regions": list(self.claim.regions),
            "direction": self.claim.direction,
            "verdict": self.verdict,
            "reason": self.reason,
            "p": _round(self.p),
            "p_mc_low": _round(low),
            "p_mc_high": _round(high),
            "n_draws": int(self.n_draws),
            "p_holm": _round(self.p_adjusted),
            "power": self.power,
            "certainty": self.certainty,
            "certainty_reasons": list(self.certainty_reasons),
            "variants": self.variants,
            "flipped_by": ", ".join(self.flipped_by),
            "neutral": self.neutral,
            "evidence": self.evidence,
            "specificity": self.specificity,
        }


def _whole(value) -> int | None:
    return None if pd.isna(value) else int(value)


def _round(value: float):
    return None if value is None or not np.isfinite(value) else float(f"{value:.4g}")


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
    load_map : callable, optional
        (Analysis, map name) -> 3D array or None: the run's maps (the cluster-size p map).
    summary : pandas.DataFrame, optional
        ``summary.csv``: each analysis's cluster-forming ALE and cluster-size cut.
    n_iters : int
        Monte Carlo iterations of the run (the precision of its cluster p).
    contributions : pandas.DataFrame, optional
        The robustness stage's contribution of each experiment to each cluster.
    overlap_clusters : pandas.DataFrame, optional
        The overlap stage's voxels of each cluster inside each mask.
    specificity : pandas.DataFrame, optional
        The specificity stage's readings (:func:`mnsmeta.inference.specificity.readings`).
    specificity_overlap : pandas.DataFrame, optional
        Its MNS overlap of each subtraction's two sets (``overlap.csv``).
    """

    def __init__(
        self,
        analyses: list[Analysis],
        load: Callable[[Analysis], AnalysisResult],
        overlap: pd.DataFrame | None = None,
        robustness: pd.DataFrame | None = None,
        sensitivity: pd.DataFrame | None = None,
        computed: Callable[[Analysis], bool] | None = None,
        load_map: Callable | None = None,
        summary: pd.DataFrame | None = None,
        n_iters: int = 0,
        contributions: pd.DataFrame | None = None,
        overlap_clusters: pd.DataFrame | None = None,
        specificity: pd.DataFrame | None = None,
        specificity_overlap: pd.DataFrame | None = None,
    ):
        self.analyses = {a.name: a for a in analyses}
        self._load = load
        self.computed = computed or (lambda analysis: True)
        self._results: dict[str, AnalysisResult] = {}
        self.overlap = overlap
        self.robustness = robustness
        self.sensitivity = sensitivity
        self.load_map = load_map or (lambda analysis, name: None)
        self.summary = summary
        self.n_iters = n_iters
        self.contributions = contributions
        self.overlap_clusters = overlap_clusters
        self.specificity = specificity
        self.specificity_overlap = specificity_overlap
        self._regions: dict = {}

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

    def region(self, labels: tuple[str, ...], atlas: str, **bounds) -> np.ndarray:
        """The voxels of a set of atlas labels, within optional bounds (cached)."""
        key = (tuple(sorted(labels)), atlas, tuple(sorted(bounds.items())))
        if key not in self._regions:
            self._regions[key] = region_mask(set(labels), atlas, **bounds)
        return self._regions[key]


# -- where the claim's regions are -----------------------------------------------------------


@dataclass(frozen=True)
class Where:
    """A claim's regions on one atlas."""

    names: tuple[str, ...]
    atlas: str
    mask: np.ndarray

    @property
    def text(self) -> str:
        return f"{'/'.join(self.names)} ({ATLAS_TITLES[self.atlas]})"


def where(claim: Claim, regions: Regions, evidence: Evidence, variant: bool = False) -> Where:
    """The claim's regions on the claims' atlas (or the variant atlas), as one voxel mask.

    A region without labels in the wanted atlas (prefrontal cortex has none in Juelich) is
    taken from the other atlas.
    """
    atlases = {regions.atlas_of(name, variant) for name in claim.regions}
    mask = None
    for name in claim.regions:
        atlas = regions.atlas_of(name, variant)
        names = tuple(regions.of(name, atlas))
        part = evidence.region(names, atlas, **regions.bounds.get(name, {}))
        mask = part if mask is None else mask | part
    atlas = atlases.pop() if len(atlases) == 1 else (regions.variant if variant else regions.atlas)
    return Where(tuple(claim.regions), atlas, mask)


def regional_clusters(result: AnalysisResult, mask: np.ndarray) -> list[int]:
    """Positions (in the cluster table) of the significant clusters in the region."""
    table = result.clusters
    inside = []
    for position, (_, row) in enumerate(table.iterrows()):
        peak = mm_to_voxel([[row.peak_x, row.peak_y, row.peak_z]])[0]
        if in_region(result.cluster_voxels(row), peak, mask):
            inside.append(position)
    return inside


def region_p(evidence: Evidence, analysis: Analysis, mask: np.ndarray) -> float:
    """Cluster-level FWE p of the strongest cluster (formed at the CDT) in the region.

    Read from the run's cluster-size p map (NiMARE writes each cluster's -log10 p on its
    voxels); 1.0 when no cluster formed in the region; NaN when the map is missing.
    """
    logp = evidence.load_map(analysis, CLUSTER_LOGP)
    if logp is None:
        return np.nan
    stat = evidence.load_map(analysis, "stat")
    labels, n = ndimage.label(logp > 0, CONNECTIVITY)
    best = 1.0
    for number in range(1, n + 1):
        voxels = np.argwhere(labels == number)
        values = stat[tuple(voxels.T)] if stat is not None else logp[tuple(voxels.T)]
        peak = voxels[int(np.argmax(values))]
        if in_region(voxels, peak, mask):
            best = min(best, float(10 ** -logp[tuple(peak)]))
    return best


# -- the claims --------------------------------------------------------------------------------


def _n_text(evidence, analysis) -> str:
    experiments = evidence.experiments(analysis)
    if experiments is None:
        counts = [len(evidence.experiments(n)) for n in analysis.inputs]
        return ", ".join(f"{n} n={c}" for n, c in zip(analysis.inputs, counts, strict=True))
    return f"n={len(experiments)} experiments"


def _short(label) -> str:
    return str(label).replace("_", " ")


def _listing(table: pd.DataFrame, positions=None) -> str:
    rows = table if positions is None else table.iloc[positions]
    return ", ".join(
        f"{r['cluster']}{' ' + str(r['direction']) if 'direction' in r else ''} "
        f"{_short(r.get('Harvard-Oxford peak', ''))} "
        f"({r.peak_x:g},{r.peak_y:g},{r.peak_z:g}; {r['size_mm3']:g} mm3)"
        for _, r in rows.iterrows()
    )


def group_contrast_share(evidence: Evidence, analysis: Analysis) -> tuple[int, int]:
    """Experiments with a direction-known patients-vs-controls contrast, and all of them."""
    names = [analysis.name] if analysis.is_ale else list(analysis.inputs)
    known = total = 0
    for name in names:
        experiments = evidence.experiments(name)
        if experiments is None:
            continue
        kinds = experiments.get("kinds", pd.Series("", index=experiments.index))
        known += int(direction_known(kinds).sum())
        total += len(experiments)
    return known, total


def _controls_of(evidence, name: str) -> Analysis | None:
    """The paradigm-matched healthy-only control set of disorder analysis ``name``, if any."""
    subtraction = _controls_subtraction(evidence, name)
    return None if subtraction is None else evidence.analyses[subtraction.inputs[1]]


def neutral_sentence(evidence: Evidence, analysis: Analysis, place: Where | None) -> str:
    """What the data show, in words that claim no alteration."""
    names = [analysis.name] if analysis.is_ale else list(analysis.inputs)
    parts = []
    for name in names:
        result = evidence.result(name)
        table = result.clusters
        n = len(evidence.experiments(name))
        if not len(table):
            parts.append(f"foci of {name}'s {n} experiments converge nowhere (cluster-FWE)")
            continue
        text = f"foci of {name}'s {n} experiments converge in {_listing(table)}"
        if place is not None:
            inside = regional_clusters(result, place.mask)
            text += f" ({len(inside)} in {place.text})"
        controls = _controls_of(evidence, name)
        if controls is not None and evidence.computed(controls) and place is not None:
            found = evidence.result(controls)
            there = regional_clusters(found, place.mask)
            text += (
                f"; its paradigm-matched healthy-only controls ({controls.name}) converge in "
                f"{place.text} too ({len(there)} cluster(s))"
                if there
                else f"; its paradigm-matched healthy-only controls ({controls.name}) do not "
                f"converge in {place.text}"
            )
        parts.append(text)
    if analysis.is_conjunction:
        shared = len(evidence.clusters(analysis))
        parts.append(f"the two share {shared} cluster(s)")
    return "; ".join(parts)


def _controls_subtraction(evidence, name: str) -> Analysis | None:
    """The subtraction of analysis ``name`` minus its paradigm-matched control set, if run."""
    for analysis in evidence.analyses.values():
        if analysis.is_subtraction and analysis.inputs[0] == name:
            second = evidence.analyses.get(analysis.inputs[1])
            if second is not None and second.controls:
                return analysis
    return None


#: What each kind of healthy set is, in a verdict's words.
HEALTHY_SETS = {
    "controls": "screened paradigm-matched database controls",
    "reference": "paradigm-matched published healthy references",
}


def _healthy_subtractions(evidence, name: str) -> list[tuple[Analysis, str]]:
    """The subtractions of ``name`` minus a healthy set (controls or published reference)."""
    found = []
    for analysis in evidence.analyses.values():
        if analysis.is_subtraction and analysis.inputs[0] == name:
            second = evidence.analyses.get(analysis.inputs[1])
            if second is not None and (second.controls or second.reference):
                found.append((analysis, "controls" if second.controls else "reference"))
    return found


def specificity(evidence, names, regions, direction: str) -> tuple[str, list[dict]]:
    """The specificity readings of disorder analyses ``names`` in ``regions``.

    Per healthy set of each disorder and per region, the region-wise permutation test of the
    disorder against it (``mnsmeta specificity``) in the claim's direction (``hypo``: the
    healthy set larger; otherwise the disorder larger), read as ``exceeds``, ``does not
    exceed (power X %)`` or ``inconclusive (power X %)``; for an MNS mask, also the share
    of each set's foci inside it. Returns the text (empty when nothing was computed) and
    the rows.
    """
    table = evidence.specificity
    if table is None or not len(table):
        return "", []
    rows, parts = [], []
    for name in names:
        for subtraction, kind in _healthy_subtractions(evidence, name):
            second = subtraction.inputs[1]
            wanted = f"{second}>{name}" if direction == "hypo" else f"{name}>{second}"
            mine = table[
                (table["analysis"] == subtraction.name)
                & table["region"].isin(regions)
                & (table["direction"] == wanted)
            ]
            if not len(mine):
                continue
            readings = []
            for r in mine.itertuples():
                rows.append({**_reading_row(subtraction, r), "healthy_set": second, "kind": kind})
                said = f"{r.region} {r.reading} (p_fwe={r.p_fwe:.3g})"
                ratio = getattr(r, "density_ratio", np.nan)
                if r.reading == "exceeds" and ratio > DENSITY_RATIO:
                    said += (
                        f", but with {ratio:.1f} times the foci per experiment: a denser "
                        "set converges more anywhere"
                    )
                    rows[-1]["density_ratio"] = _round(ratio)
                readings.append(said)
            text = f"{wanted} ({HEALTHY_SETS[kind]}): " + ", ".join(readings)
            share = _foci_share(evidence, subtraction.name, regions)
            parts.append(text + (f"; {share}" if share else ""))
    if not parts:
        return "", rows
    return "; specificity (region-wise permutation tests): " + "; ".join(parts), rows


def _reading_row(subtraction: Analysis, r) -> dict:
    """One region-wise test of a readings table (:func:`readings`), for ``claims.json``."""
    return {
        "subtraction": subtraction.name,
        "region": r.region,
        "direction": r.direction,
        "max_difference": _round(r.max_difference),
        "p_fwe": _round(r.p_fwe),
        "k_of_interest": _whole(r.k_of_interest),
        "power": _round(r.power),
        "reading": r.reading,
    }


def _difference_readings(evidence, subtraction: Analysis, regions) -> tuple[str, list[dict]]:
    """A subtraction's own region-wise tests in ``regions``, both directions."""
    table = evidence.specificity
    if table is None or not len(table):
        return "", []
    mine = table[(table["analysis"] == subtraction.name) & table["region"].isin(regions)]
    rows = [_reading_row(subtraction, r) for r in mine.itertuples()]
    if not rows:
        return "", []
    text = ", ".join(
        f"{r['region']} {r['direction']} {r['reading']} (p_fwe={r['p_fwe']:.3g})" for r in rows
    )
    return f"; region-wise permutation tests: {text}", rows


def _foci_share(evidence, subtraction: str, regions) -> str:
    """Each set's share of foci in the MNS masks among ``regions``, with the p."""
    table = evidence.specificity_overlap
    if table is None or not len(table):
        return ""
    masks = [r[len(MASK_PREFIX) :] for r in regions if r.startswith(MASK_PREFIX)]
    mine = table[(table["analysis"] == subtraction) & table["mask"].isin(masks)]
    return ", ".join(
        f"foci in the {r.mask} mask {r.first} {r.share_first:.1%} vs {r.second} "
        f"{r.share_second:.1%} (permutation p={r.p:.3g})"
        for r in mine.itertuples()
    )


def _robustness(evidence, analysis: Analysis, positions):
    """Jackknife and fail-safe N of the clusters at ``positions``.

    Returns the text, whether one is fragile, whether one is dominated, and whether one is
    robust (not jackknife-fragile and at or above its fail-safe N benchmark; None when no
    robustness check covers them).
    """
    table = evidence.robustness
    if table is None or not analysis.is_ale:
        return "robustness not computed", False, False, None
    clusters = evidence.clusters(analysis)
    parts, fragile, dominated, robust = [], False, False, None
    for position in positions:
        number = int(clusters.iloc[position]["cluster"])
        rows = table[(table["analysis"] == analysis.name) & (table["cluster"] == number)]
        if not len(rows):
            continue
        r = rows.iloc[0]
        parts.append(
            f"cluster {number}: jackknife {r.jackknife_survived}/{r.jackknife_n}, FSN {r.fsn}"
            f" (benchmark {r.fsn_benchmark})"
        )
        fragile |= bool(r.fragile)
        dominated |= bool(r.dominated)
        passes = not bool(r.fragile) and bool(getattr(r, "fsn_robust", True))
        robust = bool(robust) or passes
    return ("; ".join(parts) or "robustness not computed"), fragile, dominated, robust


class Judge:
    """Decides the claims on one set of evidence (the main results or one variant).

    Parameters
    ----------
    regions : Regions
    evidence : Evidence
    power : dict or None
        Claim id -> power summary to reuse (a variant reuses the main analysis's); None:
        simulate it (``seed``, ``replicates``).
    variant_atlas : bool
        Judge the regions on the variant atlas (the atlas-variant row).
    """

    def __init__(
        self,
        regions: Regions,
        evidence: Evidence,
        power: dict | None = None,
        seed: int = 0,
        replicates: int = 100,
        variant_atlas: bool = False,
    ):
        self.regions = regions
        self.evidence = evidence
        self.known_power = power
        self.seed = seed
        self.replicates = replicates
        self.variant_atlas = variant_atlas

    # The verdict of one claim ------------------------------------------------------------

    def judge(self, claim: Claim) -> Verdict:
        evidence = self.evidence
        analyses = list(evidence.analyses.values())
        analysis = answering(claim.analysis, analyses)
        if claim.direction in WORDS:
            directed = answering(claim.analysis, analyses, claim.direction)
            refusal = self._directional_refusal(claim, directed, analysis)
            if refusal is not None:
                return refusal
            analysis = directed
        if not evidence.computed(analysis):
            return Verdict(
                claim, analysis.name, NOT_TESTABLE, f"{analysis.name} has no results", ""
            )
        place = where(claim, self.regions, evidence, self.variant_atlas) if claim.regions else None
        if claim.requires == "group_contrasts" and claim.direction not in WORDS:
            known, total = group_contrast_share(evidence, analysis)
            if total == 0 or known / total < MIN_GROUP_CONTRAST_SHARE:
                specific, specific_rows = specificity(
                    evidence, self._disorders(claim), claim.regions, claim.direction
                )
                return Verdict(
                    claim,
                    analysis.name,
                    NOT_TESTABLE,
                    f"a claim of altered activity needs patients-vs-controls contrasts of known "
                    f"direction; {known} of {total} experiments have one (< "
                    f"{MIN_GROUP_CONTRAST_SHARE:.0%}): the maps show where foci converge, not "
                    "alteration",
                    "",
                    primary="none (not testable as stated)",
                    neutral=neutral_sentence(evidence, analysis, place) + specific,
                    specificity=specific_rows,
                )
        if claim.test == "mns_overlap":
            return self._overlap(claim, analysis)
        return self._convergence(claim, analysis, place)

    def _directional_refusal(self, claim, directed, study_level) -> Verdict | None:
        word = WORDS[claim.direction]
        evidence = self.evidence
        if directed is None or not evidence.computed(directed):
            known, total = group_contrast_share(evidence, study_level)
            what = (
                "no analysis of that direction's contrasts in analyses.toml"
                if directed is None
                else f"{directed.name}: no included study has a curated contrast of that kind"
            )
            return Verdict(
                claim,
                (directed or study_level).name,
                NOT_TESTABLE,
                f"{word} activity needs patients-vs-controls contrasts of that direction: "
                f"{what} ({known} of {total} {study_level.name} experiments have any "
                "direction-known group contrast)",
                "",
                primary="none (not testable as stated)",
                neutral=neutral_sentence(evidence, study_level, None),
            )
        return None

    # Convergence and its mirror, inconsistency ---------------------------------------------

    def _convergence(self, claim: Claim, analysis: Analysis, place: Where) -> Verdict:
        evidence = self.evidence
        inputs = [analysis] if analysis.is_ale else [evidence.analyses[n] for n in analysis.inputs]
        # A subtraction's cluster p is not kept: its verdict rests on its clusters alone.
        ps = [] if analysis.is_subtraction else [region_p(evidence, a, place.mask) for a in inputs]
        p = max(ps) if ps else np.nan
        # p = 1 when no cluster formed in the regions: exact, not a Monte Carlo estimate.
        draws = evidence.n_iters if np.isfinite(p) and p < 1 else 0
        inside = regional_clusters(evidence.result(analysis), place.mask)
        table = evidence.clusters(analysis)
        robust, fragile, dominated, passes = _robustness(evidence, analysis, inside)
        head = f"{analysis.name} ({_n_text(evidence, analysis)})"
        if inside:
            evidence_text = f"{head}: {len(inside)} cluster(s) in {place.text}: "
            evidence_text += _listing(table, inside) + f"; {robust}"
        else:
            others = _listing(table) or "none"
            evidence_text = f"{head}: no cluster in {place.text}; clusters: {others}"
        if analysis.is_subtraction:  # the claim is the difference: its own region-wise tests
            specific, specific_rows = _difference_readings(evidence, analysis, claim.regions)
        else:
            specific, specific_rows = specificity(
                evidence, self._disorders(claim), claim.regions, claim.direction
            )
        evidence_text += specific
        primary = f"cluster-level FWE p of the strongest cluster in {place.text}" + (
            " (larger p of the inputs)" if not analysis.is_ale else ""
        )
        verdict = Verdict(
            claim,
            analysis.name,
            "",
            "",
            evidence_text,
            primary=primary,
            p=p,
            n_draws=draws,
            in_family=claim.test == "convergence" and np.isfinite(p),
            clusters={analysis.name: [int(table.iloc[i]["cluster"]) for i in inside]},
        )
        verdict.fragile, verdict.dominated, verdict.inside = fragile, dominated, bool(inside)
        verdict.robust = passes
        verdict.specificity = specific_rows
        hits = self._hits(analysis, place) if claim.test == "inconsistent" else None
        if not analysis.is_subtraction:
            verdict.power = self._power(claim, analysis, place, hits)
        if hits is not None:
            verdict.evidence += "; " + self._hit_rates(claim, analysis, place)
        return verdict

    def _disorders(self, claim: Claim) -> list[str]:
        """The study-level disorder analyses behind a claim (a conjunction's inputs)."""
        study = answering(claim.analysis, list(self.evidence.analyses.values()))
        if study is None:
            return []
        return [study.name] if study.is_ale else list(study.inputs)

    def _hits(self, analysis: Analysis, place: Where) -> tuple[int, int]:
        """Experiments reporting at least one focus in the region, and all experiments."""
        experiment_set = self.evidence.result(analysis).experiments
        foci = experiment_set.foci
        ijk = mm_to_voxel(foci[["x", "y", "z"]].to_numpy(dtype=float))
        shape = np.array(place.mask.shape)
        ok = np.all((ijk >= 0) & (ijk < shape), axis=1)
        hit = np.zeros(len(foci), dtype=bool)
        hit[ok] = place.mask[tuple(ijk[ok].T)]
        reporting = foci.loc[hit, "experiment_id"].astype(str).nunique()
        return int(reporting), len(experiment_set.experiments)

    def _hit_rates(self, claim: Claim, analysis: Analysis, place: Where) -> str:
        """Experiments with a focus in the regions and in each region, beside the healthy
        references' (the task-matched controls and the MNS reference)."""
        evidence = self.evidence
        references = [analysis]
        controls = _controls_of(evidence, analysis.name)
        if controls is not None:
            references.append(controls)
        reference = mns_reference(list(evidence.analyses.values()))
        references += [reference] if reference is not None else []
        references = [
            r
            for r in references
            if evidence.computed(r) and evidence.result(r).experiments is not None
        ]
        places = [place]
        if len(claim.regions) > 1:
            single = [dataclasses.replace(claim, regions=(name,)) for name in claim.regions]
            places += [where(c, self.regions, evidence, self.variant_atlas) for c in single]
        lines = []
        for region in places:
            rates = []
            for r in references:
                hits, n = self._hits(r, region)
                rates.append(f"{r.name} {hits}/{n} ({hits / n:.0%})")
            lines.append(f"{region.text}: " + ", ".join(rates))
        return "experiments with a focus in " + "; in ".join(lines)

    def _power(self, claim: Claim, analysis: Analysis, place: Where, hits) -> dict:
        """The simulated power (or the main analysis's, in a variant)."""
        if self.known_power is not None:
            power = dict(self.known_power.get(claim.id, {}))
            if hits is not None:
                power.update(hits=hits[0], n_experiments=hits[1])
            return power
        evidence = self.evidence
        inputs = [analysis] if analysis.is_ale else [evidence.analyses[n] for n in analysis.inputs]
        designs = []
        for a in inputs:
            row = None if evidence.summary is None else evidence.summary.set_index("analysis")
            if row is None or a.name not in row.index:
                return {"note": "power not simulated: the run summary has no thresholds"}
            experiment_set = evidence.result(a).experiments
            designs.append(
                PlantingDesign(
                    experiment_set.foci,
                    experiment_set.experiments["sample_size"],
                    float(row.loc[a.name, "cluster_forming_ale"]),
                    float(row.loc[a.name, "cluster_size_threshold_voxels"]),
                )
            )
        n = min(len(evidence.experiments(a)) for a in inputs)
        k_effect = max(1, math.ceil(claim.effect * n))
        seed = int.from_bytes(claim.id.encode()[:4].ljust(4, b"\0"), "little") ^ self.seed
        table = detection_power(
            designs, place.mask, range(2, n + 1), seed, self.replicates, stop_at=TARGET_POWER
        )
        mde = minimum_detectable(table)
        at = table[table["k"] == k_effect]
        power = {
            "n_experiments": n,
            "k_effect": k_effect,
            "mde_k": mde,
            "replicates": self.replicates,
            "curve": table.to_dict("records"),
        }
        if len(at):
            power["power_at_effect"] = float(at["power"].iloc[0])
        elif mde is not None and mde < k_effect:
            power["power_at_effect"] = f">= {TARGET_POWER:g} (MDE {mde} < {k_effect})"
        if hits is not None:
            power["hits"] = hits[0]
        return power

    # The MNS overlap ------------------------------------------------------------------------

    def _overlap(self, claim: Claim, analysis: Analysis) -> Verdict:
        evidence = self.evidence
        overlap = evidence.overlap
        head = f"{analysis.name} ({_n_text(evidence, analysis)})"
        primary = (
            f"overlap with the {claim.mask} MNS mask, ranked among database sets drawn like "
            "the analysis (base-rate null)"
        )
        if overlap is None or not (overlap["analysis"] == analysis.name).any():
            return Verdict(
                claim,
                analysis.name,
                NOT_TESTABLE,
                "the overlap test has not been run (mnsmeta overlap)",
                head,
                primary=primary,
            )
        rows = overlap[overlap["analysis"] == analysis.name]
        if "part" in rows:  # the whole masks; their parts are reported, not judged
            rows = rows[rows["part"].fillna("") == ""]

        def find(mask, test, statistic):
            hit = rows[(rows["mask"] == mask) & (rows["test"] == test)]
            hit = hit[hit["statistic"] == statistic]
            return hit.iloc[0] if len(hit) else None

        main = find(claim.mask, "thresholded_base_rate", "voxels_in_both")
        secondary = []
        base_rate = {
            mask: find(mask, "thresholded_base_rate", "voxels_in_both")
            for mask in rows["mask"].unique()
        }
        base_rate = {m: r for m, r in base_rate.items() if r is not None}
        if base_rate:
            passing = [m for m, r in base_rate.items() if r.p < claim.alpha]
            secondary.append(
                "base-rate null in every mask: "
                + ", ".join(f"{m} p={r.p:.3g}" for m, r in base_rate.items())
                + (
                    f" (below {claim.alpha:g} in every mask)"
                    if len(passing) == len(base_rate)
                    else f" (below {claim.alpha:g} in {len(passing)} of {len(base_rate)} masks)"
                )
            )
        for mask in rows["mask"].unique():
            for test, label in (
                ("roi_ale_base_rate", "ROI ALE, base-rate null"),
                ("thresholded_overlap", "moved clusters (are the foci non-uniform?)"),
                ("roi_ale", "ROI ALE, uniform null (are the foci non-uniform?)"),
                ("roi_ale_gm", "ROI ALE, grey-matter null"),
            ):
                statistic = "voxels_in_both" if test.startswith("thresholded") else "mean_ale"
                row = find(mask, test, statistic)
                if row is None:
                    continue
                secondary.append(f"{mask} {label} p={row.p:.3g}")
        for name in self._disorders(claim):
            for subtraction, _ in _healthy_subtractions(evidence, name):
                healthy = overlap[overlap["analysis"] == subtraction.inputs[1]]
                if "part" in healthy:
                    healthy = healthy[healthy["part"].fillna("") == ""]
                row = healthy[
                    (healthy["mask"] == claim.mask)
                    & (healthy["test"] == "thresholded_base_rate")
                    & (healthy["statistic"] == "voxels_in_both")
                ]
                if len(row):
                    r = row.iloc[0]
                    secondary.append(
                        f"healthy {subtraction.inputs[1]} {claim.mask} base-rate "
                        f"{r.observed:g} voxels p={r.p:.3g}"
                    )
        clusters = evidence.clusters(analysis)
        specific, specific_rows = specificity(
            evidence, self._disorders(claim), [MASK_PREFIX + claim.mask], claim.direction
        )
        if main is None or int(main.get("n_perm", 0) or 0) == 0 or not len(clusters):
            verdict = Verdict(
                claim,
                analysis.name,
                INCONCLUSIVE,
                f"{analysis.name} has no significant cluster to place in the mask (no "
                "convergence to overlap); the overlap test's power is not simulated",
                f"{head}: no cluster; secondary (do not decide): "
                + ", ".join(secondary)
                + specific,
                primary=primary,
                specificity=specific_rows,
            )
            return verdict
        p, n = float(main.p), int(main.n_perm)
        alone = rows[(rows["mask"] == claim.mask) & (rows["test"] == "cluster_overlap")]
        if len(alone):  # each cluster against its own placements: is this one MNS-located?
            secondary.append(
                "each cluster moved alone: "
                + ", ".join(
                    f"{int(r.cluster)} {r.observed:g} voxels p={r.p:.3g}"
                    for r in alone.itertuples()
                )
            )
        text = (
            f"{head}: {main.observed:g} cluster voxels in the {claim.mask} mask (base-rate p="
            f"{p:.3g}: {main.null_mean:.3g} voxels in database sets drawn like it); secondary "
            "(do not decide): " + ", ".join(secondary)
        )
        verdict = Verdict(
            claim, analysis.name, "", "", text, primary=primary, p=p, n_draws=n, in_family=True
        )
        # The clusters that carry the overlap, and whether one of them is robust.
        carrying = list(clusters["cluster"].astype(int))
        table = evidence.overlap_clusters
        if table is not None and len(table):
            mine = table[(table["analysis"] == analysis.name) & (table["mask"] == claim.mask)]
            carrying = [int(c) for c in mine.loc[mine["voxels_in_mask"] > 0, "cluster"]]
        positions = [i for i, c in enumerate(clusters["cluster"].astype(int)) if c in carrying]
        robust, fragile, dominated, passes = _robustness(evidence, analysis, positions)
        verdict.clusters = {analysis.name: carrying}
        verdict.inside, verdict.fragile, verdict.dominated = bool(carrying), fragile, dominated
        verdict.robust = passes
        verdict.evidence += f"; clusters in the mask: {robust}" + specific
        verdict.specificity = specific_rows
        return verdict

    # All claims -----------------------------------------------------------------------------

    def judge_all(self, claims: list[Claim]) -> list[Verdict]:
        """Every claim's verdict, Holm-corrected across the claims' primary tests."""
        return self.finish([self.judge(claim) for claim in claims])

    @staticmethod
    def finish(verdicts: list[Verdict]) -> list[Verdict]:
        """Holm across the primary tests of ``verdicts``, then each verdict's decision."""
        family = [v for v in verdicts if v.in_family and np.isfinite(v.p)]
        for v, adjusted in zip(family, holm([v.p for v in family]), strict=True):
            v.p_adjusted = float(adjusted)
        for v in verdicts:
            if not v.verdict:
                decide(v)
        return verdicts


def decide(v: Verdict) -> None:
    """Set the verdict and its one-line reason from the primary test and the power."""
    claim, alpha = v.claim, v.claim.alpha
    low, high = v.p_interval
    p_text = (
        f"p={v.p:.3g} (MC 95% {low:.3g}-{high:.3g})"
        if np.isfinite(low)
        else f"p={v.p:.3g}" + (": no cluster formed there" if v.p == 1 else "")
    )
    power = v.power
    mde = power.get("mde_k")
    k_effect = power.get("k_effect")
    n = power.get("n_experiments")
    if claim.test == "inconsistent":
        reporting = power.get("hits", 0)
        share_ok = n and reporting >= claim.effect * n
        if v.p < alpha and v.inside and v.robust is not False:
            v.verdict = AGAINST
            v.reason = f"a robust cluster lies in the regions ({p_text}): the findings converge"
        elif v.p >= alpha and share_ok and mde is not None and mde <= reporting:
            v.verdict = SUPPORTED
            v.reason = (
                f"{reporting} of {n} experiments report foci in the regions, yet they do not "
                f"converge ({p_text}), and a convergence of {mde} would have been found 80 % "
                "of the time"
            )
        else:
            v.verdict = INCONCLUSIVE
            why = (
                f"only {reporting} of {n} experiments report foci there"
                if not share_ok
                else f"a convergence of {reporting} experiments is found < 80 % of the time"
                if v.p >= alpha
                else "no cluster there passes the jackknife and its fail-safe N benchmark"
            )
            v.reason = f"{why} ({p_text})"
        return
    if not np.isfinite(v.p):  # a subtraction: its clusters are cluster-FWE at 0.05
        v.verdict = SUPPORTED if v.inside else INCONCLUSIVE
        v.reason = (
            "a cluster-FWE cluster lies in the regions (its p is not kept; not in the Holm family)"
            if v.inside
            else "no cluster-FWE cluster in the regions; "
            + (
                "region-wise tests: "
                + ", ".join(
                    f"{r['region']} {r['direction']} {r['reading']}" for r in v.specificity
                )
                if v.specificity
                else "no power simulated (run `mnsmeta specificity`)"
            )
        )
        return
    adjusted = v.p_adjusted if np.isfinite(v.p_adjusted) else v.p
    if adjusted < alpha and v.inside and v.robust is False:
        where = "mask" if claim.test == "mns_overlap" else "regions"
        v.verdict = INCONCLUSIVE
        v.reason = (
            f"the primary test rejects ({p_text}; Holm {adjusted:.3g}), but no cluster in the "
            f"{where} passes the jackknife and its fail-safe N benchmark"
        )
    elif adjusted < alpha and (claim.test != "convergence" or v.inside):
        v.verdict = SUPPORTED
        v.reason = f"the primary test rejects ({p_text}; Holm-adjusted p={adjusted:.3g})"
    elif claim.test == "convergence" and mde is not None and k_effect and mde <= k_effect:
        v.verdict = AGAINST
        v.reason = (
            f"no convergence in the regions ({p_text}; Holm {adjusted:.3g}), and convergence of "
            f"{mde} of {n} experiments (<= the claim's {k_effect}) would have been found 80 % "
            "of the time"
        )
    else:
        v.verdict = INCONCLUSIVE
        if claim.test == "mns_overlap":
            v.reason = (
                f"the overlap does not exceed that of database sets drawn like the analysis "
                f"after correction ({p_text}; Holm {adjusted:.3g}); the test's power is not "
                "simulated"
            )
        else:
            detail = f"MDE {mde} experiments" if mde is not None else f"power < 80 % up to k={n}"
            v.reason = (
                f"no convergence in the regions after correction ({p_text}; Holm "
                f"{adjusted:.3g}), with too little power to count as evidence against "
                f"({detail}; the claim's effect: {k_effect} of {n})"
            )


def changed(main: Verdict, other: Verdict) -> bool:
    """Whether ``other`` changes ``main``'s verdict beyond Monte Carlo error.

    A change that rests on a p that is on the other side of alpha only within its Monte
    Carlo interval (either p) does not count.
    """
    if main.verdict == other.verdict or NOT_TESTABLE in (main.verdict, other.verdict):
        return False
    alpha = main.claim.alpha
    for v in (main, other):
        if np.isfinite(v.p) and v.n_draws and not decided(v.p, v.n_draws, alpha):
            return False
    return True


def check_claims(
    claims: list[Claim], regions: Regions, evidence: Evidence, **options
) -> list[Verdict]:
    """One verdict per claim, from the evidence of the results (see :class:`Judge`)."""
    return Judge(regions, evidence, **options).judge_all(claims)
