"""Statistics over the lecture's seeds: Student-t intervals of (paired) per-seed values, and the bootstrap of the
share of the large-batch gap that a fix closes."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from samsde.stats import mean_ci

__all__ = ["bootstrap_gap_closed", "mean_ci"]


def bootstrap_gap_closed(
    small: Tensor, large: Tensor, fixed: Tensor, n_boot: int, generator: torch.Generator, level: float = 0.95
) -> tuple[float, float, float]:
    """Share of the large-batch gap that a fix closes, ``(mean L - mean F) / (mean L - mean S)``, with a CI.

    ``small``, ``large``, ``fixed`` are per-seed errors of the small-batch, large-batch and fixed large-batch
    runs, paired by seed; seeds are resampled with replacement (percentile bootstrap).  1 means the gap is
    closed, 0 that nothing changed, > 1 that the fix beats the small batch.  Replicates whose gap is not
    positive have no meaningful share and count as NaN (ignored by the percentiles).
    """
    small, large, fixed = (torch.as_tensor(v, dtype=torch.float64) for v in (small, large, fixed))

    def share(s: Tensor, la: Tensor, f: Tensor) -> Tensor:
        gap = la.mean(-1) - s.mean(-1)
        return torch.where(gap > 0, (la.mean(-1) - f.mean(-1)) / gap, torch.full_like(gap, math.nan))

    value = share(small, large, fixed).item()
    idx = torch.randint(0, small.numel(), (n_boot, small.numel()), generator=generator)
    reps = share(small[idx], large[idx], fixed[idx])
    reps = reps[torch.isfinite(reps)]
    if reps.numel() == 0:
        return value, math.nan, math.nan
    q = torch.quantile(reps, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64))
    return value, q[0].item(), q[1].item()
