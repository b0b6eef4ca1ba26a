"""The seam between mnsmeta and NiMARE: every private NiMARE name, every NiMARE subclass.

The fast engine (:mod:`mnsmeta.meta_analysis.engine`) subclasses nothing of NiMARE and uses
none of its private names: it computes from voxel indices and arrays. NiMARE's estimators run
it through the subclasses of :mod:`.estimators` (plain ``class`` statements, imported only when
an analysis runs), which override NiMARE's private methods; this module holds the functions
that read or call NiMARE's private internals, and NiMARE's names of its nulls and maps.
Nothing else in the package touches a private name of NiMARE (or of any other third-party
package): ``tests/test_layout.py`` enforces it.

NiMARE is pinned (``nimare>=0.22.1,<0.23`` in ``pyproject.toml``): the names below are not part
of its public API and may change with any release. **On upgrade, check** (each has a test that
compares against NiMARE's own code on the same inputs, so a changed NiMARE fails the test):

========================================  ================================================
what is copied or overridden              test
========================================  ================================================
``montecarlo_fwe_maps`` (the end of       ``tests/meta_analysis/test_montecarlo.py``
``correct_fwe_montecarlo``)               (same seed, same nulls and maps as NiMARE's)
``FastALE._correct_fwe_montecarlo_        ``test_montecarlo.py`` (``draws="nimare"``: NiMARE's
permutation`` (one iteration)             loop with our iteration, equal nulls)
``histogram_bins``,                       ``tests/meta_analysis/test_streaming.py`` (equal
``ale_maps_from_stat``,                   bins, maps and null histogram in distribution)
``StreamingALE._fit``
``subtraction_permutation_orders``,       ``tests/meta_analysis/test_subtraction.py`` (the
``FastALESubtraction``'s two overrides    same differences, p and nulls bit for bit)
``FastBalancedALESubtraction.             ``tests/meta_analysis/test_balanced.py`` (bit for
_mean_balanced_difference``               bit)
``nested_ale_fits`` (``ALE._fit`` of      ``tests/inference/test_robustness.py`` (equal to
each leading subset, replayed)            ``ALE().fit`` of each subset, bit for bit)
the private names used below              ``tests/test_layout.py`` lists them; each call runs
(``_summarystat_to_p``, ``_get_rng``,     in the tests above
``_mask_coverage_to_null_ijk``...)
========================================  ================================================
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

#: NiMARE's names of its Monte Carlo FWE maps (cluster-level: size; voxel-level).
CLUSTER_LOGP = "logp_desc-size_level-cluster_corr-FWE_method-montecarlo"
CLUSTER_Z = "z_desc-size_level-cluster_corr-FWE_method-montecarlo"
VOXEL_LOGP = "logp_level-voxel_corr-FWE_method-montecarlo"
VOXEL_Z = "z_level-voxel_corr-FWE_method-montecarlo"
#: NiMARE's keys of ``null_distributions_``, by what they hold.
NULLS = {
    "largest_ale": "values_level-voxel_corr-fwe_method-montecarlo",
    "largest_cluster_size": "values_desc-size_level-cluster_corr-fwe_method-montecarlo",
    "largest_cluster_mass": "values_desc-mass_level-cluster_corr-fwe_method-montecarlo",
    "cluster_forming_cut": "summary_stat_thresh_level-voxel_corr-fwe_method-montecarlo",
    "histogram_bins": "histogram_bins",
    "histogram_counts": "histweights_corr-none_method-montecarlo",
    "histogram_largest": "histweights_level-voxel_corr-fwe_method-montecarlo",
    "balanced_max": "values_desc-balancedMaxNull_corr-none",
    "balanced_min": "values_desc-balancedMinNull_corr-none",
}
#: NiMARE's key of the approximate null's histogram weights.
NULLS_APPROXIMATE = "histweights_corr-none_method-approximate"


def cluster_fwe_map_name(statistic: str = "size", kind: str = "logp") -> str:
    """NiMARE's name of the cluster-level FWE map of ``statistic`` (size or mass)."""
    return f"{kind}_desc-{statistic}_level-cluster_corr-FWE_method-montecarlo"


