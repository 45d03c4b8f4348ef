"""Sharpness-Aware Minimization (SAM) and unnormalized SAM (USAM) optimizers.

Both wrap a base optimizer ``B`` (SGD, Adam, ...).  One step from parameters
``w`` with loss ``L`` is

    g = grad L(w)
    e = rho * g / ||g||      (SAM; ||.|| is the global L2 norm over all params)
    e = rho * g              (USAM)
    w <- B.step(w, grad L(w + e))

i.e. the base optimizer is applied at ``w`` with the gradient taken at the
perturbed point ``w + e``.

Usage with an explicit two-pass loop::

    loss_fn(model(x), y).backward()
    opt.first_step(zero_grad=True)     # w -> w + e
    loss_fn(model(x), y).backward()
    opt.second_step(zero_grad=True)    # back to w, then base step

or with a closure, which must recompute the loss and its gradient (the
gradient at ``w`` must already be populated, as above)::

    def closure():
        loss = loss_fn(model(x), y)
        loss.backward()
        return loss

    loss_fn(model(x), y).backward()
    opt.step(closure)
    opt.zero_grad()

``rho = 0`` reproduces the base optimizer bit for bit: the perturbation is
skipped rather than computed as ``0 * g / ||g||`` (NaN when ``g = 0``) or
``g / (||g|| + eps)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

__all__ = ["SAM", "USAM"]


class SAM(Optimizer):
    """Sharpness-Aware Minimization (Foret et al., 2021) around a base optimizer.

    ``first_step`` moves every parameter to ``w + rho * g / ||g||`` where
    ``||g||`` is the L2 norm of the gradient over *all* parameters (so the
    perturbation has norm exactly ``rho`` when all groups share ``rho``);
    ``second_step`` restores ``w`` exactly (a saved copy, not ``(w + e) - e``)
    and applies the base optimizer with the gradient now stored in ``.grad``.

    Args:
        params: iterable of parameters or of parameter-group dicts; groups may
            override ``rho`` and any base-optimizer option.
        base_optimizer: optimizer class (or factory) called as
            ``base_optimizer(param_groups, **kwargs)``.
        rho: perturbation radius, ``>= 0``.  ``rho = 0`` is plain ``B``.
        **kwargs: forwarded to ``base_optimizer`` (``lr``, ``momentum``, ...).

    ``self.param_groups`` *is* ``self.base_optimizer.param_groups``, so
    learning-rate schedulers and group edits act on both.  ``state_dict``
    holds the base optimizer's state (e.g. momentum buffers).

    With ``maximize=True`` in the base optimizer the perturbation points
    along ``-g``: SAM then seeks the worst case for maximisation.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        base_optimizer: Callable[..., Optimizer],
        rho: float = 0.05,
        **kwargs: Any,
    ) -> None:
        _check_rho(rho)
        super().__init__(params, dict(rho=rho, **kwargs))
        for group in self.param_groups:
            _check_rho(group["rho"])
        # The base optimizer receives our group dicts and keeps the very same
        # dict objects, then we adopt its list: one source of truth.
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        if not isinstance(self.base_optimizer, Optimizer):
            raise TypeError(
                f"base_optimizer must build a torch.optim.Optimizer, got {type(self.base_optimizer).__name__}"
            )
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)
        self._perturbed = False

    # -- group management ----------------------------------------------------

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group to both SAM and the base optimizer (same dict)."""
        if "base_optimizer" not in self.__dict__:
            # Called from Optimizer.__init__, before the base optimizer exists.
            super().add_param_group(param_group)
            return
        param_group.setdefault("rho", self.defaults["rho"])
        _check_rho(param_group["rho"])
        self.base_optimizer.add_param_group(param_group)

    # -- the two half-steps ----------------------------------------------------

    def _scale(self, rho: float, grad_norm: float) -> float:
        """Factor ``c`` in ``e = c * g``; SAM uses ``rho / ||g||``."""
        return rho / grad_norm

    def _ascend_(self, p: Tensor, rho: float, grad_norm: float, sign: float) -> None:
        """Move ``p`` to ``p + sign * e`` in place.  Here ``e = c g`` with ``c = _scale(rho, ||g||)``; a subclass with
        an elementwise perturbation (e.g. a per-parameter scaling of g) overrides this method."""
        scale = self._scale(rho, grad_norm)
        p.add_(p.grad, alpha=-scale if sign < 0 else scale)

    def _grad_norm(self) -> float:
        norms = [
            torch.linalg.vector_norm(p.grad).to(torch.float64).cpu()
            for group in self.param_groups
            for p in group["params"]
            if p.grad is not None
        ]
        if not norms:
            return 0.0
        return torch.linalg.vector_norm(torch.stack(norms)).item()

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Move to the perturbed point ``w + e`` and remember ``w``.

        Groups with ``rho == 0`` are left untouched, as are all parameters
        when the global gradient norm is zero (the SAM perturbation is then
        zero; dividing would give NaN).  Parameters without ``.grad`` are not
        perturbed.
        """
        if self._perturbed:
            raise RuntimeError("first_step called twice without second_step")
        # Non-finite gradients are not special-cased: they propagate into the
        # parameters exactly as they would through the base optimizer, so a
        # diverging run looks the same with and without SAM.
        grad_norm = self._grad_norm()
        for group in self.param_groups:
            rho = group["rho"]
            if rho == 0.0 or grad_norm == 0.0:
                continue
            sign = -1.0 if group.get("maximize", False) else 1.0
            for p in group["params"]:
                if p.grad is None:
                    continue
                self.state[p]["w"] = p.detach().clone()
                self._ascend_(p, rho, grad_norm, sign)
        self._perturbed = True
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Restore ``w`` and apply the base optimizer with the current gradient."""
        for group in self.param_groups:
            for p in group["params"]:
                saved = self.state[p].pop("w", None) if p in self.state else None
                if saved is not None:
                    p.copy_(saved)
        self._perturbed = False
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad()

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Full SAM step: ``first_step``, ``closure()``, ``second_step``.

        ``closure`` must recompute the loss and call ``backward()``; it is
        evaluated once, at the perturbed point.  As in the reference SAM
        implementation, the gradient at the *current* point must already be
        in ``.grad`` when ``step`` is called.  Returns the closure's value
        (the loss at the perturbed point).
        """
        if closure is None:
            raise ValueError("SAM.step requires a closure; or use first_step/second_step")
        if not self._has_grad() and any(g["rho"] != 0.0 for g in self.param_groups):
            raise RuntimeError(
                "SAM.step needs the gradient at the current point: call loss.backward() before step(closure)"
            )
        self.first_step(zero_grad=True)
        with torch.enable_grad():
            loss = closure()
        self.second_step()
        return loss

    def _has_grad(self) -> bool:
        return any(p.grad is not None for group in self.param_groups for p in group["params"])

    # -- (de)serialisation -----------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The base optimizer's state dict (its groups also carry ``rho``).

        SAM's own state (the saved ``w``) only lives between the two
        half-steps and is not serialised.
        """
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a dict produced by :meth:`state_dict` and re-share groups."""
        self.base_optimizer.load_state_dict(state_dict)
        # load_state_dict replaces the group list with new dicts; re-share it.
        self.param_groups = self.base_optimizer.param_groups
        for group in self.param_groups:
            group.setdefault("rho", self.defaults["rho"])


class USAM(SAM):
    """Unnormalized SAM: perturbation ``e = rho * g`` (no division by ``||g||``).

    Otherwise identical to :class:`SAM`; a zero gradient gives a zero
    perturbation without any special case in the formula.
    """

    def _scale(self, rho: float, grad_norm: float) -> float:
        return rho


def _check_rho(rho: object) -> None:
    if isinstance(rho, bool) or not isinstance(rho, (int, float)):
        raise ValueError(f"rho must be a non-negative finite number, got {rho!r}")
    if not (math.isfinite(rho) and rho >= 0.0):
        raise ValueError(f"rho must be a non-negative finite number, got {rho!r}")
