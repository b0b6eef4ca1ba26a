"""``mnsmeta overlap``: both overlap tests for every disorder analysis against every mask.

Takes what ``mnsmeta run`` made (the exact experiments and foci, the cluster labels and
tables: in memory after a run, read back from the results folder otherwise), so the tests
use the same experiments and sample sizes as the maps.
"""

from __future__ import annotations

import functools
import logging
import shutil

import nibabel as nib
import numpy as np
import pandas as pd

from mnsmeta.curation.analyses import Analysis
from mnsmeta.curation.controls import healthy_pool
from mnsmeta.curation.experiments import ExperimentSet
from mnsmeta.data import databases, hygiene
from mnsmeta.data.space import brain_mask_img
from mnsmeta.filesystem import link_tree
from mnsmeta.inference.masks import Mask, mask_parts
from mnsmeta.inference.overlap import (
    BaseRateDesign,
    DatabasePool,
    base_rate_null,
    cluster_overlap_table,
    moved_clusters_null,
    overlap_statistics,
    permutation_p,
    roi_null,
    summarise_null,
)
from mnsmeta.inference.precision import mc_interval
from mnsmeta.meta_analysis.ale import analysis_seed
from mnsmeta.meta_analysis.analysis_result import AnalysisResult
from mnsmeta.meta_analysis.engine import AleComputer
from mnsmeta.progress import progress
from mnsmeta.workflows.cache import canonical, digest, mask_digest, overlap_key, plain
from mnsmeta.workflows.masks import mask_colours, studies_on_grid, write_masks
from mnsmeta.workflows.provenance import now, package_versions
from mnsmeta.workflows.results import (
    FLOAT_FORMAT,
    ResultsFolder,
    write_csv,
    write_json,
)
from mnsmeta.workflows.settings import Settings

LGR = logging.getLogger(__name__)
#: Relocations are split into this many seeded chunks, whatever the number of processes,
#: so that the same seed gives the same null serially and in parallel.
N_CHUNKS = 8
#: Fewest placements of the moved-cluster test (the MNS claims' primary test).
MOVES = 10_000


#: The ROI test's nulls: foci relocated anywhere in the brain (the test as specified), and
#: only in grey matter (a control: real foci lie in grey matter, and so do MNS masks, so a
#: whole-brain null favours any grey-matter mask).
NULL_SPACES = {"brain": "roi_ale", "gm": "roi_ale_gm"}
#: What the secondary tests answer, in each of their rows (the base-rate test is primary).
SECONDARY_NOTES = {
    "roi_ale": "secondary: foci relocated uniformly in the brain; asks 'are the foci "
    "non-uniform?', which any fMRI literature is",
    "roi_ale_gm": "secondary: foci relocated in grey matter; asks 'are the foci non-uniform "
    "within grey matter?'",
    "thresholded_overlap": "secondary: the same clusters moved rigidly in the brain; asks 'is "
    "the convergence MNS-located, given its shape?', not 'more than typical fMRI?'",
}


def _roi_chunk(ijk, experiment, sample_sizes, masks, n_perm, seed, null_space):
    computer = AleComputer(brain_mask_img(), null_space)
    return roi_null(computer, ijk, experiment, sample_sizes, masks, n_perm, seed)


def roi_test(
    experiments: ExperimentSet,
    masks: dict[str, np.ndarray],
    settings: Settings,
    name: str,
    null_space: str = "brain",
):
    """Observed mean/max ALE in each mask and their relocation nulls (chunked, seeded).

    Every focus row is relocated (a location appears once per experiment), as the ALE's own
    Monte Carlo null does.
    """
    from joblib import Parallel, delayed

    ijk = experiments.ijk()
    experiment = experiments.experiment_of_foci()
    sample_sizes = experiments.sample_size_of_foci()
    sizes = [len(c) for c in np.array_split(np.arange(settings.n_perm), N_CHUNKS) if len(c)]
    seeds = np.random.SeedSequence(
        analysis_seed(settings.seed, f"roi:{null_space}:{name}")
    ).generate_state(len(sizes))
    # Threads: the ALE maps are computed by numba code that releases the GIL.
    chunks = Parallel(n_jobs=settings.jobs, prefer="threads")(
        delayed(_roi_chunk)(ijk, experiment, sample_sizes, masks, size, int(seed), null_space)
        for size, seed in zip(sizes, seeds, strict=True)
    )
    observed = chunks[0][0]
    null = {m: np.concatenate([chunk[1][m] for chunk in chunks]) for m in masks}
    return observed, null


