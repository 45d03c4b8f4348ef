"""Solvers for an SDE model dX = b(X) dt + sqrt(eta) B(X) dW (samsde.sde), and the Brownian grid they share.

The model knows its coefficients, the solver knows time steps (as in torchsde).  One Euler-Maruyama step is
    X+ = X + b(X) dt + sqrt(eta) B(X) dW,   dW ~ N(0, dt I),
weak order 1 in dt, so its bias at dt = eta / r is O(eta / r): integrating at r and 2r on the same Brownian path
and taking 2 E_2r - E_r (Richardson, samsde.weak_error.richardson) removes the leading term.

The Brownian grid: over one discrete step [k eta, (k+1) eta] the loop draws ``resolution * finest`` increments of
variance eta / (resolution * finest); a runner at refinement q gets the sums of consecutive ``finest / q`` of them,
so every runner sees the same path.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def euler_maruyama_step(model, x: Tensor, dw: Tensor, dt: float) -> Tensor:
    """X + b(X) dt + sqrt(eta) B(X) dW for an SDE model (its ``drift`` and ``diffuse`` at one point)."""
    p = model.coefficients_at(x)
    return x + model.drift(p) * dt + math.sqrt(model.eta) * model.diffuse(p, dw)


def coarsened(fine: Tensor, factor: int) -> Tensor:
    """Sums of ``factor`` consecutive fine increments: the same Brownian path on a grid ``factor`` times coarser."""
    if factor == 1:
        return fine
    return fine.reshape(fine.shape[0] // factor, factor, *fine.shape[1:]).sum(1)


def brownian_increments(
    generator: torch.Generator, n_increments: int, n_paths: int, dim_w: int, dt: float, device
) -> Tensor:
    """(n_increments, M, dim_w) increments of variance dt, drawn on the CPU from ``generator`` and moved to device
    (a GPU run sees the same numbers)."""
    w = torch.randn(n_increments, n_paths, dim_w, generator=generator, dtype=torch.float64)
    return math.sqrt(dt) * w.to(device)
