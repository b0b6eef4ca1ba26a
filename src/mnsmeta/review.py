"""``mnsmeta robustness``: contributions, jackknife, fail-safe N and sensitivity, written to
``results/robustness/`` (see :mod:`mnsmeta.robustness` and :mod:`mnsmeta.sensitivity`).

Reads what ``mnsmeta run`` and ``mnsmeta overlap`` wrote; the folder is staged and replaced
only when complete.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from mnsmeta import robustness, sensitivity
from mnsmeta.ale import analysis_seed
from mnsmeta.analyses import Analysis
from mnsmeta.brain import brain_mask_img
from mnsmeta.clusters import cluster_table
from mnsmeta.errors import MnsmetaInputError
from mnsmeta.pipeline import LABELS_FILE, RunSettings, run_analyses, staged_folder
from mnsmeta.provenance import input_checksums, now, package_versions, write_json
from mnsmeta.records import Curation
from mnsmeta.sleuth import read_sleuth


@dataclass
class ReviewSettings:
    """Parameters of the robustness checks (recorded in the provenance).

    ``n_iters`` is the Monte Carlo iterations of every rerun (jackknife subsets, noise
    levels, sensitivity variants) and the permutations of their overlap tests; 1,000 is the
    default of the published fail-safe-N tooling. The main maps keep ``mnsmeta run``'s.
    """

    n_iters: int = 1000
    seed: int = 0
    jobs: int = 1
    cluster_forming_p: float = 0.001
    cluster_p: float = 0.05
    sensitivity: bool = True
    progress: bool = True


def reviewed_analyses(analyses: list[Analysis]) -> list[Analysis]:
    """Disorder ALE analyses: groups among SAD and BPD."""
    return [a for a in analyses if a.kind == "ale" and set(a.groups) <= {"SAD", "BPD"}]


def _load(results_dir: Path, analysis: Analysis):
    folder = results_dir / analysis.name
    if not (folder / "foci.txt").is_file():
        raise MnsmetaInputError(f"{folder}: no foci.txt: run `mnsmeta run` first")
    experiments = robustness.Experiments.from_sleuth(
        read_sleuth(folder / "foci.txt", [], keep_repeats=True)
    )
    labels = np.asarray(nib.load(folder / LABELS_FILE).dataobj).astype(int)
    clusters = pd.read_csv(folder / "clusters.csv")
    return experiments, labels, clusters


def _cluster_rows(analysis, clusters, dominance, jackknife, failsafe):
    table = clusters[["cluster", "size_mm3", "peak_x", "peak_y", "peak_z"]].copy()
    table["label"] = clusters["Harvard-Oxford peak"]
    table["n_experiments"] = clusters["n_experiments"]
    table = table.merge(dominance, on="cluster", how="left")
    table = table.merge(
        jackknife.rename(columns={"survived": "jackknife_survived", "n_loo": "jackknife_n"}),
        on="cluster",
        how="left",
    )
    table = table.merge(
        failsafe[["cluster", "fsn", "benchmark", "robust"]].rename(
            columns={"benchmark": "fsn_benchmark", "robust": "fsn_robust"}
        ),
        on="cluster",
        how="left",
    )
    table.insert(0, "analysis", analysis.name)
    return table


def _iterations_bar(settings: ReviewSettings, description: str):
    return tqdm(
        total=settings.n_iters,
        desc=description,
        unit="it",
        disable=not settings.progress,
        leave=False,
    )


def _robustness(analysis, results_dir, settings, folder, checks):
    experiments, labels, clusters = _load(results_dir, analysis)
    if not len(clusters):
        return None
    bar_jk = _iterations_bar(settings, f"{analysis.name} jackknife")
    contributions = robustness.contributions(experiments, labels)
    dominance = robustness.dominance(contributions)
    jackknife, check = robustness.jackknife(
        experiments,
        labels,
        settings.n_iters,
        analysis_seed(settings.seed, f"jackknife:{analysis.name}"),
        settings.cluster_forming_p,
        settings.cluster_p,
        settings.jobs,
        bar_jk,
    )
    bar_jk.close()
    bar_fsn = _iterations_bar(settings, f"{analysis.name} fail-safe N")
    failsafe, levels = robustness.fail_safe_n(
        experiments,
        labels,
        settings.n_iters,
        analysis_seed(settings.seed, f"failsafe:{analysis.name}"),
        settings.cluster_forming_p,
        settings.cluster_p,
        n_jobs=settings.jobs,
        progress=bar_fsn,
    )
    bar_fsn.close()
    checks[analysis.name] = check
    label = clusters.set_index("cluster")["Harvard-Oxford peak"]
    name = {"analysis": analysis.name}
    return {
        "contributions": contributions.assign(**name),
        "jackknife": jackknife.assign(label=jackknife["cluster"].map(label), **name),
        "failsafe": failsafe.assign(
            label=failsafe["cluster"].map(label), n_experiments=len(experiments.ids), **name
        ),
        "failsafe_levels": levels.assign(**name),
        "clusters": _cluster_rows(analysis, clusters, dominance, jackknife, failsafe),
    }


@dataclass
class _Reference:
    """The main run's result for one analysis, which every variant is compared with."""

    conclusions: dict  # clusters, experiments and the overlap p-values
    table: pd.DataFrame
    labels: np.ndarray

    @classmethod
    def read(cls, results_dir: Path, analysis: Analysis, overlap, summary) -> _Reference:
        table = pd.read_csv(results_dir / analysis.name / "clusters.csv")
        labels = np.asarray(nib.load(results_dir / analysis.name / LABELS_FILE).dataobj)
        conclusions = {
            "clusters": [int(c) for c in table["cluster"]],
            "experiments": int(summary.loc[analysis.name, "experiments"]),
            **sensitivity.overlap_ps(overlap, analysis.name),
        }
        return cls(conclusions, table, labels.astype(int))

    def row(self, analysis: Analysis) -> dict:
        main = self.conclusions
        return {
            "analysis": analysis.name,
            "variant": "main",
            "description": "as reported (median fallback N, p < 0.001, merged databases, "
            "cluster-level FWE)",
            "experiments": main["experiments"],
            "clusters": len(main["clusters"]),
            "kept_main_clusters": f"{len(main['clusters'])}/{len(main['clusters'])}",
            "new_clusters": 0,
            **{k: v for k, v in main.items() if k not in ("clusters", "experiments")},
            "conclusion_changes": "(reference)",
        }