def _roi_rows(name, observed, null, mask_names, test="roi_ale"):
    rows = []
    for mask in mask_names:
        for column, statistic in enumerate(("mean_ale", "max_ale")):
            rows.append(
                {
                    "analysis": name,
                    "mask": mask,
                    "test": test,
                    "statistic": statistic,
                    **summarise_null(observed[mask][column], null[mask][:, column]),
                    "note": SECONDARY_NOTES.get(test, ""),
                }
            )
    return rows


def _intersection_union_rows(analysis, results, masks, test, settings):
    """ROI rows of a conjunction: significant only if each input is (intersection-union test),
    so its statistic is the smaller input statistic and its p the larger input p."""
    rows = []
    for mask in masks:
        for column, statistic in enumerate(("mean_ale", "max_ale")):
            parts = [(observed[mask][column], null[mask][:, column]) for observed, null in results]
            p = max(permutation_p(obs, null) for obs, null in parts)
            low, high = mc_interval(p, settings.n_perm)
            rows.append(
                {
                    "analysis": analysis.name,
                    "mask": mask,
                    "test": test,
                    "statistic": statistic,
                    "observed": min(obs for obs, _ in parts),
                    "p": p,
                    "n_perm": settings.n_perm,
                    "p_mc_low": low,
                    "p_mc_high": high,
                    "note": "intersection-union test of "
                    + " and ".join(analysis.inputs)
                    + ": smaller input statistic, larger input p",
                }
            )
    return rows


def thresholded_overlap_rows(name, labels, clusters, mask, mask_name, brain, settings):
    """Rows of the thresholded-overlap test of one analysis's clusters against one mask.

    Each statistic is compared with the same clusters moved rigidly to random places in the
    brain (``settings.n_perm`` placements); without clusters every statistic is 0, p = 1.
    """
    affine = brain_mask_img().affine
    inverse = np.linalg.inv(affine)
    peaks = [
        tuple(np.rint(inverse @ [r.peak_x, r.peak_y, r.peak_z, 1])[:3].astype(int))
        for r in clusters.itertuples()
    ]
    stats = overlap_statistics(labels, mask, brain, peaks)
    rows = []
    base = {"analysis": name, "mask": mask_name, "test": "thresholded_overlap"}
    if stats["convergence_voxels"] == 0:
        note = "no significant cluster: overlap statistics are 0 by definition"
        for statistic, value in stats.items():
            rows.append(
                {
                    **base,
                    "statistic": statistic,
                    "observed": value,
                    "p": 1.0,
                    "n_perm": 0,
                    "note": note,
                }
            )
        return rows
    # The primary test of the MNS claims: cheap, so never fewer than MOVES placements.
    null_voxels, null_each = moved_clusters_null(
        labels,
        mask,
        brain,
        max(settings.n_perm, MOVES),
        analysis_seed(settings.seed, f"shift:{name}:{mask_name}"),
        per_cluster=True,
    )
    n_sig, n_mask = stats["convergence_voxels"], stats["mask_voxels"]
    share = n_mask / brain.sum()
    transforms = {
        "voxels_in_both": lambda v: v,
        "fraction_inside": lambda v: v / n_sig,
        "enrichment": lambda v: v / n_sig / share,
        "mask_covered": lambda v: v / n_mask if n_mask else 0 * v,
        "dice": lambda v: 2 * v / (n_sig + n_mask),
    }
    for statistic, value in stats.items():
        if statistic in transforms:
            summary = summarise_null(value, transforms[statistic](null_voxels.astype(float)))
            note = SECONDARY_NOTES["thresholded_overlap"]
            rows.append({**base, "statistic": statistic, **summary, "note": note})
        else:
            rows.append({**base, "statistic": statistic, "observed": value})
    # Each cluster alone against its own moved placements: "is this cluster MNS-located?",
    # where the whole map asks "is the convergence, taken together, MNS-located?".
    numbers = [c for c in range(1, int(labels.max()) + 1) if (labels == c).any()]
    for position, number in enumerate(numbers):
        observed = int(((labels == number) & mask).sum())
        rows.append(
            {
                **base,
                "test": "cluster_overlap",
                "statistic": "voxels_in_both",
                "cluster": number,
                **summarise_null(observed, null_each[:, position].astype(float)),
            }
        )
    return rows


