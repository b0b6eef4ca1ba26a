"""Running the Monte Carlo and permutation work on a Dask distributed cluster.

Inside :func:`dask_cluster`, every joblib ``Parallel`` (our Monte Carlo blocks and streamed
uncorrected null, NiMARE's permutations where it runs them, our overlap relocations) sends
its tasks to the cluster's workers. Results do not depend on where the tasks run: the Monte
Carlo blocks and the overlap chunks have fixed sizes, each seeded from one
``SeedSequence``, and NiMARE draws its random datasets from one seeded generator before
dispatching them. So the same seed gives the same output serially and distributed.
"""

from __future__ import annotations

from contextlib import contextmanager

# joblib's Dask backend, registered by the adapter (a joblib 1.6 bug, see there); re-exported.
from mnsmeta.meta_analysis.nimare_adapter import dask_backend

_ACTIVE = {"dask": False}


def seeded_blocks(function, n_items: int, block: int, seed, n_jobs: int = 1):
    """Run ``function(stream, size)`` over ``n_items`` in fixed blocks of ``block`` items.

    Each block gets its own child of one :class:`numpy.random.SeedSequence` (``seed``, an
    int or a SeedSequence) and is one task: in threads, or on the Dask cluster when one is
    active. The blocks do not depend on ``n_jobs`` or the workers, so neither do the
    results. Yields ``(size, result)`` in block order.
    """
    import numpy as np
    from joblib import Parallel, delayed

    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    n_blocks = -(-n_items // block)
    sizes = [min(block, n_items - b * block) for b in range(n_blocks)]
    backend = dask_backend() if active() else "threading"
    parallel = Parallel(n_jobs=max(1, n_jobs), backend=backend, return_as="generator")
    tasks = (delayed(function)(s, n) for s, n in zip(root.spawn(n_blocks), sizes, strict=True))
    yield from zip(sizes, parallel(tasks), strict=True)


def active() -> bool:
    """Whether work is currently being sent to a Dask cluster."""
    return _ACTIVE["dask"]


@contextmanager
def dask_cluster(scheduler: str | None = None, local_workers: int = 2):
    """Send joblib work to a Dask cluster for the duration of the block.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``). Without it, a local cluster of
        ``local_workers`` single-threaded worker processes is started and stopped.
    local_workers : int
        Workers of the local cluster.

    Yields
    ------
    distributed.Client
    """
    import joblib
    from dask.distributed import Client, LocalCluster

    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(
            n_workers=local_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        )
        client = Client(cluster)
    try:
        with joblib.parallel_config(backend=dask_backend()):
            _ACTIVE["dask"] = True
            yield client
    finally:
        _ACTIVE["dask"] = False
        client.close()
        if cluster is not None:
            cluster.close()
