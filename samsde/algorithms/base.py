"""What an algorithm is to samsde: one object carrying its discrete step, its SDE and its torch optimizer.

Notation (docs/concepts.md): g = grad f_gamma(x) the stochastic gradient of the step's draw (both
gradients of one step use the same draw), grad f the full-batch gradient, H the Hessian of f, Sigma the noise
covariance, W a Brownian motion, time t = k eta.

- Discrete step: x+ = x - eta grad f_gamma(x + e), with the ascent perturbation e = ``perturbation(g, ...)``, a
  vector (so elementwise variants fit); no perturbation (None) is SGD's x+ = x - eta g.
- SDE: dX = b(X) dt + sqrt(eta) B(X) dW with the drift b = ``drift`` and the diffusion B B^T = ``diffusion_matrix``;
  ``diffusion`` applies B to dW matrix-free, exact to first order in rho (the order the theorems keep).  These are
  the additive-noise formulas (section 3).  Under mini-batch noise the SDE is built from the perturbation alone
  (``samsde.minibatch``); ``minibatch_mean`` may give its drift term in closed form and
  ``minibatch_linear_root`` a noise-free root of its diffusion.
- Torch optimizer: ``torch_optimizer(params, base, rho, **kwargs)`` wraps a base optimizer (``samsde.optim``).

A new algorithm subclasses :class:`Algorithm` and is registered with :func:`samsde.algorithms.register`; nothing
else in the package names algorithms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor

if TYPE_CHECKING:  # the SDE model and its point are only passed through here
    from samsde.sde import Point, SDEModel


class Algorithm:
    """One SAM-type method.  Subclasses set the class attributes and override the methods they change."""

    name: ClassVar[str]
    label: ClassVar[str]  # for figures and claims, e.g. "USAM"
    color: ClassVar[str] = "#666666"  # its colour in every figure
    #: the SDE needs the moments E[u] and Cov(Z, u) of the normalized noisy gradient (SAM)
    needs_inner_moments: ClassVar[bool] = False
    #: the matrix-free first-order diffusion needs isotropic noise Sigma = sigma^2 I
    first_order_needs_isotropic: ClassVar[bool] = False

    @property
    def perturbs(self) -> bool:
        """Whether the algorithm takes an ascent step (every algorithm but SGD)."""
        return type(self).perturbation is not Algorithm.perturbation

    def perturbation(self, g: Tensor, full_grad: Callable[[], Tensor], rho: float) -> Tensor | None:
        """The ascent perturbation e of x + e for rho > 0 (None: no ascent step)."""
        return None

    def drift(self, model: SDEModel, p: Point) -> Tensor:
        raise NotImplementedError

    def diffusion(self, model: SDEModel, p: Point, dw: Tensor) -> Tensor:
        """B(X) dW without the factor sqrt(eta), to first order in rho."""
        raise NotImplementedError

    def diffusion_matrix(self, model: SDEModel, p: Point, sigma: Tensor) -> Tensor:
        """B B^T at the point, (M, d, d), given Sigma (the ``exact`` mode's eigendecomposition takes its root)."""
        raise NotImplementedError

    def minibatch_mean(self, model: SDEModel, p: Point) -> Tensor | None:
        """m = E[H_gamma v_gamma] of the mini-batch SDE in closed form, or None: the inner sample's mean
        (``samsde.minibatch``; rho v_gamma is this algorithm's perturbation at the batch gradient)."""
        return None

    @property
    def has_minibatch_mean(self) -> bool:
        return type(self).minibatch_mean is not Algorithm.minibatch_mean

    def minibatch_linear_root(self, model: SDEModel, p: Point, c: Tensor) -> tuple[Tensor, Tensor] | None:
        """(S xi, D_lin^T xi) of the mini-batch SDE's ``linear`` diffusion for centred weights c = xi - mean(xi)
        (M, N), or None: no noise-free linear root.  D_lin^T xi is the root of the part of h_gamma - m linear in
        the batch weights, this algorithm's factor included (at rho = 1); the diffusion is S xi + rho D_lin^T xi
        (``samsde.minibatch.linear_root``)."""
        return None

    @property
    def has_minibatch_linear_root(self) -> bool:
        return type(self).minibatch_linear_root is not Algorithm.minibatch_linear_root

    def torch_optimizer(self, params, base: Callable[..., torch.optim.Optimizer], rho: float, **kwargs):
        """The algorithm around a base torch optimizer (``lr``, ``momentum``, ... in kwargs)."""
        raise NotImplementedError(f"{self.name} has no torch optimizer")

    @property
    def has_torch_optimizer(self) -> bool:
        return type(self).torch_optimizer is not Algorithm.torch_optimizer

    @property
    def two_pass(self) -> bool:
        """Whether a torch training step takes two gradients (first_step / second_step) or one (step)."""
        return self.perturbs

    def __repr__(self) -> str:
        return f"<algorithm {self.name}>"


def safe_inverse_norm(v: Tensor) -> Tensor:
    """1/|v| per path as an (M, 1) column, with 0 where |v| = 0 (then the ascent direction is zero)."""
    norm = torch.linalg.vector_norm(v, dim=-1, keepdim=True)
    return torch.where(norm > 0, 1.0 / norm, torch.zeros_like(norm))


def sharpened(factor: Tensor | float, p: Point, n: Tensor) -> Tensor:
    """(I + factor H) n: first-order square root of Sigma + factor (H Sigma + Sigma H) applied to dW."""
    return n + factor * p.lin.hvp(n)


def symmetrized(h: Tensor, a: Tensor) -> Tensor:
    """H A + A^T H, batched; with A = Sigma (symmetric) this is H Sigma + Sigma H, with A = C^T it is C H + H C^T."""
    return h @ a + a.transpose(-1, -2) @ h


def dense_hessian(model: SDEModel, p: Point) -> Tensor:
    return model.task.hessian(p.x)
