"""The discrete step of any registered algorithm, batched over paths.

With g = grad f_gamma(x) the stochastic gradient on the current draw gamma (both evaluations of a step use the
SAME draw) and e the algorithm's ascent perturbation:
    x+ = x - eta grad f_gamma(x + e)     (SGD, which has no perturbation: x+ = x - eta g)
For additive noise grad f_gamma(y) = grad f(y) + Z, which gives the table of docs/concepts.md.

rho = 0 reproduces SGD bit for bit: the ascent step is skipped (not multiplied by zero, which turns g = 0 or
|g| = 0 into NaN and may flip signed zeros), so the second gradient is evaluated at exactly x.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

GradFn = Callable[[Tensor], Tensor]


def check_step_sizes(eta: float, rho: float) -> None:
    if not eta > 0:
        raise ValueError(f"learning rate eta must be > 0, got {eta}")
    if not rho >= 0:
        raise ValueError(f"rho must be >= 0, got {rho}")


def update_direction(
    algorithm,
    x: Tensor,
    rho: float,
    stochastic_grad: GradFn,
    full_grad: Callable[[], Tensor],
    g: Tensor | None = None,
) -> Tensor:
    """The update direction D(x; gamma) = grad f_gamma(x + e) of ``algorithm`` (a name or an Algorithm) on one draw.

    USAM: g_gamma(x + rho g_gamma), SAM: g_gamma(x + rho g_gamma / |g_gamma|), DNSAM: g_gamma(x + rho g_gamma /
    |grad f(x)|), SGD (or rho = 0): g_gamma(x).  ``stochastic_grad(y)`` is grad f_gamma(y) on the draw; ``full_grad()``
    returns grad f(x) (only an algorithm that normalizes by it calls it); ``g`` may pass a precomputed
    stochastic_grad(x).  The optimizer steps along it (:func:`optimizer_step`), SVAG combines two (samsde.svag).
    """
    from samsde.algorithms import get

    algorithm = get(algorithm)
    if g is None:
        g = stochastic_grad(x)
    e = algorithm.perturbation(g, full_grad, rho) if rho != 0 else None
    if e is None:
        return g
    return stochastic_grad(x + e)


def optimizer_step(
    algorithm,
    x: Tensor,
    eta: float,
    rho: float,
    stochastic_grad: GradFn,
    full_grad: Callable[[], Tensor],
    g: Tensor | None = None,
) -> Tensor:
    """One step x+ = x - eta D(x; gamma) of ``algorithm`` from x for any gradient oracle (D: :func:`update_direction`,
    whose arguments these are)."""
    return x - eta * update_direction(algorithm, x, rho, stochastic_grad, full_grad, g)


def discrete_step(algorithm, x: Tensor, grad_fn: GradFn, z: Tensor, eta: float, rho: float) -> Tensor:
    """One step of any registered algorithm with additive noise: grad f_gamma(y) = grad_fn(y) + z.

    ``x`` and ``z`` are (M, d); ``grad_fn`` maps (M, d) points to full-batch gradients.
    """
    from samsde.algorithms import get

    get(algorithm)
    check_step_sizes(eta, rho)
    if x.shape != z.shape:
        raise ValueError(f"x and z must have the same shape, got {tuple(x.shape)} and {tuple(z.shape)}")
    full = grad_fn(x)
    return optimizer_step(algorithm, x, eta, rho, lambda y: grad_fn(y) + z, lambda: full, g=full + z)
