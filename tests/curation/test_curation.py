"""The committed curation in coordinates/: valid, complete, and faithful to the data rules."""

from __future__ import annotations

import pandas as pd
from click.testing import CliRunner

from conftest import REPO
from mnsmeta.cli import main
from mnsmeta.curation.analyses import underpowered
from mnsmeta.curation.candidates import find_candidates
from mnsmeta.curation.claims_file import read_claims
from mnsmeta.curation.flow import study_flow
from mnsmeta.curation.ledger import ledger_table
from mnsmeta.curation.validate import validate_paths
from mnsmeta.data import databases

COORDINATES = REPO / "coordinates"


def test_the_committed_curation_validates_against_the_databases():
    report = validate_paths([COORDINATES], use_database=True)
    assert [str(p) for p in report.problems if not p.is_warning] == []
    # The one warning: an MNS study's Neurosynth table that is not coordinates (dropped; its
    # other tables are real). NeuroQuery's copy of a BPD table with a flipped sign is decided
    # (keep_copy), so it no longer asks a curator.
    assert [(p.line, p.severity) for p in report.problems] == [(122, "warning")]
    assert "25671563: neurosynth table 39887 (9 foci" in report.problems[0].message


def test_every_candidate_has_a_record_with_modality_and_decision(project_curation):
    for group in ("SAD", "BPD", "MNS"):
        curated = {r.study_id for r in project_curation.for_group(group, included_only=False)}
        assert {str(p) for p in find_candidates(group).index} <= curated
    assert all(r.modality and r.status for r in project_curation.records)


def test_flow_counts(project_curation):
    flow = study_flow(project_curation)
    assert flow.loc["candidates after merging by PMID"].to_dict() == {
        "SAD": 91,
        "BPD": 62,
        "MNS": 155,
    }
    assert flow.loc["screened (curation record)"].to_dict() == {"SAD": 91, "BPD": 62, "MNS": 155}
    assert flow.loc["included (eligible)"].to_dict() == {"SAD": 30, "BPD": 29, "MNS": 95}
    assert flow.loc["excluded (total)"].to_dict() == {"SAD": 57, "BPD": 26, "MNS": 38}
    # PRISMA 2020: records nobody could decide await classification; they are not excluded.
    assert flow.loc["awaiting classification"].to_dict() == {"SAD": 4, "BPD": 7, "MNS": 22}
    stages = ["included (eligible)", "excluded (total)", "awaiting classification"]
    assert (flow.loc[stages].sum() == flow.loc["screened (curation record)"]).all()
    # Primary: tables that belong (no other population, connectivity, treatment or age
    # groups), whole-brain peaks, one experiment per sample.
    assert flow.loc["included: primary analysis (studies)"].to_dict() == {
        "SAD": 12,
        "BPD": 21,
        "MNS": 79,
    }
    assert flow.loc["included: primary analysis (experiments, one per sample)"].to_dict() == {
        "SAD": 12,
        "BPD": 18,
        "MNS": 72,
    }
    assert flow.loc["excluded: implausible_foci", "BPD"] == 1  # 14643096
    reasons = flow.loc[flow.index.str.startswith("excluded: ")]
    assert (reasons.sum() == flow.loc["excluded (total)"]).all()
    assert flow.loc["excluded: duplicate_sample"].to_dict() == {"SAD": 3, "BPD": 2, "MNS": 0}
    # The foci of the included studies: each one analysed or removed by one hygiene rule.
    removed = flow.loc[flow.index.str.startswith("foci removed: ")]
    assert (
        removed.sum() + flow.loc["foci analysed"]
        == flow.loc["foci of the primary studies (as stored)"]
    ).all()
    # BPD 19651401: NeuroQuery's copy of its Table 4 with one z sign flipped
    assert flow.loc["foci removed: near_copy_table", "BPD"] == 10


def test_disorder_sets_have_mostly_curated_sample_sizes_and_say_when_they_lack_power(
    project_curation,
):
    for group in ("SAD", "BPD"):
        entering = project_curation.for_group(group)
        with_n = sum(r.sample_size()[0] is not None for r in entering)
        assert with_n / len(entering) >= 0.6
        assert all(r.n_source for r in entering if r.sample_size()[0] is not None)
    # SAD's primary set falls below the 17 experiments of Eickhoff et al. (2016) once
    # the tables that do not belong leave: every SAD output carries the warning.
    assert underpowered(len({r.sample_key for r in project_curation.for_group("SAD")}))
    assert not underpowered(len({r.sample_key for r in project_curation.for_group("BPD")}))


