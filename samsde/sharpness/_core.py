"""What every sharpness measure shares: argument checks, the loss value, gradient and Hessian-vector products of
a loss closure ``loss(theta) -> scalar`` and random probe vectors (the Monte Carlo estimate: samsde.stats)."""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Real

import torch
from torch import Tensor

LossClosure = Callable[[Tensor], Tensor]


def _check_positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return value


def _check_int(name: str, value: object, minimum: int) -> int:
    # bool is an int subclass; iters=True is almost certainly a mistake.
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_theta(theta: object, name: str = "theta") -> Tensor:
    if not isinstance(theta, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(theta).__name__}")
    if theta.dim() != 1 or theta.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 1-D tensor, got shape {tuple(theta.shape)}")
    if not theta.is_floating_point():
        raise ValueError(f"{name} must have a floating dtype, got {theta.dtype}")
    return theta.detach()


def _check_like(name: str, value: object, theta: Tensor) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.shape != theta.shape:
        raise ValueError(f"{name} must have the shape of theta {tuple(theta.shape)}, got {tuple(value.shape)}")
    return value.detach().to(dtype=theta.dtype, device=theta.device)


def _scalar(loss: LossClosure, theta: Tensor) -> Tensor:
    value = loss(theta)
    if not isinstance(value, Tensor) or value.numel() != 1:
        raise ValueError("loss(theta) must return a scalar tensor")
    return value.reshape(())


def _value(loss: LossClosure, theta: Tensor) -> float:
    with torch.no_grad():
        return _scalar(loss, theta).item()


def _value_and_grad(loss: LossClosure, theta: Tensor) -> tuple[float, Tensor]:
    x = theta.detach().requires_grad_(True)
    with torch.enable_grad():
        f = _scalar(loss, x)
        if not f.requires_grad:  # loss does not depend on theta
            return f.item(), torch.zeros_like(x)
        (g,) = torch.autograd.grad(f, x, allow_unused=True)
    return f.item(), torch.zeros_like(x) if g is None else g.detach()


def _hessian_operator(loss: LossClosure, theta: Tensor) -> Callable[[Tensor], Tensor]:
    """Return ``v -> H v`` at ``theta``.

    The gradient graph is built once with ``create_graph=True`` and kept
    alive, so each product costs one extra backward pass instead of a full
    forward + double backward.  This matters for Lanczos and Hutchinson, which
    apply the same Hessian many times.
    """
    x = theta.detach().requires_grad_(True)
    with torch.enable_grad():
        f = _scalar(loss, x)
        g = None
        if f.requires_grad:
            (g,) = torch.autograd.grad(f, x, create_graph=True, allow_unused=True)

    if g is None or not g.requires_grad:
        # Constant or affine loss: the Hessian is exactly zero.
        return torch.zeros_like

    def matvec(v: Tensor) -> Tensor:
        (hv,) = torch.autograd.grad(g, x, grad_outputs=v, retain_graph=True, allow_unused=True)
        return torch.zeros_like(v) if hv is None else hv.detach()

    return matvec


def hvp(loss: LossClosure, theta: Tensor, v: Tensor) -> Tensor:
    """Hessian-vector product ``H(theta) v = d/dtheta [grad L(theta) . v]``.

    Computed by double backward (Pearlmutter's trick); the Hessian is never
    materialised.  Returns a detached tensor shaped like ``theta``.
    """
    theta = _check_theta(theta)
    v = _check_like("v", v, theta)
    return _hessian_operator(loss, theta)(v)


def _gaussian(like: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)


def _rademacher(like: Tensor, generator: torch.Generator | None) -> Tensor:
    bits = torch.randint(0, 2, like.shape, generator=generator, device=like.device)
    return bits.to(like.dtype) * 2 - 1


