"""A certainty grade on every verdict, GRADE-style, computed from the data.

Each verdict starts at *high* and loses one level per domain that applies (two for risk of
bias when most of the evidence carries two or more problems); the levels are high, moderate,
low and very low. A verdict that is *not testable* has no grade. The domains and their
thresholds:

* **risk of bias**: the share of the evidence, each experiment weighted by its contribution
  to the clusters the verdict rests on (equal weights when it rests on none), that carries a
  problem: fallback N, unknown space, automatic extraction from a database, mixed tables, ROI
  coverage, a shared sample pooled from several records (unknown direction counts under
  indirectness). One level down when more than half of the weight has
  at least one problem, two when more than half has two or more.
* **inconsistency**: a cluster the verdict rests on is fragile in the jackknife or dominated
  (one or two experiments give most of it).
* **imprecision**: fewer than 17 experiments (Eickhoff et al., 2016); the primary p's Monte
  Carlo interval contains alpha; or the verdict rests on a null whose power at the claim's
  effect is below 80 %. At most one level.
* **indirectness**: the claim is about patients but more than half of the evidence is not a
  direction-known patients-vs-controls contrast (pooled main effects and undirected
  contrasts); or the MNS is an anatomical or meta-analytic proxy, not a mirror (observation
  and execution) map.
* **fragility**: a sensitivity or atlas variant changes the verdict beyond Monte Carlo error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mnsmeta.claims.verdicts import NOT_TESTABLE, Evidence, Verdict
from mnsmeta.curation.analyses import MIN_EXPERIMENTS
from mnsmeta.curation.contrasts import direction_known
from mnsmeta.inference.power import TARGET_POWER
from mnsmeta.inference.precision import decided

LEVELS = ("high", "moderate", "low", "very low")
#: Share of the (weighted) evidence above which a problem downgrades.
MAJORITY = 0.5
DATABASES = ("neurosynth", "neuroquery")


def experiment_problems(experiments: pd.DataFrame) -> pd.Series:
    """Experiment id -> list of its risk-of-bias problems."""

    def problems(row) -> list[str]:
        found = []
        if str(row.get("sample_size_rule", "")).startswith("fallback"):
            found.append("fallback N")
        if "unknown" in str(row.get("space_rule", "")):
            found.append("unknown space")
        if any(db in str(row.get("source", "")) for db in DATABASES):
            found.append("automatic extraction")
        if str(row.get("table_mix", "") or "") not in ("", "none", "nan"):
            found.append("mixed tables")
        if str(row.get("coverage", "") or "") == "roi":
            found.append("ROI coverage")
        if "+" in str(row.get("studies", "") or ""):
            found.append("shared sample")
        return found

    return pd.Series(
        [problems(row) for _, row in experiments.iterrows()],
        index=experiments.index.astype(str),
        dtype=object,
    )


def _weights(verdict: Verdict, evidence: Evidence) -> pd.Series:
    """Experiment -> weight: its contribution to the verdict's clusters, else equal."""
    analysis = evidence.analyses[verdict.analysis]
    names = [analysis.name] if analysis.is_ale else list(analysis.inputs)
    weights = []
    table = evidence.contributions
    for name in names:
        experiments = evidence.experiments(name)
        if experiments is None:
            continue
        ids = experiments.index.astype(str)
        share = pd.Series(1.0 / len(ids), index=ids)
        clusters = verdict.clusters.get(name, [])
        if table is not None and clusters:
            rows = table[(table["analysis"] == name) & table["cluster"].isin(clusters)]
            if len(rows):
                share = rows.groupby(rows["study_id"].astype(str))["share"].sum()
                share = share / share.sum()
        weights.append(share / len(names))
    return pd.concat(weights) if weights else pd.Series(dtype=float)