def null(estimator, what: str):
    """The null distribution ``what`` (a key of :data:`NULLS`) of a fitted estimator."""
    return estimator.null_distributions_[NULLS[what]]


@contextmanager
def quiet():
    """Silence NiMARE's warnings about its own API (the Dataset deprecation, notes on inputs).

    NiMARE announces the Dataset deprecation on every call; our data flow is stable.
    """
    from nimare.dataset import _quiet_dataset_deprecation

    with warnings.catch_warnings(), _quiet_dataset_deprecation():
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module="nimare")
        yield


def cluster_forming_cut(estimator, p: float) -> float:
    """The ALE value whose uncorrected p is ``p``, from a fitted estimator's own null.

    This is the cut NiMARE's ``FWECorrector`` applies before measuring clusters.
    """
    return float(estimator._p_to_summarystat(p))


def nested_ale_fits(dataset, sizes, p: float):
    """NiMARE's ALE map and cluster-forming cut of the first ``sizes[j]`` studies, every ``j``.

    The same numbers as ``ALE().fit(dataset.slice(first ids))`` for each size (tested bit
    for bit), from one computation of the MA maps: the ALE of a leading subset is the
    log-sum of its rows (NiMARE's ``_compute_ale_summarystat``), and NiMARE's approximate
    null adds the studies one by one, so the histogram after ``sizes[j]`` studies is that
    subset's (cut to its own grid, which is the leading part of the full one).

    Parameters
    ----------
    dataset : nimare.dataset.Dataset
        Studies in the order they are added (positional ids: NiMARE sorts by id).
    sizes : increasing sequence of int
    p : float
        Uncorrected p of the cluster-forming cut.

    Yields
    ------
    stat : (x, y, z) float array
        The ALE map (float32 values, as NiMARE's ``stat`` map read with ``get_fdata``).
    cut : float
    """
    import numpy as np
    from nimare.meta.cbma.ale import ALE
    from nimare.meta.cbma.null_utils import _study_ma_histogram, _update_ale_histogram
    from nimare.studyset import normalize_collection

    with quiet():
        estimator = ALE()
        collection = normalize_collection(dataset)
        estimator._collect_inputs(collection)
        estimator._preprocess_input(collection)
        estimator.masker = estimator.masker or collection.masker
        estimator.null_distributions_ = {}
        ma = estimator._collect_ma_maps(coords_key="coordinates", maps_key="ma_maps")
    row_max = estimator._study_max_ma_values
    estimator._compute_summarystat(ma)  # records the mask's voxel count
    estimator._determine_histogram_bins(ma)
    bins = estimator.null_distributions_["histogram_bins"].astype(np.float64)
    n_voxels, n_bins = ma.shape[1], len(bins)
    inv_step = 1 / (bins[1] - bins[0])
    hist, spare = None, np.zeros(n_bins)
    sizes = list(sizes)
    for e in range(ma.shape[0]):
        values = ma.data[ma.indptr[e] : ma.indptr[e + 1]]
        study = _study_ma_histogram(
            values, n_voxels - len(values), 1.0 / n_voxels, inv_step, n_bins
        )
        if hist is None:
            hist = study.copy()
        else:
            h, s = np.flatnonzero(hist > 0), np.flatnonzero(study > 0)
            _update_ale_histogram(h, hist[h], s, study[s], bins, inv_step, n_bins, spare)
            hist, spare = spare, hist
        while sizes and sizes[0] == e + 1:
            sizes.pop(0)
            subset = ma[: e + 1]
            stat = estimator._compute_summarystat(subset)
            estimator._study_max_ma_values = row_max[: e + 1]
            estimator._determine_histogram_bins(subset)
            grid = len(estimator.null_distributions_["histogram_bins"])
            estimator.null_distributions_[NULLS_APPROXIMATE] = hist[:grid].copy()
            cut = cluster_forming_cut(estimator, p)
            estimator._study_max_ma_values = row_max
            yield estimator.masker.inverse_transform(stat).get_fdata(), cut
    if sizes:
        raise ValueError(f"sizes beyond the dataset's {ma.shape[0]} studies: {sizes}")


