"""ALE maps and their Monte Carlo inference, with NiMARE as the engine.

ALE follows Eickhoff et al. (2009, 2012) with Turkeltaub et al.'s (2012) modification: one
modelled-activation map per experiment (the maximum over its foci, not their sum), Gaussian
kernels whose width follows the sample size, on the MNI152 2 mm grid inside NiMARE's brain
mask. Inference is cluster-level FWE by Monte Carlo (Eickhoff et al., 2016): foci relocated at
random in the mask, a cluster-forming threshold of p < 0.001 and a cluster-size null built from
the largest cluster of each random map.
"""

from __future__ import annotations

import gc
import logging
import zlib

import numpy as np

from mnsmeta.meta_analysis.engine import scaleout
from mnsmeta.meta_analysis.nimare_adapter import (
    CLUSTER_LOGP,
    CLUSTER_Z,
    VOXEL_LOGP,
    VOXEL_Z,
    ale_to_z,
    cluster_fwe_map_name,
    null,
    quiet,
    set_permutation_backend,
)
from mnsmeta.progress import progress as progress_bar

LGR = logging.getLogger(__name__)

#: NiMARE's map and null names, as the rest of the package reads them (the adapter owns them).
__all__ = ["CLUSTER_LOGP", "CLUSTER_Z", "VOXEL_LOGP", "VOXEL_Z", "cluster_fwe_map_name", "null"]
#: The subtraction's maps: ALE difference, its z and p (positive: group 1 > group 2).
SUBTRACTION_MAPS = (
    "stat_desc-group1MinusGroup2",
    "z_desc-group1MinusGroup2",
    "p_desc-group1MinusGroup2",
)


def analysis_seed(seed: int, name: str) -> int:
    """Derive a reproducible seed for one analysis from the run's seed and its name.

    Each analysis gets its own stream, so running a subset of analyses gives the same maps
    as running them all.
    """
    sequence = np.random.SeedSequence([seed, zlib.crc32(name.encode())])
    return int(sequence.generate_state(1)[0])


ENGINES = ("fast", "nimare")


def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")


def settle_heap():
    """Exclude the objects alive now from later garbage collections.

    nilearn runs ``gc.collect()`` at every image access (``safe_get_data``). With NiMARE,
    nilearn and numba loaded, one full collection takes about 0.1 s and a fit makes dozens
    (4 of the 11 s of a pooled sensitivity rerun). The objects alive before a fit (modules,
    compiled code, the curation) live as long as the process anyway; frozen, they are no
    longer traversed.
    """
    gc.collect()
    gc.freeze()


def fit_ale(
    dataset,
    n_iters: int,
    seed: int,
    n_jobs: int = 1,
    cluster_forming_p: float = 0.001,
    engine: str = "fast",
):
    """Fit ALE and correct it by Monte Carlo (cluster-level and voxel-level FWE).

    Parameters
    ----------
    dataset : nimare.dataset.Dataset
        Experiments with ``sample_sizes`` metadata, MNI coordinates.
    n_iters : int
        Monte Carlo iterations.
    seed : int
        Seed of the Monte Carlo null (NiMARE's ``random_state``).
    n_jobs : int
        Processes for the Monte Carlo null.
    cluster_forming_p : float
        Uncorrected voxel p of the cluster-forming threshold.
    engine : {"fast", "nimare", "streaming"}
        ``"nimare"``: NiMARE's ALE throughout. ``"fast"``: the same estimator with its Monte
        Carlo null on our engine (:mod:`.engine.montecarlo`: our loop and iterations; the
        same null in distribution, the same maps, tested), many times faster.
        ``"streaming"``: database scale (:mod:`.engine.streaming`): no MA maps held and
        NiMARE's Monte Carlo uncorrected null instead of its histogram one; ``"fast"``
        switches to it from ``STREAMING_FOCI`` foci on.

    Returns
    -------
    estimator : nimare.meta.cbma.ale.ALE
        The fitted estimator (its ``null_distributions_`` hold the Monte Carlo nulls).
    result : nimare.results.MetaResult
        Maps ``stat`` (ALE), ``p``, ``z``, ``logp`` and the FWE-corrected maps.
    """
    from nimare.correct import FWECorrector
    from nimare.meta.cbma.ale import ALE

    from mnsmeta.meta_analysis.engine.streaming import STREAMING_FOCI
    from mnsmeta.meta_analysis.nimare_adapter import estimators

    if engine != "streaming":
        _check_engine(engine)
    options = {}
    if engine == "fast" and len(dataset.coordinates) >= STREAMING_FOCI:
        LGR.info(
            "%d foci: streaming ALE (no MA maps held; Monte Carlo uncorrected null)",
            len(dataset.coordinates),
        )
        engine = "streaming"
    if engine == "streaming":
        make = estimators.streaming_ale_estimator
        options["n_cores"] = n_jobs
    else:
        make = estimators.fast_ale_estimator if engine == "fast" else ALE
    settle_heap()
    with quiet():
        estimator = make(random_state=seed, **options)
        if scaleout.active():
            set_permutation_backend(estimator, scaleout.dask_backend())
        result = estimator.fit(dataset)
        corrector = FWECorrector(
            method="montecarlo",
            voxel_thresh=cluster_forming_p,
            n_iters=n_iters,
            n_cores=n_jobs,
            vfwe_only=False,
        )
        corrected = corrector.transform(result)
    return estimator, corrected


