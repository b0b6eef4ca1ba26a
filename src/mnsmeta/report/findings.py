"""What a results folder says, as rows and sentences: the answers, the limitations, the numbers.

The report page and the generated results page (``mnsmeta report --page``) both read these,
so neither types a number: every figure comes from the files of the results folder.
"""

from __future__ import annotations

import json
import math

import pandas as pd

from mnsmeta.claims.certainty import experiment_problems
from mnsmeta.curation.analyses import MIN_EXPERIMENTS, Analysis
from mnsmeta.curation.contrasts import direction_known
from mnsmeta.inference.specificity import readings
from mnsmeta.workflows.results import ResultsFolder


def read_claims(results: ResultsFolder) -> dict | None:
    path = results.claims
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _number(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{digits}g}"


def p_text(claim: dict) -> str:
    """``p (MC 95 % low-high)`` of a claim's primary test, or the reason there is none."""
    if claim.get("p") is None:
        return "no test"
    text = _number(claim["p"])
    if claim.get("p_mc_low") is not None:
        text += f" ({_number(claim['p_mc_low'])}-{_number(claim['p_mc_high'])})"
    elif claim["p"] == 1:
        text += " (no cluster formed)"
    return text


def power_text(claim: dict) -> str:
    """The minimum detectable effect and the power at the claim's effect, in words."""
    power = claim.get("power") or {}
    if not power or "n_experiments" not in power:
        return power.get("note", "")
    mde = power.get("mde_k")
    n = power["n_experiments"]
    head = (
        f"MDE {mde} of {n} experiments"
        if mde is not None
        else f"power < 80 % up to {power['curve'][-1]['k'] if power.get('curve') else n}"
    )
    at = power.get("power_at_effect")
    if isinstance(at, float):
        head += f"; power {at:.2f} at {power['k_effect']}"
    if "hits" in power:
        head += f"; {power['hits']} report foci there"
    return head


def verdicts_text(verdicts) -> str:
    """The verdicts as ``mnsmeta claims`` prints them: one block per claim."""
    lines = []
    for v in verdicts:
        entry = v.as_dict()
        certainty = f", certainty {entry['certainty']}" if entry["certainty"] else ""
        lines.append(f"{v.claim.id}: {v.verdict.upper()}{certainty}")
        lines.append(f"  claim: {v.claim.paraphrase}")
        if v.claim.estimand:
            lines.append(f"  estimand: {v.claim.estimand}")
        lines.append(f"  why: {v.reason}")
        if entry["p"] is not None:
            holm = f"; Holm {entry['p_holm']}" if entry["p_holm"] is not None else ""
            lines.append(f"  primary test: {v.primary}: p {p_text(entry)}{holm}")
        elif v.primary:
            lines.append(f"  primary test: {v.primary}")
        if power_text(entry):
            lines.append(f"  power: {power_text(entry)}")
        if v.neutral:
            lines.append(f"  what the data show: {v.neutral}")
        lines += [f"  downgraded: {reason}" for reason in v.certainty_reasons]
        if v.variants:
            n, flipped = len(v.flipped_by), f" ({', '.join(v.flipped_by)})" if v.flipped_by else ""
            lines.append(f"  variants: {n} of {len(v.variants)} change it{flipped}")
        lines.append(f"  evidence: {v.evidence}")
    return "\n".join(lines)


def answer_rows(claims: dict) -> pd.DataFrame:
    """One row per claim: verdict, certainty, why, primary test and its numbers."""
    rows = []
    for claim in claims.get("claims", []):
        rows.append(
            {
                "claim": claim["id"],
                "verdict": claim["verdict"],
                "certainty": claim.get("certainty", ""),
                "why": claim.get("reason", ""),
                "primary test": claim.get("primary_test", ""),
                "p (MC 95 %)": p_text(claim),
                "p Holm": claim.get("p_holm"),
                "power": power_text(claim),
                "changed by": claim.get("flipped_by", ""),
            }
        )
    return pd.DataFrame(rows)


def variant_matrix(results: ResultsFolder) -> pd.DataFrame | None:
    """Claims x variants: each variant's verdict (``*``: changed beyond Monte Carlo error;
    ``(not rerun)``: the variant leaves the claim's analyses as they are)."""
    path = results.claims_variants
    if not path.is_file():
        return None
    table = pd.read_csv(path)
    if table.empty:
        return None
    changed = table["changed"].astype(str).str.lower() == "true"
    rerun = table.get("rerun", pd.Series(True, index=table.index)).astype(str).str.lower()
    table["cell"] = (
        table["verdict"].astype(str)
        + changed.map({True: " *", False: ""})
        + (rerun == "false").map({True: " (not rerun)", False: ""})
    )
    matrix = table.pivot_table(index="claim", columns="variant", values="cell", aggfunc="first")
    order = list(dict.fromkeys(table["claim"]))
    return matrix.reindex(order).reset_index()


