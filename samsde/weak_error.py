"""Weak-error statistics: relative error between a discrete run and an SDE, its bootstrap interval, slope fits.

For test function values a[k, m] = g(x_k) on the discrete run and b[k, m] = g(X_{k eta}) on the SDE (same path m
when coupled), the relative error is
    E_rel = max_k |mean_m a[k] - mean_m b[k]| / mean_k |mean_m a[k]|.
Its confidence interval is a percentile bootstrap over paths: a replicate re-weights the paths by multinomial
counts (the same counts for a and b, which keeps the coupling) so all replicates are one matrix product.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


def relative_error(a: Tensor, b: Tensor) -> float:
    """E_rel for (n_steps, M) value tables a (discrete) and b (SDE)."""
    ma, mb = a.mean(1), b.mean(1)
    return float((ma - mb).abs().max() / ma.abs().mean())


def bootstrap_weights(n_paths: int, n_boot: int, generator: torch.Generator) -> Tensor:
    """(n_boot, M) multinomial resampling counts divided by M, so ``w @ values.T`` are resampled means."""
    idx = torch.randint(n_paths, (n_boot, n_paths), generator=generator)
    counts = torch.zeros(n_boot, n_paths, dtype=torch.float64)
    counts.scatter_add_(1, idx, torch.ones_like(idx, dtype=torch.float64))
    return counts / n_paths


def relative_error_replicates(a: Tensor, b: Tensor, weights: Tensor) -> Tensor:
    """E_rel on each bootstrap replicate: (n_boot,)."""
    ma = weights @ a.T  # (n_boot, n_steps)
    mb = weights @ b.T
    return (ma - mb).abs().amax(1) / ma.abs().mean(1)


@dataclass
class ErrorEstimate:
    value: float
    low: float
    high: float
    replicates: Tensor


def estimate_relative_error(
    a: Tensor, b: Tensor, n_boot: int, generator: torch.Generator, level: float = 0.95
) -> ErrorEstimate:
    """E_rel with a percentile bootstrap interval at ``level``; NaN everywhere if any path diverged."""
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        nan = float("nan")
        return ErrorEstimate(nan, nan, nan, torch.full((n_boot,), nan, dtype=torch.float64))
    reps = relative_error_replicates(a, b, bootstrap_weights(a.shape[1], n_boot, generator))
    q = torch.quantile(reps, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64))
    return ErrorEstimate(relative_error(a, b), float(q[0]), float(q[1]), reps)


@dataclass
class SlopeFit:
    slope: float
    intercept: float
    low: float
    high: float


def fit_loglog_slope(etas, errors, replicates=None, level: float = 0.95) -> SlopeFit:
    """Least-squares slope of log(error) against log(eta).

    The interval comes from refitting on bootstrap replicates (``replicates``: (n_eta, n_boot), replicate j of
    every eta paired; the runs of different etas are independent so pairing is harmless).  Without replicates it
    is the t-interval of ordinary least squares.
    """
    x = np.log(np.asarray(etas, dtype=float))
    y = np.log(np.asarray(errors, dtype=float))
    if len(x) < 2 or not np.all(np.isfinite(y)):
        nan = float("nan")
        return SlopeFit(nan, nan, nan, nan)
    slope, intercept = np.polyfit(x, y, 1)
    if replicates is not None:
        reps = np.log(np.asarray(replicates, dtype=float))
        xc = x - x.mean()
        slopes = (xc @ (reps - reps.mean(0))) / (xc @ xc)
        low, high = np.quantile(slopes, [(1 - level) / 2, (1 + level) / 2])
    elif len(x) > 2:
        from scipy import stats

        resid = y - (slope * x + intercept)
        se = np.sqrt(resid @ resid / (len(x) - 2) / ((x - x.mean()) @ (x - x.mean())))
        half = stats.t.ppf((1 + level) / 2, len(x) - 2) * se
        low, high = slope - half, slope + half
    else:
        low = high = float("nan")
    return SlopeFit(float(slope), float(intercept), float(low), float(high))


def order1_lower_bound_holds(ci_low: float, minimum: float) -> bool:
    """Order 1 as the theorems state it, an upper bound |E g(x_k) - E g(X_k)| <= C eta: the error decays at least
    linearly when the lower end ``ci_low`` of the slope's interval is at least ``minimum`` (a slope above 1 is no
    evidence against it: with rho = c sqrt(eta) the error is a eta + b eta^(3/2) + O(eta^2))."""
    return bool(math.isfinite(ci_low) and ci_low >= minimum)


def short_of_minimum(slope: float, ci_low: float, ci_high: float, minimum: float, grid: str) -> str:
    """For a lower-bound slope claim whose point estimate clears ``minimum`` but whose interval does not: a note that
    the precision fails, not the slope (``grid``: what more of would narrow it, e.g. "paths and etas"); else ""."""
    if math.isfinite(slope) and slope >= minimum and not ci_low >= minimum:
        return (f"the slope {slope:.2f} clears {minimum} but its interval [{ci_low:.2f}, {ci_high:.2f}] does not: too "
                f"wide at this number of {grid}, not evidence against the order")  # fmt: skip
    return ""


@dataclass
class TwoTermFit:
    """error = a eta + b eta^(3/2): an order-1 weak error's leading term and the next one under rho = c sqrt(eta)."""

    a: float
    a_low: float
    a_high: float
    b: float
    b_low: float
    b_high: float


