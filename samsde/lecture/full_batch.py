"""Full-batch SAM on toy landscapes ("bouncing across ravines"): the closed-form two-cycle of SAM on a quadratic, a
detector of two-point oscillations, and a valley whose curvature varies along its floor."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from samsde.algorithms import discrete_step


def quadratic_two_cycle_amplitude(lam: float, eta: float, rho: float) -> float:
    """Amplitude ``a`` of full-batch SAM's two-cycle ``x -> -x`` on ``f(x) = lam x^2 / 2``.

    One step from ``x > 0`` is ``x+ = x - eta lam (x + rho)`` (SAM's ascent point is ``x + rho sign(x)``);
    ``x+ = -x`` gives ``a (2 - eta lam) = eta lam rho``, i.e. ``a = eta lam rho / (2 - eta lam)``.  The cycle
    attracts every ``x != 0`` when ``0 < eta lam < 2``: near it the map is affine with slope ``1 - eta lam``.
    In ``d`` dimensions the cycle ``+-a v_1`` along the top eigenvector ``v_1`` of ``H`` is attracting too: at
    the cycle the other coordinates are multiplied by ``1 - eta lam_i - (lam_i / lam_1)^2 (2 - eta lam_1)``,
    which lies in ``(-1, 1)`` for ``0 < lam_i < lam_1``.
    """
    h = eta * lam
    if not (lam > 0 and 0 < h < 2 and rho >= 0):
        raise ValueError(f"need lam > 0, 0 < eta lam < 2, rho >= 0; got lam={lam}, eta={eta}, rho={rho}")
    return h * rho / (2 - h)


class TwoCycle(NamedTuple):
    """Summary of a sequence ``p_k`` over a window: is it ``+-amplitude`` alternating?"""

    amplitude: float  # mean |p_k|
    amplitude_spread: float  # (max |p_k| - min |p_k|) / mean |p_k|
    alternation: float  # share of consecutive pairs with p_k p_{k+1} < 0


def two_cycle_summary(p: Tensor) -> TwoCycle:
    """Detect a two-point oscillation in the 1-D sequence ``p`` (e.g. the projection on the top eigenvector).

    A two-cycle ``+a, -a, +a, ...`` has ``alternation = 1`` and ``amplitude_spread = 0``.
    """
    if p.dim() != 1 or p.numel() < 2:
        raise ValueError(f"p must be 1-D with >= 2 entries, got shape {tuple(p.shape)}")
    mag = p.abs()
    mean = mag.mean().item()
    spread = (mag.max() - mag.min()).item() / mean if mean > 0 else math.nan
    alternation = (p[1:] * p[:-1] < 0).double().mean().item()
    return TwoCycle(mean, spread, alternation)


def run_full_batch(
    algorithm, grad_fn: Callable[[Tensor], Tensor], x0: Tensor, eta: float, rho: float, n_steps: int
) -> Tensor:
    """Iterates ``x_0 .. x_n`` of full-batch ``algorithm`` (a registered name or Algorithm; SGD is gradient descent).

    ``x0`` is ``(M, d)`` (one row per run); returns ``(n_steps + 1, M, d)``.  Each step is
    :func:`samsde.algorithms.discrete_step` with noise ``z = 0``.
    """
    xs = [x0]
    zero = torch.zeros_like(x0)
    for _ in range(n_steps):
        xs.append(discrete_step(algorithm, xs[-1], grad_fn, zero, eta, rho))
    return torch.stack(xs)


class Valley:
    """A ravine whose curvature across it decreases along its floor.

        f(x, y) = a(y) x^2 / 2 + slope * y,   a(y) = a_min + (a_max - a_min) (1 - tanh(y / width)) / 2

    The floor is ``x = 0``; across it the curvature is ``a(y)``, which falls smoothly from ``a_max``
    (``y -> -inf``) to ``a_min`` (``y -> +inf``).  ``slope > 0`` tilts the floor down toward the sharp end, so
    gradient descent drifts to *sharper* regions while SAM has to climb to reach flatter ones.  Points are
    ``(M, 2)`` tensors ``[x, y]``.

    Not a :class:`samsde.tasks.Task`: it has no noise model and no SDE, only the closed-form gradient, Hessian and
    top eigenvalue that the deterministic full-batch runs (:func:`run_full_batch`) and their figure need.
    """

    def __init__(self, a_max: float, a_min: float, width: float, slope: float = 0.0) -> None:
        if not (a_max > a_min > 0 and width > 0):
            raise ValueError(f"need a_max > a_min > 0 and width > 0, got {a_max}, {a_min}, {width}")
        self.a_max, self.a_min, self.width, self.slope = a_max, a_min, width, slope

    def curvature(self, y: Tensor) -> Tensor:
        """``a(y)`` and its first two derivatives, stacked on a new last axis."""
        t = torch.tanh(y / self.width)
        c = (self.a_max - self.a_min) / 2
        a = self.a_min + c * (1 - t)
        da = -c * (1 - t**2) / self.width
        dda = 2 * c * t * (1 - t**2) / self.width**2
        return torch.stack([a, da, dda], dim=-1)

    def loss(self, p: Tensor) -> Tensor:
        x, y = p[..., 0], p[..., 1]
        return 0.5 * self.curvature(y)[..., 0] * x**2 + self.slope * y

    def grad(self, p: Tensor) -> Tensor:
        x, y = p[..., 0], p[..., 1]
        a, da, _ = self.curvature(y).unbind(-1)
        return torch.stack([a * x, 0.5 * da * x**2 + self.slope], dim=-1)

    def hessian(self, p: Tensor) -> Tensor:
        x, y = p[..., 0], p[..., 1]
        a, da, dda = self.curvature(y).unbind(-1)
        off = da * x
        return torch.stack([torch.stack([a, off], -1), torch.stack([off, 0.5 * dda * x**2], -1)], -2)

    def lambda_max(self, p: Tensor) -> Tensor:
        """Largest Hessian eigenvalue at each point (closed form of the symmetric 2 x 2 case)."""
        h = self.hessian(p)
        mean = 0.5 * (h[..., 0, 0] + h[..., 1, 1])
        half_gap = torch.sqrt((0.5 * (h[..., 0, 0] - h[..., 1, 1])) ** 2 + h[..., 0, 1] ** 2)
        return mean + half_gap