#: Cluster statistics of the cluster-level FWE (NiMARE computes both): the extent in voxels
#: (Eickhoff et al. 2012, 2016; the default) or the mass, the sum of ALE above the cut.
CLUSTER_STATISTICS = ("size", "mass")


def cluster_fwe_map(result, cluster_p: float = 0.05, statistic: str = "size") -> np.ndarray:
    """Return the z map kept only in clusters with cluster-level FWE p < ``cluster_p``.

    ``statistic`` is the cluster measure whose Monte Carlo null gives the p (``size`` or
    ``mass``). Returns a 3D array on the MNI152 2 mm grid (zeros outside significant clusters).
    """
    if statistic not in CLUSTER_STATISTICS:
        raise ValueError(f"statistic must be one of {CLUSTER_STATISTICS}, not {statistic!r}")
    name = cluster_fwe_map_name(statistic)
    logp = result.get_map(name, return_type="image").get_fdata()
    z = result.get_map("z", return_type="image").get_fdata()
    return np.where(logp > -np.log10(cluster_p), z, 0.0).astype(np.float32)


def voxel_fwe_map(result, voxel_p: float = 0.05) -> np.ndarray:
    """Return the z map kept only in voxels with voxel-level FWE p < ``voxel_p``."""
    logp = result.get_map(VOXEL_LOGP, return_type="image").get_fdata()
    z = result.get_map("z", return_type="image").get_fdata()
    return np.where(logp > -np.log10(voxel_p), z, 0.0).astype(np.float32)


def fit_subtraction(
    dataset1,
    dataset2,
    inference1,
    inference2,
    n_iters: int,
    seed: int,
    n_jobs: int = 1,
    cluster_forming_p: float = 0.001,
    engine: str = "fast",
):
    """ALE subtraction by permuted group labels (Eickhoff et al., 2011), with its nulls.

    Group 1 > group 2 is evaluated only where ``inference1`` > 0 (the thresholded map of
    group 1), and group 2 > group 1 only where ``inference2`` > 0, as in the original method;
    the permutations are restricted to the union of the two. Each permutation also gives the
    largest cluster of ``|difference|`` above the cluster-forming cut (the ``1 -
    cluster_forming_p`` quantile of all permuted differences), for cluster-level FWE
    (:func:`subtraction_clusters`).

    Parameters
    ----------
    engine : {"fast", "nimare"}
        ``"nimare"``: NiMARE's ``ALESubtraction``; ``"fast"``: the same estimator with its
        permutations and cluster nulls on our engine (:mod:`.engine.subtraction`): same
        permutations, same maps and nulls bit for bit (tested).

    Returns
    -------
    nimare.results.MetaResult
        Maps ``z_desc-group1MinusGroup2`` (positive: group 1 > group 2; one-sided voxel p of
        the permutation test), its ``p`` and ``stat`` (ALE difference), and each group's ALE;
        ``result.estimator.null_distributions_`` holds the cluster-size null.
    """
    from nimare.meta.cbma.ale import ALESubtraction

    from mnsmeta.meta_analysis.nimare_adapter.estimators import FastALESubtraction

    _check_engine(engine)
    make = FastALESubtraction if engine == "fast" else ALESubtraction
    settle_heap()
    with quiet():
        estimator = make(
            n_iters=n_iters,
            random_state=seed,
            n_cores=n_jobs,
            voxel_thresh=cluster_forming_p,
            vfwe_only=False,
            restrict_to_inference_mask=True,
        )
        return estimator.fit(
            dataset1, dataset2, inference_map1=inference1, inference_map2=inference2
        )


