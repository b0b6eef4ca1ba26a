"""How much weight each cluster bears: contributions, jackknife and fail-safe N.

Every check works on the experiments and cluster labels of an analysis as ``mnsmeta run``
made them (the exact foci and sample sizes), so it judges the clusters that were reported.

* **Contributions**: the share of a cluster's ALE that each experiment accounts for, as
  NiMARE's ``Jackknife`` diagnostic defines it (the ALE summed over the cluster's voxels, with
  and without the experiment; the losses are normalised to sum to one). A cluster is
  *dominated* when one experiment gives more than half, or two give more than 80 %
  (Eickhoff et al., 2016's warning signs).
* **Jackknife**: each experiment is left out in turn and the whole threshold procedure is
  rerun (NiMARE's cluster-forming cut of the subset, its own Monte Carlo cluster-size null,
  cluster-FWE p < 0.05). A cluster survives a subset when a significant cluster of the subset
  overlaps it; it is *fragile* when some single experiment's removal makes it vanish. Per
  subset the table also gives the retained volume (the share of the cluster's voxels still
  significant) and the peak shift (mm from the cluster's peak to the subset's peak inside
  the cluster); one overlapping voxel is survival, not replication.
* **Fail-safe N** (Acar et al., 2018): noise experiments with foci uniform in grey matter
  (MNI152 grey matter > 0.1, where Acar et al. draw them; foci counts and sample sizes those
  of the real experiments in turn) are added, and the procedure is rerun. For each of
  ``NOISE_DRAWS`` independent noise draws, a bisection over a grid of noise levels (from n/4
  to 10 n; n, the number of real experiments, is the lower benchmark) finds the last level
  at which the cluster is still significant and the first at which it is not; the fail-safe
  N is the mean over draws of the midpoint between the two, with the range over draws. A
  cluster is *robust* when that estimate reaches the benchmark. Only the locations vary
  between draws, so one Monte Carlo null per level serves every draw; it stops early at
  the levels whose decisions are already certain (exact sequential Monte Carlo: the same
  decisions as the full null). The fail-safe N is an estimate built from decisions.

The nulls of all leave-one-out subsets, and of all noise levels, come from one set of random
draws each (:mod:`mnsmeta.meta_analysis.engine.shared_nulls`); the observed maps and cuts
are NiMARE's.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from scipy import ndimage

from mnsmeta.curation.experiments import ExperimentSet
from mnsmeta.data.space import brain_mask_img
from mnsmeta.meta_analysis.ale import settle_heap
from mnsmeta.meta_analysis.clusters import CONNECTIVITY
from mnsmeta.meta_analysis.datasets import to_dataset
from mnsmeta.meta_analysis.engine import added_experiments_null, leave_one_out_null
from mnsmeta.meta_analysis.nimare_adapter import cluster_forming_cut, nested_ale_fits, quiet

#: Eickhoff et al. (2016): a cluster driven by one or two experiments is not convergence.
ONE_EXPERIMENT_SHARE = 0.5
TWO_EXPERIMENTS_SHARE = 0.8
#: The grid of noise levels the bisection searches, as multiples of the number of real
#: experiments (Acar et al.'s search range, n to 10 n, with finer steps near the benchmark).
FSN_MULTIPLES = (0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 7, 10)
#: Independent noise draws the fail-safe N is averaged over.
NOISE_DRAWS = 10


def noise_experiments(
    real: ExperimentSet, n: int, seed: int, null_space: str = "gm"
) -> ExperimentSet:
    """``n`` noise experiments: foci counts and N of ``real`` in turn, foci uniform.

    Noise experiment i copies the foci count and N of real experiment i mod len(real), so
    that every draw has the same counts and N (and so the same Monte Carlo null) and draws
    differ only in where the foci fall: uniformly in grey matter (``"gm"``, Acar et al.,
    2018) or in the whole brain mask (``"brain"``). Foci lie at voxel centres.
    """
    from mnsmeta.meta_analysis.engine import null_space_mask

    rng = np.random.default_rng(seed)
    pick = np.arange(n) % len(real.counts)
    counts = real.counts[pick]
    space_ijk = np.argwhere(null_space_mask(brain_mask_img(), null_space))
    ijk = space_ijk[rng.integers(0, len(space_ijk), size=int(counts.sum()))]
    ids = [f"noise{i + 1}" for i in range(n)]
    return ExperimentSet.from_voxels("noise", ids, ijk, counts, real.sample_sizes[pick])


def _observed(dataset, keep, cluster_forming_p: float):
    """NiMARE's ALE map (3D) of the experiments ``keep`` of ``dataset``, and its cut."""
    from nimare.meta.cbma.ale import ALE

    ids = list(dataset.ids)
    settle_heap()
    with quiet():
        estimator = ALE()
        result = estimator.fit(dataset.slice([ids[e] for e in keep]))
        cut = cluster_forming_cut(estimator, cluster_forming_p)
    return result.get_map("stat", return_type="image").get_fdata(), cut


