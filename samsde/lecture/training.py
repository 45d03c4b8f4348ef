"""Training and measuring the lecture's networks: one mini-batch loop for every registered algorithm that has a
torch optimizer (SGD, SAM, USAM), its evaluation, and the measurements taken at a solution."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from samsde.algorithms import ALGORITHMS, get
from samsde.lecture.data import Dataset
from samsde.lecture.network import MLP
from samsde.sharpness import flat_loss_fn, hvp

#: the registered algorithms that have a torch optimizer (what the lecture's training loop can run)
METHODS = tuple(name for name, a in ALGORITHMS.items() if a.has_torch_optimizer)


def make_optimizer(
    method: str,
    params,
    lr: float,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    rho: float = 0.0,
) -> torch.optim.Optimizer:
    """A registered algorithm's torch optimizer around SGD with ``lr``, ``momentum``, ``weight_decay``: SGD itself,
    or SAM / USAM (:mod:`samsde.optim`)."""
    kwargs = dict(lr=lr, momentum=momentum, weight_decay=weight_decay)
    return get(method).torch_optimizer(params, torch.optim.SGD, rho, **kwargs)


@torch.no_grad()
def evaluate(model: nn.Module, x: Tensor, y: Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``(x, y)``, full batch."""
    logits = model(x)
    return F.cross_entropy(logits, y).item(), (logits.argmax(1) == y).double().mean().item()


class TrainResult(NamedTuple):
    """How a run ended: updates and epochs done, whether the loss target was met, the final training loss."""

    steps: int
    epochs: int
    reached_target: bool
    train_loss: float


def train(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    method: str,
    lr: float,
    batch_size: int,
    generator: torch.Generator,
    max_epochs: int,
    max_steps: int | None = None,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    rho: float = 0.0,
    loss_target: float | None = None,
) -> TrainResult:
    """Mini-batch training of ``model`` on the mean cross-entropy, in place.

    Each epoch draws a permutation from ``generator`` and takes ``n // batch_size`` updates on disjoint batches
    (the remainder is dropped, so every update sees exactly ``batch_size`` samples).  A SAM/USAM update computes
    both gradients on the same batch.  Training stops after ``max_epochs`` epochs, after ``max_steps`` updates,
    or at the end of the first epoch whose full-batch training loss is ``<= loss_target``.  A non-finite loss
    raises ``FloatingPointError`` (a diverged run must not be reported as a solution).
    """
    n = x.shape[0]
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be in [1, {n}], got {batch_size}")
    optimizer = make_optimizer(method, model.parameters(), lr, momentum, weight_decay, rho)
    per_epoch = n // batch_size
    steps = 0
    loss = math.inf
    for epoch in range(1, max_epochs + 1):
        perm = torch.randperm(n, generator=generator)
        for b in range(per_epoch):
            idx = perm[b * batch_size : (b + 1) * batch_size]
            xb, yb = x[idx], y[idx]
            optimizer.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            if not get(method).two_pass:
                optimizer.step()
            else:
                optimizer.first_step(zero_grad=True)
                F.cross_entropy(model(xb), yb).backward()
                optimizer.second_step()
            steps += 1
            if max_steps is not None and steps >= max_steps:
                break
        loss, _ = evaluate(model, x, y)
        if not math.isfinite(loss):
            raise FloatingPointError(f"training diverged: loss {loss} after {steps} updates ({method}, lr={lr})")
        done = max_steps is not None and steps >= max_steps
        if loss_target is not None and loss <= loss_target:
            return TrainResult(steps, epoch, True, loss)
        if done:
            break
    return TrainResult(steps, epoch, False, loss)


def fit_mlp(
    data: Dataset, mlp: MLP, init: torch.Generator, batches: torch.Generator, **train_kwargs
) -> tuple[nn.Sequential, TrainResult]:
    """A fresh ``mlp`` initialized from ``init`` and trained by :func:`train` on ``data``'s training set."""
    model = mlp.build(data, init)
    return model, train(model, data.x_train, data.y_train, generator=batches, **train_kwargs)


def train_loss_closure(model: nn.Module, x: Tensor, y: Tensor) -> Callable[[Tensor], Tensor]:
    """``theta -> mean cross-entropy on (x, y)`` over the flat parameter vector (see :func:`flat_loss_fn`)."""
    return flat_loss_fn(model, F.cross_entropy, x, y)


def keskar_radius(theta: Tensor, eps0: float) -> float:
    """L2 radius ``eps0 * || |theta| + 1 ||_2`` standing in for Keskar et al.'s box.

    Keskar et al. maximise over the box ``|e_i| <= eps0 (|theta_i| + 1)``; :func:`samsde.sharpness.keskar_sharpness`
    maximises over an L2 ball.  This radius is that of the smallest ball containing the box (its corners), so the
    ball's sharpness is an upper bound of the box's and scales with the parameters as Keskar's does.
    """
    if not eps0 > 0:
        raise ValueError(f"eps0 must be > 0, got {eps0}")
    return eps0 * torch.linalg.vector_norm(theta.abs() + 1).item()


def solution_metrics(model: nn.Module, data: Dataset) -> dict[str, float]:
    """Training and test cross-entropy and accuracy, test error in percent, and the parameters' L2 norm."""
    train_loss, train_accuracy = evaluate(model, data.x_train, data.y_train)
    test_loss, test_accuracy = evaluate(model, data.x_test, data.y_test)
    norm = torch.linalg.vector_norm(torch.cat([p.detach().flatten() for p in model.parameters()])).item()
    return dict(
        train_loss=train_loss,
        train_accuracy=train_accuracy,
        test_loss=test_loss,
        test_accuracy=test_accuracy,
        test_error_pct=100.0 * (1.0 - test_accuracy),
        param_norm=norm,
    )


def line_curvature(loss: Callable[[Tensor], Tensor], theta: Tensor, direction: Tensor) -> float:
    """Curvature of ``loss`` along a line, ``v^T H(theta) v / ||v||^2`` (one Hessian-vector product)."""
    return (torch.dot(direction, hvp(loss, theta, direction)) / torch.dot(direction, direction)).item()