def test_the_inputs_a_reviewer_questioned_are_decided(project_curation):
    primary = {
        g: {r.study_id for r in project_curation.for_group(g)} for g in ("SAD", "BPD", "MNS")
    }
    records = {(r.group, r.study_id): r for r in project_curation.records}
    # tables that are not coordinates: no table of 14643096 is; 25671563's artefact is dropped
    assert records["BPD", "14643096"].reason == "implausible_foci"
    # other populations, connectivity, treatment and age groups pooled in: not primary
    for group, study in [
        ("SAD", "12147314"),  # psychopathy group
        ("SAD", "23223206"),  # autism group
        ("BPD", "27672555"),  # 21 MDD patients
        ("BPD", "21907809"),  # trauma-exposed controls
        ("SAD", "22027088"),  # PPI
        ("BPD", "27838143"),  # PPI
        ("BPD", "28526931"),  # PPI
        ("SAD", "26802808"),  # resting-state FC
        ("SAD", "23665375"),  # pre/post CBT
        ("BPD", "28119507"),  # pre/post DBT
        ("SAD", "21632650"),  # adolescents and adults
        ("BPD", "29632476"),  # adolescents and adults
    ]:
        assert records[group, study].included and records[group, study].mixes
        assert study not in primary[group]
    # ROI-only peaks leave the primary ALE (SAD 20227458: 2 foci, amygdala and OFC)
    assert records["SAD", "20227458"].coverage == "roi"
    assert "20227458" not in primary["SAD"]
    # no shared sample enters one analysis as two experiments unless decided independent
    for group, studies in primary.items():
        samples = [records[group, s].sample_key for s in studies]
        shared = {k for k in samples if samples.count(k) > 1}
        for key in shared:  # pooled into one experiment by build_experiments
            assert not key.startswith("study:")
    assert records["BPD", "28119507"].sample_evidence.startswith("independent")
    # every sample decision and every table decision carries its evidence
    for record in project_curation.records:
        assert not record.sample or record.sample_evidence
        assert not record.table_mix or record.table_mix_evidence
    # a copy that disagrees, decided by the region the study names
    assert records["BPD", "19651401"].keep_copy == "T5"
    # N from a linked record of the same sample (Gentili 2008: 8 patients, 7 controls)
    assert records["SAD", "18771714"].sample_size() == (15, "n_patients+n_controls")
    # unreachable is not ineligible: no record is excluded as unclear
    assert not any(r.reason == "unclear" for r in project_curation.records)


def test_every_included_study_has_coordinates_in_the_database_table(project_curation):
    included = [r for r in project_curation.records if r.included]
    merged = databases.merged_foci(pmids=[r.pmid for r in included])
    counts = merged.groupby("pmid").size()
    assert all(counts.get(r.pmid, 0) > 0 for r in included)


def test_records_carry_no_database_titles(project_curation):
    titles = databases.study_metadata()["title"].dropna()
    titles = {t.strip().lower().rstrip(".") for t in titles if len(t) > 40}
    text = " ".join(f"{r.note} {r.n_source}".lower() for r in project_curation.records)
    assert [t for t in titles if t in text] == []


def test_cited_references_ledger(project_curation):
    ledger = ledger_table(COORDINATES / "cited_references.tsv", project_curation)
    assert len(ledger) == 52
    assert ledger["ref"].astype(int).tolist() == list(range(1, 53))
    baczkowski = ledger.set_index("ref").loc["19"]
    assert baczkowski["in_database"] == "yes"
    assert baczkowski["why_not"].startswith("resting-state fMRI")
    goldin = ledger.set_index("ref").loc["37"]  # cited CBT study, a SAD candidate
    assert goldin["in_database"] == "yes"
    assert goldin["why_not"] == "excluded: SAD no_control_group"
    # Every reference gets a reason when it does not enter an analysis.
    assert ((ledger["included_in"] != "") | (ledger["why_not"] != "")).all()


def test_claims_file_holds_the_reviews_core_claims():
    problems = []
    claims, regions = read_claims(COORDINATES / "claims.toml", problems)
    assert problems == []
    by_id = {claim.id: claim for claim in claims}
    assert by_id["sad_mns_reduced"].direction == "hypo"
    assert set(by_id["sad_mns_reduced"].regions) == {"IFG", "IPL"}
    assert by_id["bpd_mns_inconsistent"].test == "inconsistent"
    assert by_id["both_amygdala"].analysis == "conjunction"
    assert by_id["mns_shared_substrate"].test == "mns_overlap"
    # Regions are judged on the masks' atlas (Juelich), with Harvard-Oxford as the variant;
    # prefrontal cortex, which this Juelich release does not map, falls back to Harvard-Oxford.
    assert regions.atlas == "juelich" and regions.variant == "harvard_oxford"
    assert "GM_Amygdala_laterobasal_group" in regions["amygdala"]
    assert "Amygdala" in regions.of("amygdala", "harvard_oxford")
    assert regions.atlas_of("PFC") == "harvard_oxford"
    assert regions.bounds["premotor"] == {"min_abs_x_mm": 30, "max_z_mm": 40}
    # Claims of altered activity say so; every claim names its estimand.
    assert by_id["both_amygdala"].requires == "group_contrasts"
    assert all(claim.estimand for claim in claims)


def test_flow_cli_writes_csv(tmp_path):
    out = tmp_path / "stages.csv"
    result = CliRunner().invoke(
        main, ["--coordinates", str(COORDINATES), "studies", "--flow", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, index_col=0)
    assert table.loc["included (eligible)", "SAD"] == 30


def test_cited_cli_prints_totals():
    result = CliRunner().invoke(main, ["--coordinates", str(COORDINATES), "studies", "--cited"])
    assert result.exit_code == 0, result.output
    assert "52 references" in result.output
    assert "in a database: 4" in result.output


def test_every_excluded_record_is_listed_with_its_reason_s_meaning(project_curation):
    from mnsmeta.curation.flow import excluded_studies
    from mnsmeta.curation.records import REASONS

    table = excluded_studies(project_curation)
    assert len(table) == sum(not r.included for r in project_curation.records) == 57 + 26 + 38 + 33
    excluded = table[table["status"] == "excluded"]
    assert (excluded["meaning"] == excluded["reason"].map(REASONS)).all()
    awaiting = table[table["status"] == "awaiting"]
    assert len(awaiting) == 33 and (awaiting["reason"] == "").all()
    row = table.set_index("study_id").loc["27531977"]
    assert row["reason"] == "duplicate_sample" and "18635342" in row["note"]
