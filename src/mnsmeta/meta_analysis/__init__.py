"""Meta-analysis: ALE maps, their Monte Carlo inference and cluster tables.

``ale`` fits NiMARE's ALE with FWE correction, the subtraction and the conjunction;
``clusters`` describes thresholded maps; ``datasets`` builds NiMARE datasets from the
experiment model; ``nimare_adapter`` holds every use of NiMARE's private internals; the
numba ``engine`` computes the Monte Carlo nulls.
"""
