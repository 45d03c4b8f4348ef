"""Small interval estimators shared by the experiments (numpy in, floats out)."""

from __future__ import annotations

import math

import numpy as np

#: two-sided 95% standard normal quantile
Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (well behaved at 0 and 1, unlike p +- z se)."""
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    return low, 1.0 if successes == n else min(1.0, centre + half)


def ratio_of_means(a: np.ndarray, b: np.ndarray, z: float = Z95) -> tuple[float, float, float]:
    """R = mean(a) / mean(b) over paired paths and its delta-method interval, Var R ~ Var(a - R b) / (n mean(b)^2)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if a.size < 2:
        return math.nan, math.nan, math.nan
    ratio = a.mean() / b.mean()
    se = (a - ratio * b).std(ddof=1) / (math.sqrt(a.size) * abs(b.mean()))
    return float(ratio), float(ratio - z * se), float(ratio + z * se)
