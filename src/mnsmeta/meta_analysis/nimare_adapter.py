"""Every use of NiMARE's private internals, in one place.

NiMARE is pinned (``nimare==0.22.1`` in ``pyproject.toml``) because the fast engine plugs into
its estimator: these names are not part of NiMARE's public API and may change with any
release. A NiMARE upgrade starts here, and the engine's equality tests (same seed, same
nulls and maps as NiMARE) say whether the names below still mean what they meant.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

#: NiMARE's per-permutation method, which the fast engine replaces.
PERMUTATION_METHOD = "_correct_fwe_montecarlo_permutation"


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
    prefix = "values_{}corr-fwe_method-montecarlo"
    estimator.null_distributions_[prefix.format("desc-size_level-cluster_")] = size_max
    estimator.null_distributions_[prefix.format("desc-mass_level-cluster_")] = mass_max
    estimator.null_distributions_[prefix.format("level-voxel_")] = voxel_max
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


def ale_with_permutation(permutation, *, name: str, module: str, doc: str, getstate=None):
    """NiMARE's ALE class with its per-permutation work replaced by ``permutation``.

    Parameters
    ----------
    permutation : callable
        Same signature and return value as NiMARE's
        ``ALE._correct_fwe_montecarlo_permutation``.
    name, module : str
        The new class's name and the module that stores it (pickle finds it there).
    doc : str
        Its docstring.
    getstate : callable, optional
        ``__getstate__`` of the new class (to drop per-process caches before pickling).
    """
    from nimare.meta.cbma.ale import ALE

    # Pickle finds a bound method by its name: name it as the method it replaces, and run the
    # permutations in threads (the replacement releases the GIL).
    permutation.__name__ = PERMUTATION_METHOD
    permutation.__qualname__ = f"{name}.{PERMUTATION_METHOD}"
    attributes = {
        "__module__": module,
        "__qualname__": name,
        "__doc__": doc,
        "_permutation_parallel_backend": "threading",
        PERMUTATION_METHOD: permutation,
    }
    if getstate is not None:
        attributes["__getstate__"] = getstate
    return type(name, (ALE,), attributes)


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


def subtraction_with(*, permutations, cluster_nulls, name: str, module: str, doc: str):
    """NiMARE's ``ALESubtraction`` with its permutation loop and cluster nulls replaced.

    ``permutations(self, ma_store, n_iters, n_cores)`` yields ``(iteration, difference)``
    as ``_iterate_permutation_diffs``; ``cluster_nulls`` has the signature and return value
    of ``_compute_cluster_nulls``. Returns the class and NiMARE's own permutation loop (for
    the cases the replacement leaves to it).
    """
    from nimare.meta.cbma.ale import ALESubtraction

    attributes = {
        "__module__": module,
        "__qualname__": name,
        "__doc__": doc,
        "_iterate_permutation_diffs": permutations,
        "_compute_cluster_nulls": cluster_nulls,
    }
    return type(name, (ALESubtraction,), attributes), ALESubtraction._iterate_permutation_diffs


def balanced_subtraction_with(*, mean_difference, name: str, module: str, doc: str):
    """NiMARE's ``BalancedALESubtraction`` with ``_mean_balanced_difference`` replaced.

    ``mean_difference(self, ma_maps1, ma_maps2, target_n, n_iters, rng)`` has NiMARE's
    signature and return value (the float32 mean balanced difference, drawing its subsamples
    from ``rng`` as NiMARE does).
    """
    from nimare.meta.cbma.ale import BalancedALESubtraction

    attributes = {
        "__module__": module,
        "__qualname__": name,
        "__doc__": doc,
        "_mean_balanced_difference": mean_difference,
    }
    return type(name, (BalancedALESubtraction,), attributes)


def built_on_first_use(namespace: dict, name: str, build):
    """A module ``__getattr__`` that builds the class ``name`` with ``build()`` on first use.

    The engine's classes subclass NiMARE's estimators; built lazily, importing the engine
    does not import NiMARE. The class is then stored in the module (``namespace``), where
    pickle (processes, Dask) finds it by name.
    """

    def __getattr__(attribute):
        if attribute == name:
            namespace[name] = build()
            return namespace[name]
        raise AttributeError(attribute)

    return __getattr__
