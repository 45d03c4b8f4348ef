"""Bring your own model: any ``torch.nn.Module`` and data set as a finite-sum task, through ``torch.func``.

f(x) = (1/N) sum_i loss(model(inputs_i; x), targets_i) + (l2 / 2) |x|^2, where x in R^d is the model's parameters
flattened in ``named_parameters()`` order, in float64.  Every derivative is one ``torch.func`` transform of the
per-path loss, mapped over the M paths by ``vmap`` (each path is one parameter vector, put into the model by
``functional_call``):

- gradient: ``vmap(grad(f))``; Hessian-vector product: forward-over-reverse, ``vmap(jvp(grad(f)))``;
- sum_i w_i grad f_i (mini-batch noise): ``vmap(grad(sum_i w_i f_i))``, one weighted vector-Jacobian product per
  path, no per-sample gradient;
- sum_i c_i grad f_i with (sum_i c_i H_i) v (the mini-batch SDE's linear root): the same two routes on the
  weighted loss sum_i c_i f_i (``weighted_linearize``);
- sum_i H_i grad f_i (the mini-batch SDE's drift term): reverse-over-reverse on |grad f_i|^2 / 2, per sample, in
  chunks of samples so that at most ``curvature_rows`` per-sample gradients exist at once.

The model is evaluated in eval mode (dropout off, batch norm on its running statistics), so f is a deterministic
sum over samples; its buffers are constants.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, jacrev, jvp, vmap

from samsde.tasks.base import DTYPE, FiniteSum, Linearization


def _mse(outputs: Tensor, targets: Tensor) -> Tensor:
    """Per-sample mean squared error over the output's entries, (u - y)^2 averaged (no factor 1/2)."""
    targets = targets.reshape(outputs.shape) if targets.numel() == outputs.numel() else targets
    return (outputs - targets).pow(2).reshape(outputs.shape[0], -1).mean(1)


def _cross_entropy(outputs: Tensor, targets: Tensor) -> Tensor:
    """Softmax cross-entropy of logits (N, classes) against class indices (N,) or class probabilities."""
    return F.cross_entropy(outputs, targets, reduction="none")


def _bce(outputs: Tensor, targets: Tensor) -> Tensor:
    """Binary cross-entropy of logits (as ``torch.nn.BCEWithLogitsLoss``), per sample over its outputs."""
    outputs = outputs.reshape(outputs.shape[0], -1)
    targets = targets.reshape(outputs.shape).to(outputs.dtype)
    return F.binary_cross_entropy_with_logits(outputs, targets, reduction="none").mean(1)


#: the loss names of the contract: per-sample losses (outputs, targets) -> (N,)
LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"mse": _mse, "cross_entropy": _cross_entropy, "bce": _bce}


