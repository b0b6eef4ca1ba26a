"""The settings of a pipeline run: one object for every stage (recorded in the provenance).

``mnsmeta run``, ``overlap``, ``robustness`` and ``ale`` build one :class:`Settings` from their
options; a stage that needs other values for a rerun (the robustness reruns without progress
bars or base-rate sets, say) derives them with :func:`dataclasses.replace`, so that no field
is copied by hand. ``mnsmeta specificity`` has its own (:class:`~mnsmeta.workflows.specificity.
SpecificitySettings`: its permutations and power replicates are other quantities).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Monte Carlo, thresholds, overlap tests and robustness checks of a run.

    Parameters
    ----------
    n_iters : int
        Monte Carlo iterations of every ALE (main analyses and robustness reruns).
    seed : int
        Seed of every stochastic step; each analysis derives its own stream from it.
    jobs : int
        Threads and processes.
    cluster_forming_p, cluster_p : float
        Uncorrected voxel p that forms clusters; cluster-level FWE p.
    cluster_statistic : {"size", "mass"}
        The cluster measure of the cluster-level FWE.
    voxel_fwe_p : float
        Voxel-level FWE p (the sensitivity variant and the voxel-FWE map).
    sample_size_fallback : "median" or int
        N of an experiment whose N was not read.
    n_rule : str
        Which N a patients-vs-controls contrast gets (both groups or patients only).
    engine : {"fast", "nimare"}
        Monte Carlo on our engine or NiMARE's loop (same results).
    tfce : bool
        Also TFCE with its own Monte Carlo null of ``n_iters`` maps.
    balanced_iters : int
        A balanced subtraction's null datasets and subsample pairs (NiMARE's default 1000).
    n_perm : int
        Relocations, placements and base-rate sets of the overlap tests.
    base_rate : bool
        The overlap's base-rate test (the robustness reruns leave it out: their table reads
        the other tests).
    sensitivity : bool
        The robustness stage's sensitivity reruns.
    progress : bool
        Progress bars (on a terminal).
    """

    n_iters: int = 10_000
    seed: int = 0
    jobs: int = 1
    cluster_forming_p: float = 0.001
    cluster_p: float = 0.05
    cluster_statistic: str = "size"
    voxel_fwe_p: float = 0.05
    sample_size_fallback: str | int = "median"
    n_rule: str = "both_groups"
    engine: str = "fast"
    tfce: bool = False
    balanced_iters: int = 1000
    n_perm: int = 1000
    base_rate: bool = True
    sensitivity: bool = True
    progress: bool = True
