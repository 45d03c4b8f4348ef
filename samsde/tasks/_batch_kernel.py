"""Closed-form mini-batch gradient and Hessian-vector products of a one-hidden-layer network, per row.

Each row r of x (R, d) is one network with its own weighted batch: sample indices idx[r] (B of them) and weights
omega[r] (1/B for a mini-batch; any weights for a weighted sum of per-sample gradients).  ``idx = None`` is every
row on all N samples (B = N, the inputs shared by the rows, not gathered): with weights c, the linearization of
sum_n c_n l_n (``OneHiddenLayerNet.weighted_linearize``).  Symbols as in
:mod:`samsde.tasks._network_kernel`, per row and batch member b, with x~_b = [x_b, 1] and W~ = [W1, b1]:
    z_b = W~ x~_b,  a_b = phi(z_b),  u_b = W2 a_b + b2,  e_b = omega_b l'(u_b),  S_b = omega_b l''(u_b)
    d_b = W2^T e_b,  delta_b = phi'(z_b) * d_b
    grad = [sum_b delta_b x~_b^T,  sum_b e_b a_b^T,  sum_b e_b] + l2 x
and for a direction v = (V~, V2, c2), by Pearlmutter's R-operator:
    R{z} = V~ x~_b,  R{a} = phi' * R{z},  R{u} = V2 a_b + W2 R{a} + c2,  R{e} = S_b R{u}
    R{d} = W2^T R{e} + V2^T e_b,  R{delta} = phi' * R{d} + phi'' * R{z} * d_b
    H v = [sum_b R{delta} x~_b^T,  sum_b (R{e} a_b^T + e_b R{a}^T),  sum_b R{e}] + l2 v.
Tensors are (R, B, h) and (R, B, o): no per-sample gradient is formed.  The products over the short axes are
einsums over rows (batched small matrix products).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from samsde.tasks.base import Linearization

if TYPE_CHECKING:
    from samsde.tasks.networks import OneHiddenLayerNet


class BatchNetworkLinearization(Linearization):
    """grad and H v of sum_b omega[r, b] l(u_{idx[r, b]}) + (l2/2) |x_r|^2 for every row r (see the module doc);
    ``l2=False`` leaves the L2 term out (a weighted sum of per-sample gradients)."""

    def __init__(
        self, net: OneHiddenLayerNet, x: Tensor, idx: Tensor | None, weights: Tensor | None = None, l2: bool = True
    ):
        self._net, self._l2 = net, net.l2 if l2 else 0.0
        lay, act, loss = net.layout, net.activation, net.output_loss
        r, b = (x.shape[0], net.n_data) if idx is None else idx.shape
        omega = (
            torch.full((r, b, 1), 1.0 / b, dtype=x.dtype, device=x.device) if weights is None else weights[..., None]
        )
        with torch.no_grad():
            x = x.detach()
            inputs = net.inputs_augmented
            self._x_aug = inputs.expand(r, -1, -1) if idx is None else inputs[idx]  # (R, B, p+1)
            targets = net.targets.repeat(r) if idx is None else net.targets[idx].reshape(-1)
            w1, b1, w2, b2 = lay.unpack(x)
            self._w_aug = torch.cat([w1, b1.transpose(1, 2)], dim=2)  # (R, h, p+1)
            self._w2 = w2  # (R, o, h)
            z = torch.einsum("rbp,rhp->rbh", self._x_aug, self._w_aug)
            a = act.apply(z, torch.empty_like(z))
            u = torch.einsum("rbh,roh->rbo", a, w2) + b2
            # the output loss works on (samples, paths, o) tensors: here every (row, member) pair is one sample
            flat = u.reshape(r * b, 1, -1)
            grad_u = torch.empty_like(flat)
            self._state = loss.derivatives(flat, targets, grad_u, torch.empty_like(flat))
            self._omega = omega
            e = grad_u.view_as(u) * omega
            d = torch.einsum("rbo,roh->rbh", e, w2)
            first = act.first(z if act.needs_pre else None, a, torch.empty_like(z))
            self._second = act.second(z if act.needs_pre else None, a, first, torch.empty_like(z))
            delta = first * d
            self.grad = self._pack(
                torch.einsum("rbh,rbp->rhp", delta, self._x_aug), torch.einsum("rbo,rbh->roh", e, a), e.sum(1)
            ).add_(x, alpha=self._l2)
            self._a, self._e, self._d, self._first = a, e, d, first

    def _pack(self, g_aug: Tensor, g2: Tensor, gb2: Tensor) -> Tensor:
        """[W1 | b1] (R, h, p+1), W2 (R, o, h), b2 (R, o) as the flat (R, d) vector."""
        p = self._net.layout.n_in
        return self._net.layout.pack(g_aug[:, :, :p], g_aug[:, :, p], g2, gb2)

    def hvp(self, v: Tensor) -> Tensor:
        net, a, e, d, first = self._net, self._a, self._e, self._d, self._first
        with torch.no_grad():
            v1, c1, v2, c2 = net.layout.unpack(v)
            v_aug = torch.cat([v1, c1.transpose(1, 2)], dim=2)
            rz = torch.einsum("rbp,rhp->rbh", self._x_aug, v_aug)
            ra = first * rz
            ru = torch.einsum("rbh,roh->rbo", a, v2) + torch.einsum("rbh,roh->rbo", ra, self._w2) + c2
            flat = ru.reshape(-1, 1, ru.shape[-1])
            re = net.output_loss.hess_apply(self._state, flat, torch.empty_like(flat)).view_as(ru) * self._omega
            rd = torch.einsum("rbo,roh->rbh", re, self._w2) + torch.einsum("rbo,roh->rbh", e, v2)
            rdelta = first * rd + self._second * rz * d
            out = self._pack(
                torch.einsum("rbh,rbp->rhp", rdelta, self._x_aug),
                torch.einsum("rbo,rbh->roh", re, a) + torch.einsum("rbo,rbh->roh", e, ra),
                re.sum(1),
            )
        return out.add_(v, alpha=self._l2)
