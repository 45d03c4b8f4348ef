"""The estimators shared by the experiments: means, standard errors and intervals (floats out).

One module for them all: the insights' path statistics, the lecture's Student-t intervals over seeds (``mean_ci``)
and the sharpness measures' Monte Carlo estimates (``mean_stderr``); the weak-error statistics on (n_steps, M)
tensors are in :mod:`samsde.weak_error`."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

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


def mean_sem(samples: np.ndarray) -> tuple[float, float, int]:
    """Mean, standard error s / sqrt(n) (s with ddof 1) and count n of the finite entries (NaN marks a diverged
    path); the standard error is NaN for n < 2, everything NaN for n = 0."""
    finite = samples[np.isfinite(samples)]
    n = finite.size
    if n == 0:
        return math.nan, math.nan, 0
    sem = float(finite.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return float(finite.mean()), sem, n


def finite_path_summary(values: np.ndarray) -> dict[str, np.ndarray]:
    """Per record of a (n_records, M) array: mean, standard error and count n over the finite paths (NaN where
    n = 0, resp. n < 2), as columns ``mean``, ``sem``, ``n_paths``."""
    finite = np.isfinite(values)
    n = finite.sum(1)
    filled = np.where(finite, values, 0.0)
    mean = filled.sum(1) / np.maximum(n, 1)
    var = (np.where(finite, values - mean[:, None], 0.0) ** 2).sum(1) / np.maximum(n - 1, 1)
    sem = np.where(n > 1, np.sqrt(var / np.maximum(n, 1)), np.nan)
    return {"mean": np.where(n > 0, mean, np.nan), "sem": sem, "n_paths": n}


def binomial_summary(successes: int, n: int) -> dict[str, float]:
    """A share p = k / n with its binomial standard error sqrt(p (1 - p) / n) and Wilson 95% interval."""
    p = successes / n
    low, high = wilson_interval(successes, n)
    return {"mean": p, "sem": math.sqrt(p * (1 - p) / n), "ci_low": low, "ci_high": high, "n_paths": n}


def paired_difference(a: np.ndarray, b: np.ndarray, z: float = Z95) -> tuple[float, float, float]:
    """Mean of d = a - b over paired samples with its normal interval mean(d) -+ z s_d / sqrt(n)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    se = d.std(ddof=1) / math.sqrt(d.size) if d.size > 1 else math.nan
    return float(d.mean()), float(d.mean() - z * se), float(d.mean() + z * se)


def increasing_shares(means, sems, z: float = Z95) -> tuple[float, float, float]:
    """For independent estimates expected to increase along a sequence: the shares of consecutive pairs with
    d = m_{i+1} - m_i > 0, with d > z se (significant increase) and with d > -z se (no significant decrease),
    se = sqrt(se_i^2 + se_{i+1}^2)."""
    means, sems = np.asarray(means, dtype=float), np.asarray(sems, dtype=float)
    diff = np.diff(means)
    se = np.sqrt(sems[1:] ** 2 + sems[:-1] ** 2)
    if diff.size == 0:
        return math.nan, math.nan, math.nan
    return float(np.mean(diff > 0)), float(np.mean(diff > z * se)), float(np.mean(diff > -z * se))


def paired_increasing_shares(samples: list[np.ndarray], z: float = Z95) -> tuple[float, float, float]:
    """For paired samples (one array per step of a sequence, the same paths in each) expected to have increasing
    means: the shares of consecutive pairs whose paired difference (:func:`paired_difference`) is > 0, has its
    interval above 0 (significant increase), and has its interval reaching 0 or above (no significant decrease)."""
    diffs = [paired_difference(b, a, z) for a, b in zip(samples[:-1], samples[1:], strict=True)]
    if not diffs:
        return math.nan, math.nan, math.nan
    increase = float(np.mean([d > 0 for d, _, _ in diffs]))
    significant = float(np.mean([low > 0 for _, low, _ in diffs]))
    return increase, significant, float(np.mean([high >= 0 for _, _, high in diffs]))


class Estimate(NamedTuple):
    """A Monte Carlo estimate and its standard error ``std / sqrt(n)``."""

    mean: float
    stderr: float


def mean_stderr(samples: list[float]) -> Estimate:
    """Mean and standard error std(samples, ddof=1) / sqrt(n) of Monte Carlo samples."""
    x = torch.tensor(samples, dtype=torch.float64)
    return Estimate(x.mean().item(), (x.std(correction=1) / math.sqrt(x.numel())).item())


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float, float]:
    """Mean, standard error and Student-t confidence interval ``mean +- t_{n-1} s.e.`` of i.i.d. values.

    Used on per-seed values and on per-seed paired differences (same init and batch order), where the
    pairing removes the seed-to-seed variation common to both arms.
    """
    from scipy import stats

    x = torch.from_numpy(np.asarray(values, dtype=np.float64)).flatten()  # also takes a pandas Series
    n = x.numel()
    if n < 2:
        raise ValueError(f"need at least two values, got {n}")
    mean = x.mean().item()
    se = (x.std(correction=1) / math.sqrt(n)).item()
    half = stats.t.ppf(0.5 + level / 2, n - 1) * se
    return mean, se, mean - half, mean + half
