"""``mnsmeta claims``: the verdicts on the review's claims, from a results folder.

The main verdicts come from the main results; the same rules are then applied to every
sensitivity variant's reruns (``results/robustness/sensitivity/<variant>``, the conjunction
formed again from the variant's SAD and BPD maps) and to the regions on the variant atlas,
giving the verdict x variant matrix (``claims_variants.csv``). A verdict counts as changed
under a variant only beyond Monte Carlo error (:func:`mnsmeta.claims.verdicts.changed`); each
verdict then gets its certainty grade.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mnsmeta.claims.certainty import grade
from mnsmeta.claims.verdicts import RULES, Evidence, Judge, Verdict, changed
from mnsmeta.curation.analyses import Analysis
from mnsmeta.curation.claims_file import Claim, Regions
from mnsmeta.data.space import brain_mask_img
from mnsmeta.errors import MnsmetaInputError
from mnsmeta.inference.sensitivity import leaves_no_data
from mnsmeta.inference.specificity import readings
from mnsmeta.meta_analysis import ale
from mnsmeta.meta_analysis.analysis_result import AnalysisResult
from mnsmeta.meta_analysis.clusters import cluster_table
from mnsmeta.workflows.provenance import now
from mnsmeta.workflows.results import ResultsFolder, read_map, write_csv, write_json

LGR = logging.getLogger(__name__)

#: The name of the atlas-variant row of the verdict x variant matrix.
ATLAS_VARIANT = "atlas_variant"
#: Replicates of each power simulation (per number of converging experiments).
POWER_REPLICATES = 100


def _loader(results: ResultsFolder):
    def load_map(analysis: Analysis, name: str):
        path = results.analysis(analysis).map(name)
        return read_map(path) if path.is_file() else None

    return load_map


def evidence_from(results: ResultsFolder, analyses: list[Analysis]) -> Evidence:
    """The evidence the verdicts read, from what run, overlap and robustness wrote."""
    results.require()
    settings = (results.read_provenance() or {}).get("settings", {})
    return Evidence(
        analyses,
        results.load,
        overlap=results.read_overlap(),
        robustness=results.robustness.read_table("clusters"),
        sensitivity=results.robustness.read_table("sensitivity"),
        computed=results.computed,
        load_map=_loader(results),
        summary=results.read_summary(),
        n_iters=int(settings.get("n_iters", 0) or 0),
        contributions=results.robustness.read_table("contributions"),
        overlap_clusters=results.read_overlap_clusters(),
        specificity=_specificity_readings(results),
        specificity_overlap=results.specificity.read_table("overlap"),
    )


def _specificity_readings(results: ResultsFolder) -> pd.DataFrame | None:
    """The specificity stage's readings, or None when it has not run."""
    differences = results.specificity.read_table("differences")
    power = results.specificity.read_table("power")
    if differences is None or power is None or differences.empty or power.empty:
        return None
    return readings(differences, power)


def conjunction_of(analysis: Analysis, first: AnalysisResult, second: AnalysisResult):
    """A conjunction formed from two loaded results (as ``mnsmeta run`` forms it).

    A result saved without its thresholded map (labels only) counts its cluster voxels as 1.
    """

    def thresholded(result: AnalysisResult) -> np.ndarray:
        if result.thresholded is not None:
            return result.thresholded
        return (result.labels > 0).astype(np.float32)

    conjunction = ale.conjunction_map(thresholded(first), thresholded(second))
    foci = pd.concat([first.experiments.foci, second.experiments.foci])
    table, labels = cluster_table(
        conjunction, brain_mask_img().affine, conjunction, conjunction, foci
    )
    return AnalysisResult(analysis, None, table, labels, conjunction)


@dataclass
class Variant:
    """One variant's evidence, and what it changed: its reruns and whether its masks differ."""

    evidence: Evidence
    rerun: set
    masks_changed: bool

    def touches(self, verdict: Verdict, analyses: dict[str, Analysis]) -> bool:
        """Whether the variant changes anything the verdict reads."""
        analysis = analyses.get(verdict.analysis)
        reads = {verdict.analysis, *(analysis.inputs if analysis is not None else ())}
        overlap = verdict.claim.test == "mns_overlap" and self.masks_changed
        return bool(reads & self.rerun) or overlap


#: Database sets of a variant's base-rate test (the main run's: ``--n-perm``, 1,000): a
#: variant changes a verdict only when its p lies beyond alpha by more than its Monte Carlo
#: interval, which 250 sets keep near +-0.03 at p = 0.05.
VARIANT_SETS = 250


