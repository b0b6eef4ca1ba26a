"""The MNS masks of a run: made from the analyses, the databases and the atlas; written with
their sidecars and agreement table; read back by the later stages.
"""

from __future__ import annotations

import functools
import logging

import numpy as np
import pandas as pd

from mnsmeta.curation.analyses import Analysis, mns_reference
from mnsmeta.curation.controls import studies_naming
from mnsmeta.data import databases
from mnsmeta.data.space import brain_mask_img, mm_to_voxel
from mnsmeta.errors import MnsmetaInputError
from mnsmeta.filesystem import atomic
from mnsmeta.inference.masks import (
    MIRROR_TERMS,
    Mask,
    agreement_table,
    anatomical_mask,
    conjunction_mask,
    meta_analytic_mask,
    term_mask,
    user_mask,
)
from mnsmeta.meta_analysis.analysis_result import AnalysisResult
from mnsmeta.meta_analysis.association import StudyCounts
from mnsmeta.workflows.results import FLOAT_FORMAT, ResultsFolder, write_csv, write_json

LGR = logging.getLogger(__name__)
#: The order of the masks in every table and figure: the built-in ones, then the others.
MASK_COLOURS = {
    "meta": "tab:blue",
    "curated": "tab:red",
    "expert": "tab:orange",
    "terms": "tab:cyan",
    "anatomical": "tab:green",
    "user": "tab:purple",
}
MASK_ORDER = tuple(MASK_COLOURS)
#: Colours of masks with other names, in turn.
OTHER_MASK_COLOURS = ("tab:olive", "tab:pink", "tab:brown", "tab:gray")


def mask_colours(names) -> dict[str, str]:
    """A contour colour for each mask: the built-in masks keep theirs, others take the next."""
    others = iter(OTHER_MASK_COLOURS * len(list(names)))
    return {name: MASK_COLOURS.get(name) or next(others) for name in names}