def _row(analysis, variant, reference, labels, table, overlap, note, experiments):
    main = reference.conclusions
    new = sensitivity.new_clusters(reference.labels, labels)
    by_number = table.set_index("cluster")["Harvard-Oxford peak"] if len(table) else {}
    row = {
        "analysis": analysis.name,
        "variant": variant.name,
        "description": variant.description + (f" ({note})" if note else ""),
        "experiments": experiments,
        "clusters": len(table),
        "kept": sensitivity.kept_clusters(reference.labels, labels),
        "new": new,
        "new_labels": ", ".join(str(by_number[c]) for c in new),
        **sensitivity.overlap_ps(overlap, analysis.name),
    }
    row["conclusion_changes"] = sensitivity.describe_changes(main, row, reference.table)
    row["kept_main_clusters"] = f"{len(row['kept'])}/{len(main['clusters'])}"
    row["new_clusters"] = len(new)
    return row


def _variant_row(analysis, variant, reference, folder, overlap, note):
    labels = np.asarray(nib.load(folder / analysis.name / LABELS_FILE).dataobj).astype(int)
    table = pd.read_csv(folder / analysis.name / "clusters.csv")
    experiments = int(pd.read_csv(folder / "summary.csv").iloc[0]["experiments"])
    return _row(analysis, variant, reference, labels, table, overlap, note, experiments)


def _voxel_fwe_row(analysis, variant, reference, results_dir, masks, main_overlap, settings):
    from mnsmeta.overlap_report import OverlapSettings, _overlap_rows

    folder = results_dir / analysis.name
    voxel_map = np.asarray(
        nib.load(folder / "z_level-voxel_corr-FWE_thresh.nii.gz").dataobj, dtype=np.float32
    )
    stat = np.asarray(nib.load(folder / "stat.nii.gz").dataobj)
    table, labels = cluster_table(voxel_map, brain_mask_img().affine, stat, voxel_map)
    brain = np.asarray(brain_mask_img().get_fdata()) > 0
    overlap_settings = OverlapSettings(settings.n_iters, settings.seed, settings.jobs, False)
    rows = []
    for mask_name, mask in masks.items():
        rows += _overlap_rows(
            analysis.name, labels, table, mask.data, mask_name, brain, overlap_settings
        )
    # The ROI test does not depend on the threshold: the main run's p-values hold.
    roi = main_overlap[(main_overlap["analysis"] == analysis.name)]
    roi = roi[roi["test"] == "roi_ale"]
    overlap = pd.concat([roi, pd.DataFrame(rows)], ignore_index=True)
    experiments = reference.conclusions["experiments"]
    return _row(analysis, variant, reference, labels, table, overlap, "", experiments)


