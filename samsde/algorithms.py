"""The four discrete optimizers, one step each, batched over paths.

With g = grad f_gamma(x) the stochastic gradient on the current draw gamma (both evaluations of a step use the
SAME draw):
    SGD    x+ = x - eta g
    USAM   x+ = x - eta grad f_gamma(x + rho g)
    SAM    x+ = x - eta grad f_gamma(x + rho g / |g|)
    DNSAM  x+ = x - eta grad f_gamma(x + rho g / |grad f(x)|)
For additive noise grad f_gamma(y) = grad f(y) + Z, which gives the table of the paper notes.

rho = 0 reproduces SGD bit for bit: the ascent step is skipped (not multiplied by zero, which turns g = 0 or
|g| = 0 into NaN and may flip signed zeros), so the second gradient is evaluated at exactly x.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

GradFn = Callable[[Tensor], Tensor]

ALGORITHMS = ("sgd", "usam", "sam", "dnsam")


def check_algorithm(algorithm: str) -> None:
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; known algorithms: {list(ALGORITHMS)}")


def check_step_sizes(eta: float, rho: float) -> None:
    if not eta > 0:
        raise ValueError(f"learning rate eta must be > 0, got {eta}")
    if not rho >= 0:
        raise ValueError(f"rho must be >= 0, got {rho}")


def _safe_inverse_norm(v: Tensor) -> Tensor:
    """1/|v| per path as an (M, 1) column, with 0 where |v| = 0 (then the ascent direction is zero)."""
    norm = torch.linalg.vector_norm(v, dim=-1, keepdim=True)
    return torch.where(norm > 0, 1.0 / norm, torch.zeros_like(norm))


def ascent_scale(algorithm: str, g: Tensor, full_grad: Callable[[], Tensor], rho: float) -> Tensor | float:
    """The factor s of the ascent point x + s g: rho (USAM), rho/|g| (SAM), rho/|grad f(x)| (DNSAM)."""
    if algorithm == "usam":
        return rho
    if algorithm == "sam":
        return rho * _safe_inverse_norm(g)
    if algorithm == "dnsam":
        return rho * _safe_inverse_norm(full_grad())
    raise ValueError(f"algorithm {algorithm!r} has no ascent step")


def optimizer_step(
    algorithm: str,
    x: Tensor,
    eta: float,
    rho: float,
    stochastic_grad: GradFn,
    full_grad: Callable[[], Tensor],
    g: Tensor | None = None,
) -> Tensor:
    """One step of ``algorithm`` from x for any gradient oracle.

    ``stochastic_grad(y)`` is grad f_gamma(y) on the step's draw; ``full_grad()`` returns grad f(x) (only DNSAM
    calls it); ``g`` may pass a precomputed stochastic_grad(x).
    """
    if g is None:
        g = stochastic_grad(x)
    if algorithm == "sgd" or rho == 0:
        return x - eta * g
    return x - eta * stochastic_grad(x + ascent_scale(algorithm, g, full_grad, rho) * g)


def discrete_step(algorithm: str, x: Tensor, grad_fn: GradFn, z: Tensor, eta: float, rho: float) -> Tensor:
    """One step of SGD / USAM / SAM / DNSAM with additive noise: grad f_gamma(y) = grad_fn(y) + z.

    ``x`` and ``z`` are (M, d); ``grad_fn`` maps (M, d) points to full-batch gradients.
    """
    check_algorithm(algorithm)
    check_step_sizes(eta, rho)
    if x.shape != z.shape:
        raise ValueError(f"x and z must have the same shape, got {tuple(x.shape)} and {tuple(z.shape)}")
    full = grad_fn(x)
    return optimizer_step(algorithm, x, eta, rho, lambda y: grad_fn(y) + z, lambda: full, g=full + z)