def _figure(name, thresholded_img, masks: dict[str, Mask], path):
    import matplotlib.pyplot as plt
    from nilearn import plotting

    from mnsmeta.workflows.figures import DISPLAY_THRESHOLD, POSITIVE_CMAP, save_figure

    data = thresholded_img.get_fdata()
    colours = mask_colours(masks)
    figure = plt.figure(figsize=(10, 3.6))
    title = (
        f"{name}: convergence (colour) and MNS masks ("
        + ", ".join(f"{m}: {colours[m].split(':')[1]}" for m in masks)
        + ")"
    )
    if np.any(data > 0):
        display = plotting.plot_stat_map(
            thresholded_img,
            figure=figure,
            display_mode="z",
            cut_coords=(-18, 0, 10, 20, 35, 50),
            title=title,
            colorbar=True,
            cmap=POSITIVE_CMAP,
            threshold=DISPLAY_THRESHOLD,
            draw_cross=False,
        )
    else:
        display = plotting.plot_anat(
            figure=figure,
            display_mode="z",
            cut_coords=(-18, 0, 10, 20, 35, 50),
            title=f"{name}: no significant cluster; MNS masks as contours",
            draw_cross=False,
        )
    for mask_name, mask in masks.items():
        if mask.data.any():
            display.add_contours(
                mask.image(), levels=[0.5], colors=[colours[mask_name]], linewidths=1.2
            )
    save_figure(figure, path)


@functools.lru_cache(maxsize=1)
def database_pool() -> DatabasePool:
    """The screened healthy pool of the databases (the controls' pool: task imaging, no
    clinical, age, selected-sample or non-imaging study; :mod:`mnsmeta.curation.controls`),
    its foci cleaned as every analysis's are."""
    pmids, _ = healthy_pool(set())
    foci = databases.merged_foci(pmids=pmids)
    foci["experiment_id"] = foci["pmid"].astype(str)
    foci, _ = hygiene.apply_rules(foci)
    ijk, study, _ = studies_on_grid(foci)
    return DatabasePool(ijk, study)


def _design(result: AnalysisResult, summary: pd.DataFrame | None) -> BaseRateDesign | None:
    """An ALE analysis's foci counts, N and thresholds (None without a summary row)."""
    name = result.analysis.name
    if summary is None or name not in summary.index or result.experiments is None:
        return None
    row = summary.loc[name]
    cut, size_cut = row.get("cluster_forming_ale"), row.get("cluster_size_threshold_voxels")
    if pd.isna(cut) or pd.isna(size_cut):
        return None
    experiments = result.experiments
    return BaseRateDesign(
        experiments.counts, experiments.sample_sizes, float(cut), float(size_cut)
    )


def _split(masks: dict[str, np.ndarray]) -> dict[tuple[str, str], np.ndarray]:
    """Each mask whole (part '') and in its parts (IFG/vPM, rostral IPL, the rest)."""
    out = {}
    for name, mask in masks.items():
        out[name, ""] = mask
        for part, voxels in mask_parts(mask).items():
            out[name, part] = voxels
    return out