def significant_voxels(stat, cut, null_sizes, cluster_p):
    """Voxels of the clusters of ``stat > cut`` whose size beats the null at ``cluster_p``.

    The cluster p-value is NiMARE's: the share of the null's largest clusters at least as
    large (``nimare.stats.null_to_p``, upper tail).
    """
    from nimare.stats import null_to_p

    labels, n = ndimage.label(stat > cut, CONNECTIVITY)
    if n == 0:
        return np.zeros(stat.shape, dtype=bool)
    sizes = np.bincount(labels.ravel())[1:]
    p = np.atleast_1d(null_to_p(sizes.astype(float), np.asarray(null_sizes, float), "upper"))
    keep = np.r_[False, p < cluster_p]
    return keep[labels]


def cluster_ids(labels: np.ndarray) -> list[int]:
    return [int(c) for c in np.unique(labels) if c > 0]


def contributions(experiments: ExperimentSet, labels: np.ndarray) -> pd.DataFrame:
    """Each experiment's share of each cluster's ALE (NiMARE's Jackknife definition).

    Returns
    -------
    pandas.DataFrame
        One row per cluster and experiment with a nonzero share: ``cluster``, ``study_id``,
        ``share`` (normalised to sum to 1 over the cluster), ``loss`` (the fraction of the
        cluster's summed ALE lost without the experiment) and ``rank``.
    """
    from nimare.meta.kernel import ALEKernel

    with quiet():
        dataset = to_dataset(experiments, positional_ids=True)
        ma = ALEKernel().transform(dataset, return_type="array").astype(np.float64)
    mask = np.asarray(brain_mask_img().get_fdata()) > 0
    flat_labels = labels[mask]
    rows = []
    for cluster in cluster_ids(labels):
        inside = ma[:, flat_labels == cluster]
        keep = 1.0 - inside
        full = 1.0 - np.prod(keep, axis=0)
        without = 1.0 - np.prod(keep, axis=0) / keep
        loss = 1.0 - without.sum(axis=1) / full.sum()
        share = loss / loss.sum() if loss.sum() > 0 else loss
        order = np.argsort(-share, kind="stable")
        for rank, e in enumerate(order, start=1):
            if share[e] > 0:
                rows.append(
                    {
                        "cluster": cluster,
                        "study_id": experiments.ids[e],
                        "share": share[e],
                        "loss": loss[e],
                        "rank": rank,
                    }
                )
    return pd.DataFrame(rows, columns=["cluster", "study_id", "share", "loss", "rank"])


def dominance(table: pd.DataFrame) -> pd.DataFrame:
    """Per cluster: the top one and two shares and whether the cluster is dominated."""
    rows = []
    for cluster, group in table.groupby("cluster"):
        shares = group.sort_values("share", ascending=False)["share"].to_numpy()
        top, top_two = shares[0], shares[:2].sum()
        rows.append(
            {
                "cluster": cluster,
                "top_study": group.sort_values("share", ascending=False)["study_id"].iloc[0],
                "top_share": top,
                "top_two_share": top_two,
                "dominated": bool(top > ONE_EXPERIMENT_SHARE or top_two > TWO_EXPERIMENTS_SHARE),
            }
        )
    return pd.DataFrame(
        rows, columns=["cluster", "top_study", "top_share", "top_two_share", "dominated"]
    )


