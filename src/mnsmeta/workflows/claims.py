"""``mnsmeta claims``: the verdicts on the review's claims, from a results folder."""

from __future__ import annotations

from mnsmeta.claims.verdicts import RULES, Evidence, Verdict, check_claims
from mnsmeta.curation.analyses import Analysis
from mnsmeta.curation.claims_file import Claim
from mnsmeta.workflows.provenance import now
from mnsmeta.workflows.results import ResultsFolder, write_json


def evidence_from(results: ResultsFolder, analyses: list[Analysis]) -> Evidence:
    """The evidence the verdicts read, from what run, overlap and robustness wrote."""
    results.require()
    return Evidence(
        analyses,
        results.load,
        overlap=results.read_overlap(),
        robustness=results.robustness.read_table("clusters"),
        sensitivity=results.robustness.read_table("sensitivity"),
        computed=results.computed,
    )


def run_claims(
    claims: list[Claim],
    regions: dict[str, list[str]],
    analyses: list[Analysis],
    results: ResultsFolder,
) -> list[Verdict]:
    """Judge every claim and write the verdicts (``claims.json``) into ``results``."""
    verdicts = check_claims(claims, regions, evidence_from(results, analyses))
    # What a reviewer needs to audit the verdicts: the rules, the settings and inputs of the
    # stages they read, and whether any stage predates a rerun.
    run = results.read_provenance() or {}
    stages = {
        "run": run.get("settings"),
        "overlap": (results.overlap.read_provenance() or {}).get("settings"),
        "robustness": (results.robustness.read_provenance() or {}).get("settings"),
    }
    content = {
        "generated": now(),
        "rules": RULES,
        "settings": {stage: value for stage, value in stages.items() if value},
        "inputs_sha256": run.get("inputs_sha256", {}),
        "stale": results.stale(),
        "claims": [v.as_dict() for v in verdicts],
    }
    write_json(results.claims, content, sort_keys=False)
    return verdicts
