"""The task interface: an objective f: R^d -> R batched over M paths, and its linearizations.

A task works on a parameter tensor ``x`` of shape ``(M, d)`` (one row per Monte Carlo path) and returns per-path
quantities: ``loss(x) -> (M,)``, ``grad(x) -> (M, d)``, ``hvp(x, v) -> (M, d)`` and, for small d,
``hessian(x) -> (M, d, d)``.  Because the M rows never interact, the gradient of ``loss(x).sum()`` with respect to
``x`` is the stack of per-path gradients: one autograd call serves every path.  A :class:`FiniteSum` is
f(x) = (1/N) sum_i f_i(x) + (l2/2) ||x||^2 and also exposes ``per_sample_loss(x, batch)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from samsde.device import moved

DTYPE = torch.float64


@dataclass(frozen=True)
class Bound:
    """The least value a constructor parameter can run with: an integer >= ``least`` (``integer``), else a finite
    real number >= ``least`` (> ``least`` when ``strict``); ``why`` says what a smaller value breaks."""

    least: float
    why: str
    integer: bool = False
    strict: bool = False

    def error(self, value: object) -> str | None:
        """None when ``value`` is within the bound, else what is wrong with it."""
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if self.integer:
            if not (isinstance(value, int) and not isinstance(value, bool)) or value < self.least:
                return f"must be an integer >= {self.least:g} ({self.why})"
            return None
        if not is_number or not math.isfinite(value) or value < self.least or (self.strict and value == self.least):
            return f"must be a finite number {'>' if self.strict else '>='} {self.least:g} ({self.why})"
        return None


def param_errors(task_class: type[Task], params: dict) -> dict[str, str]:
    """{parameter: what is wrong} for the parameters of ``params`` outside the task's ``param_bounds``."""
    bounds = getattr(task_class, "param_bounds", {})
    found = {k: bounds[k].error(v) for k, v in params.items() if k in bounds and v is not None}
    return {k: message for k, message in found.items() if message}


def check_params(task_class: type[Task], **params) -> None:
    """Raise a ValueError naming every parameter outside the task's ``param_bounds`` (its constructor's check)."""
    errors = param_errors(task_class, params)
    if errors:
        detail = "; ".join(f"{k} = {params[k]!r} {message}" for k, message in errors.items())
        raise ValueError(f"{task_class.name}: {detail}")


class Task:
    """A smooth objective, batched over paths.  Subclasses implement :meth:`loss` (and may override the rest)."""

    name: str = "task"
    dim: int
    n_data: int | None = None
    device: torch.device = torch.device("cpu")
    #: alternative forms of the constructor's parameters, one tuple of keys each: a config file that gives a key
    #: of one form replaces the defaults' other forms (:func:`samsde_workflow.config.resolve_config`)
    param_forms: tuple[tuple[str, ...], ...] = ()
    #: the least value of each size and scale parameter of the constructor, which checks them
    #: (:func:`check_params`); the config checks name a key outside its bound before any job starts
    param_bounds: dict[str, Bound] = {}

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
    """Keeps the graph of the gradient so that each H v costs one backward pass, not a new forward pass.

    ``loss`` is the per-path objective to linearize (default: the task's full loss; a mini-batch loss for
    :meth:`FiniteSum.batch_linearize`)."""

    def __init__(self, task: Task, x: Tensor, loss: Callable[[Tensor], Tensor] | None = None):
        loss = task.loss if loss is None else loss
        with torch.enable_grad():
            self._x = x.detach().requires_grad_(True)
            (self._g,) = torch.autograd.grad(loss(self._x).sum(), self._x, create_graph=True)
        self.grad = self._g.detach()

    def hvp(self, v: Tensor) -> Tensor:
        with torch.enable_grad():
            (hv,) = torch.autograd.grad(self._g, self._x, grad_outputs=v, retain_graph=True)
        return hv