def jackknife(
    experiments: ExperimentSet,
    labels: np.ndarray,
    n_iters: int,
    seed: int,
    cluster_forming_p: float = 0.001,
    cluster_p: float = 0.05,
    n_jobs: int = 1,
    progress=None,
) -> tuple[pd.DataFrame, dict]:
    """Leave each experiment out, rerun the threshold procedure, see which clusters survive.

    Returns
    -------
    table : pandas.DataFrame
        Per cluster: ``survived`` (of ``n_loo`` subsets), ``fragile``, ``dropped_by`` (the
        experiments whose removal makes it vanish, space-separated), the smallest and median
        retained volume (%) and the largest peak shift (mm) over the subsets.
    check : dict
        The full dataset's cluster-size threshold from the same draws, to compare with the
        main run's (a Monte Carlo agreement check), and ``subsets``: per cluster and left-out
        experiment, survival, retained volume and peak shift.
    """
    n = len(experiments.ids)
    dataset = to_dataset(experiments, positional_ids=True)
    observed = [
        _observed(dataset, [j for j in range(n) if j != i], cluster_forming_p) for i in range(n)
    ]
    full_stat, full_cut = _observed(dataset, range(n), cluster_forming_p)
    cuts = [cut for _, cut in observed] + [full_cut]
    null = leave_one_out_null(
        brain_mask_img(),
        experiments.sample_sizes,
        experiments.counts,
        cuts,
        n_iters,
        seed,
        n_jobs,
        progress,
    )
    clusters = cluster_ids(labels)
    survived = {c: [] for c in clusters}
    subsets = []
    zooms = np.abs(np.diag(brain_mask_img().affine)[:3])
    peaks = {c: _peak(full_stat, labels == c) for c in clusters}
    for i, (stat, cut) in enumerate(observed):
        significant = significant_voxels(stat, cut, null[:, i], cluster_p)
        for c in clusters:
            inside = labels == c
            kept = significant & inside
            survived[c].append(bool(kept.any()))
            shift = (
                float(np.linalg.norm((_peak(stat, kept) - peaks[c]) * zooms))
                if kept.any()
                else np.nan
            )
            subsets.append(
                {
                    "cluster": c,
                    "left_out": experiments.ids[i],
                    "survived": bool(kept.any()),
                    "retained_pct": 100.0 * kept.sum() / inside.sum(),
                    "peak_shift_mm": shift,
                }
            )
    by_subset = pd.DataFrame(subsets)
    rows = []
    for c in clusters:
        kept = np.array(survived[c])
        mine = by_subset[by_subset["cluster"] == c]
        rows.append(
            {
                "cluster": c,
                "survived": int(kept.sum()),
                "n_loo": n,
                "fragile": bool(not kept.all()),
                "dropped_by": " ".join(experiments.ids[i] for i in np.flatnonzero(~kept)),
                "min_retained_pct": float(mine["retained_pct"].min()),
                "median_retained_pct": float(mine["retained_pct"].median()),
                "max_peak_shift_mm": float(mine["peak_shift_mm"].max()),
            }
        )
    check = {
        "full_cluster_forming_ale": full_cut,
        "full_cluster_size_threshold_voxels": float(np.quantile(null[:, -1], 1 - cluster_p)),
        "full_clusters_significant": int(
            ndimage.label(significant_voxels(full_stat, full_cut, null[:, -1], cluster_p))[1]
        ),
    }
    table = pd.DataFrame(rows, columns=JACKKNIFE_COLUMNS)
    check["subsets"] = by_subset
    return table, check


#: The fail-safe N's evidence: per draw, probed level and cluster, the decision and the
#: null iterations it rests on (fewer than asked where the level was decided early).
LEVEL_COLUMNS = ["draw", "cluster", "noise_experiments", "significant", "null_iterations"]

JACKKNIFE_COLUMNS = [
    "cluster",
    "survived",
    "n_loo",
    "fragile",
    "dropped_by",
    "min_retained_pct",
    "median_retained_pct",
    "max_peak_shift_mm",
]


def _p_given_exceedances(exceedances, n: int):
    """NiMARE's upper-tail p (``null_to_p``) of a value that ``exceedances`` of ``n`` null
    values match or beat, before its clipping to ``[1/n, 1 - 1/n]``."""
    return 1 - (n - np.asarray(exceedances, dtype=float)) / n


def _last_undecided_probe(decided: np.ndarray) -> int:
    """The highest level that :func:`fail_safe_n`'s bisection may probe while its decision
    is still open (-1: none), following both outcomes of every open decision.

    ``decided[j]``: level ``j`` is known to be "not significant"; an open level may turn
    out either way.
    """
    top = -1
    if decided[0]:
        return top
    top = 0
    paths = [(0, len(decided))]
    while paths:
        low, high = paths.pop()
        if high - low <= 1:
            continue
        middle = (low + high) // 2
        paths.append((low, middle))
        if not decided[middle]:
            top = max(top, middle)
            paths.append((middle, high))
    return top


