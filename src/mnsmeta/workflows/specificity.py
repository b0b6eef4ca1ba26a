"""The specificity stage: every subtraction of the run, asked where the claims are.

For each subtraction in ``analyses.toml`` (a disorder minus its screened database controls or
its published healthy reference, and SAD minus BPD) and each claim region (the claims file's
regions, on its atlas, and the MNS masks of the overlap stage), it writes
``results/specificity/`` (rules: :mod:`mnsmeta.inference.specificity`):

- ``differences.csv``: both directions, the largest ALE difference in the region and where,
  its voxel p, the region-wise FWE p, the mean difference and its p;
- ``power.csv``: per region and direction the power curve of the region-wise test (``k``
  experiments of the set that should be larger converge at the claim's location: the peak
  of that set's own cluster in the region when it has one, else a voxel of the region drawn
  per replicate), with ``k_of_interest`` (the claims' effect of interest, a third of the
  set) marked;
- ``overlap.csv``: per MNS mask, the share of each set's foci inside it and the permutation
  p of the difference.

``mnsmeta claims`` reads these tables for its verdicts (``make run`` runs this stage first).
A rerun reuses each subtraction whose key is unchanged (``specificity/cache.json``,
:func:`~mnsmeta.workflows.cache.specificity_key`).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from mnsmeta.curation.analyses import Analysis
from mnsmeta.curation.claims_file import Regions
from mnsmeta.data.space import mm_to_voxel
from mnsmeta.errors import MnsmetaInputError
from mnsmeta.inference.power import in_region, region_mask
from mnsmeta.inference.specificity import (
    DENSITY_RATIO,
    MASK_PREFIX,
    N_PERM,
    REPLICATES,
    RegionContrast,
    foci_share_difference,
    readings,
)
from mnsmeta.meta_analysis.ale import analysis_seed
from mnsmeta.workflows.cache import mask_digest, specificity_key, table_from_json, table_to_json
from mnsmeta.workflows.provenance import now
from mnsmeta.workflows.results import ResultsFolder, write_json

#: Points of a power curve, as shares of the planted set's experiments (plus the effect of
#: interest).
CURVE_SHARES = (1 / 6, 1 / 2, 2 / 3, 1.0)


def claim_regions(regions: Regions, results: ResultsFolder) -> dict[str, np.ndarray]:
    """The claims' regions on their atlases, and the overlap stage's MNS masks (if any)."""
    out = {
        name: region_mask(
            set(regions[name]), regions.atlas_of(name), **regions.bounds.get(name, {})
        )
        for name in regions.labels
    }
    from mnsmeta.workflows.masks import masks_from_results

    try:
        masks = masks_from_results(results)
    except MnsmetaInputError:  # no overlap stage: the claim regions alone
        masks = {}
    out.update({MASK_PREFIX + name: mask.data > 0 for name, mask in masks.items()})
    return out


def curve_ks(n: int, effect: float) -> list[int]:
    """The ``k`` of a power curve for a set of ``n`` experiments."""
    shares = (*CURVE_SHARES, effect)
    return sorted({max(1, min(n, math.ceil(share * n - 1e-9))) for share in shares})


def _target(result, mask: np.ndarray):
    """The peak (mm) of the largest cluster of ``result`` in the region, or None."""
    table = result.clusters
    if table is None or not len(table) or result.labels is None:
        return None
    for _, row in table.sort_values("size_mm3", ascending=False).iterrows():
        peak = (row.peak_x, row.peak_y, row.peak_z)
        if in_region(result.cluster_voxels(row), mm_to_voxel([peak])[0], mask):
            return np.array(peak, dtype=float)
    return None


@dataclass(frozen=True)
class SpecificitySettings:
    """Parameters of the specificity stage (recorded in its provenance).

    Parameters
    ----------
    seed : int
        Each subtraction's permutations and replicates are seeded from it and its name.
    effect_of_interest : float
        The share of a set's experiments a claimed effect involves (the claims file's).
    n_perm : int
        Permutations of the region-wise tests.
    replicates : int
        Replicates per point of a power curve.
    """

    seed: int = 0
    effect_of_interest: float = 1 / 3
    n_perm: int = N_PERM
    replicates: int = REPLICATES


def specificity_tables(
    analyses: list[Analysis],
    regions: Regions,
    results: ResultsFolder,
    settings: SpecificitySettings = SpecificitySettings(),
    progress=None,
    previous: dict | None = None,
    made: dict | None = None,
    jobs: int = 1,
) -> dict[str, pd.DataFrame]:
    """Differences, power curves and MNS overlap of every computed subtraction.

    Parameters
    ----------
    analyses : list of Analysis
    regions : Regions
        The claims file's regions.
    results : ResultsFolder
        Read for the subtractions' inputs (experiments, clusters) and the MNS masks.
    settings : SpecificitySettings
    progress : callable, optional
        Called with a line of text as each subtraction starts.
    previous : dict, optional
        An earlier run's cache (``specificity/cache.json``): a subtraction whose key
        (:func:`~mnsmeta.workflows.cache.specificity_key`) is unchanged is read from it.
    made : dict, optional
        Filled with this run's cache: subtraction name -> ``{"key", "tables", "reused"}``.
    jobs : int
        Threads for a subtraction's power curves (the tables do not depend on it).

    Returns
    -------
    dict
        ``"differences"``, ``"power"``, ``"overlap"``: the three tables (empty when no
        subtraction was computed).
    """
    by_name = {a.name: a for a in analyses}
    areas = claim_regions(regions, results)
    digests = {name: mask_digest(mask) for name, mask in areas.items()}
    parts: dict[str, list] = {"differences": [], "power": [], "overlap": []}
    for subtraction in (a for a in analyses if a.is_subtraction):
        inputs = [by_name.get(name) for name in subtraction.inputs]
        if any(a is None or not results.computed(a) for a in inputs):
            continue
        keys = [results.analysis(a).cache_key() for a in inputs]
        seed_used = analysis_seed(settings.seed, subtraction.name)
        key = (
            specificity_key(keys, digests, {**asdict(settings), "seed_used": seed_used})
            if all(keys)
            else None
        )
        stored = (previous or {}).get(subtraction.name, {})
        if key is not None and stored.get("key") == key:
            tables = {name: table_from_json(t) for name, t in stored["tables"].items()}
            reused = True
        else:
            loaded = [results.load(a) for a in inputs]
            if any(r.experiments is None for r in loaded):
                continue
            if progress is not None:
                progress(f"specificity: {subtraction.name}")
            tables = _subtraction_tables(
                subtraction, inputs, loaded, areas, settings, seed_used, jobs
            )
            reused = False
        for name, table in tables.items():
            parts[name].append(table)
        if made is not None and key is not None:
            made[subtraction.name] = {
                "key": key,
                "tables": {name: table_to_json(t) for name, t in tables.items()},
                "reused": reused,
            }
    overlap = [t for t in parts["overlap"] if len(t)]
    return {
        "differences": _ordered(parts["differences"]),
        "power": _ordered(parts["power"]),
        "overlap": pd.concat(overlap, ignore_index=True) if overlap else pd.DataFrame(),
    }


def _subtraction_tables(subtraction, inputs, loaded, areas, settings, seed_used, jobs=1):
    """One subtraction's rows of the three tables (``seed_used``: its own seed); its power
    curves in ``jobs`` threads."""
    effect, n_perm, replicates = settings.effect_of_interest, settings.n_perm, settings.replicates
    curves, overlaps = [], []
    contrast = RegionContrast(loaded[0].experiments, loaded[1].experiments, areas)
    labels = {"analysis": subtraction.name, "first": inputs[0].name, "second": inputs[1].name}
    points = [
        (region, planted_in, result, _target(result, areas[region]))
        for region in contrast.columns
        for planted_in, result in enumerate(loaded)
    ]

    def curve_of(point):
        region, planted_in, result, target = point
        n = len(result.experiments.experiments)
        return contrast.power(
            region, planted_in, curve_ks(n, effect), seed_used + 1 + planted_in,
            target_mm=target, replicates=replicates,
        )  # fmt: skip

    # The permutation null and each curve have their own seeds, so threads change no
    # number. Their NumPy work releases the GIL; BLAS is kept to one thread per task (its own
    # threads made two curves at once slower than one after the other: measured, 0.8x;
    # this way 1.5x on 2 cores).
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(max(1, jobs)) as pool:
        permuted = pool.submit(contrast.null, n_perm, seed_used)
        computed = list(pool.map(curve_of, points))
        null = permuted.result()
    differences = contrast.table(null).assign(**labels)
    names = [a.name for a in inputs]
    for (region, planted_in, result, target), curve in zip(points, computed, strict=True):
        n = len(result.experiments.experiments)
        high, low = names if planted_in == 0 else names[::-1]
        curves.append(
            curve.assign(
                **labels,
                region=region,
                direction=f"{high}>{low}",
                n_planted=n,
                k_of_interest=max(1, math.ceil(effect * n - 1e-9)),
                target=(
                    "observed peak ({:g}, {:g}, {:g})".format(*target)
                    if target is not None
                    else "a voxel of the region per replicate"
                ),
            )
        )
    for region, mask in areas.items():
        if region.startswith(MASK_PREFIX):
            row = foci_share_difference(
                loaded[0].experiments, loaded[1].experiments, mask, n_perm, seed_used
            )
            overlaps.append({**labels, "mask": region[len(MASK_PREFIX) :], **row})
    return {
        "differences": differences,
        "power": pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(),
        "overlap": pd.DataFrame(overlaps),
    }


def _ordered(parts: list[pd.DataFrame]) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame()
    table = pd.concat(parts, ignore_index=True)
    first = ["analysis", "first", "second", "region", "direction"]
    return table[first + [c for c in table.columns if c not in first]]


def run_specificity(
    analyses: list[Analysis],
    regions: Regions,
    results: ResultsFolder,
    settings: SpecificitySettings = SpecificitySettings(),
    progress=None,
    reuse: bool = False,
    say=None,
    jobs: int = 1,
) -> dict[str, pd.DataFrame]:
    """:func:`specificity_tables`, written to ``results/specificity/`` with provenance.

    With ``reuse``, a subtraction's tables are read from the folder's ``cache.json`` when
    they were made under the key this run computes; ``say`` receives a line naming what
    was reused and recomputed.
    """
    started = now()
    previous = results.specificity.read_cache() if reuse else {}
    made: dict = {}
    tables = specificity_tables(
        analyses, regions, results, settings, progress, previous, made, jobs
    )
    if say is not None and made:
        reused = [name for name, entry in made.items() if entry["reused"]]
        computed = [name for name, entry in made.items() if not entry["reused"]]
        say(
            f"specificity: reused {', '.join(reused) or 'none'}; "
            f"recomputed {', '.join(computed) or 'none'}"
        )
    with results.staged(results.specificity) as folder:
        for name, table in tables.items():
            folder.write_table(name, table)
        cache = {
            name: {"key": entry["key"], "tables": entry["tables"]}
            for name, entry in sorted(made.items())
        }
        write_json(folder.cache, cache, sort_keys=False)
        write_json(
            folder.provenance,
            {
                "analyses": sorted(
                    {n for a in analyses if a.is_subtraction for n in (a.name, *a.inputs)}
                ),
                **asdict(settings),
                "started": started,
                "finished": now(),
            },
        )
    return tables


def describe(tables: dict[str, pd.DataFrame]) -> str:
    """The readings for the terminal: one line per subtraction, region and direction."""
    if tables["differences"].empty:
        return "no subtraction computed: nothing to compare (run `mnsmeta run` first)"
    table = readings(tables["differences"], tables["power"])
    lines = []
    for r in table.itertuples():
        flag = ""
        if r.reading == "exceeds" and getattr(r, "density_ratio", 0) > DENSITY_RATIO:
            flag = f"; {r.density_ratio:.1f}x the foci per experiment"
        lines.append(
            f"{r.analysis:<18} {r.region:<16} {r.direction:<26} "
            f"max diff {r.max_difference:.4f}  p_fwe {r.p_fwe:.3g}  {r.reading}"
            f" (k={r.k_of_interest:g} of {r.n_planted:g}{flag})"
        )
    return "\n".join(lines)
