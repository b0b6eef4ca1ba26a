"""``mnsmeta robustness``: contributions, jackknife, fail-safe N and sensitivity, written to
``results/robustness/`` (see :mod:`mnsmeta.inference.robustness` and
:mod:`mnsmeta.inference.sensitivity`).

Reads what ``mnsmeta run`` and ``mnsmeta overlap`` wrote; the folder is staged and replaced
only when complete.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mnsmeta.curation.analyses import Analysis, mns_reference
from mnsmeta.curation.records import Curation
from mnsmeta.data.space import brain_mask_img
from mnsmeta.errors import MnsmetaInputError
from mnsmeta.filesystem import link_tree
from mnsmeta.inference import robustness, sensitivity
from mnsmeta.inference.masks import meta_analytic_mask
from mnsmeta.meta_analysis.ale import analysis_seed
from mnsmeta.meta_analysis.clusters import cluster_table
from mnsmeta.progress import progress
from mnsmeta.workflows.cache import plain, robustness_key, table_from_json, table_to_json
from mnsmeta.workflows.masks import masks_from_results
from mnsmeta.workflows.overlap import run_overlap, thresholded_overlap_rows
from mnsmeta.workflows.provenance import input_checksums, now, package_versions
from mnsmeta.workflows.results import ResultsFolder, read_map, write_json
from mnsmeta.workflows.run import run_analyses
from mnsmeta.workflows.settings import Settings

#: Fewest experiments an analysis needs for its robustness checks (a jackknife subset must
#: keep one).
MIN_REVIEWED = 2


def reviewed_analyses(analyses: list[Analysis]) -> list[Analysis]:
    """Disorder ALE analyses: the ones whose clusters are checked."""
    return [a for a in analyses if a.reviewed]


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
        failsafe[["cluster", "fsn", "fsn_text", "benchmark", "robust"]].rename(
            columns={"benchmark": "fsn_benchmark", "robust": "fsn_robust"}
        ),
        on="cluster",
        how="left",
    )
    table.insert(0, "analysis", analysis.name)
    return table


def _robustness_key(results: ResultsFolder, analysis: Analysis, settings) -> str | None:
    """The robustness key of an analysis whose folder records its own cache key."""
    key = results.analysis(analysis).cache_key()
    return None if key is None else robustness_key(key, settings)


def _rerun_overlap(settings: Settings) -> Settings:
    """The overlap tests of a rerun: no progress bars, no base-rate sets (the sensitivity
    table reads the other tests)."""
    return dataclasses.replace(settings, progress=False, base_rate=False)


def _iterations_bar(settings: Settings, description: str):
    return progress(
        total=settings.n_iters, desc=description, unit="it", show=settings.progress, stage=False
    )


def _robustness(analysis, results: ResultsFolder, settings, checks):
    result = results.load(analysis)
    experiments, labels, clusters = result.experiments, result.labels, result.clusters
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
    subsets = check.pop("subsets")
    checks[analysis.name] = check
    label = clusters.set_index("cluster")["Harvard-Oxford peak"]
    name = {"analysis": analysis.name}
    return {
        "contributions": contributions.assign(**name),
        "jackknife": jackknife.assign(label=jackknife["cluster"].map(label), **name),
        "jackknife_subsets": subsets.assign(**name),
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
    def read(cls, results: ResultsFolder, analysis: Analysis, overlap, summary, masks):
        result = results.load(analysis, with_experiments=False)
        conclusions = {
            "clusters": [int(c) for c in result.clusters["cluster"]],
            "experiments": int(summary.loc[analysis.name, "experiments"]),
            **sensitivity.overlap_ps(overlap, analysis.name, masks),
        }
        return cls(conclusions, result.clusters, result.labels)

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


def _row(analysis, variant, reference, labels, table, overlap, note, experiments, masks):
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
        **sensitivity.overlap_ps(overlap, analysis.name, masks),
    }
    row["conclusion_changes"] = sensitivity.describe_changes(main, row, reference.table, masks)
    row["kept_main_clusters"] = f"{len(row['kept'])}/{len(main['clusters'])}"
    # Which main clusters, by number: the verdicts read it to find the variants that flip them.
    row["kept_clusters"] = " ".join(map(str, row["kept"]))
    row["new_clusters"] = len(new)
    return row


def _variant_row(analysis, variant, reference, output, overlap, note, masks):
    experiments = len(output.experiments.ids)
    return _row(
        analysis, variant, reference, output.labels, output.clusters, overlap, note,
        experiments, masks,
    )  # fmt: skip


def _voxel_fwe_row(analysis, variant, reference, results, masks, main_overlap, settings):

    folder = results.analysis(analysis)
    voxel_map = read_map(folder.voxel_thresholded, np.float32)
    stat = read_map(folder.map("stat"))
    table, labels = cluster_table(voxel_map, brain_mask_img().affine, stat, voxel_map)
    brain = np.asarray(brain_mask_img().get_fdata()) > 0
    overlap_settings = _rerun_overlap(settings)
    rows = []
    for mask_name, mask in masks.items():
        rows += thresholded_overlap_rows(
            analysis.name, labels, table, mask.data, mask_name, brain, overlap_settings
        )
    # The ROI test does not depend on the threshold: the main run's p-values hold.
    roi = main_overlap[(main_overlap["analysis"] == analysis.name)]
    roi = roi[roi["test"] == "roi_ale"]
    overlap = pd.concat([roi, pd.DataFrame(rows)], ignore_index=True)
    experiments = reference.conclusions["experiments"]
    return _row(analysis, variant, reference, labels, table, overlap, "", experiments, list(masks))


def _not_applicable(analysis, variant, note) -> dict:
    return {
        "analysis": analysis.name,
        "variant": variant.name,
        "description": variant.description,
        "conclusion_changes": f"not applicable: {note}",
    }


def _mask_variant_row(analysis, variant, reference, mask, overlap_inputs):
    """A variant of the MNS mask: the disorder's main map tested against the rebuilt mask."""
    masks, results, target, settings, note, reuse = overlap_inputs
    overlap = run_overlap(
        [analysis],
        {**masks, "meta": mask},
        target,
        _rerun_overlap(settings),
        {analysis.name: results.load(analysis)},
        reuse,
        analyses_in=results,
    )
    experiments = reference.conclusions["experiments"]
    return _row(
        analysis, variant, reference, reference.labels, reference.table, overlap, note,
        experiments, list(masks),
    )  # fmt: skip