def base_rate_rows(analysis, result, inputs, summary, masks, settings, brain) -> list[dict]:
    """The base-rate test of one analysis in every mask and part: the analysis's rank among
    database sets drawn like it.

    ``inputs`` are the :class:`AnalysisResult` whose experiments are redrawn: the analysis
    itself (ALE) or its two inputs (conjunction: the ROI p is the larger input p, and a
    drawn set's thresholded map is the conjunction of its inputs' maps); the observed
    thresholded statistic is that of ``result``'s own map.
    """
    designs = [_design(r, summary) for r in inputs]
    if any(d is None for d in designs):
        return []
    parts = _split(masks)
    keys = list(parts)
    flat = {f"{m}|{p}": parts[m, p] for m, p in keys}
    computer = AleComputer(brain_mask_img(), "brain")
    pool = database_pool()
    roi, overlap = base_rate_null(
        computer,
        designs,
        pool,
        flat,
        settings.n_perm,
        analysis_seed(settings.seed, f"base_rate:{analysis.name}"),
    )
    observed_roi = []
    for one in inputs:
        experiments = one.experiments
        values = computer.ale(
            experiments.ijk(), experiments.experiment_of_foci(), experiments.sample_size_of_foci()
        )
        observed_roi.append(
            {
                key: (values[v[brain]].mean(), values[v[brain]].max()) if v.any() else (0, 0)
                for key, v in flat.items()
            }
        )
    significant = result.labels > 0 if result.labels is not None else None
    note = (
        f"rank among {settings.n_perm} sets of whole database experiments (screened "
        "healthy pool) drawn with the analysis's foci counts and N: more than typical fMRI "
        "foci would?"
    )
    rows = []
    for mask, part in keys:
        key = f"{mask}|{part}"
        base = {"analysis": analysis.name, "mask": mask, "part": part}
        for column, statistic in enumerate(("mean_ale", "max_ale")):
            if not parts[mask, part].any():
                continue
            pairs = [
                (o[key][column], r[key][:, column]) for o, r in zip(observed_roi, roi, strict=True)
            ]
            # A conjunction's p is its inputs' larger p (intersection-union test): the row
            # gives that input's statistic and null.
            observed, null = max(pairs, key=lambda pair: permutation_p(*pair))
            rows.append(
                {
                    **base,
                    "test": "roi_ale_base_rate",
                    "statistic": statistic,
                    **summarise_null(observed, null),
                    "note": note
                    + (
                        " Intersection-union: the input with the larger p."
                        if len(pairs) > 1
                        else ""
                    ),
                }
            )
        if significant is not None and parts[mask, part].any():
            observed = int((significant & parts[mask, part]).sum())
            rows.append(
                {
                    **base,
                    "test": "thresholded_base_rate",
                    "statistic": "voxels_in_both",
                    **summarise_null(observed, overlap[key].astype(float)),
                    "note": note + " Each set thresholded with the analysis's cluster-forming "
                    "ALE and cluster-size cut.",
                }
            )
    return rows


def tested_analyses(analyses: list[Analysis]) -> list[Analysis]:
    """Disorder ALE analyses and conjunctions."""
    return [a for a in analyses if a.tested_for_overlap]


