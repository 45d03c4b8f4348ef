"""The task interface: an objective f: R^d -> R batched over M paths, and its linearizations.

A task works on a parameter tensor ``x`` of shape ``(M, d)`` (one row per Monte Carlo path) and returns per-path
quantities: ``loss(x) -> (M,)``, ``grad(x) -> (M, d)``, ``hvp(x, v) -> (M, d)`` and, for small d,
``hessian(x) -> (M, d, d)``.  Because the M rows never interact, the gradient of ``loss(x).sum()`` with respect to
``x`` is the stack of per-path gradients: one autograd call serves every path.  A :class:`FiniteSum` is
f(x) = (1/N) sum_i f_i(x) + (l2/2) ||x||^2 and also exposes ``per_sample_loss(x, batch)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from samsde.device import moved

DTYPE = torch.float64


class Task:
    """A smooth objective, batched over paths.  Subclasses implement :meth:`loss` (and may override the rest)."""

    name: str = "task"
    dim: int
    n_data: int | None = None
    device: torch.device = torch.device("cpu")

    def to(self, device: torch.device | str) -> Task:
        """A shallow copy of the task with every tensor attribute on ``device`` (see :mod:`samsde.device`).

        A task whose attributes include caches tied to a device overrides this and drops them from the copy.
        """
        return moved(self, device)

    def loss(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def grad(self, x: Tensor, batch: Tensor | None = None) -> Tensor:
        """Gradient of the full loss (``batch=None``) or of a per-path mini-batch loss ``batch: (M, B)``."""
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            value = self.loss(xg) if batch is None else self.batch_loss(xg, batch)
            (g,) = torch.autograd.grad(value.sum(), xg)
        return g

    def linearize(self, x: Tensor) -> Linearization:
        """Gradient at x plus a handle for any number of Hessian-vector products from the same forward pass."""
        return AutogradLinearization(self, x)

    def hvp(self, x: Tensor, v: Tensor) -> Tensor:
        """Hessian-vector product H(x) v per path, by double backward (no d x d matrix)."""
        return self.linearize(x).hvp(v)

    #: at most this many Hessian-vector products per batched call of :meth:`hessian`: each is a path of its own,
    #: and a network's linearization keeps O(N h) numbers per path (11 GiB for all of d = 5121 at once)
    hessian_batch: int = 256

    def hessian(self, x: Tensor) -> Tensor:
        """Dense Hessian ``(M, d, d)`` from d Hessian-vector products per path (row j = H e_j, H symmetric),
        batched in calls of at most ``hessian_batch`` products (dense: small d only)."""
        m, d = x.shape
        out = torch.empty(m, d, d, dtype=x.dtype, device=x.device)
        eye = torch.eye(d, dtype=x.dtype, device=x.device)
        cols = max(1, self.hessian_batch // m)  # directions per call
        for start in range(0, d, cols):
            stop = min(start + cols, d)
            basis = eye[start:stop].repeat(m, 1)  # (m (stop - start), d): path i's directions, in order
            out[:, start:stop] = self.hvp(x.repeat_interleave(stop - start, dim=0), basis).view(m, stop - start, d)
        return out

    def batch_loss(self, x: Tensor, batch: Tensor) -> Tensor:
        raise ValueError(f"task {self.name!r} is not a finite sum: mini-batch noise needs a data task")

    def initial_point(self, generator: torch.Generator) -> Tensor:
        """One initial point ``(d,)``, shared by all paths of a run."""
        return torch.randn(self.dim, generator=generator, dtype=DTYPE)


class Linearization:
    """First- and second-order information at a point: ``grad`` (M, d) and ``hvp(v)`` (M, d) -> (M, d)."""

    grad: Tensor

    def hvp(self, v: Tensor) -> Tensor:
        raise NotImplementedError


class AutogradLinearization(Linearization):
    """Keeps the graph of the gradient so that each H v costs one backward pass, not a new forward pass."""

    def __init__(self, task: Task, x: Tensor):
        with torch.enable_grad():
            self._x = x.detach().requires_grad_(True)
            (self._g,) = torch.autograd.grad(task.loss(self._x).sum(), self._x, create_graph=True)
        self.grad = self._g.detach()

    def hvp(self, v: Tensor) -> Tensor:
        with torch.enable_grad():
            (hv,) = torch.autograd.grad(self._g, self._x, grad_outputs=v, retain_graph=True)
        return hv


class ConstantHessian(Linearization):
    """Exact linearization of a quadratic: H v is one matrix product."""

    def __init__(self, grad: Tensor, hessian: Tensor):
        self.grad = grad
        self._h = hessian

    def hvp(self, v: Tensor) -> Tensor:
        return v @ self._h


class FiniteSum(Task):
    """f(x) = (1/N) sum_i f_i(x) + (l2/2) |x|^2; subclasses implement ``per_sample_loss(x, idx) -> (M, B)``."""

    l2: float = 0.0

    def per_sample_loss(self, x: Tensor, idx: Tensor | None = None) -> Tensor:
        """Losses f_i(x) without the L2 term; ``idx`` is ``None`` (all N samples) or ``(M, B)`` per-path indices."""
        raise NotImplementedError

    def regularizer(self, x: Tensor) -> Tensor:
        return 0.5 * self.l2 * (x * x).sum(-1)

    def loss(self, x: Tensor) -> Tensor:
        return self.per_sample_loss(x).mean(-1) + self.regularizer(x)

    def batch_loss(self, x: Tensor, batch: Tensor) -> Tensor:
        return self.per_sample_loss(x, batch).mean(-1) + self.regularizer(x)

    def weighted_sample_grad(self, x: Tensor, weights: Tensor) -> Tensor:
        """sum_i w_i grad f_i(x) per path (``weights``: (M, N)), one backward pass: a vector-Jacobian product."""
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad((self.per_sample_loss(xg) * weights).sum(), xg)
        return g

    def per_sample_grads(self, x: Tensor) -> Tensor:
        """All per-sample gradients ``(M, N, d)`` (without the L2 term); memory M N d, for small problems only."""
        n = self.n_data
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            losses = self.per_sample_loss(xg)
            onehots = torch.eye(n, dtype=x.dtype, device=x.device).unsqueeze(1).expand(n, x.shape[0], n)
            (jac,) = torch.autograd.grad(losses, xg, grad_outputs=onehots, is_grads_batched=True)
        return jac.transpose(0, 1)