def grade(verdict: Verdict, evidence: Evidence) -> tuple[str, tuple[str, ...]]:
    """The certainty of a verdict and the reasons for each downgrade."""
    if verdict.verdict == NOT_TESTABLE:
        return "not applicable", ()
    analysis = evidence.analyses[verdict.analysis]
    names = [analysis.name] if analysis.is_ale else list(analysis.inputs)
    problems = pd.concat(
        [
            experiment_problems(evidence.experiments(n))
            for n in names
            if evidence.experiments(n) is not None
        ]
    )
    weights = _weights(verdict, evidence)
    # A pooled sample's id ("A+B") carries its contribution under either study's id.
    aligned = problems.reindex(weights.index)
    for index in aligned.index[aligned.isna()]:
        match = [p for p in problems.index if index in p.split("+")]
        aligned[index] = problems[match[0]] if match else []
    counts = aligned.map(len)
    total = float(weights.sum()) or 1.0
    down, reasons = 0, []
    one = float(weights[counts >= 1].sum()) / total
    two = float(weights[counts >= 2].sum()) / total
    if one > MAJORITY:
        steps = 2 if two > MAJORITY else 1
        down += steps
        tally = pd.Series([p for ps in aligned for p in ps]).value_counts()
        reasons.append(
            f"risk of bias (-{steps}): {one:.0%} of the weighted evidence has a problem, "
            f"{two:.0%} two or more ({', '.join(f'{k} {v}' for k, v in tally.items())})"
        )
    if verdict.fragile or verdict.dominated:
        down += 1
        what = (
            "fragile in the jackknife"
            if verdict.fragile
            else "dominated by one or two experiments"
        )
        reasons.append(f"inconsistency (-1): a cluster it rests on is {what}")
    imprecise = []
    n = min(len(evidence.experiments(x)) for x in names if evidence.experiments(x) is not None)
    if n < MIN_EXPERIMENTS:
        imprecise.append(f"{n} experiments < {MIN_EXPERIMENTS}")
    if (
        np.isfinite(verdict.p)
        and verdict.n_draws
        and not decided(verdict.p, verdict.n_draws, verdict.claim.alpha)
    ):
        imprecise.append("the Monte Carlo interval of p contains alpha")
    at = verdict.power.get("power_at_effect")
    # (An inconsistency verdict's power criterion is at the reporting experiments, in its rule.)
    if (
        isinstance(at, float)
        and at < TARGET_POWER
        and not verdict.inside
        and verdict.claim.test != "inconsistent"
    ):
        imprecise.append(f"power {at:.2f} at the claim's effect")
    if imprecise:
        down += 1
        reasons.append("imprecision (-1): " + "; ".join(imprecise))
    indirect = []
    direct = (
        float(
            weights[
                _direction_known(names, evidence).reindex(weights.index).fillna(False).astype(bool)
            ].sum()
        )
        / total
    )
    if direct < MAJORITY:
        indirect.append(
            f"{1 - direct:.0%} of the evidence is not a direction-known patients-vs-controls "
            "contrast"
        )
    if verdict.claim.test == "mns_overlap":
        indirect.append(f"the {verdict.claim.mask} MNS mask is a proxy, not a mirror map")
    if indirect:
        down += 1
        reasons.append("indirectness (-1): " + "; ".join(indirect))
    if verdict.flipped_by:
        down += 1
        reasons.append(f"fragility (-1): changed by {', '.join(verdict.flipped_by)}")
    return LEVELS[min(down, len(LEVELS) - 1)], tuple(reasons)


def _direction_known(names, evidence: Evidence) -> pd.Series:
    """Experiment id -> whether it has a direction-known patients-vs-controls contrast."""
    parts = []
    for name in names:
        experiments = evidence.experiments(name)
        if experiments is None:
            continue
        known = direction_known(experiments.get("kinds", pd.Series("", index=experiments.index)))
        known.index = known.index.astype(str)
        parts.append(known)
    return pd.concat(parts) if parts else pd.Series(dtype=bool)