def set_permutation_backend(estimator, backend: str) -> None:
    """Name the joblib backend of an estimator's Monte Carlo permutations.

    NiMARE names its backend explicitly (``"loky"``), so a surrounding
    ``joblib.parallel_config`` (such as our Dask backend) would not take effect.
    """
    estimator._permutation_parallel_backend = backend


def montecarlo_inputs(estimator, voxel_p: float):
    """What NiMARE's ``correct_fwe_montecarlo`` sets up before its loop.

    Returns the voxels where random foci fall (NiMARE's ``mask_coverage``, as an (n, 3) int
    array), the cluster-forming ALE for ``voxel_p`` and the generator of NiMARE's stream
    ``"correct_fwe_montecarlo"`` (seeded by the estimator's ``random_state``).
    """
    from nimare.utils import _mask_coverage_to_null_ijk

    null_ijk = _mask_coverage_to_null_ijk(estimator.masker, mask_coverage=estimator.mask_coverage)
    cut = float(estimator._p_to_summarystat(voxel_p))
    return null_ijk, cut, estimator._get_rng("correct_fwe_montecarlo")


def histogram_bins(estimator, largest_ma):
    """NiMARE's ALE histogram bins (``_determine_histogram_bins``) from each experiment's
    largest MA value (float32, as NiMARE's row maxima): steps of 1e-5 up to the largest
    possible ALE."""
    import numpy as np

    inv_step = 100000
    rounded = np.ceil(largest_ma * inv_step) / inv_step
    largest_ale = estimator._compute_summarystat(rounded)
    return np.round(np.arange(0, largest_ale + 1.5 / inv_step, 1 / inv_step), 5)


def uncorrected_null_inputs(estimator):
    """The voxels where NiMARE's Monte Carlo uncorrected null draws its random foci, and the
    generator of its stream ``"null_montecarlo"``."""
    from nimare.utils import _mask_coverage_to_null_ijk

    null_ijk = _mask_coverage_to_null_ijk(estimator.masker, mask_coverage=estimator.mask_coverage)
    return null_ijk, estimator._get_rng("null_montecarlo")


def ale_maps_from_stat(estimator, stat):
    """The end of NiMARE's ``CBMAEstimator._fit``: p, z and log p of the ALE values ``stat``
    through the estimator's own null, and its description."""
    import numpy as np
    from nimare.utils import _nlogp_to_logp_values

    p, z = estimator._summarystat_to_p(stat, null_method=estimator.null_method)
    maps = {"stat": stat, "p": p, "z": z, "logp": _nlogp_to_logp_values(np.log(p))}
    return maps, {}, estimator._description_text()