def _folder(results: ResultsFolder, name: str, kind: str = "ale"):
    return results.analysis(Analysis(name, kind))


def _experiments(results: ResultsFolder, name: str) -> pd.DataFrame | None:
    path = _folder(results, name).experiments
    return pd.read_csv(path, dtype=str, keep_default_na=False) if path.is_file() else None


def limitations(results: ResultsFolder) -> list[str]:
    """What the data lack, one sentence each, computed from the results folder."""
    lines = []
    summary = results.read_summary()
    claims = read_claims(results) or {}
    disorders = ("SAD", "BPD")
    for name in disorders:
        experiments = _experiments(results, name)
        if experiments is None or experiments.empty:
            continue
        n = len(experiments)
        directed = int(direction_known(experiments.get("kinds", "")).sum())
        # The problems the certainty grade counts, one experiment at a time.
        problems = experiment_problems(experiments)
        fallback, unknown_space, automatic = (
            int(problems.map(lambda found, what=what: what in found).sum())
            for what in ("fallback N", "unknown space", "automatic extraction")
        )
        lines.append(
            f"{name}: {n - directed} of {n} experiments have no patients-vs-controls contrast "
            f"of known direction, so the maps show where reported foci converge, not "
            f"alteration; {automatic} of {n} come from automatic database extraction, "
            f"{fallback} use a fallback N and {unknown_space} an assumed space."
        )
    if summary is not None:
        small = summary[
            (summary["kind"] == "ale")
            & (pd.to_numeric(summary["experiments"], errors="coerce") > 0)
            & (pd.to_numeric(summary["experiments"], errors="coerce") < MIN_EXPERIMENTS)
        ]
        for row in small.itertuples():
            lines.append(
                f"{row.analysis} has {int(row.experiments)} experiments, fewer than the "
                f"{MIN_EXPERIMENTS} ALE needs for stable results (Eickhoff et al., 2016)."
            )
    for claim in claims.get("claims", []):
        if claim["verdict"] == "inconclusive":
            power = power_text(claim)
            lines.append(
                f"{claim['id']} rests on a null without the power to count against the claim"
                + (f" ({power})" if power else "")
                + "."
            )
        if claim["verdict"] == "not testable":
            lines.append(f"{claim['id']} is not testable as stated: {claim.get('reason', '')}.")
        if claim.get("flipped_by"):
            lines.append(f"{claim['id']} changes under {claim['flipped_by']}.")
    for path in results.masks.sidecars():
        name = path.stem.removeprefix("mns_")
        kind = json.loads(path.read_text(encoding="utf-8")).get("kind", name)
        lines.append(
            f"The {name} MNS mask ({kind}) is a proxy: no mask here requires the mirror "
            "property (observation and execution in the same voxels)."
        )
    if any(c.get("test") == "mns_overlap" for c in claims.get("claims", [])):
        lines.append(
            "The power of the MNS overlap test is not simulated: a non-significant overlap is "
            "never read as evidence against."
        )
    for name in disorders:
        controls = _experiments(results, f"{name}_controls")
        if controls is None or controls.empty:
            continue
        borrowed = controls["sample_size_rule"].str.startswith("matched").sum()
        lines.append(
            f"{name}_controls: {len(controls)} healthy-only experiments matched by task terms "
            f"(not by paradigm curation); {borrowed} borrow the N of the patient study they "
            "match."
        )
    for line in results.stale():
        lines.append(f"Out of date: {line}.")
    return lines


def analysis_rows(results: ResultsFolder) -> pd.DataFrame:
    """One row per analysis: experiments, foci and its clusters with labels and sizes."""
    summary = results.read_summary()
    if summary is None:
        return pd.DataFrame()
    rows = []
    for row in summary.itertuples():
        path = _folder(results, str(row.analysis), str(row.kind)).clusters
        clusters = pd.read_csv(path) if path.is_file() else pd.DataFrame()
        listing = "; ".join(
            f"{int(c['cluster'])}: {str(c.get('Harvard-Oxford peak', '')).replace('_', ' ')} "
            f"({c['peak_x']:g}, {c['peak_y']:g}, {c['peak_z']:g}), {c['size_mm3']:,.0f} mm³"
            + (
                f", {c['direction']}"
                if "direction" in clusters and pd.notna(c["direction"])
                else ""
            )
            for _, c in clusters.iterrows()
        )
        experiments = pd.to_numeric(pd.Series([row.experiments]), errors="coerce").iloc[0]
        rows.append(
            {
                "analysis": row.analysis,
                "kind": row.kind,
                "experiments": "" if pd.isna(experiments) else int(experiments),
                "clusters": len(clusters),
                "where": listing or (str(row.note) if pd.notna(row.note) else "none"),
            }
        )
    return pd.DataFrame(rows)