#: The size-balanced subtraction's maps (positive: group 1 > group 2).
BALANCED_MAPS = (
    "stat_desc-balancedGroup1MinusGroup2",
    "z_desc-balancedGroup1MinusGroup2",
    "p_desc-balancedGroup1MinusGroup2",
)


def fit_balanced_subtraction(
    dataset1,
    dataset2,
    n_iters: int,
    seed: int,
    n_jobs: int = 1,
    cluster_forming_p: float = 0.001,
    alpha: float = 0.05,
    engine: str = "fast",
):
    """Size-balanced ALE subtraction (NiMARE's ``BalancedALESubtraction``; JALE's balanced
    contrast, Frahm et al.).

    Both groups are compared through subsamples of the smaller group's size: the balanced
    difference is the mean ALE difference over ``n_iters`` pairs of subsamples, and its null
    the extremes of the same over ``n_iters`` random-foci datasets (each group's foci
    relocated in grey matter); a voxel is significant where the difference passes the
    ``alpha / 2`` extreme of that null, either way. Each group's probability map (the share of
    ``2.5 n_iters`` subsamples in which a voxel survives its cluster-FWE threshold) comes
    along. ``n_iters`` = 1000 gives NiMARE's defaults (1,000 null datasets, 1,000 pairs,
    2,500 subsamples).

    Parameters
    ----------
    engine : {"fast", "nimare"}
        ``"fast"``: the mean balanced differences on our engine
        (:mod:`.engine.balanced`), the same maps and nulls bit for bit (tested).

    Returns
    -------
    nimare.results.MetaResult
        :data:`BALANCED_MAPS`, ``prob_desc-group1``, ``prob_desc-group2`` and their minimum
        ``stat_desc-conjunction``.
    """
    from nimare.meta.cbma.ale import BalancedALESubtraction

    from mnsmeta.meta_analysis.nimare_adapter.estimators import FastBalancedALESubtraction

    _check_engine(engine)
    make = FastBalancedALESubtraction if engine == "fast" else BalancedALESubtraction
    settle_heap()
    with quiet():
        estimator = make(
            n_iters=n_iters,
            difference_iterations=n_iters,
            n_subsamples=int(2.5 * n_iters),
            voxel_thresh=cluster_forming_p,
            alpha=alpha,
            # NiMARE seeds group 2 with seed + 1, in a RandomState (below 2**32).
            random_state=seed % (2**32 - 1),
            n_cores=n_jobs,
        )
        return estimator.fit(dataset1, dataset2)


def balanced_maps(result) -> dict[str, np.ndarray]:
    """The two directions of a balanced subtraction as positive z maps (0: not significant)."""
    z = result.get_map("z_desc-balancedGroup1MinusGroup2", return_type="image").get_fdata()
    return {
        "group1>group2": np.where(z > 0, z, 0.0).astype(np.float32),
        "group2>group1": np.where(z < 0, -z, 0.0).astype(np.float32),
    }