def studies_on_grid(foci: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Database foci (``pmid``, MNI ``x``, ``y``, ``z``) as voxels on the grid: their
    ``ijk``, the study (0 .. n - 1) of each, and the studies' PMIDs (sorted)."""
    ijk = mm_to_voxel(foci[["x", "y", "z"]].to_numpy())
    inside = np.all((ijk >= 0) & (ijk < brain_mask_img().shape), axis=1)
    studies, study = np.unique(foci["pmid"].to_numpy()[inside], return_inverse=True)
    return ijk[inside], study, studies


def database_counts() -> tuple[StudyCounts, pd.DataFrame]:
    """Every NeuroQuery study's foci (merged databases, in MNI) as study counts, and which
    studies name the mirror terms."""
    naming = studies_naming(MIRROR_TERMS)
    foci = databases.merged_foci(pmids=naming.index)
    # A table stored twice counts once, as in every analysis.
    foci = foci[foci["copy_rule"].fillna("") == ""]
    ijk, study, studies = studies_on_grid(foci)
    return StudyCounts(ijk, study, len(studies)), naming.reindex(studies)


@functools.lru_cache(maxsize=1)
def mirror_term_mask() -> Mask:
    """The term-based mask (:func:`mnsmeta.inference.masks.term_mask`) from the databases."""
    counts, naming = database_counts()
    association = {term: counts.association(naming[term].to_numpy()) for term in MIRROR_TERMS}
    return term_mask(association)


def _analysis_mask(
    analysis: Analysis, result: AnalysisResult | None, results: ResultsFolder, name: str
):
    """One analysis's cluster-FWE map as a mask (from this run, else its results folder)."""
    folder = results.analysis(analysis)
    labels_path = folder.thresholded().labels
    if result is None and labels_path.is_file():
        result = results.load(analysis)
    if result is not None and result.labels is not None:
        labels, clusters, experiments = result.labels, result.clusters, result.experiments
    else:
        raise MnsmetaInputError(
            f"{labels_path}: missing: run the {analysis.name} analysis first "
            f"(mnsmeta run --analyses {analysis.name}): it makes the {name!r} mask"
        )
    provenance = folder.read_provenance() or {}
    n_experiments = len(experiments.ids) if experiments is not None else None
    what = (
        f"ALE of {analysis.name} ("
        + ", ".join(
            part
            for part in (
                "groups " + "+".join(analysis.groups) if analysis.groups else "",
                "reference " + "+".join(analysis.reference) if analysis.reference else "",
                "paradigms " + "+".join(analysis.paradigms) if analysis.paradigms else "",
                "effectors " + "+".join(analysis.effectors) if analysis.effectors else "",
            )
            if part
        )
        + ")"
    )
    return meta_analytic_mask(
        labels,
        source=str(labels_path),
        n_experiments=n_experiments,
        n_iters=provenance.get("settings", {}).get("n_iters"),
        experiments=experiments.ids if experiments is not None else None,
        clusters=clusters,
        name=name,
        made_by=what,
    )


def masks_for(
    results: ResultsFolder,
    analyses: list[Analysis],
    user_path=None,
    threshold: float | None = None,
    outputs: dict[str, AnalysisResult] | None = None,
    terms: bool = True,
) -> dict[str, Mask]:
    """Every MNS mask of the run: meta, the analyses' named masks, terms, anatomical, user.

    The meta-analytic mask is the MNS reference analysis's cluster-FWE map; an analysis with
    ``mask = "name"`` makes that mask (two such analyses: their conjunction); ``terms`` is
    made from the databases (a few seconds; ``terms=False`` leaves it out).
    """
    # The user's mask first: a bad file is the user's to fix, before any other work.
    user = user_mask(user_path, threshold) if user_path is not None else None
    outputs = outputs or {}
    reference = mns_reference(analyses)
    if reference is None:
        raise MnsmetaInputError(
            "no MNS reference analysis (an ale analysis of group MNS) in analyses.toml: "
            "add one, it makes the meta-analytic mask"
        )
    masks = {"meta": _analysis_mask(reference, outputs.get(reference.name), results, "meta")}
    named: dict[str, list[Analysis]] = {}
    for analysis in analyses:
        if analysis.makes_mask:
            named.setdefault(analysis.mask, []).append(analysis)
    for name, sources in named.items():
        missing = [
            a.name
            for a in sources
            if a.name not in outputs and not results.analysis(a).thresholded().labels.is_file()
        ]
        if missing:  # a partial run: the other masks are still tested
            LGR.warning(
                "mask %r left out: %s not computed in %s (mnsmeta run --analyses %s)",
                name,
                " and ".join(missing),
                results.path,
                ",".join(missing),
            )
            continue
        if len(sources) == 1:
            masks[name] = _analysis_mask(sources[0], outputs.get(sources[0].name), results, name)
        else:
            parts = [_analysis_mask(a, outputs.get(a.name), results, a.name) for a in sources]
            masks[name] = conjunction_mask(name, parts)
    if terms:
        masks["terms"] = mirror_term_mask()
    masks["anatomical"] = anatomical_mask()
    if user is not None:
        masks["user"] = user
    return masks


def write_masks(masks: dict[str, Mask], folder) -> pd.DataFrame:
    """Write each mask, its JSON sidecar and the agreement table into a (staged) folder."""
    for name, mask in masks.items():
        with atomic(folder.image(name)) as temporary:
            mask.image().to_filename(temporary)
        write_json(folder.sidecar(name), {**mask.description, "voxels": mask.n_voxels})
    agreement = agreement_table(masks)
    write_csv(agreement, folder.agreement, float_format=FLOAT_FORMAT)
    _agreement_figure(masks, folder.figure)
    return agreement


def _agreement_figure(masks: dict[str, Mask], path) -> None:
    import matplotlib.pyplot as plt
    from nilearn import plotting

    from mnsmeta.workflows.figures import save_figure

    colours = mask_colours(masks)
    figure = plt.figure(figsize=(11, 3.6))
    display = plotting.plot_anat(
        figure=figure,
        display_mode="z",
        cut_coords=(-10, 0, 10, 20, 30, 40, 50),
        title="MNS masks: " + ", ".join(f"{m} {colours[m].split(':')[1]}" for m in masks),
        draw_cross=False,
        colorbar=False,
    )
    for name, mask in masks.items():
        if mask.data.any():
            display.add_contours(mask.image(), levels=[0.5], colors=[colours[name]], linewidths=1)
    save_figure(figure, path)


def masks_from_results(results: ResultsFolder) -> dict[str, Mask]:
    """The masks the overlap stage used, as written to the results folder."""
    written = results.read_masks()
    # The built-in masks first, in the order the overlap stage tests them.
    order = sorted(
        written,
        key=lambda name: (MASK_ORDER.index(name) if name in MASK_ORDER else len(MASK_ORDER), name),
    )
    masks = {
        name: Mask(
            name, written[name][0], {k: v for k, v in written[name][1].items() if k != "voxels"}
        )
        for name in order
    }
    if not masks:
        raise MnsmetaInputError(f"{results.masks.path}: no masks: run `mnsmeta overlap` first")
    return masks