def fit_two_term(etas, errors, replicates=None, level: float = 0.95) -> TwoTermFit:
    """Least squares of the relative misfit: minimise sum_i ((e_i - a eta_i - b eta_i^(3/2)) / e_i)^2.

    Linear in (a, b), so a bootstrap replicate is refitted by one matrix product (``replicates``: (n_eta, n_boot),
    refitted with the same weights 1 / e_i as the point estimate); two etas determine (a, b) exactly.  The local
    log-log slope of this curve is 1 + x / (2 (1 + x)) with x = (b / a) sqrt(eta): the ratio b sqrt(eta) / a says
    which term dominates at eta."""
    eta = np.asarray(etas, dtype=float)
    e = np.asarray(errors, dtype=float)
    nan = float("nan")
    if len(eta) < 2 or not (np.all(np.isfinite(e)) and np.all(e > 0)):
        return TwoTermFit(nan, nan, nan, nan, nan, nan)
    design = np.column_stack([eta, eta**1.5]) / e[:, None]
    pinv = np.linalg.pinv(design)
    a, b = pinv @ np.ones_like(e)
    if replicates is None:
        return TwoTermFit(float(a), nan, nan, float(b), nan, nan)
    reps = pinv @ (np.asarray(replicates, dtype=float) / e[:, None])  # (2, n_boot)
    (a_low, a_high), (b_low, b_high) = (quantile_interval(r, level) for r in reps)
    return TwoTermFit(float(a), a_low, a_high, float(b), b_low, b_high)