def subtraction_clusters(result, inference1, inference2, cluster_p: float = 0.05):
    """Cluster-level FWE of a subtraction, each direction within its minuend's clusters.

    A cluster of group 1 > group 2 is a face-connected set of voxels of group 1's thresholded
    map whose ALE difference exceeds the cluster-forming cut; its p is the share of
    permutations whose largest cluster (of either sign, anywhere in the union of the two
    maps: NiMARE's null) is at least as large. Clusters are formed inside the permutation
    region only, so the observed clusters and the null's are measured alike (NiMARE forms the
    observed ones on the whole brain).

    Parameters
    ----------
    result : nimare.results.MetaResult
        Of :func:`fit_subtraction`.
    inference1, inference2 : nibabel image
        The two groups' thresholded maps (nonzero: significant).
    cluster_p : float
        Cluster-level FWE threshold.

    Returns
    -------
    dict
        ``"group1>group2"`` and ``"group2>group1"``: 3D arrays of positive z (the voxel
        permutation z) in the clusters with FWE p < ``cluster_p``; ``"cluster_p"``: the
        smallest cluster p per direction (1 if no cluster formed).
    """
    from nimare.stats import null_to_p
    from scipy import ndimage

    cut = null(result.estimator, "cluster_forming_cut")
    sizes = null(result.estimator, "largest_cluster_size")
    stat = result.get_map("stat_desc-group1MinusGroup2", return_type="image").get_fdata()
    z = result.get_map("z_desc-group1MinusGroup2", return_type="image").get_fdata()
    faces = ndimage.generate_binary_structure(3, 1)
    out, smallest = {}, {}
    for key, sign, inference in (
        ("group1>group2", 1.0, inference1),
        ("group2>group1", -1.0, inference2),
    ):
        # NiMARE's rule in the values' precision: |difference| > cut (float32).
        values = (sign * stat).astype(np.float32)
        supra = (values > cut) & (np.asarray(inference.dataobj) > 0)
        labels, n = ndimage.label(supra, faces)
        counts = np.bincount(labels.ravel())[1:]
        p = np.array([null_to_p(c, sizes, tail="upper") for c in counts])
        keep = np.isin(labels, 1 + np.flatnonzero(p < cluster_p))
        out[key] = np.where(keep, np.abs(z), 0.0).astype(np.float32)
        smallest[key] = float(p.min()) if n else 1.0
    out["cluster_p"] = smallest
    return out


def conjunction_map(z1: np.ndarray, z2: np.ndarray) -> np.ndarray:
    """Minimum statistic of two thresholded z maps: nonzero only where both are."""
    both = (z1 > 0) & (z2 > 0)
    return np.where(both, np.minimum(z1, z2), 0.0).astype(np.float32)


def tfce_null(estimator, experiments, n_iters: int, seed: int, progress: bool = False):
    """Largest TFCE value of each Monte Carlo map (JALE's TFCE null, on our engine).

    Each iteration relocates every focus uniformly in the brain mask (as the cluster null
    does), computes the whole ALE map (:class:`.engine.relocation.AleComputer`), turns it
    into z through the fitted estimator's own null histogram (as the observed map) and keeps
    its largest TFCE value (:func:`.engine.tfce.max_tfce`).

    Parameters
    ----------
    estimator : nimare.meta.cbma.ale.ALE
        Fitted on ``experiments`` (its histogram converts ALE to z).
    experiments : ExperimentSet
    n_iters, seed : int
        Iterations, and the seed of their random foci (one stream; same seed, same null).

    Returns
    -------
    numpy.ndarray
        ``(n_iters,)`` largest TFCE values.
    """
    from mnsmeta.meta_analysis.engine.relocation import AleComputer
    from mnsmeta.meta_analysis.engine.tfce import max_tfce

    computer = AleComputer(estimator.masker.mask_img)
    ijk = experiments.ijk()
    experiment = experiments.experiment_of_foci()
    sample_sizes = experiments.sample_size_of_foci()
    rng = np.random.default_rng(seed)
    volume = np.zeros(computer.mask.shape)
    null = np.zeros(n_iters)
    bar = progress_bar(range(n_iters), desc="TFCE null", show=progress, stage=False)
    for iteration in bar:
        values = computer.ale(computer.random_foci(rng, len(ijk)), experiment, sample_sizes)
        volume[computer.mask] = ale_to_z(estimator, values)
        null[iteration] = max_tfce(volume)
    return null


def tfce_maps(result, null: np.ndarray, voxel_p: float = 0.05) -> dict[str, np.ndarray]:
    """TFCE of the observed z map and its FWE inference against ``null`` (of :func:`tfce_null`).

    Returns
    -------
    dict
        ``"tfce"``: the TFCE map; ``"logp"``: -log10 of each voxel's FWE p (the share of
        iterations whose largest TFCE is at least the voxel's); ``"z"``: the z map kept where
        that p < ``voxel_p`` (JALE keeps TFCE above the null's 95th percentile: the same set).
    """
    from nimare.stats import null_to_p

    from mnsmeta.meta_analysis.engine.tfce import tfce_map

    z = result.get_map("z", return_type="image").get_fdata()
    tfce = tfce_map(z)
    p = null_to_p(tfce.ravel(), null, tail="upper").reshape(tfce.shape)
    return {
        "tfce": tfce.astype(np.float32),
        "logp": (-np.log10(p)).astype(np.float32),
        "z": np.where((p < voxel_p) & (tfce > 0), z, 0.0).astype(np.float32),
    }