def _null_p(value: float, null: np.ndarray) -> float:
    """NiMARE's upper-tail p of ``value`` against ``null`` (``null_to_p``)."""
    from nimare.stats import null_to_p

    return float(null_to_p(float(value), np.asarray(null, float), "upper"))


def _peak(stat: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Voxel index of the largest ``stat`` among the voxels ``where``."""
    return np.array(np.unravel_index(np.argmax(np.where(where, stat, -np.inf)), stat.shape))


def fail_safe_n(
    experiments: ExperimentSet,
    labels: np.ndarray,
    n_iters: int,
    seed: int,
    cluster_forming_p: float = 0.001,
    cluster_p: float = 0.05,
    multiples=FSN_MULTIPLES,
    n_jobs: int = 1,
    progress=None,
    levels=None,
    draws: int = NOISE_DRAWS,
    null_space: str = "gm",
    sequential: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fail-safe N of each cluster: noise experiments it withstands (Acar et al., 2018).

    The grid of noise levels is ``multiples`` of the number of real experiments ``n`` (or
    ``levels``, numbers of noise experiments, when given). For each of ``draws`` noise draws
    a bisection over the grid finds, per cluster, the last level with the cluster significant
    and the first without (significance assumed to fall with more noise, as it does in
    expectation); the estimate is the mean over draws of their midpoint.

    Each probe is a decision at ``cluster_p``, and with ``sequential`` (the default) the
    null stops early where the decisions are already certain (exact sequential Monte
    Carlo, after Besag & Clifford, 1991): every draw's observed map at every level is
    computed (:func:`~mnsmeta.meta_analysis.nimare_adapter.nested_ale_fits`, one MA
    computation per draw; the null's first round runs meanwhile), and between rounds of
    1,000 iterations (:data:`~mnsmeta.meta_analysis.engine.shared_nulls.ROUND_BLOCKS`
    blocks) the top levels that no bisection can still probe undecided are no longer
    stamped; a probe is decided "not significant" once enough null clusters match or beat
    its cluster that its p cannot fall below ``cluster_p`` whatever the remaining
    iterations hold. The decisions, and so both tables except ``null_iterations``, are
    those of the full null (``sequential=False``; tested).

    Returns
    -------
    table : pandas.DataFrame
        Per cluster: ``fsn`` (the estimate, rounded), ``fsn_low`` and ``fsn_high`` (the
        smallest and largest midpoint over draws), ``fsn_text``, ``benchmark`` (= n),
        ``robust`` (estimate >= n) and ``draws``. A cluster still significant at the top
        of the grid counts at the top level for that draw (the estimate is then a lower
        bound, said in ``fsn_text``).
    levels : pandas.DataFrame
        Per draw, noise level probed and cluster: significant or not (the evidence), and
        ``null_iterations``, the null iterations behind the decision (``n_iters`` unless
        the level was decided "not significant" early).
    """
    n = len(experiments.ids)
    if levels is None:
        levels = [round(m * n) for m in multiples]
    grid = [0, *sorted({int(k) for k in levels if k > 0})]
    seeds = np.random.SeedSequence(seed).spawn(draws + 1)
    noise = [
        noise_experiments(experiments, grid[-1], int(s.generate_state(1)[0]), null_space)
        for s in seeds[:draws]
    ]
    checkpoints = [n + k for k in grid]
    clusters = cluster_ids(labels)
    # Every draw's observed map at every level, reduced to what a decision needs: per
    # cluster, the largest observed cluster that overlaps it (0: none).
    overlapping = np.zeros((draws, len(grid), len(clusters)), dtype=np.int64)

    def observe(d: int) -> list[float]:
        dataset = to_dataset(experiments.plus(noise[d]), positional_ids=True)
        settle_heap()
        cuts = []
        for j, (stat, cut) in enumerate(nested_ale_fits(dataset, checkpoints, cluster_forming_p)):
            cuts.append(cut)
            found, _ = ndimage.label(stat > cut, CONNECTIVITY)
            sizes = np.bincount(found.ravel())
            for i, c in enumerate(clusters):
                touching = np.unique(found[(labels == c) & (found > 0)])
                overlapping[d, j, i] = sizes[touching].max() if len(touching) else 0
        return cuts

    # A level's cut depends on where the foci fall only through the MA maps' value
    # histograms (barely); the null uses each level's cut in the first draw, and each
    # probe its own draw's cut.
    cuts = observe(0)
    # The null runs while the other draws' maps are fitted (NiMARE's fits hold one core; the
    # other was idle); its first decisions wait for them, so the tables do not depend on
    # which finishes first.
    observed = threading.Event()
    failed = []

    def needed(done: np.ndarray) -> int:
        observed.wait()
        if failed:
            return 0  # stop the null: the fits raised
        if not sequential:
            return len(checkpoints)
        # A probe is decided "not significant" once its overlapping cluster is matched or
        # beaten by so many null clusters that no later iteration can bring its p below
        # cluster_p (NiMARE's upper-tail p only grows with more exceedances); "significant"
        # needs every iteration. The levels still needed are those some bisection may yet
        # probe undecided; levels are stamped in order, so only the top ones can stop.
        exceed = (done[None, :, :, None] >= overlapping[:, None, :, :]).sum(axis=1)
        decided = (overlapping == 0) | (_p_given_exceedances(exceed, n_iters) >= cluster_p)
        top = -1
        for d in range(draws):
            for i in range(len(clusters)):
                top = max(top, _last_undecided_probe(decided[d, :, i]))
        return top + 1

    everything = experiments.plus(noise[0])
    with ThreadPoolExecutor(max_workers=1) as runner:
        running = runner.submit(
            added_experiments_null,
            brain_mask_img(),
            everything.sample_sizes,
            everything.counts,
            checkpoints,
            cuts,
            n_iters,
            seeds[draws].generate_state(1)[0],
            n_jobs,
            progress,
            needed=needed,
        )
        try:
            for d in range(1, draws):
                observe(d)
        except BaseException:
            failed.append(True)
            raise
        finally:
            observed.set()
        null = running.result()
    complete = null.min(axis=0) >= 0  # the levels whose null ran every iteration
    iterations = np.where(complete, n_iters, np.argmax(null < 0, axis=0))
    probed = {}

    def significant(d: int, j: int) -> dict[int, bool]:
        # A cluster is significant at a probe when the largest observed cluster overlapping
        # it is (p falls with size): as significant_voxels(...)[labels == c].any().
        if (d, j) not in probed:
            found = {}
            for i, c in enumerate(clusters):
                size = overlapping[d, j, i]
                found[c] = bool(size > 0 and complete[j] and _null_p(size, null[:, j]) < cluster_p)
            probed[d, j] = found
        return probed[d, j]

    rows, level_rows = [], []
    for c in clusters:
        midpoints, capped = [], 0
        for d in range(draws):
            if not significant(d, 0)[c]:
                midpoints.append(0.0)
                continue
            low, high = 0, len(grid)  # grid[low] significant; grid[high] not (or beyond)
            while high - low > 1:
                middle = (low + high) // 2
                if significant(d, middle)[c]:
                    low = middle
                else:
                    high = middle
            if high == len(grid):
                capped += 1
                midpoints.append(float(grid[-1]))
            else:
                midpoints.append((grid[low] + grid[high] - 1) / 2)
        estimate = float(np.mean(midpoints))
        text = f"{estimate:.0f} ({min(midpoints):.0f}-{max(midpoints):.0f})"
        if capped == draws:
            text = f">= {grid[-1]} (significant at the top of the grid in every draw)"
        elif capped:
            text = f">= {text} (significant at the top of the grid in {capped} of {draws} draws)"
        rows.append(
            {
                "cluster": c,
                "fsn": round(estimate),
                "fsn_low": min(midpoints),
                "fsn_high": max(midpoints),
                "fsn_text": text,
                "benchmark": n,
                "robust": bool(estimate >= n),
                "draws": draws,
            }
        )
    for (d, j), found in sorted(probed.items()):
        for c, ok in found.items():
            level_rows.append(
                {
                    "draw": d,
                    "cluster": c,
                    "noise_experiments": grid[j],
                    "significant": ok,
                    "null_iterations": int(iterations[j]),
                }
            )
    by_level = pd.DataFrame(level_rows, columns=LEVEL_COLUMNS)
    columns = ["cluster", "fsn", "fsn_low", "fsn_high", "fsn_text", "benchmark", "robust", "draws"]
    return pd.DataFrame(rows, columns=columns), by_level