def robustness_rows(results: ResultsFolder) -> pd.DataFrame:
    """Per disorder cluster: dominance, jackknife (survival, volume, shift), fail-safe N."""
    table = results.robustness.read_table("clusters")
    if table is None or table.empty:
        return pd.DataFrame()
    columns = {
        "analysis": "analysis",
        "cluster": "cluster",
        "label": "peak label",
        "top_share": "top experiment share",
        "jackknife_survived": "jackknife survived",
        "jackknife_n": "of",
        "min_retained_pct": "min retained %",
        "max_peak_shift_mm": "max peak shift (mm)",
        "fsn_text": "fail-safe N (range over draws)",
        "fsn_benchmark": "benchmark",
        "fsn_robust": "robust",
    }
    if "fsn_text" not in table.columns and "fsn" in table.columns:  # an older table
        table = table.rename(columns={"fsn": "fsn_text"})
    return _shown(table, columns)


def _shown(table: pd.DataFrame, columns: dict) -> pd.DataFrame:
    """The table's ``columns`` it has, in their order, under their display names."""
    return table[[c for c in columns if c in table.columns]].rename(columns=columns)


def specificity_rows(results: ResultsFolder) -> pd.DataFrame:
    """Per subtraction, claim region and direction: the region-wise test and its reading."""
    differences = results.specificity.read_table("differences")
    power = results.specificity.read_table("power")
    if differences is None or power is None or differences.empty or power.empty:
        return pd.DataFrame()
    table = readings(differences, power)
    columns = {
        "analysis": "subtraction",
        "region": "region",
        "direction": "direction",
        "max_difference": "largest ALE difference",
        "p_fwe": "p (FWE in region)",
        "foci_per_experiment_first": "foci/experiment, first",
        "foci_per_experiment_second": "foci/experiment, second",
        "k_of_interest": "effect (experiments)",
        "n_planted": "of",
        "power": "power at effect",
        "mde": "MDE (experiments)",
        "reading": "reading",
    }
    return _shown(table, columns)


def specificity_overlap_rows(results: ResultsFolder) -> pd.DataFrame:
    """Per subtraction and MNS mask: each set's share of foci inside, and the p."""
    table = results.specificity.read_table("overlap")
    if table is None or table.empty:
        return pd.DataFrame()
    columns = {
        "analysis": "subtraction",
        "mask": "mask",
        "first": "first set",
        "share_first": "its foci in mask",
        "second": "second set",
        "share_second": "its foci in mask ",
        "p": "p (first larger)",
    }
    return _shown(table, columns)


#: The overlap tests of the MNS grid, in order: the base-rate nulls decide ("more than
#: typical fMRI foci?"), the others ask "are the foci non-uniform?".
GRID_TESTS = {
    ("thresholded_base_rate", "voxels_in_both"): "clusters in mask, base-rate",
    ("roi_ale_base_rate", "mean_ale"): "mean ALE, base-rate",
    ("thresholded_overlap", "voxels_in_both"): "clusters in mask, moved clusters",
    ("roi_ale", "mean_ale"): "mean ALE, uniform",
    ("roi_ale_gm", "mean_ale"): "mean ALE, grey matter",
}


def mns_grid(results: ResultsFolder) -> pd.DataFrame:
    """Analysis x null (rows) by mask (columns): the p of each overlap test, whole masks."""
    overlap = results.read_overlap()
    if overlap is None or overlap.empty:
        return pd.DataFrame()
    if "part" in overlap:
        overlap = overlap[overlap["part"].fillna("") == ""]
    rows = []
    for analysis in overlap["analysis"].unique():
        mine = overlap[overlap["analysis"] == analysis]
        for (test, statistic), label in GRID_TESTS.items():
            hits = mine[(mine["test"] == test) & (mine["statistic"] == statistic)]
            if hits.empty:
                continue
            row = {"analysis": analysis, "null": label}
            for hit in hits.itertuples():
                row[hit.mask] = f"{hit.p:.3g}"
            rows.append(row)
    return pd.DataFrame(rows).fillna("")


def mask_agreement_rows(results: ResultsFolder) -> pd.DataFrame:
    """Each mask's size and coverage of the MNS landmarks, and each pair's Dice."""
    path = results.masks.agreement
    if not path.is_file():
        return pd.DataFrame()
    table = pd.read_csv(path)
    landmarks = table[table["landmark"].notna()]
    sizes = landmarks.drop_duplicates("first").set_index("first")["first_voxels"]
    coverage = landmarks.pivot(index="first", columns="landmark", values="coverage")
    out = coverage.map(lambda v: f"{v:.0%}").reindex(sizes.index)
    out.insert(0, "voxels", sizes.astype(int))
    pairs = table[table["second"].notna()]
    for mask in sizes.index:
        dice = pairs[(pairs["first"] == mask) | (pairs["second"] == mask)]
        out.loc[mask, "Dice with others"] = ", ".join(
            f"{r.second if r.first == mask else r.first} {r.dice:.2f}" for r in dice.itertuples()
        )
    return out.reset_index(names="mask")