class ModuleTask(FiniteSum):
    """A user's ``nn.Module`` on a data set as a :class:`FiniteSum`, every derivative by ``torch.func`` (module
    docstring).  Build it with :func:`from_module`; the initial point of every run is the model's parameters."""

    #: how Hessian-vector products are taken (see :class:`FuncLinearization`): "reverse" or "forward"
    hvp_mode: str = "reverse"
    #: (path, sample) pairs per chunk of :meth:`half_grad_of_sample_sq_norms` (each holds a d-vector and its graph)
    curvature_rows: int = 2**14

    def __init__(self, model: nn.Module, inputs: Tensor, targets: Tensor, loss: Callable, l2: float, name: str):
        self.name = name
        self.model = model
        self.inputs, self.targets = inputs, targets
        self.per_sample = loss
        self.l2 = float(l2)
        self.param_names = [n for n, _ in model.named_parameters()]
        self.param_shapes = [p.shape for _, p in model.named_parameters()]
        self.param_sizes = [p.numel() for _, p in model.named_parameters()]
        self.x0 = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).to(DTYPE)
        self.buffers = {n: b.detach() for n, b in model.named_buffers()}
        self.dim = self.x0.numel()
        self.n_data = inputs.shape[0]

    # ---- one path: x is (d,)
    def _params(self, x: Tensor) -> dict[str, Tensor]:
        parts = torch.split(x, self.param_sizes)
        return {n: p.view(s) for n, p, s in zip(self.param_names, parts, self.param_shapes, strict=True)}

    def _losses(self, x: Tensor, inputs: Tensor, targets: Tensor) -> Tensor:
        """Per-sample losses (n,) of one parameter vector on ``inputs`` (n, ...)."""
        outputs = functional_call(self.model, (self._params(x), self.buffers), (inputs,))
        return self.per_sample(outputs, targets)

    def _objective(self, x: Tensor, inputs: Tensor, targets: Tensor) -> Tensor:
        return self._losses(x, inputs, targets).mean() + 0.5 * self.l2 * (x * x).sum()

    def _weighted(self, x: Tensor, weights: Tensor) -> Tensor:
        return (self._losses(x, self.inputs, self.targets) * weights).sum()

    def _half_sq_norm(self, x: Tensor, one_input: Tensor, one_target: Tensor) -> Tensor:
        """|grad l_i(x)|^2 / 2 of one sample (its inputs without the sample axis)."""
        g = grad(lambda y: self._losses(y, one_input.unsqueeze(0), one_target.unsqueeze(0)).sum())(x)
        return 0.5 * (g * g).sum()

    # ---- the Task interface: x is (M, d)
    def _data(self, batch: Tensor | None):
        """The data as vmap arguments: shared (in_dims None) on the full set, per path (M, B, ...) on batches."""
        if batch is None:
            return (self.inputs, self.targets), (0, None, None)
        return (self.inputs[batch], self.targets[batch]), (0, 0, 0)

    def per_sample_loss(self, x: Tensor, idx: Tensor | None = None) -> Tensor:
        data, dims = self._data(idx)
        return vmap(self._losses, in_dims=dims)(x, *data)

    def grad(self, x: Tensor, batch: Tensor | None = None) -> Tensor:
        data, dims = self._data(batch)
        return vmap(grad(self._objective), in_dims=dims)(x, *data)

    def linearize(self, x: Tensor) -> Linearization:
        return FuncLinearization(self, x, None)

    def batch_linearize(self, x: Tensor, batch: Tensor) -> Linearization:
        return FuncLinearization(self, x, batch)

    def weighted_sample_grad(self, x: Tensor, weights: Tensor) -> Tensor:
        return vmap(grad(self._weighted))(x, weights)

    def weighted_linearize(self, x: Tensor, weights: Tensor) -> Linearization:
        return FuncLinearization(self, x, None, weights)

    def half_grad_of_sample_sq_norms(self, x: Tensor) -> Tensor:
        m = x.shape[0]
        per_chunk = max(1, self.curvature_rows // m)
        one = grad(self._half_sq_norm)  # H_i grad l_i of one (path, sample) pair
        per_path = vmap(vmap(one, in_dims=(None, 0, 0)), in_dims=(0, None, None))  # (M, n_c, d)
        out = torch.zeros_like(x)
        for start in range(0, self.n_data, per_chunk):
            chunk = slice(start, start + per_chunk)
            out += per_path(x, self.inputs[chunk], self.targets[chunk]).sum(1)
        return out

    def per_sample_grads(self, x: Tensor) -> Tensor:
        return vmap(jacrev(self._losses), in_dims=(0, None, None))(x, self.inputs, self.targets)

    def initial_point(self, generator: torch.Generator) -> Tensor:
        """The model's parameters as given (the generator is not used: the user chose the initial point)."""
        return self.x0.clone()

    def to(self, device: torch.device | str) -> ModuleTask:
        out = copy.copy(self)
        out.model = copy.deepcopy(self.model).to(device)
        for name in ("inputs", "targets", "x0"):
            setattr(out, name, getattr(self, name).to(device))
        out.buffers = {n: b.to(device) for n, b in self.buffers.items()}
        out.device = torch.device(device)
        return out


class FuncLinearization(Linearization):
    """The gradient at x, ``vmap(grad(f))``, and Hessian-vector products on the full data (``batch=None``), on
    per-path batches ``batch: (M, B)`` or of the weighted sum sum_i c_i f_i (``weights``: (M, N)), by one of two
    routes (``ModuleTask.hvp_mode``):

    - ``"reverse"`` (default): the vmapped gradient is computed with autograd recording it, and each H v is one
      backward pass through that graph (reverse-over-reverse); the gradient's forward pass is shared by every H v.
    - ``"forward"``: each H v is ``jvp`` of the gradient (forward-over-reverse), a fresh pass per product.

    Both are exact; on breast_cancer's architecture at M = 500 the reverse route measured 2.4-3.3x faster for the
    gradient plus one H v (``benchmarks/bench_user_model.py``): PyTorch's forward-mode rules of the activations'
    backward (sigmoid_backward) are unfused chains of elementwise products."""

    def __init__(self, task: ModuleTask, x: Tensor, batch: Tensor | None, weights: Tensor | None = None):
        # with per-path weights c (M, N): the linearization of sum_i c_i l_i (no L2 term) on the full data
        if weights is None:
            self._data, dims = task._data(batch)
            gradient = grad(task._objective)
        else:
            self._data, dims = (weights,), (0, 0)
            gradient = grad(task._weighted)
        self._mode = task.hvp_mode
        if self._mode == "reverse":
            with torch.enable_grad():
                self._x = x.detach().requires_grad_(True)
                self._g = vmap(gradient, in_dims=dims)(self._x, *self._data)
            self.grad = self._g.detach()
            return

        def tangent(x1: Tensor, v1: Tensor, *data) -> Tensor:
            return jvp(lambda y: gradient(y, *data), (x1,), (v1,))[1]

        self._x = x
        self._hvp = vmap(tangent, in_dims=(0, 0, *dims[1:]))
        self.grad = vmap(gradient, in_dims=dims)(x, *self._data)

    def hvp(self, v: Tensor) -> Tensor:
        if self._mode == "reverse":
            with torch.enable_grad():
                (hv,) = torch.autograd.grad(self._g, self._x, grad_outputs=v, retain_graph=True)
            return hv
        return self._hvp(self._x, v, *self._data)


def resolve_loss(loss) -> Callable[[Tensor, Tensor], Tensor]:
    """A loss of the contract: one of the names in :data:`LOSSES` or a callable (outputs, targets) -> (N,)."""
    if callable(loss):
        return loss
    if isinstance(loss, str) and loss in LOSSES:
        return LOSSES[loss]
    raise ValueError(f"unknown loss {loss!r}: use one of {sorted(LOSSES)} or a callable (outputs, targets) -> (N,)")


def from_module(
    model: nn.Module, inputs: Tensor, targets: Tensor, loss, l2: float = 0.0, name: str = "user"
) -> ModuleTask:
    """The task f(x) = mean_i loss_i(x) + (l2 / 2) |x|^2 of ``model`` on (``inputs``, ``targets``).

    ``loss`` is ``"mse"``, ``"cross_entropy"``, ``"bce"`` (on logits) or a callable (outputs, targets) -> per-sample
    losses (N,).  The model is copied (in float64, eval mode): the caller's model is left as it was.  Bad input
    raises a ValueError that says what is wrong."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    params = list(model.named_parameters())
    if not params:
        raise ValueError(f"the model ({type(model).__name__}) has no parameters")
    bad = [n for n, p in params if not p.is_floating_point()]
    if bad:
        raise ValueError(f"the model's parameters {bad} are not floating point")
    for label, value in (("inputs", inputs), ("targets", targets)):
        if not isinstance(value, Tensor):
            raise ValueError(f"{label} must be a torch.Tensor, got {type(value).__name__}")
        if value.dim() == 0:
            raise ValueError(f"{label} must have a first (sample) dimension, got a scalar")
    if inputs.shape[0] != targets.shape[0]:
        raise ValueError(f"inputs and targets have different lengths: {inputs.shape[0]} and {targets.shape[0]}")
    if inputs.shape[0] < 1:
        raise ValueError("inputs hold no samples")
    if not isinstance(l2, int | float) or isinstance(l2, bool) or not float(l2) >= 0 or l2 == float("inf"):
        raise ValueError(f"l2 must be a finite number >= 0, got {l2!r}")
    per_sample = resolve_loss(loss)
    model = copy.deepcopy(model).to(DTYPE).eval()
    inputs = inputs.to(DTYPE) if inputs.is_floating_point() else inputs
    targets = targets.to(DTYPE) if targets.is_floating_point() else targets
    task = ModuleTask(model, inputs.detach(), targets.detach(), per_sample, l2, name)
    try:
        with torch.no_grad():
            values = task._losses(task.x0, task.inputs, task.targets)
    except Exception as err:  # the user's model or loss failed on the data: say where
        raise ValueError(f"the model or loss failed on the data: {type(err).__name__}: {err}") from None
    if not isinstance(values, Tensor) or values.shape != (task.n_data,):
        shape = tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__
        raise ValueError(f"the loss must return per-sample losses of shape ({task.n_data},), got {shape}")
    if not torch.isfinite(values).all():
        raise ValueError("the loss is not finite at the model's initial parameters")
    return task