def variant_evidence(
    folder: ResultsFolder,
    analyses: list[Analysis],
    main: Evidence,
    main_masks: dict,
    emptied: set | None = None,
    judged: set | None = None,
) -> Variant:
    """Evidence of one sensitivity variant: its reruns, the main results for the analyses it
    leaves as they are, the conjunction formed again, and the variant's MNS masks.

    ``emptied`` names the analyses the variant leaves without data (not testable there).

    The overlap table gains the moved-cluster rows (cheap) of every analysis that lacks them
    in the variant, against the variant's masks, and the base-rate rows (the MNS claims'
    primary test: :data:`VARIANT_SETS` database sets) of the analyses in ``judged`` (those
    of the MNS claims).
    """
    from mnsmeta.workflows.overlap import MOVES, base_rate_rows, thresholded_overlap_rows
    from mnsmeta.workflows.settings import Settings

    rerun = {a.name for a in analyses if a.is_ale and folder.computed(a)}
    loaded: dict[str, AnalysisResult] = {}

    def load(analysis: Analysis) -> AnalysisResult:
        if analysis.name not in loaded:
            if analysis.is_conjunction:
                first, second = (load(main.analyses[n]) for n in analysis.inputs)
                loaded[analysis.name] = conjunction_of(analysis, first, second)
            elif analysis.name in rerun:
                loaded[analysis.name] = folder.load(analysis)
            else:
                loaded[analysis.name] = main.result(analysis)
        return loaded[analysis.name]

    emptied = emptied or set()
    usable = [
        a
        for a in main.analyses.values()
        if a.is_ale and main.computed(a) and a.name not in emptied
    ]
    names = {a.name for a in usable}
    usable += [a for a in analyses if a.is_conjunction and set(a.inputs) <= names]
    rerun |= emptied
    rerun |= {a.name for a in analyses if a.is_conjunction and set(a.inputs) & rerun}
    settings = (folder.read_provenance() or {}).get("settings", {})
    masks = folder.read_masks() or main_masks
    masks_changed = any(
        name not in main_masks or not np.array_equal(mask, main_masks[name][0])
        for name, (mask, _) in masks.items()
    )
    overlap = folder.read_overlap()
    tested = set() if overlap is None else set(overlap["analysis"])
    brain = np.asarray(brain_mask_img().dataobj) > 0
    seed = int(settings.get("seed", 0) or 0)
    moves = Settings(n_perm=MOVES, seed=seed, progress=False)
    sets = Settings(n_perm=VARIANT_SETS, seed=seed, progress=False)
    tables = [t for t in (folder.read_summary(), main.summary) if t is not None]
    # The variant's thresholds first: an analysis it reran has its own.
    summary = (
        pd.concat(tables, ignore_index=True).drop_duplicates("analysis").set_index("analysis")
        if tables
        else None
    )
    extra = []
    has_base_rate = (
        set() if overlap is None
        else set(overlap.loc[overlap["test"] == "thresholded_base_rate", "analysis"])
    )  # fmt: skip
    for analysis in usable:
        # The healthy sets are not rerun in a variant: their main overlap stands.
        if not analysis.tested_for_overlap or analysis.is_healthy_set:
            continue
        result = load(analysis)
        if analysis.name not in tested:
            for mask_name, (mask, _) in masks.items():
                extra += thresholded_overlap_rows(
                    analysis.name, result.labels, result.clusters, mask, mask_name, brain, moves
                )
        if analysis.name not in (judged or set()) or analysis.name in has_base_rate:
            continue
        if analysis.name in rerun or masks_changed:
            inputs = [result] if analysis.is_ale else [load(main.analyses[n]) for n in
                                                       analysis.inputs]  # fmt: skip
            arrays = {name: mask for name, (mask, _) in masks.items()}
            extra += base_rate_rows(analysis, result, inputs, summary, arrays, sets, brain)
        elif main.overlap is not None:  # same map, same masks: the main run's test stands
            same = main.overlap[
                (main.overlap["analysis"] == analysis.name)
                & main.overlap["test"].str.endswith("_base_rate")
            ]
            extra += same.to_dict("records")
    if extra:
        overlap = pd.concat([overlap, pd.DataFrame(extra)], ignore_index=True)

    def load_map(analysis: Analysis, name: str):
        source = folder if analysis.name in rerun else None
        return _loader(source)(analysis, name) if source else main.load_map(analysis, name)

    computed = {u.name for u in usable}
    evidence = Evidence(
        list(main.analyses.values()),
        load,
        overlap=overlap,
        computed=lambda a: a.name in computed,
        load_map=load_map,
        summary=folder.read_summary(),
        n_iters=int(settings.get("n_iters", 0) or 0) or main.n_iters,
    )
    return Variant(evidence, rerun, masks_changed)


