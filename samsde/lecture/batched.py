"""Many seeds of one training run as ONE batched model: every seed's MLP stacked along a leading seed axis.

S runs of :func:`samsde.lecture.training.train` (same method and hyper-parameters, each seed with its own init and
batch order) advance together: layer l holds weights W_l (S, out, in) and biases b_l (S, 1, out), a step's forward
pass is one batched matrix product per layer on the seeds' own batches X (S, B, in), and the loss summed over seeds
has the seeds' own gradients as its gradient (the seeds never interact).  The updates are those of the one-seed loop:

    SGD (torch.optim.SGD, dampening 0):  d = g + wd w;  m = d (first step) or mu m + d;  w <- w - lr m
    SAM:   g at w, e = rho_s g / |g|_s (|g|_s the norm of seed s's whole gradient; e = 0 where it is 0), then
           the base step with the gradient at w + e
    USAM:  e = rho_s g

so a batched run equals the S one-seed runs to rounding (``tests/test_lecture_batched.py``).  ``rho`` may differ
per seed (a rho sweep is one batched model too).

:func:`full_batch_steps` is the deterministic variant: full-batch SAM (rho_s > 0) or gradient descent (rho_s = 0) on
the objective L_s(w) = mean cross-entropy + (l2 / 2) |w_s|^2, the L2 term inside the loss, so SAM's ascent direction
is the gradient of the whole objective (as for :func:`samsde.algorithms.discrete_step` on a task with L2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from samsde.algorithms import get
from samsde.lecture.data import Dataset
from samsde.lecture.network import ACTIVATIONS, MLP
from samsde.lecture.training import TrainResult


class SeedStack:
    """S networks of one :class:`MLP` architecture as stacked parameters (layer by layer: weight, bias)."""

    def __init__(self, weights: list[Tensor], biases: list[Tensor], activation: str):
        self.weights, self.biases = weights, biases
        self.activation = ACTIVATIONS[activation]()  # the module make_mlp puts between layers

    @classmethod
    def build(cls, mlp: MLP, data: Dataset, generators: list[torch.Generator]) -> SeedStack:
        """One network per generator, initialised exactly as ``mlp.build(data, generator)`` would."""
        linears = [[m for m in mlp.build(data, g) if isinstance(m, nn.Linear)] for g in generators]
        layers = range(len(linears[0]))
        weights = [torch.stack([seed[i].weight.detach() for seed in linears]) for i in layers]
        biases = [torch.stack([seed[i].bias.detach() for seed in linears]).unsqueeze(1) for i in layers]
        return cls(weights, biases, mlp.activation)

    @property
    def params(self) -> list[Tensor]:
        return [p for pair in zip(self.weights, self.biases, strict=True) for p in pair]

    @property
    def n_seeds(self) -> int:
        return self.weights[0].shape[0]

    def logits(self, x: Tensor) -> Tensor:
        """Outputs (S, n, classes) of the seeds on their own inputs ``x`` (S, n, in) or on shared inputs (n, in)."""
        h = x if x.dim() == 3 else x.expand(self.n_seeds, *x.shape)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b, h, w.transpose(1, 2))
            if i < last:
                h = self.activation(h)
        return h

    def losses(self, x: Tensor, y: Tensor) -> Tensor:
        """Mean cross-entropy per seed (S,); ``y`` is (S, n) or shared (n,)."""
        return _cross_entropy(self.logits(x), y)

    @torch.no_grad()
    def evaluate(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Mean cross-entropy and accuracy per seed (S,) on shared data, full batch (one forward pass)."""
        logits = self.logits(x)
        return _cross_entropy(logits, y), (logits.argmax(-1) == y).double().mean(-1)

    def models(self, mlp: MLP, data: Dataset) -> list[nn.Sequential]:
        """The seeds as separate ``torch.nn`` models (for the measurements taken at a solution)."""
        out = []
        for s in range(self.n_seeds):
            model = mlp.build(data, torch.Generator().manual_seed(0))
            linears = [m for m in model if isinstance(m, nn.Linear)]
            with torch.no_grad():
                for layer, w, b in zip(linears, self.weights, self.biases, strict=True):
                    layer.weight.copy_(w[s])
                    layer.bias.copy_(b[s, 0])
            out.append(model)
        return out

    def _grads(self, x: Tensor, y: Tensor) -> list[Tensor]:
        params = [p.detach().requires_grad_(True) for p in self.params]
        self._set(params)
        with torch.enable_grad():
            grads = torch.autograd.grad(self.losses(x, y).sum(), params)
        self._set([p.detach() for p in params])
        return list(grads)

    def _set(self, params: list[Tensor]) -> None:
        self.weights, self.biases = params[0::2], params[1::2]