def _rebuilt_mask(variant, configured, curation, coordinates_dir, target, run_settings, reuse):
    """The meta-analytic mask from the MNS reference rerun under a variant, and a note."""
    mns = mns_reference(configured)
    if mns is None:
        return None, "no MNS reference analysis in analyses.toml"
    mns_curation, mns_settings, note = sensitivity.variant_inputs(
        variant, curation, mns, run_settings
    )
    if mns_curation is None:
        return None, note
    _, outputs = run_analyses(
        [mns], mns_curation, coordinates_dir, target, mns_settings, reuse=reuse
    )
    made = outputs[mns.name]
    mask = meta_analytic_mask(
        made.labels,
        source=f"{variant.name}: {mns.name} rerun",
        n_experiments=len(made.experiments.ids),
        n_iters=mns_settings.n_iters,
        experiments=made.experiments.ids,
        clusters=made.clusters,
    )
    return mask, f"{note}; rebuilt mask {mask.n_voxels} voxels"


def _sensitivity(
    analyses,
    configured,
    curation,
    coordinates_dir,
    results: ResultsFolder,
    settings,
    folder,
    reuse=False,
    counts=None,
):
    main_overlap = results.read_overlap()
    # Every mask the main overlap tests used, a user's mask included.
    masks = masks_from_results(results)
    names = list(masks)
    summary = results.read_summary().set_index("analysis")
    references = {
        a.name: _Reference.read(results, a, main_overlap, summary, names) for a in analyses
    }
    rows = []
    # The reruns check clusters as the main analyses define them: by size, without TFCE.
    run_settings = dataclasses.replace(
        settings, progress=False, cluster_statistic="size", tfce=False
    )
    work = [(a, v) for a in analyses for v in sensitivity.VARIANTS]
    bar = progress(work, desc="sensitivity", unit="variant", show=settings.progress)
    rebuilt: dict[str, tuple] = {}
    for analysis, variant in bar:
        bar.set_description(f"sensitivity {analysis.name} {variant.name}")
        reference = references[analysis.name]
        if variant.name in sensitivity.MASK_VARIANTS:
            target = folder.sensitivity_variant(variant.name)
            if variant.name not in rebuilt:  # one MNS rerun serves every disorder analysis
                rebuilt[variant.name] = _rebuilt_mask(
                    variant, configured, curation, coordinates_dir, target, run_settings, reuse
                )
            mask, note = rebuilt[variant.name]
            if mask is None:
                rows.append(_not_applicable(analysis, variant, note))
                continue
            overlap_inputs = (masks, results, target, settings, note, reuse)
            rows.append(_mask_variant_row(analysis, variant, reference, mask, overlap_inputs))
            continue
        if variant.name == "voxel_fwe":
            rows.append(
                _voxel_fwe_row(
                    analysis, variant, reference, results, masks, main_overlap, settings
                )
            )
            continue
        variant_curation, variant_settings, note = sensitivity.variant_inputs(
            variant, curation, analysis, run_settings
        )
        if variant_curation is None:
            rows.append(_not_applicable(analysis, variant, note))
            continue
        target = folder.sensitivity_variant(variant.name)
        reused = []
        _, outputs = run_analyses(
            [sensitivity.variant_analysis(variant, analysis)],
            variant_curation,
            coordinates_dir,
            target,
            variant_settings,
            reuse=reuse,
            reused_into=reused,
        )
        if analysis.name not in outputs:
            rows.append(
                {
                    "analysis": analysis.name,
                    "variant": variant.name,
                    "description": variant.description,
                    "experiments": 0,
                    "conclusion_changes": f"not applicable: {sensitivity.NO_DATA_NOTES[1]}",
                }
            )
            continue
        if counts is not None:
            counts["reused" if reused else "recomputed"] += 1
        overlap = run_overlap([analysis], masks, target, _rerun_overlap(settings), outputs, reuse)
        rows.append(
            _variant_row(
                analysis, variant, reference, outputs[analysis.name], overlap, note, names
            )
        )
    main_rows = [references[a.name].row(a) for a in analyses]
    columns = [
        "analysis",
        "variant",
        "description",
        "experiments",
        "clusters",
        "kept_main_clusters",
        "kept_clusters",
        "new_clusters",
        "new_labels",
        *sensitivity.p_columns(names),
        "conclusion_changes",
    ]
    table = pd.DataFrame(main_rows + rows).reindex(columns=columns)
    order = {a.name: i for i, a in enumerate(analyses)}
    return table.sort_values("analysis", key=lambda s: s.map(order), kind="stable")


