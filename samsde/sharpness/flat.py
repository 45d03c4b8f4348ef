"""Flat-parameter view of an ``nn.Module``: the parameter vector theta and the loss closure theta -> L(theta)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.func import functional_call

from samsde.sharpness._core import LossClosure, _check_theta


def _trainable(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    # named_parameters() drops duplicates, so tied weights are counted once.
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("model has no trainable parameters")
    return named


def get_flat_params(model: nn.Module) -> Tensor:
    """Return a detached copy of all trainable parameters, concatenated.

    The order is that of ``model.named_parameters()`` (tied parameters appear
    once); :func:`set_flat_params` and :func:`flat_loss_fn` use the same order.
    """
    return torch.cat([p.detach().reshape(-1) for _, p in _trainable(model)])


def set_flat_params(model: nn.Module, theta: Tensor) -> None:
    """Copy the flat vector ``theta`` into the trainable parameters, in place."""
    named = _trainable(model)
    theta = _check_theta(theta)
    total = sum(p.numel() for _, p in named)
    if theta.numel() != total:
        raise ValueError(f"theta has {theta.numel()} entries but the model has {total} trainable parameters")
    offset = 0
    with torch.no_grad():
        for _, p in named:
            n = p.numel()
            p.copy_(theta[offset : offset + n].view_as(p))
            offset += n


def flat_loss_fn(
    model: nn.Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    inputs: Tensor | tuple,
    targets: Tensor,
) -> LossClosure:
    """Build ``theta -> loss_fn(model(inputs; theta), targets)``.

    ``theta`` is a flat vector laid out as :func:`get_flat_params`.  The model
    is evaluated with :func:`torch.func.functional_call`, so its parameters
    are never written to and gradients flow to ``theta`` only.  ``inputs`` is
    a tensor, or a tuple of positional arguments for ``model.forward``.

    Buffers are passed as fresh copies on each call: a BatchNorm layer in
    training mode then uses batch statistics without updating the model's
    running statistics.  The mode (``train``/``eval``) is left as the caller
    set it; use ``model.eval()`` to get a deterministic loss with dropout.
    """
    named = _trainable(model)
    names = [n for n, _ in named]
    shapes = [p.shape for _, p in named]
    numels = [p.numel() for _, p in named]
    total = sum(numels)
    args = inputs if isinstance(inputs, tuple) else (inputs,)

    def loss(theta: Tensor) -> Tensor:
        if theta.dim() != 1 or theta.numel() != total:
            raise ValueError(f"theta must be 1-D with {total} entries, got shape {tuple(theta.shape)}")
        chunks = torch.split(theta, numels)
        tensors: dict[str, Tensor] = {n: c.view(s) for n, c, s in zip(names, chunks, shapes, strict=True)}
        # Clone buffers so that in-place updates (BatchNorm running stats)
        # land on throw-away copies rather than on the model.
        tensors.update({n: b.clone() for n, b in model.named_buffers()})
        outputs = functional_call(model, tensors, args)
        return loss_fn(outputs, targets)

    return loss