def montecarlo_fwe_maps(estimator, result, cut: float, voxel_p: float, nulls):
    """NiMARE's FWE maps from Monte Carlo nulls computed elsewhere.

    The part of NiMARE 0.22.1's ``CBMAEstimator.correct_fwe_montecarlo`` after its loop, line
    for line (tested equal on the same nulls): clusters of the observed ALE above ``cut``
    (face connectivity), their size and mass p from the nulls, the voxel p from the largest
    ALE; the nulls are stored in ``null_distributions_`` under NiMARE's names.

    Parameters
    ----------
    nulls : (n_iters, 3) float array
        Per iteration the largest ALE, largest cluster size and its mass.

    Returns
    -------
    The return value of ``correct_fwe_montecarlo``: maps, tables, description.
    """
    import nibabel as nib
    import numpy as np
    from nimare.stats import null_to_p
    from nimare.transforms import p_to_z
    from nimare.utils import _mask_img_to_bool, _p_to_logp_values
    from scipy import ndimage

    dtype = np.float32  # NiMARE's DEFAULT_FLOAT_DTYPE
    voxel_max, size_max, mass_max = (np.asarray(nulls[:, k], dtype=dtype) for k in range(3))
    stat_values = result.get_map("stat", return_type="array")
    mask_arr = _mask_img_to_bool(estimator.masker.mask_img)
    thresh = np.zeros(mask_arr.shape, dtype=dtype)
    thresh[mask_arr] = stat_values
    thresh[thresh <= cut] = 0
    labels, _ = ndimage.label(thresh, ndimage.generate_binary_structure(rank=3, connectivity=1))
    cluster_labels, idx, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    masses = np.zeros(cluster_labels.shape)
    for label in cluster_labels[1:]:
        masses[label] = np.sum(thresh[labels == label] - cut)
    sizes[0] = 0

    def cluster_maps(values, null):
        p_map = null_to_p(values, null, "upper")[np.reshape(idx, labels.shape)]
        p = np.squeeze(
            estimator.masker.transform(nib.Nifti1Image(p_map, estimator.masker.mask_img.affine))
        )
        return _p_to_logp_values(p, dtype=dtype), p_to_z(p, tail="one")

    logp_mass, z_mass = cluster_maps(masses, mass_max)
    logp_size, z_size = cluster_maps(sizes, size_max)
    p_voxel = null_to_p(stat_values, voxel_max, tail="upper")
    estimator.null_distributions_[NULLS["largest_cluster_size"]] = size_max
    estimator.null_distributions_[NULLS["largest_cluster_mass"]] = mass_max
    estimator.null_distributions_[NULLS["largest_ale"]] = voxel_max
    maps = {
        "logp_level-voxel": _p_to_logp_values(p_voxel, dtype=dtype),
        "z_level-voxel": p_to_z(p_voxel, tail="one"),
        "logp_desc-size_level-cluster": logp_size,
        "z_desc-size_level-cluster": z_size,
        "logp_desc-mass_level-cluster": logp_mass,
        "z_desc-mass_level-cluster": z_mass,
    }
    description = (
        "Family-wise error rate correction was performed using a Monte Carlo procedure. "
        "In this procedure, null datasets are generated in which dataset coordinates are "
        "substituted with coordinates randomly drawn from the meta-analysis mask, and "
        "maximum values are retained. "
        f"This procedure was repeated {len(nulls)} times to build null distributions of "
        "summary statistics, cluster sizes, and cluster masses. "
        "Clusters for cluster-level correction were defined using edge-wise connectivity "
        f"and a voxel-level threshold of p < {voxel_p} from the uncorrected null "
        "distribution."
    )
    return maps, {}, description


def chunked_ma_store(ma_store) -> bool:
    """Whether NiMARE's pairwise MA store holds disk-backed chunks (its low-memory mode)."""
    from nimare.meta.cbma.null_utils import _is_chunked_group

    return _is_chunked_group(ma_store.group1) or _is_chunked_group(ma_store.group2)


def ale_to_z(estimator, values):
    """z of ALE values through a fitted ALE estimator's own null histogram (as its ``z`` map):
    the analytic one, or the Monte Carlo one of a streamed fit."""
    return estimator._summarystat_to_p(values, null_method=estimator.null_method)[1]


def subtraction_permutation_orders(estimator, n_iters: int, n_total: int, n_group1: int):
    """NiMARE's ``ALESubtraction`` permutations, in its order: per permutation the pooled
    rows of the new group 1, then those of group 2 (one generator per iteration seed)."""
    import numpy as np

    seeds = estimator._iteration_seeds(n_iters, stream="alesubtraction_permutations")
    for seed in seeds:
        first, second = estimator._permute_pairwise_group_indices(n_total, n_group1, seed)
        yield np.concatenate([first, second])


#: joblib's name of our Dask backend: its own, minus a joblib 1.6 bug (:func:`dask_backend`).
DASK_BACKEND = "mnsmeta-dask"


def dask_backend() -> str:
    """Register joblib's Dask backend under :data:`DASK_BACKEND` and return that name.

    The one private name of a package other than NiMARE: joblib 1.6.0 (the current release)
    passes ``nesting_level`` to every backend's constructor, and its public Dask backend
    (``parallel_config(backend="dask")``) forwards it to ``Client.submit``, which fails every
    task on process workers (``tests/meta_analysis/test_scaleout.py`` fails with the public
    name). This subclass of joblib's backend takes it as the other backends do; when joblib
    fixes it, return ``"dask"`` instead.
    """
    import joblib
    from joblib._dask import DaskDistributedBackend

    class Backend(DaskDistributedBackend):
        def __init__(self, *args, nesting_level=None, inner_max_num_threads=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.nesting_level = nesting_level

    joblib.register_parallel_backend(DASK_BACKEND, Backend)
    return DASK_BACKEND
