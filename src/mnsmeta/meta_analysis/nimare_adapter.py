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
    """z of ALE values through a fitted ALE estimator's own null histogram (as its ``z`` map)."""
    return estimator._summarystat_to_p(values, null_method="approximate")[1]


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