def run_review(
    analyses: list[Analysis],
    curation: Curation | None,
    coordinates_dir,
    results: ResultsFolder,
    settings: Settings,
    review: list[Analysis] | None = None,
    command: str = "mnsmeta robustness",
    reuse: bool = False,
    say=None,
) -> dict[str, pd.DataFrame]:
    """Run every robustness check for the disorder analyses; write the robustness folder.

    ``review`` names the ALE analyses to check instead (``mnsmeta ale --robustness``: a
    user's own, without sensitivity reruns, which need the project's curation).

    With ``reuse``, an analysis's checks are read from the robustness folder when they were
    made under the key this run computes (:func:`~mnsmeta.workflows.cache.robustness_key`),
    and each sensitivity rerun (an analysis and its overlap tests in the variant's folder)
    likewise; ``say`` receives a line naming what was reused and recomputed.

    Returns
    -------
    dict
        The tables written: ``clusters``, ``contributions``, ``jackknife``, ``failsafe``,
        ``failsafe_levels`` and (unless disabled) ``sensitivity``.
    """
    started = now()
    # An analysis without data (no curated contrast of its kind) has nothing to check, and
    # one of a single experiment no jackknife: leaving it out leaves nothing.
    summary = results.read_summary()
    sizes = summary.set_index("analysis")["experiments"] if summary is not None else {}
    reviewed = [
        a
        for a in (review if review is not None else reviewed_analyses(analyses))
        if results.computed(a) and sizes.get(a.name, MIN_REVIEWED) >= MIN_REVIEWED
    ]
    if not reviewed:
        raise MnsmetaInputError(
            "no SAD or BPD analysis to review: check coordinates/analyses.toml"
        )
    if settings.sensitivity and results.read_overlap() is None:
        raise MnsmetaInputError(
            f"{results.overlap_table}: missing: run `mnsmeta overlap` first, or pass "
            "--no-sensitivity"
        )
    parts: dict[str, list] = {}
    checks: dict[str, dict] = {}
    previous = results.robustness.read_cache() if reuse else {}
    cache, reused = {}, []
    with results.staged(results.robustness) as folder:
        if reuse and results.robustness.sensitivity_reruns.is_dir():
            # The variants' reruns are reused from their own folders, by their own keys.
            link_tree(results.robustness.sensitivity_reruns, folder.sensitivity_reruns)
        bar = progress(reviewed, desc="robustness", unit="analysis", show=settings.progress)
        for analysis in bar:
            bar.set_description(f"robustness {analysis.name}")
            key = _robustness_key(results, analysis, settings)
            made = previous.get(analysis.name, {})
            if key is not None and made.get("key") == key:
                tables = {name: table_from_json(t) for name, t in made["tables"].items()}
                if made["check"] is not None:
                    checks[analysis.name] = made["check"]
                reused.append(analysis.name)
            else:
                tables = _robustness(analysis, results, settings, checks)
            if key is not None:
                cache[analysis.name] = {
                    "key": key,
                    "tables": {name: table_to_json(t) for name, t in (tables or {}).items()},
                    "check": plain(checks.get(analysis.name)),
                }
            for name, table in (tables or {}).items():
                parts.setdefault(name, []).append(table)
        # Analyses in name order, the tables' columns in theirs.
        write_json(folder.cache, dict(sorted(cache.items())), sort_keys=False)
        tables = {key: pd.concat(value, ignore_index=True) for key, value in parts.items()}
        for key in folder.TABLES:
            table = tables.get(key, pd.DataFrame())
            if "analysis" in table:
                table = table[["analysis", *[c for c in table.columns if c != "analysis"]]]
            tables[key] = table
            folder.write_table(key, table)
        if settings.sensitivity:
            counts = {"reused": 0, "recomputed": 0}
            tables["sensitivity"] = _sensitivity(
                reviewed, analyses, curation, coordinates_dir, results, settings, folder,
                reuse, counts,
            )  # fmt: skip
            folder.write_table("sensitivity", tables["sensitivity"])
        if say is not None and reuse:
            recomputed = [a.name for a in reviewed if a.name not in reused]
            line = (
                f"robustness checks: reused {', '.join(reused) or 'none'}; recomputed "
                f"{', '.join(recomputed) or 'none'}"
            )
            if settings.sensitivity:
                line += (
                    f"; sensitivity reruns: {counts['reused']} reused, "
                    f"{counts['recomputed']} recomputed"
                )
            say(line)
        write_json(
            folder.provenance,
            {
                "command": command,
                "analyses": [a.name for a in reviewed],
                "settings": dataclasses.asdict(settings),
                "fsn_multiples": list(robustness.FSN_MULTIPLES),
                "fsn_draws": robustness.NOISE_DRAWS,
                "fsn_noise_space": "grey matter (MNI152 GM > 0.1)",
                "monte_carlo_check": checks,
                "versions": package_versions(),
                "inputs_sha256": (results.read_provenance() or {}).get("inputs_sha256")
                if coordinates_dir is None
                else input_checksums(coordinates_dir),
                "started": started,
                "finished": now(),
            },
        )
    return tables