def predicted_by_others(x, y) -> np.ndarray:
    """For each point j, the value the other points predict at x_j in log-log coordinates: the least-squares line
    through the other finite positive points when there are two or more, order-1 scaling y_i x_j / x_i from a single
    one, NaN with none.  Independent of y_j by construction."""
    lx = np.log(np.asarray(x, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        ly = np.log(np.asarray(y, dtype=float))
    ok = np.isfinite(ly)
    out = np.full(len(lx), np.nan)
    for j in range(len(lx)):
        others = ok & (np.arange(len(lx)) != j)
        if others.sum() >= 2:
            slope, intercept = np.polyfit(lx[others], ly[others], 1)
            out[j] = math.exp(intercept + slope * lx[j])
        elif others.sum() == 1:
            (i,) = np.flatnonzero(others)
            out[j] = math.exp(ly[i] + lx[j] - lx[i])
    return out


def screen_resolved(x, values, floors, usable=None, factor: float | None = None) -> np.ndarray:
    """Which points of a curve enter its slope fit, decided without the point's own value.

    Point j is resolved when the value the other points predict for it (:func:`predicted_by_others`) is above
    ``factor`` (default ``FLOOR_FACTOR``) times its own floor.  Selecting on the point's own value (value > 3 floor)
    would bias a kept value up exactly where the signal is weakest, i.e. at the smallest eta, and lean slopes low;
    the floor is a standard error, nearly independent of the mean it belongs to.  ``usable``: points that may enter
    at all (not diverged); only they predict the others."""
    factor = FLOOR_FACTOR if factor is None else factor
    values = np.asarray(values, dtype=float)
    usable = np.ones(len(values), bool) if usable is None else np.asarray(usable, dtype=bool)
    predicted = predicted_by_others(x, np.where(usable, values, np.nan))
    with np.errstate(invalid="ignore"):
        return usable & np.isfinite(values) & (predicted > factor * np.asarray(floors, dtype=float))


def path_summary(values: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and standard error over paths of a (n_steps, M) table (NaN rows of diverged paths excluded)."""
    finite = torch.isfinite(values)
    n = finite.sum(1).clamp_min(1)
    v = torch.where(finite, values, torch.zeros_like(values))
    mean = v.sum(1) / n
    var = (torch.where(finite, values - mean.unsqueeze(1), torch.zeros_like(values)) ** 2).sum(1) / (n - 1).clamp_min(1)
    return mean, (var / n).sqrt()


# ---- paired statistics with a Monte Carlo floor and the solver's bias (docs/concepts.md) --------------------------


def richardson(coarse: Tensor, fine: Tensor) -> Tensor:
    """Per-path Richardson values 2 b_2r - b_r of an SDE integrated at r and 2r steps on the same Brownian path.

    Euler-Maruyama's weak bias is C dt + O(dt^2), so the mean of these values removes the leading term; being linear
    in the paths, they can be paired and bootstrapped like any other value table."""
    return 2.0 * fine - coarse


@dataclass
class PairedError:
    """One point of a weak-error curve.

    ``value`` = max_k |mean_m Delta[k, m]| / N with Delta = a - b paired by path and N = mean_k |mean_m a[k]|;
    ``floor`` = max_k SE(Delta[k]) / N, the Monte Carlo noise floor: a value within ``FLOOR_FACTOR`` times it is not
    resolved.  ``replicates`` are the same statistic on bootstrap re-weightings of the paths (the same weights for
    every model at one eta, so ratios of two models can be taken replicate by replicate)."""

    value: float
    low: float
    high: float
    floor: float
    replicates: Tensor

    @property
    def resolved(self) -> bool:
        return bool(math.isfinite(self.value) and self.value > FLOOR_FACTOR * self.floor)


FLOOR_FACTOR = 3.0


def paired_error(
    a: Tensor,
    b: Tensor,
    weights: Tensor,
    level: float = 0.95,
    scale: Tensor | None = None,
    scale_weights: Tensor | None = None,
) -> PairedError:
    """The relative weak error of b against a with its noise floor and percentile interval (see PairedError).

    a, b: (n_steps, M) value tables on the same paths; weights: (n_boot, M) from :func:`bootstrap_weights`;
    ``scale``: the table whose mean_k |mean_m| normalises (default a; the solver's bias E_r - E_2r is normalised
    by the discrete run, like the model error it is compared with), resampled by ``scale_weights`` when its paths
    are not a's (default ``weights``).  NaN if any path of a table diverged."""
    scale = a if scale is None else scale
    scale_weights = weights if scale_weights is None else scale_weights
    if not (torch.isfinite(a).all() and torch.isfinite(b).all() and torch.isfinite(scale).all()):
        return _nan_error(weights.shape[0])
    delta = a - b
    norm = scale.mean(1).abs().mean()
    value = delta.mean(1).abs().max() / norm
    floor = (delta.std(1, correction=1) / math.sqrt(a.shape[1])).max() / norm
    reps = (weights @ delta.T).abs().amax(1) / (scale_weights @ scale.T).abs().mean(1)
    return PairedError(float(value), *_interval(reps, level), float(floor), reps)


def _interval(reps: Tensor, level: float) -> tuple[float, float]:
    q = torch.quantile(reps, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64))
    return float(q[0]), float(q[1])


def _nan_error(n_boot: int) -> PairedError:
    nan = float("nan")
    return PairedError(nan, nan, nan, nan, torch.full((n_boot,), nan, dtype=torch.float64))


def pair_means(values: Tensor) -> Tensor:
    """(n_steps, M) values of antithetic paths (m and m + M/2 paired) -> (n_steps, M/2) pair means, the independent
    units of an antithetic sample: their mean is the paths' mean, their variance is what its floor is made of."""
    half = values.shape[1] // 2
    return (values[:, :half] + values[:, half:]) / 2


def two_sample_error(a: Tensor, b: Tensor, weights_a: Tensor, weights_b: Tensor, level: float = 0.95) -> PairedError:
    """The relative weak error of b against a when they share no noise (a: discrete runs, b: SDE units, of any
    counts): the same statistic as :func:`paired_error`, with the floor
        max_k sqrt(Var a_k / M_a + Var b_k / M_b) / N
    and a bootstrap that resamples a's units and b's units apart (``weights_a``: (n_boot, M_a), ``weights_b``:
    (n_boot, M_b)).  Every error of one cell resampled with the same two sets of weights keeps their ratios paired
    wherever the SDEs share a path."""
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        return _nan_error(weights_a.shape[0])
    ma, mb = a.mean(1), b.mean(1)
    norm = ma.abs().mean()
    value = (ma - mb).abs().max() / norm
    se = (a.var(1, correction=1) / a.shape[1] + b.var(1, correction=1) / b.shape[1]).sqrt()
    ra = weights_a @ a.T  # (n_boot, n_steps)
    reps = (ra - weights_b @ b.T).abs().amax(1) / ra.abs().mean(1)
    return PairedError(float(value), *_interval(reps, level), float(se.max() / norm), reps)


def unpaired_floor(a: Tensor, b: Tensor, scale: Tensor) -> float:
    """The floor a paired difference of a and b would have if they shared no noise: max_k sqrt(Var a_k + Var b_k) /
    sqrt(M) / N.  Against the paired floor it measures what the pairing buys."""
    if not (torch.isfinite(a).all() and torch.isfinite(b).all() and torch.isfinite(scale).all()):
        return float("nan")
    se = ((a.var(1, correction=1) + b.var(1, correction=1)) / a.shape[1]).sqrt()
    return float(se.max() / scale.mean(1).abs().mean())


def quantile_interval(values, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates of any statistic (NaN replicates make it NaN)."""
    v = np.asarray(values, dtype=float)
    if v.size == 0 or not np.all(np.isfinite(v)):
        return float("nan"), float("nan")
    low, high = np.quantile(v, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)