def _cross_entropy(logits: Tensor, y: Tensor) -> Tensor:
    """Mean cross-entropy per seed of logits (S, n, classes) against labels (S, n) or shared (n,)."""
    s, n, c = logits.shape
    y = y if y.dim() == 2 else y.expand(s, n)
    return F.cross_entropy(logits.reshape(s * n, c), y.reshape(s * n), reduction="none").view(s, n).mean(1)


def _per_seed(value, n_seeds: int, like: Tensor) -> Tensor:
    """A float or one float per seed as an (S,) tensor of the data's dtype (Python floats keep their precision)."""
    out = torch.as_tensor(value, dtype=like.dtype)
    out = out.expand(n_seeds).clone() if out.dim() == 0 else out
    if out.shape != (n_seeds,):
        raise ValueError(f"rho: one value or one per seed ({n_seeds}), got shape {tuple(out.shape)}")
    return out


def train_seeds(
    stack: SeedStack,
    data: Dataset,
    *,
    method: str | Sequence[str],
    lr: float,
    batch_size: int,
    generators: list[torch.Generator],
    max_epochs: int,
    max_steps: int | None = None,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    rho: float | Sequence[float] = 0.0,
) -> list[TrainResult]:
    """Train every member of ``stack`` in place, as :func:`samsde.lecture.training.train` trains one model: per
    epoch each member draws a permutation from its own generator and takes ``n // batch_size`` updates on disjoint
    batches, for ``max_epochs`` epochs or until ``max_steps`` updates; both gradients of a SAM/USAM update use the
    same batch.  ``method`` and ``rho``: one for all members
    or one per member (so SGD, SAM and USAM arms, or a rho sweep, train as one model; SGD's rho is 0).  A
    non-finite training loss of any member raises ``FloatingPointError`` naming the members."""
    x, y = data.x_train, data.y_train
    n, s = x.shape[0], stack.n_seeds
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be in [1, {n}], got {batch_size}")
    if len(generators) != s:
        raise ValueError(f"{len(generators)} batch generators for {s} seeds")
    methods = [method] * s if isinstance(method, str) else list(method)
    if len(methods) != s:
        raise ValueError(f"{len(methods)} methods for {s} members")
    algorithms = [get(m) for m in methods]
    rho = torch.where(torch.tensor([a.two_pass for a in algorithms]), _per_seed(rho, s, x), 0.0)
    normalized = torch.tensor([a.name != "usam" for a in algorithms])
    label = methods[0] if len(set(methods)) == 1 else "/".join(dict.fromkeys(methods))
    per_epoch = n // batch_size
    buffers: list[Tensor] | None = None
    steps, epoch = 0, 0
    while epoch < max_epochs and (max_steps is None or steps < max_steps):
        epoch += 1
        perms = torch.stack([torch.randperm(n, generator=g) for g in generators])  # (S, n): each seed's own order
        for b in range(per_epoch):
            idx = perms[:, b * batch_size : (b + 1) * batch_size]
            xb, yb = x[idx], y[idx]
            grads = stack._grads(xb, yb)
            if bool((rho > 0).any()):
                grads = _perturbed_grads(stack, grads, xb, yb, rho, normalized)
            buffers = _sgd_step(stack, grads, buffers, lr, momentum, weight_decay)
            steps += 1
            if max_steps is not None and steps >= max_steps:
                break
        loss, _ = stack.evaluate(x, y)
        bad = [i for i in range(s) if not math.isfinite(loss[i].item())]
        if bad:
            raise FloatingPointError(f"training diverged for members {bad} after {steps} updates ({label}, lr={lr})")
    return [TrainResult(steps, epoch, False, loss[i].item()) for i in range(s)]


def objective(stack: SeedStack, x: Tensor, y: Tensor, l2: float) -> Tensor:
    """Per seed (S,): mean cross-entropy on shared data plus ``(l2 / 2) |w_s|^2`` over all of seed s's parameters."""
    squares = torch.stack([p.reshape(p.shape[0], -1).square().sum(1) for p in stack.params]).sum(0)
    return stack.losses(x, y) + 0.5 * l2 * squares


def _objective_grads(stack: SeedStack, x: Tensor, y: Tensor, l2: float) -> list[Tensor]:
    params = [p.detach().requires_grad_(True) for p in stack.params]
    stack._set(params)
    with torch.enable_grad():
        grads = torch.autograd.grad(objective(stack, x, y, l2).sum(), params)
    stack._set([p.detach() for p in params])
    return list(grads)


def full_batch_steps(
    stack: SeedStack, x: Tensor, y: Tensor, *, lr: float, rho: float | Sequence[float], l2: float, n_steps: int
) -> None:
    """``n_steps`` full-batch updates of every member in place: g = grad L_s(w) (:func:`objective`), then
    SAM ``w <- w - lr grad L_s(w + rho_s g / |g|_s)`` where rho_s > 0 (e = 0 where g = 0), gradient descent
    ``w <- w - lr g`` where rho_s = 0.  Deterministic; a member that diverges turns non-finite without touching the
    others (the seeds never interact), so the caller records it."""
    s = stack.n_seeds
    rho = _per_seed(rho, s, x)
    sam = rho > 0
    for _ in range(n_steps):
        grads = _objective_grads(stack, x, y, l2)
        if bool(sam.any()):
            saved = stack.params
            norms = torch.stack([g.reshape(s, -1).norm(dim=1) for g in grads]).norm(dim=0)
            scale = torch.where(sam & (norms > 0), rho / torch.where(norms > 0, norms, 1.0), 0.0)
            stack._set([p + scale.view(-1, *[1] * (p.dim() - 1)) * g for p, g in zip(saved, grads, strict=True)])
            ascent = _objective_grads(stack, x, y, l2)
            stack._set(saved)
            grads = [torch.where(sam.view(-1, *[1] * (g.dim() - 1)), a, g) for a, g in zip(ascent, grads, strict=True)]
        stack._set([p - lr * g for p, g in zip(stack.params, grads, strict=True)])


def _perturbed_grads(stack: SeedStack, grads, xb, yb, rho: Tensor, normalized: Tensor) -> list[Tensor]:
    """The gradients at w + e (SAM, ``normalized``: e = rho g / |g|_s; USAM: e = rho g), w restored exactly after;
    members with rho = 0 (SGD) are not moved."""
    saved = stack.params
    norms = torch.stack([g.reshape(g.shape[0], -1).norm(dim=1) for g in grads]).norm(dim=0)  # (S,)
    scale = torch.where(normalized, torch.where(norms > 0, rho / torch.where(norms > 0, norms, 1.0), 0.0), rho)
    scale = torch.where(rho > 0, scale, 0.0)
    stack._set([p + scale.view(-1, *[1] * (p.dim() - 1)) * g for p, g in zip(saved, grads, strict=True)])
    perturbed = stack._grads(xb, yb)
    stack._set(saved)
    return perturbed


def _sgd_step(stack: SeedStack, grads, buffers, lr: float, momentum: float, weight_decay: float):
    """torch.optim.SGD's update (dampening 0, no Nesterov) on every seed at once; returns the momentum buffers."""
    params = stack.params
    if weight_decay:
        grads = [g + weight_decay * p for g, p in zip(grads, params, strict=True)]
    if momentum:
        buffers = [g.clone() for g in grads] if buffers is None else [
            m.mul_(momentum).add_(g) for m, g in zip(buffers, grads, strict=True)
        ]
        grads = buffers
    stack._set([p - lr * g for p, g in zip(params, grads, strict=True)])
    return buffers
