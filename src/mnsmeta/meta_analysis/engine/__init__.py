"""The numba engine: ALE maps and Monte Carlo nulls from voxel indices, no NiMARE.

``kernels`` stamps NiMARE's kernels slab by slab; ``montecarlo`` computes the Monte Carlo
null of the cluster-level FWE; ``streaming`` the uncorrected null of database-scale sets;
``subtraction`` and ``balanced`` the permutations of the subtractions; ``shared_nulls`` the
nulls of many related datasets (jackknife subsets, noise levels) from one set of draws;
``relocation`` whole ALE maps for the overlap tests' nulls; ``tfce`` TFCE; ``scaleout``
sends the work to a Dask cluster. NiMARE's estimators reach it through
:mod:`mnsmeta.meta_analysis.nimare_adapter.estimators`.

The rest of the package uses the names below (``tests/test_layout.py``: no other module
imports the engine's modules).
"""

from mnsmeta.meta_analysis.engine.relocation import AleComputer, null_space_mask
from mnsmeta.meta_analysis.engine.scaleout import active as dask_active
from mnsmeta.meta_analysis.engine.scaleout import dask_backend, dask_cluster
from mnsmeta.meta_analysis.engine.shared_nulls import added_experiments_null, leave_one_out_null
from mnsmeta.meta_analysis.engine.streaming import STREAMING_FOCI
from mnsmeta.meta_analysis.engine.tfce import max_tfce, tfce_map

__all__ = [
    "STREAMING_FOCI",
    "AleComputer",
    "added_experiments_null",
    "dask_active",
    "dask_backend",
    "dask_cluster",
    "leave_one_out_null",
    "max_tfce",
    "null_space_mask",
    "tfce_map",
]
