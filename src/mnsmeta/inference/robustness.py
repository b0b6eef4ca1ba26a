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
  overlaps it; it is *fragile* when some single experiment's removal makes it vanish.
* **Fail-safe N** (Acar et al., 2018): noise experiments (foci counts and sample sizes drawn
  from the real experiments, foci uniform in the brain mask) are added, and the procedure is
  rerun at increasing numbers of them. Acar et al.'s search runs from n (the number of real
  experiments, the lower benchmark) to 10 n; a cluster is robust when it is still significant
  with n noise experiments added.

The nulls of all leave-one-out subsets, and of all noise levels, come from one set of random
draws each (:mod:`mnsmeta.meta_analysis.engine.shared_nulls`); the observed maps and cuts
are NiMARE's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from mnsmeta.curation.experiments import ExperimentSet
from mnsmeta.data.space import brain_mask_img
from mnsmeta.meta_analysis.ale import settle_heap
from mnsmeta.meta_analysis.clusters import CONNECTIVITY
from mnsmeta.meta_analysis.datasets import to_dataset
from mnsmeta.meta_analysis.engine.shared_nulls import added_experiments_null, leave_one_out_null
from mnsmeta.meta_analysis.nimare_adapter import cluster_forming_cut, quiet

#: Eickhoff et al. (2016): a cluster driven by one or two experiments is not convergence.
ONE_EXPERIMENT_SHARE = 0.5
TWO_EXPERIMENTS_SHARE = 0.8
#: Noise experiments added, as multiples of the number of real experiments (Acar et al.'s
#: search range: n, the lower benchmark, to 10 n).
FSN_MULTIPLES = (1, 2, 3, 5, 10)


def noise_experiments(real: ExperimentSet, n: int, seed: int) -> ExperimentSet:
    """``n`` noise experiments: foci counts and N drawn from ``real``, foci uniform in the mask.

    Drawn with replacement, as in Acar et al. (2018), but uniform in NiMARE's brain mask
    (where NiMARE's null draws its random foci) rather than in grey matter. Foci lie at
    voxel centres.
    """
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(real.counts), size=n)
    counts = real.counts[pick]
    mask_ijk = np.argwhere(np.asarray(brain_mask_img().get_fdata()) > 0)
    ijk = mask_ijk[rng.integers(0, len(mask_ijk), size=int(counts.sum()))]
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
        experiments whose removal makes it vanish, space-separated).
    check : dict
        The full dataset's cluster-size threshold from the same draws, to compare with the
        main run's (a Monte Carlo agreement check).
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
    for i, (stat, cut) in enumerate(observed):
        significant = significant_voxels(stat, cut, null[:, i], cluster_p)
        for c in clusters:
            survived[c].append(bool(significant[labels == c].any()))
    rows = []
    for c in clusters:
        kept = np.array(survived[c])
        rows.append(
            {
                "cluster": c,
                "survived": int(kept.sum()),
                "n_loo": n,
                "fragile": bool(not kept.all()),
                "dropped_by": " ".join(experiments.ids[i] for i in np.flatnonzero(~kept)),
            }
        )
    check = {
        "full_cluster_forming_ale": full_cut,
        "full_cluster_size_threshold_voxels": float(np.quantile(null[:, -1], 1 - cluster_p)),
        "full_clusters_significant": int(
            ndimage.label(significant_voxels(full_stat, full_cut, null[:, -1], cluster_p))[1]
        ),
    }
    table = pd.DataFrame(rows, columns=["cluster", "survived", "n_loo", "fragile", "dropped_by"])
    return table, check


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
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fail-safe N of each cluster: noise experiments it withstands (Acar et al., 2018).

    The noise levels are ``multiples`` of the number of real experiments ``n``; the answer is
    an interval between the last level at which the cluster is significant (at this and every
    lower level) and the first at which it is not. ``levels`` (numbers of noise experiments)
    replaces the multiples when given.

    Returns
    -------
    table : pandas.DataFrame
        Per cluster: ``fsn_low`` and ``fsn_high`` (``fsn_high`` empty: still significant at
        the largest level), ``fsn`` as text, ``benchmark`` (= n) and ``robust``
        (``fsn_low >= n``).
    levels : pandas.DataFrame
        Per noise level and cluster: significant or not (the evidence for the table).
    """
    n = len(experiments.ids)
    if levels is None:
        levels = [round(m * n) for m in multiples]
    levels = sorted({int(k) for k in levels if k > 0})
    noise = noise_experiments(experiments, levels[-1], seed)
    everything = experiments.plus(noise)
    checkpoints = [n, *(n + k for k in levels)]
    dataset = to_dataset(everything, positional_ids=True)
    observed = [_observed(dataset, range(c), cluster_forming_p) for c in checkpoints]
    null = added_experiments_null(
        brain_mask_img(),
        everything.sample_sizes,
        everything.counts,
        checkpoints,
        [cut for _, cut in observed],
        n_iters,
        np.random.SeedSequence(seed).spawn(1)[0].generate_state(1)[0],
        n_jobs,
        progress,
    )
    clusters = cluster_ids(labels)
    level_rows = []
    for j, (stat, cut) in enumerate(observed):
        significant = significant_voxels(stat, cut, null[:, j], cluster_p)
        for c in clusters:
            level_rows.append(
                {
                    "cluster": c,
                    "noise_experiments": checkpoints[j] - n,
                    "significant": bool(significant[labels == c].any()),
                }
            )
    by_level = pd.DataFrame(level_rows, columns=["cluster", "noise_experiments", "significant"])
    rows = []
    for c in clusters:
        mine = by_level[by_level["cluster"] == c].sort_values("noise_experiments")
        low, high = None, None
        for k, ok in zip(mine["noise_experiments"], mine["significant"], strict=True):
            if not ok:
                high = k
                break
            low = k
        if low is None:
            text = "not significant without noise (at these iterations)"
        elif high is None:
            text = f">= {low}"
        else:
            text = f"{low}-{high - 1}"
        rows.append(
            {
                "cluster": c,
                "fsn_low": low,
                "fsn_high": high,
                "fsn": text,
                "benchmark": n,
                "robust": bool(low is not None and low >= n),
            }
        )
    columns = ["cluster", "fsn_low", "fsn_high", "fsn", "benchmark", "robust"]
    return pd.DataFrame(rows, columns=columns), by_level