def _sensitivity(analyses, curation, coordinates_dir, results_dir, settings, folder):
    from mnsmeta.overlap_report import OverlapSettings, masks_for, run_overlap

    main_overlap = pd.read_csv(results_dir / "overlap.csv")
    masks = masks_for(results_dir, None, None)
    summary = pd.read_csv(results_dir / "summary.csv").set_index("analysis")
    references = {a.name: _Reference.read(results_dir, a, main_overlap, summary) for a in analyses}
    rows = []
    run_settings = RunSettings(
        n_iters=settings.n_iters,
        seed=settings.seed,
        jobs=settings.jobs,
        cluster_forming_p=settings.cluster_forming_p,
        cluster_p=settings.cluster_p,
        progress=False,
    )
    work = [(a, v) for a in analyses for v in sensitivity.VARIANTS]
    bar = tqdm(work, desc="sensitivity", unit="variant", disable=not settings.progress)
    for analysis, variant in bar:
        bar.set_description(f"sensitivity {analysis.name} {variant.name}")
        reference = references[analysis.name]
        if variant.name == "voxel_fwe":
            rows.append(
                _voxel_fwe_row(
                    analysis, variant, reference, results_dir, masks, main_overlap, settings
                )
            )
            continue
        variant_curation, variant_settings, note = sensitivity.variant_inputs(
            variant, curation, analysis, run_settings
        )
        if variant_curation is None:
            rows.append(
                {
                    "analysis": analysis.name,
                    "variant": variant.name,
                    "description": variant.description,
                    "conclusion_changes": f"not applicable: {note}",
                }
            )
            continue
        target = folder / "sensitivity" / variant.name
        run_analyses([analysis], variant_curation, coordinates_dir, target, variant_settings)
        overlap = run_overlap(
            [analysis],
            masks,
            target,
            OverlapSettings(settings.n_iters, settings.seed, settings.jobs, False),
        )
        rows.append(_variant_row(analysis, variant, reference, target, overlap, note))
    main_rows = [references[a.name].row(a) for a in analyses]
    columns = [
        "analysis",
        "variant",
        "description",
        "experiments",
        "clusters",
        "kept_main_clusters",
        "new_clusters",
        "new_labels",
        "roi_p_meta",
        "roi_p_anatomical",
        "overlap_p_meta",
        "overlap_p_anatomical",
        "conclusion_changes",
    ]
    table = pd.DataFrame(main_rows + rows).reindex(columns=columns)
    order = {a.name: i for i, a in enumerate(analyses)}
    return table.sort_values("analysis", key=lambda s: s.map(order), kind="stable")


def run_review(
    analyses: list[Analysis],
    curation: Curation,
    coordinates_dir: Path,
    results_dir: Path,
    settings: ReviewSettings,
) -> dict[str, pd.DataFrame]:
    """Run every robustness check for the disorder analyses; write ``results/robustness/``.

    Returns
    -------
    dict
        The tables written: ``clusters``, ``contributions``, ``jackknife``, ``failsafe``,
        ``failsafe_levels`` and (unless disabled) ``sensitivity``.
    """
    results_dir = Path(results_dir)
    started = now()
    reviewed = reviewed_analyses(analyses)
    if not reviewed:
        raise MnsmetaInputError(
            "no SAD or BPD analysis to review: check coordinates/analyses.toml"
        )
    if settings.sensitivity and not (results_dir / "overlap.csv").is_file():
        raise MnsmetaInputError(
            f"{results_dir}/overlap.csv: missing: run `mnsmeta overlap` first, or pass "
            "--no-sensitivity"
        )
    parts: dict[str, list] = {}
    checks: dict[str, dict] = {}
    with staged_folder(results_dir, "robustness") as folder:
        bar = tqdm(reviewed, desc="robustness", unit="analysis", disable=not settings.progress)
        for analysis in bar:
            bar.set_description(f"robustness {analysis.name}")
            tables = _robustness(analysis, results_dir, settings, folder, checks)
            for key, table in (tables or {}).items():
                parts.setdefault(key, []).append(table)
        tables = {key: pd.concat(value, ignore_index=True) for key, value in parts.items()}
        for key in ("contributions", "jackknife", "failsafe", "failsafe_levels", "clusters"):
            table = tables.get(key, pd.DataFrame())
            if "analysis" in table:
                table = table[["analysis", *[c for c in table.columns if c != "analysis"]]]
            tables[key] = table
            table.to_csv(folder / f"{key}.csv", index=False, float_format="%.4g")
        if settings.sensitivity:
            tables["sensitivity"] = _sensitivity(
                reviewed, curation, coordinates_dir, results_dir, settings, folder
            )
            tables["sensitivity"].to_csv(
                folder / "sensitivity.csv", index=False, float_format="%.4g"
            )
        write_json(
            folder / "provenance.json",
            {
                "command": "mnsmeta robustness",
                "analyses": [a.name for a in reviewed],
                "settings": dataclasses.asdict(settings),
                "fsn_multiples": list(robustness.FSN_MULTIPLES),
                "monte_carlo_check": checks,
                "versions": package_versions(),
                "inputs_sha256": input_checksums(coordinates_dir),
                "started": started,
                "finished": now(),
            },
        )
    return tables
