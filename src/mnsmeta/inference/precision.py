"""How precise a Monte Carlo p is, and how to correct several of them.

A permutation or Monte Carlo p estimated from ``n`` draws as ``(b + 1) / (n + 1)`` (``b``:
draws at least as extreme as the observation) carries sampling error of its own: at p = 0.05
and 1,000 draws its standard error is about 0.007. :func:`mc_interval` gives the exact
(Clopper-Pearson) 95 % interval of the exceedance probability, so that a p "across 0.05" is
called only when its interval lies across it. :func:`holm` is Holm's (1979) step-down
adjustment, which controls the family-wise error of a set of tests under any dependence.
"""

from __future__ import annotations

import numpy as np

#: Coverage of the Monte Carlo intervals.
LEVEL = 0.95


def exceedances(p: float, n: int) -> int:
    """The number of draws ``b`` behind ``p = (b + 1) / (n + 1)`` (rounded; at least 0)."""
    return max(round(p * (n + 1)) - 1, 0)


def mc_interval(p: float, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Exact binomial (Clopper-Pearson) interval of a Monte Carlo p from ``n`` draws.

    Parameters
    ----------
    p : float
        The Monte Carlo p, ``(b + 1) / (n + 1)``.
    n : int
        Number of draws (iterations, permutations, relocations).
    level : float
        Coverage.

    Returns
    -------
    (low, high) : tuple of float
        NaN when ``p`` or ``n`` is missing.
    """
    if n is None or not np.isfinite(p) or not n or n <= 0:
        return (np.nan, np.nan)
    n = int(n)
    return binomial_interval(min(exceedances(p, n), n), n, level)


def binomial_interval(successes: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of a proportion ``successes / n``."""
    from scipy.stats import beta

    tail = (1 - level) / 2
    low = 0.0 if successes == 0 else float(beta.ppf(tail, successes, n - successes + 1))
    high = 1.0 if successes == n else float(beta.ppf(1 - tail, successes + 1, n - successes))
    return (low, high)


def decided(p: float, n: int, alpha: float) -> bool:
    """Whether the Monte Carlo interval of ``p`` lies entirely on one side of ``alpha``."""
    low, high = mc_interval(p, n)
    return bool(np.isfinite(low) and (high < alpha or low >= alpha))


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN entries stay NaN and do not count).

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03]).round(3).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = len(finite)
    order = finite[np.argsort(p[finite], kind="stable")]
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted
