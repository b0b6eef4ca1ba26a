"""The numba engine: ALE maps and Monte Carlo nulls from voxel indices.

``kernels`` stamps NiMARE's kernels slab by slab; ``montecarlo`` replaces the
per-permutation work of NiMARE's FWE correction; ``shared_nulls`` computes the nulls of many
related datasets (jackknife subsets, noise levels) from one set of draws; ``relocation``
computes whole ALE maps for the overlap test's relocation nulls; ``scaleout`` sends the work
to a Dask cluster.
"""