class GradientOnly(Linearization):
    """The gradient at a point and nothing else: for a model whose coefficients need no full-batch H v."""

    def __init__(self, grad: Tensor):
        self.grad = grad

    def hvp(self, v: Tensor) -> Tensor:
        raise RuntimeError("this point holds the gradient only (the model asked for no Hessian-vector product)")


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

    def weighted_linearize(self, x: Tensor, weights: Tensor) -> Linearization:
        """The linearization of sum_i c_i l_i(x) per path (``weights`` c: (M, N); l_i = f_i without the L2 term):
        ``grad`` = sum_i c_i grad l_i and ``hvp(v)`` = (sum_i c_i H(l_i)) v.  Generic: autograd on the weighted
        per-sample losses, one forward pass for the gradient and every product (the networks: closed form)."""
        return AutogradLinearization(self, x, loss=lambda y: (self.per_sample_loss(y) * weights).sum(-1))

    def batch_linearize(self, x: Tensor, batch: Tensor) -> Linearization:
        """grad f_gamma and H_gamma v per path for per-path batches ``batch: (M, B)`` (the L2 term included), from
        one forward pass: the batch gradient and any number of batch Hessian-vector products."""
        return AutogradLinearization(self, x, loss=lambda y: self.batch_loss(y, batch))

    #: (path, sample) rows per chunk of the generic :meth:`half_grad_of_sample_sq_norms`: each row holds d numbers
    #: and a graph of the per-sample gradient, so a chunk is about ``curvature_rows * d`` numbers times a few
    curvature_rows: int = 2**15

    def half_grad_of_sample_sq_norms(self, x: Tensor) -> Tensor:
        """(1/2) grad_x sum_i |grad l_i(x)|^2 = sum_i H(l_i) grad l_i per path, (M, d) (l_i = f_i without L2).

        Generic: the pairs (path m, sample i) are independent rows, so one backward pass of the rows' losses gives
        every per-sample gradient (as rows, with their graph), and a second one the gradient of their squared
        norms.  Chunks of samples bound the memory to ``curvature_rows`` rows: no (M, N, d) tensor.  A task with
        structure overrides it (the networks: from the per-sample output and hidden errors, in closed form)."""
        m, d = x.shape
        per_chunk = max(1, self.curvature_rows // m)
        out = torch.zeros_like(x)
        with torch.enable_grad():
            for start in range(0, self.n_data, per_chunk):
                samples = torch.arange(start, min(start + per_chunk, self.n_data), device=x.device)
                n_c = samples.numel()
                rows = x.detach().repeat_interleave(n_c, dim=0).requires_grad_(True)  # row m n_c + j: path m
                idx = samples.repeat(m).unsqueeze(1)
                (g,) = torch.autograd.grad(self.per_sample_loss(rows, idx).sum(), rows, create_graph=True)
                (hg,) = torch.autograd.grad(0.5 * (g * g).sum(), rows)
                out += hg.view(m, n_c, d).sum(1)
        return out

    def sample_curvature(self, x: Tensor, lin: Linearization) -> Tensor:
        """sum_i H_i c_i per path, (M, d), with c_i = grad f_i - grad f and H_i the Hessian of f_i (docs/concepts.md,
        section 8; the L2 term of f_i drops out because sum_i c_i = 0).

        With gbar = (1/N) sum_i grad l_i = grad f - l2 x and Hbar = H - l2 I:
            sum_i H_i c_i = sum_i H(l_i) grad l_i - N Hbar gbar
                          = half_grad_of_sample_sq_norms(x) - N (H gbar - l2 gbar),
        one pass over the samples and one full Hessian-vector product (``lin`` is the full linearization at x)."""
        gbar = lin.grad - self.l2 * x
        return self.half_grad_of_sample_sq_norms(x) - self.n_data * (lin.hvp(gbar) - self.l2 * gbar)

    def curvature_mean(self, x: Tensor, lin: Linearization, k: float) -> Tensor:
        """H grad f + k sum_i H_i c_i per path, (M, d): E[H_gamma g_gamma] of a mini-batch at k = kappa/N
        (samsde.minibatch.batch_curvature_mean; ``lin`` is the full linearization at x).  Generic: one product
        H grad f and :meth:`sample_curvature`; a task with structure overrides it (the networks: one fused pass)."""
        return lin.hvp(lin.grad) + k * self.sample_curvature(x, lin)

    def per_sample_grads(self, x: Tensor) -> Tensor:
        """All per-sample gradients ``(M, N, d)`` (without the L2 term); memory M N d, for small problems only."""
        n = self.n_data
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            losses = self.per_sample_loss(xg)
            onehots = torch.eye(n, dtype=x.dtype, device=x.device).unsqueeze(1).expand(n, x.shape[0], n)
            (jac,) = torch.autograd.grad(losses, xg, grad_outputs=onehots, is_grads_batched=True)
        return jac.transpose(0, 1)