def run_overlap(
    analyses: list[Analysis],
    masks: dict[str, Mask],
    results: ResultsFolder,
    settings: Settings,
    outputs: dict[str, AnalysisResult] | None = None,
    reuse: bool = False,
    say=None,
    analyses_in: ResultsFolder | None = None,
) -> pd.DataFrame:
    """Run both tests for each tested analysis and mask; write the overlap tables.

    Parameters
    ----------
    analyses : list of Analysis
        The analyses of the configuration; disorder ALEs and conjunctions are tested.
    masks : dict
        Mask name -> :class:`Mask`.
    results : ResultsFolder
        Where the masks, the overlap folder and the top-level overlap table are written.
    settings : Settings
    outputs : dict, optional
        Analysis name -> :class:`AnalysisResult` of this run; analyses missing here are
        read back from ``results``.
    reuse : bool
        Take an analysis's rows and figure from the overlap folder when they were made
        under the key this run computes (:func:`~mnsmeta.workflows.cache.overlap_key`),
        instead of recomputing them. False recomputes every test (``--force``).
    say : callable, optional
        Receives one line naming the analyses whose tests were reused and recomputed.
    analyses_in : ResultsFolder, optional
        The folder holding the analyses' own folders (and cache keys), when not ``results``
        (a sensitivity variant of the mask tests the main run's maps in its own folder).

    Returns
    -------
    pandas.DataFrame
        The overlap table: one row per analysis, mask, test and statistic.
    """
    outputs = dict(outputs or {})
    brain = np.asarray(brain_mask_img().get_fdata()) > 0
    mask_arrays = {name: mask.data for name, mask in masks.items()}
    by_name = {a.name: a for a in analyses}

    def result_of(name: str) -> AnalysisResult:
        if name not in outputs:
            outputs[name] = results.load(by_name[name])
        return outputs[name]

    started = now()
    summary = results.read_summary()
    summary = summary.set_index("analysis") if summary is not None else None
    rows, cluster_rows = [], []
    roi_cache: dict[tuple[str, str], tuple] = {}
    # An analysis without data (no curated contrast of its kind) has nothing to test.
    tested = [a for a in tested_analyses(analyses) if a.name in outputs or results.computed(a)]
    bar = progress(tested, desc="overlap", unit="analysis", show=settings.progress)
    # The masks and the tests made with them are replaced together, only when both are
    # complete: an interrupted `overlap --mask NEW` leaves the old mask beside its p-values.
    keys = _overlap_keys(tested, analyses_in or results, masks, settings)
    masks_key = _masks_key(masks)
    stored = results.overlap.read_cache()
    previous = stored.get("analyses", {}) if reuse else {}
    # Entries of analyses not tested now stay for a later run (a sensitivity variant's
    # folder is tested one analysis at a time).
    tested_names = {a.name for a in tested}
    cache = {k: v for k, v in stored.get("analyses", {}).items() if k not in tested_names}
    reused = []
    with results.staged(results.masks) as masks_folder, results.staged(results.overlap) as folder:
        if reuse and stored.get("masks") == masks_key and results.masks.figure.is_file():
            link_tree(results.masks.path, masks_folder.path)  # the same masks, written before
        else:
            write_masks(masks, masks_folder)
        for name in cache:  # the kept entries' figures stay beside them
            if results.overlap.figure(name).is_file():
                shutil.copy2(results.overlap.figure(name), folder.figure(name))
        for analysis in bar:
            bar.set_description(f"overlap {analysis.name}")
            key = keys.get(analysis.name)
            made = previous.get(analysis.name, {})
            figure = results.overlap.figure(analysis.name)
            if key is not None and made.get("key") == key and figure.is_file():
                shutil.copy2(figure, folder.figure(analysis.name))
                rows += made["rows"]
                if made["clusters"]:
                    cluster_rows.append(pd.DataFrame.from_records(made["clusters"]))
                cache[analysis.name] = made
                reused.append(analysis.name)
                continue
            first_row, first_cluster = len(rows), len(cluster_rows)
            result = result_of(analysis.name)
            for null_space, test in NULL_SPACES.items():
                names = [analysis.name] if analysis.is_ale else list(analysis.inputs)
                for name in names:
                    if (name, null_space) not in roi_cache:
                        roi_cache[name, null_space] = roi_test(
                            result_of(name).experiments, mask_arrays, settings, name, null_space
                        )
                if analysis.is_ale:
                    rows += _roi_rows(
                        analysis.name, *roi_cache[analysis.name, null_space], masks, test
                    )
                else:
                    rows += _intersection_union_rows(
                        analysis, [roi_cache[n, null_space] for n in names], masks, test, settings
                    )
            inputs = [result] if analysis.is_ale else [result_of(n) for n in analysis.inputs]
            rows += (
                []
                if not settings.base_rate
                else base_rate_rows(
                    analysis,
                    result,
                    inputs,
                    summary,
                    mask_arrays,
                    settings,
                    brain,
                )
            )
            labels, clusters = result.labels, result.clusters
            for mask_name, mask in mask_arrays.items():
                rows += thresholded_overlap_rows(
                    analysis.name, labels, clusters, mask, mask_name, brain, settings
                )
            if len(clusters):
                table = cluster_overlap_table(
                    labels, mask_arrays, clusters, brain_mask_img().affine
                )
                cluster_rows.append(table.assign(analysis=analysis.name))
            _figure(
                analysis.name,
                nib.Nifti1Image(result.thresholded, brain_mask_img().affine),
                masks,
                folder.figure(analysis.name),
            )
            if key is not None:
                cache[analysis.name] = {
                    "key": key,
                    "rows": plain(rows[first_row:]),
                    "clusters": [
                        plain(record)
                        for table in cluster_rows[first_cluster:]
                        for record in table.to_dict("records")
                    ],
                }
        if say is not None and reused:
            recomputed = [a.name for a in tested if a.name not in reused]
            say(
                f"overlap tests: reused {', '.join(reused)} (unchanged); recomputed "
                f"{', '.join(recomputed) or 'none'}"
            )
        # Analyses in name order, the rows' columns in theirs.
        content = {"masks": masks_key, "analyses": dict(sorted(cache.items()))}
        write_json(folder.cache, content, sort_keys=False)
        overlap = pd.DataFrame(rows)
        write_csv(overlap, folder.overlap, float_format=FLOAT_FORMAT)
        per_cluster = (
            pd.concat(cluster_rows, ignore_index=True) if cluster_rows else pd.DataFrame()
        )
        write_csv(per_cluster, folder.clusters, float_format=FLOAT_FORMAT)
        write_json(
            folder.provenance,
            {
                "command": "mnsmeta overlap",
                "analyses": [a.name for a in tested],
                "masks": {
                    name: {**m.description, "voxels": m.n_voxels} for name, m in masks.items()
                },
                "settings": settings.__dict__,
                "versions": package_versions(),
                "started": started,
                "finished": now(),
            },
        )
    write_csv(overlap, results.overlap_table, float_format=FLOAT_FORMAT)
    return overlap