def judge_variants(
    claims: list[Claim],
    regions: Regions,
    analyses: list[Analysis],
    results: ResultsFolder,
    main: Evidence,
    verdicts: list[Verdict],
) -> pd.DataFrame:
    """The verdict x variant matrix; fills each verdict's ``variants`` and ``flipped_by``.

    A claim whose analyses (and, for an overlap claim, masks) a variant leaves as they are
    keeps its main verdict there, marked as not rerun.
    """
    power = {v.claim.id: v.power for v in verdicts}
    main_masks = results.read_masks()
    variants = {ATLAS_VARIANT: None}
    root = results.robustness.path / "sensitivity"
    # The analyses of the MNS claims: a variant reruns their primary (base-rate) test.
    judged = {
        a.name
        for c in claims
        if c.test == "mns_overlap"
        for a in analyses
        if a.answers(c.analysis, c.direction)
    }
    table = main.sensitivity if main.sensitivity is not None else pd.DataFrame()
    for path in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        folder = results.robustness.sensitivity_variant(path.name)
        rows = table[table["variant"] == path.name] if len(table) else table
        emptied = {r.analysis for r in rows.itertuples() if leaves_no_data(r.conclusion_changes)}
        try:
            variants[path.name] = variant_evidence(
                folder, analyses, main, main_masks, emptied, judged
            )
        except MnsmetaInputError as error:  # a variant folder with a missing file: skipped
            LGR.warning("variant %s: not judged (%s)", path.name, error)
    matrix = []
    for name, variant in variants.items():
        if variant is None:
            judge = Judge(regions, main, power, variant_atlas=True)
        else:
            judge = Judge(regions, variant.evidence, power)
        # Holm within the variant, as in the main verdicts.
        others = judge.finish([judge.judge(claim) for claim in claims])
        for main_verdict, other in zip(verdicts, others, strict=True):
            touched = variant is None or variant.touches(main_verdict, main.analyses)
            flip = touched and changed(main_verdict, other)
            if flip:
                main_verdict.flipped_by = (*main_verdict.flipped_by, name)
            shown = other if touched else main_verdict
            main_verdict.variants[name] = shown.verdict + (
                " (changed)" if flip else "" if touched else " (not rerun)"
            )
            low, high = shown.p_interval
            matrix.append(
                {
                    "claim": main_verdict.claim.id,
                    "variant": name,
                    "verdict": shown.verdict,
                    "main_verdict": main_verdict.verdict,
                    "changed": flip,
                    "rerun": touched,
                    "p": shown.p,
                    "p_mc_low": low,
                    "p_mc_high": high,
                    "n_draws": shown.n_draws,
                    "p_holm": shown.p_adjusted,
                    "reason": shown.reason
                    if touched
                    else "the variant leaves this claim's analyses as they are",
                }
            )
    return pd.DataFrame(matrix)


def run_claims(
    claims: list[Claim],
    regions: Regions,
    analyses: list[Analysis],
    results: ResultsFolder,
    seed: int = 0,
    replicates: int = POWER_REPLICATES,
) -> list[Verdict]:
    """Judge every claim, under every variant; write ``claims.json`` and the matrix."""
    evidence = evidence_from(results, analyses)
    judge = Judge(regions, evidence, seed=seed, replicates=replicates)
    verdicts = judge.judge_all(claims)
    matrix = judge_variants(claims, regions, analyses, results, evidence, verdicts)
    for verdict in verdicts:
        verdict.certainty, verdict.certainty_reasons = grade(verdict, evidence)
    # What a reviewer needs to audit the verdicts: the rules, the settings and inputs of the
    # stages they read, and whether any stage predates a rerun.
    run = results.read_provenance() or {}
    stages = {
        "run": run.get("settings"),
        "overlap": (results.overlap.read_provenance() or {}).get("settings"),
        "robustness": (results.robustness.read_provenance() or {}).get("settings"),
        "specificity": results.specificity.read_provenance(),
        "claims": {"seed": seed, "power_replicates": replicates},
    }
    content = {
        "generated": now(),
        "rules": RULES,
        "settings": {stage: value for stage, value in stages.items() if value},
        "inputs_sha256": run.get("inputs_sha256", {}),
        "stale": results.stale(),
        "claims": [v.as_dict() for v in verdicts],
    }
    write_csv(matrix, results.claims_variants)
    write_json(results.claims, content, sort_keys=False)
    return verdicts