def _masks_key(masks: dict[str, Mask]) -> str:
    """What the masks folder's files depend on: each mask's voxels and description."""
    content = {
        name: [mask_digest(mask.data), canonical(mask.description)] for name, mask in masks.items()
    }
    return digest(content)


def _overlap_keys(tested, results: ResultsFolder, masks, settings) -> dict[str, str]:
    """The overlap key of each tested analysis whose folder records its own cache key."""
    digests = {name: mask_digest(mask.data) for name, mask in masks.items()}
    keys = {}
    for analysis in tested:
        key = results.analysis(analysis).cache_key()
        if key is not None:
            keys[analysis.name] = overlap_key(key, digests, settings)
    return keys


def describe(overlap: pd.DataFrame) -> str:
    """A short text summary of the overlap table for the terminal."""
    lines = []
    main = overlap[
        (overlap["test"].str.startswith("roi_ale") & (overlap["statistic"] == "mean_ale"))
        | ((overlap["test"] == "thresholded_overlap") & (overlap["statistic"] == "voxels_in_both"))
    ]
    for row in main.itertuples():
        ci = (
            f" null {row.null_mean:.4g} [{row.null_ci_low:.4g}, {row.null_ci_high:.4g}]"
            if pd.notna(getattr(row, "null_mean", np.nan))
            else ""
        )
        lines.append(
            f"{row.analysis:16s} {row.mask:10s} {row.test:19s} {row.statistic:14s} "
            f"observed {row.observed:.4g}{ci} p={row.p:.3g}"
        )
    return "\n".join(lines)
