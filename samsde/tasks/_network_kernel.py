"""Closed-form full-batch gradient and Hessian-vector products of a one-hidden-layer network (hand-tuned kernel).

Symbols, per path (the M paths never interact):
  X (N x p) inputs with rows x_n; y_n targets;  W1 (h x p), b1 (h)  first layer;  W2 (o x h), b2 (o)  second layer
  z_n = W1 x_n + b1   pre-activations (h)       a_n = phi(z_n)   activations (h), phi elementwise
  u_n = W2 a_n + b2   outputs (o)               f = (1/N) sum_n l(u_n, y_n) + (l2/2) |x|^2
  e_n = (1/N) dl/du(u_n)  output error (o)      S_n = (1/N) d2l/du2(u_n)  output Hessian (o x o, symmetric)
A network task chooses two small pieces: an Activation (phi, phi', phi'') and an OutputLoss (dl/du and the action
of d2l/du2), see :mod:`samsde.tasks.networks`.  :class:`NetworkLinearization` turns any such pair into the
closed-form gradient and Hessian-vector products, computed in memory reused across calls (:class:`_Workspace`).
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from samsde.tasks.base import Linearization

if TYPE_CHECKING:
    from samsde.tasks.networks import OneHiddenLayerNet


@dataclass(frozen=True)
class _Layout:
    """Slices of the flat parameter vector of a one-hidden-layer network."""

    n_in: int
    n_hidden: int
    n_out: int

    @property
    def dim(self) -> int:
        return self.n_hidden * self.n_in + self.n_hidden + self.n_out * self.n_hidden + self.n_out

    def pack(self, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) -> Tensor:
        """The flat (M, d) vector of the per-path blocks W1 (M, h, p), b1 (M, h), W2 (M, o, h), b2 (M, o).

        The inverse of :meth:`unpack`."""
        m = w1.shape[0]
        return torch.cat([w1.reshape(m, -1), b1.reshape(m, -1), w2.reshape(m, -1), b2.reshape(m, -1)], dim=1)

    def unpack(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        m = x.shape[0]
        sizes = [self.n_hidden * self.n_in, self.n_hidden, self.n_out * self.n_hidden, self.n_out]
        w1, b1, w2, b2 = torch.split(x, sizes, dim=-1)
        return (
            w1.reshape(m, self.n_hidden, self.n_in),
            b1.reshape(m, 1, self.n_hidden),
            w2.reshape(m, self.n_out, self.n_hidden),
            b2.reshape(m, 1, self.n_out),
        )


class _Workspace:
    """Reusable memory of one network task for :class:`NetworkLinearization`.

    Fresh memory is expensive here: every new page is a page fault (~4 us on the 2-core VM, 37 ms for 36 MB, ten
    times the cost of one pass over it), PyTorch's CPU allocator does not cache, and glibc returns large freed blocks
    to the system.  So every pass of a chunk writes into named ``scratch`` tensors that live as long as the task
    (the size of one chunk, see NetworkLinearization), and the caches of linearizations that are gone are recycled
    (``take`` / ``give``, at most ``keep`` idle buffers).  A task is therefore not safe for concurrent use from
    several threads.
    """

    keep = 1

    def __init__(self):
        self._scratch: dict[str, Tensor] = {}
        self._idle: list[Tensor] = []

    def scratch(self, name: str, numel: int, like: Tensor) -> Tensor:
        """A flat tensor of ``numel`` elements, reused by every call with this name (contents undefined)."""
        buf = self._scratch.get(name)
        if buf is None or buf.numel() < numel or buf.dtype != like.dtype or buf.device != like.device:
            buf = self._scratch[name] = torch.empty(numel, dtype=like.dtype, device=like.device)
        return buf[:numel]

    def take(self, numel: int, like: Tensor) -> Tensor:
        for i, buf in enumerate(self._idle):
            if buf.numel() >= numel and buf.dtype == like.dtype and buf.device == like.device:
                return self._idle.pop(i)
        return torch.empty(numel, dtype=like.dtype, device=like.device)

    def give(self, buf: Tensor) -> None:
        self._idle.insert(0, buf)
        del self._idle[self.keep :]


_Chunk = dict[str, Tensor]  # one chunk's cached tensors by name (views into the cache buffer)


def _planes(flat: Tensor, n: int, mc: int, o: int) -> Tensor:
    """A view (N, M_c, o) of ``flat`` whose o planes (N, M_c) are each contiguous.

    For the output-space tensors (a short last axis, o <= 3): reductions over it and the column c of one output
    then run along long contiguous (N, M_c) planes, not in loops of o elements.
    """
    return flat.view(o, n, mc).permute(1, 2, 0)


class NetworkLinearization(Linearization):
    """Closed-form full-batch gradient and Hessian-vector products of a :class:`OneHiddenLayerNet`.

    Symbols as in the module docstring; per path, over all N samples at once, with the augmented inputs
    X~ = [X, 1] (N x p+1) and first layer W~ = [W1, b1] (h x p+1), so that b1 rides along in the GEMMs; E_c, W2_c,
    V2_c are output c's column of E and row of W2, V2; "*" is elementwise, broadcast over the missing axes.

    Forward, ONE GEMM for all M_c paths of a chunk, X~ (N x p+1) @ [W~_1; ...; W~_Mc]^T (p+1 x M_c h):
        Z = X~ W~^T (N, M_c, h),  A = phi(Z),  U = A W2^T + b2 (N, M_c, o),  E = l'(U) / N,  S = l''(U) / N.
    Gradient (backpropagation, Delta = df/dZ = phi'(Z) * E W2):
        P_c = X~^T (phi'(Z) * E_c)        (one GEMM (p+1 x N)(N x M_c h) per output; P is kept for H v)
        [gW1, gb1] = sum_c W2_c * P_c  (= X~^T Delta),   gW2_c = sum_n E_c * A,   gb2 = sum_n E,   + l2 x.
    Hessian-vector product, Pearlmutter's R-operator R{.} = d/dt .(x + t v) at t = 0, with v = (V~, V2, c2)
    unpacked like x; R{A} = phi'(Z) * R{Z},  R{D} = R{E} W2 + E V2,  R{Delta} = phi'(Z) * R{D} + phi''(Z) * D * R{Z}:
        R{Z} = X~ V~^T                                        (GEMM)
        R{U}_c = sum_h (K_c * R{Z} + A * V2_c) + c2_c         with the cached K_c = phi'(Z) * W2_c
        R{E} = S R{U}
        R{gW2}_c = sum_n R{E}_c * A + sum_i P_c V~            (sum_n E_c * R{A} = sum_i P_c V~: from P, no pass)
        [R{gW1}, R{gb1}] = X~^T B + sum_c V2_c * P_c,   B = sum_c K_c * R{E}_c + Q * R{Z}   (GEMM)
                                                              with the cached Q = phi''(Z) * E W2
        R{gb2} = sum_n R{E},   H v = R{grad} + l2 v.
    Flops: the linearization does 1 + o GEMMs of 2 N (p+1) M h flops (forward, P), every H v 2 (R{Z}, X~^T B);
    the rest is elementwise: for o = 1, 11 passes over (N, M, h) tensors for the linearization (4 of them build
    the caches K, Q, skipped by a gradient alone) and 7 per H v.

    A linear activation (phi(z) = z, Iris) collapses the network to u = (W2 W~) x~ + b2, and then nothing of size
    (N, M, h) is needed at all: with R_c = X~^T E_c (p+1, M) and R{R}_c = X~^T R{E}_c (GEMMs on (N, M) planes),
        U_c = X~ (W2_c W~)^T + b2_c,   [gW1, gb1] = sum_c W2_c (x) R_c,   gW2_c = R_c^T W~,
        R{U}_c = X~ (W2_c V~ + V2_c W~)^T + c2_c,
        [R{gW1}, R{gb1}] = sum_c (W2_c (x) R{R}_c + V2_c (x) R_c),   R{gW2}_c = R{R}_c^T W~ + R_c^T V~,
    2 o GEMMs of 2 N (p+1) M flops each for the linearization and 2 o per H v.

    Chunks: the paths are processed in chunks of M_c paths, N M_c h <= ``net.chunk_elements`` (at least one path;
    by default 2^18 elements per intra-op thread), each still one GEMM over all its paths in the (N, M_c, h) layout,
    so that the elementwise passes run in cache on preallocated scratch tensors (see ``_Workspace``): on one
    (N, M, h) block they are several times slower.  (N M_c o for the collapsed linear network.)
    The cache of a linearization lives in one buffer recycled through the workspace.
    ``keep = False`` (used by ``OneHiddenLayerNet.grad``) keeps nothing: only ``.grad`` is then available.
    """

    def __init__(self, net: OneHiddenLayerNet, x: Tensor, keep: bool = True, sample_weights: Tensor | None = None):
        self._net, self._ws, self._keep = net, net.workspace, keep
        # sample_weights (M, N): the gradient of sum_n w_n l_n per path instead of f (no L2 term): a weighted sum of
        # per-sample gradients, e.g. G_c^T w for mini-batch noise
        self._weights, self._l2 = sample_weights, (net.l2 if sample_weights is None else 0.0)
        lay, act = net.layout, net.activation
        n, m, p1, h, o = net.n_data, x.shape[0], lay.n_in + 1, lay.n_hidden, lay.n_out
        self._linear = act.linear
        # the cached tensors: name -> (elements per path, shape of a chunk of mc paths)
        planes = (n * o, None)
        if self._linear:
            slots = {"e": planes, "s": planes, "r": (o * p1, lambda mc: (o, p1, mc)), "w": (h * p1, None)}
        else:
            big = (n * h, lambda mc: (n, mc, h))
            slots = {"a": big, "e": planes, "s": planes, "p": (o * p1 * h, lambda mc: (o, p1, mc * h))}
            if act.needs_pre:
                slots["z"] = big
            if keep:  # for H v only
                slots.update({"q": big, **{f"k{c}": big for c in range(o)}})
        width = o if self._linear else h
        chunk_elements = net.chunk_elements or (1 << 18) * torch.get_num_threads()
        self._step = step = max(1, int(chunk_elements) // (n * width))
        self._chunks: list[tuple[slice, _Chunk]] = []  # (paths, cache) per chunk
        with torch.no_grad():
            x = x.detach()
            self.grad = torch.empty(x.shape, dtype=x.dtype, device=x.device)
            self._w2 = lay.unpack(x)[2].clone()  # (M, o, h)
            self._ones = torch.ones(h, dtype=x.dtype, device=x.device)  # sums over h as matrix-vector products
            w_aug = self._augmented_first_layer(x)
            b2 = lay.unpack(x)[3].reshape(m, o)
            if keep and m > 0:  # one recycled flat buffer, one region per cached tensor, chunk after chunk
                sizes = [size * m for size, _ in slots.values()]
                buffer = self._ws.take(sum(sizes), x)
                weakref.finalize(self, self._ws.give, buffer)  # recycled once this linearization is gone
                regions = dict(zip(slots, torch.split(buffer[: sum(sizes)], sizes), strict=True))
            for start in range(0, m, step):
                rows = slice(start, min(start + step, m))
                mc = rows.stop - rows.start
                chunk: _Chunk = {}
                for name, (size, shape) in slots.items():
                    flat = (
                        regions[name][size * start : size * rows.stop] if keep else self._ws.scratch(name, size * mc, x)
                    )
                    if name in ("e", "s"):
                        chunk[name] = _planes(flat, n, mc, o)
                    elif name == "w":
                        chunk[name] = flat.view(mc, h, p1)
                    else:
                        chunk[name] = flat.view(shape(mc))
                wc = w_aug[start * h : rows.stop * h].view(mc, h, p1)
                self._rows = rows
                step_fn = self._forward_linear if self._linear else self._forward
                step_fn(chunk, self._w2[rows], wc, b2[rows], x[rows], self.grad[rows])
                if keep:
                    self._chunks.append((rows, chunk))

    def _augmented_first_layer(self, x: Tensor) -> Tensor:
        """[W~_1; ...; W~_M] (M h x p+1) for all paths of x (or of a direction v), into scratch."""
        w1, b1, _, _ = self._net.layout.unpack(x)
        m, h, p = w1.shape
        out = self._ws.scratch("w_aug", m * h * (p + 1), x).view(m, h, p + 1)
        out[:, :, :p].copy_(w1)
        out[:, :, p].copy_(b1.view(m, h))
        return out.view(m * h, p + 1)

    def _output_errors(self, grad_u: Tensor) -> Tensor:
        """E = l'(U) / N, or l'(U) w with the sample weights, in place (also R{E} = l''(U) R{U} / N, or times w)."""
        if self._weights is None:
            return grad_u.mul_(1.0 / self._net.n_data)
        return grad_u.mul_(self._weights[self._rows].T.unsqueeze(-1))

    def _write(self, out: Tensor, g1: Tensor, gw2: Tensor, gb2: Tensor, xc: Tensor) -> None:
        """out = ([gW1, gb1] = g1 (p+1, M_c, h), gW2 (M_c, o, h), gb2 (M_c, o)) + l2 xc, in the flat layout of x."""
        p1, mc, h = g1.shape
        hp, oh = h * (p1 - 1), gw2.shape[1] * h
        out[:, :hp].view(mc, h, p1 - 1).copy_(g1[:-1].permute(1, 2, 0))
        out[:, hp : hp + h].copy_(g1[-1])
        out[:, hp + h : hp + h + oh].view(gw2.shape).copy_(gw2)
        out[:, hp + h + oh :].copy_(gb2)
        if self._l2:
            out.add_(xc, alpha=self._l2)

    def _scratch(self, name: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
        return self._ws.scratch(name, math.prod(shape), like).view(shape)

    def _output_planes(self, name: str, like_planes: Tensor) -> Tensor:
        n, mc, o = like_planes.shape
        return _planes(self._ws.scratch(name, n * mc * o, like_planes), n, mc, o)

    # ---- one-hidden-layer network with a nonlinear activation ----------------------------------------------------

    def _forward(self, c: _Chunk, w2: Tensor, wc: Tensor, b2: Tensor, xc: Tensor, out: Tensor) -> None:
        net, act = self._net, self._net.activation
        xa, xat = net.inputs_augmented, net.inputs_augmented_t
        n, mc, h = c["a"].shape
        o = w2.shape[1]
        z = c.get("z", None)
        z = self._scratch("z", (n, mc, h), xc) if z is None else z
        torch.mm(xa, wc.view(mc * h, -1).T, out=z.view(n, mc * h))  # Z, one GEMM
        a = act.apply(z, c["a"])  # A
        tmp = self._scratch("tmp", (n, mc, h), xc)
        ones = self._ones
        u = self._output_planes("u", c["e"])
        for k in range(o):  # U_c = sum_h A * W2_c   (the sum over h as a matrix-vector product)
            torch.mv(torch.mul(a, w2[:, k], out=tmp).view(n * mc, h), ones, out=u[:, :, k].view(n * mc))
        u.add_(b2)
        c["s"] = net.output_loss.derivatives(u, net.targets, c["e"], c["s"])
        e = self._output_errors(c["e"])  # E
        d1 = act.first(c.get("z"), a, self._scratch("d1", (n, mc, h), xc))  # phi'(Z)
        if "q" in c:  # Q = phi''(Z) * D,  D = E W2;  K_c = phi'(Z) * W2_c
            d = self._scratch("d", (n, mc, h), xc)
            torch.mul(e[:, :, 0:1], w2[:, 0], out=d)
            for k in range(1, o):
                d.addcmul_(e[:, :, k : k + 1], w2[:, k])
            torch.mul(act.second(c.get("z"), a, d1, tmp), d, out=c["q"])  # (one write to the cache)
            for k in range(o):
                torch.mul(d1, w2[:, k], out=c[f"k{k}"])
        gw2 = torch.empty(mc, o, h, dtype=xc.dtype, device=xc.device)
        for k in range(o):
            ek = e[:, :, k : k + 1]
            pk = c["p"][k]
            torch.mm(xat, torch.mul(d1, ek, out=tmp).view(n, mc * h), out=pk)  # P_c = X~^T (phi'(Z) * E_c)
            torch.sum(torch.mul(a, ek, out=tmp), 0, out=gw2[:, k])  # gW2_c = sum_n E_c * A
        p = c["p"].view(o, -1, mc, h)
        g1 = torch.mul(p[0], w2[:, 0])  # [gW1, gb1] = sum_c W2_c * P_c
        for k in range(1, o):
            g1.addcmul_(p[k], w2[:, k])
        self._write(out, g1, gw2, e.sum(0), xc)

    def _hvp_chunk(
        self, c: _Chunk, w2: Tensor, va: Tensor, v2: Tensor, c2: Tensor, vc: Tensor, out: Tensor, t: float = 0.0
    ) -> None:
        net, act = self._net, self._net.activation
        xa, xat = net.inputs_augmented, net.inputs_augmented_t
        a, e = c["a"], c["e"]
        n, mc, h = a.shape
        o = v2.shape[1]
        rz = self._scratch("rz", (n, mc, h), vc)
        torch.mm(xa, va.view(mc * h, -1).T, out=rz.view(n, mc * h))  # R{Z}, one GEMM
        tmp = self._scratch("tmp", (n, mc, h), vc)
        ones = self._ones
        if t:  # the per-sample directions t grad l_n / N (see hvp_plus_sample_curvature)
            d1 = act.first(c.get("z"), a, self._scratch("d1", (n, mc, h), vc))  # phi'(Z)
            rzs = torch.mul(c["k0"], e[:, :, 0:1], out=self._scratch("rzs", (n, mc, h), vc))  # Delta = sum_c K_c E_c
            for k in range(1, o):
                rzs.addcmul_(c[f"k{k}"], e[:, :, k : k + 1])
            rzs.mul_(net._inputs_sq_plus_one()).mul_(t)  # t |x~_n|^2 Delta_n: their R{Z}
            rz.add_(rzs)
            a_sq = self._scratch("a_sq", (n, mc), vc)
            torch.mv(torch.mul(a, a, out=tmp).view(n * mc, h), ones, out=a_sq.view(n * mc))
        ru = self._output_planes("u", e)
        for k in range(o):  # R{U}_c = sum_h (K_c * R{Z} + A * V2_c)
            torch.mul(c[f"k{k}"], rz, out=tmp).addcmul_(a, v2[:, k])
            torch.mv(tmp.view(n * mc, h), ones, out=ru[:, :, k].view(n * mc))
        ru.add_(c2)
        if t:  # + t E_c (|A|^2 + 1): the directions' second layer t E a^T and bias t E
            ru.addcmul_(e, a_sq.add_(1.0).unsqueeze(-1), value=t)
        re = self._output_errors(net.output_loss.hess_apply(c["s"], ru, self._output_planes("re", e)))
        p = c["p"].view(o, -1, mc, h)
        va_t = va.permute(2, 0, 1)  # V~ as (p+1, M_c, h)
        rgw2 = torch.empty(mc, o, h, dtype=vc.dtype, device=vc.device)
        if t:
            rzs.mul_(d1)  # their R{A} = phi'(Z) * R{Z}
        for k in range(o):  # R{gW2}_c = sum_n R{E}_c * A + sum_i P_c V~   (sum_n E_c * R{A} = sum_i P_c V~)
            torch.sum(torch.mul(a, re[:, :, k : k + 1], out=tmp), 0, out=rgw2[:, k])
            rgw2[:, k] += torch.mul(p[k], va_t).sum(0)
            if t:  # + sum_n E_c * (their R{A})
                rgw2[:, k] += torch.mul(rzs, e[:, :, k : k + 1], out=tmp).sum(0)
        b = torch.mul(c["q"], rz, out=self._scratch("b", (n, mc, h), vc))  # B = Q * R{Z} + sum_c K_c * R{E}_c
        for k in range(o):
            b.addcmul_(c[f"k{k}"], re[:, :, k : k + 1])
        if t:  # + phi'(Z) * (their E V2 = t |E|^2 A)
            b.addcmul_(torch.mul(d1, a, out=tmp), (e * e).sum(-1, keepdim=True), value=t)
        g1 = torch.mm(xat, b.view(n, mc * h)).view(-1, mc, h)  # X~^T B, one GEMM
        for k in range(o):
            g1.addcmul_(p[k], v2[:, k])  # + sum_c V2_c * P_c
        self._write(out, g1, rgw2, re.sum(0), vc)

    # ---- linear activation: the collapsed network ------------------------------------------------------------------

    def _forward_linear(self, c: _Chunk, w2: Tensor, wc: Tensor, b2: Tensor, xc: Tensor, out: Tensor) -> None:
        net = self._net
        xa, xat = net.inputs_augmented, net.inputs_augmented_t
        c["w"].copy_(wc)
        w_eff = torch.einsum("mcj,mji->cmi", w2, wc)  # W2_c W~  (o, M_c, p+1)
        u = self._output_planes("u", c["e"])
        for k in range(w2.shape[1]):
            torch.mm(xa, w_eff[k].T, out=u[:, :, k])  # U_c = X~ (W2_c W~)^T
        u.add_(b2)
        c["s"] = net.output_loss.derivatives(u, net.targets, c["e"], c["s"])
        e = self._output_errors(c["e"])  # E
        r = c["r"]
        for k in range(w2.shape[1]):
            torch.mm(xat, e[:, :, k], out=r[k])  # R_c = X~^T E_c
        g1 = torch.einsum("cim,mcj->imj", r, w2)  # sum_c W2_c (x) R_c
        gw2 = torch.einsum("cim,mji->mcj", r, wc)  # R_c^T W~
        self._write(out, g1, gw2, e.sum(0), xc)

    def _hvp_linear(
        self, c: _Chunk, w2: Tensor, va: Tensor, v2: Tensor, c2: Tensor, vc: Tensor, out: Tensor, t: float = 0.0
    ) -> None:
        net = self._net
        xa, xat = net.inputs_augmented, net.inputs_augmented_t
        wc, r, e = c["w"], c["r"], c["e"]
        n, mc, o = e.shape
        h, p1 = wc.shape[1], wc.shape[2]
        y = torch.einsum("mcj,mji->cmi", w2, va) + torch.einsum("mcj,mji->cmi", v2, wc)  # W2_c V~ + V2_c W~
        ru = self._output_planes("u", e)
        for k in range(o):
            torch.mm(xa, y[k].T, out=ru[:, :, k])  # R{U}_c
        ru.add_(c2)
        if t:  # the per-sample directions t grad l_n / N (hvp_plus_sample_curvature): with Delta_n = W2^T E_n,
            # their R{U}_n = t (|x~_n|^2 W2 Delta_n + (|a_n|^2 + 1) E_n),  a_n = W~ x~_n
            # (no einsum on these small batched products: it takes a per-path loop on the CPU)
            xsq = net._inputs_sq_plus_one().view(n, 1)
            a = torch.mm(xa, wc.reshape(mc * h, p1).T, out=self._scratch("a", (n, mc * h), vc))
            a_sq = torch.mv(a.mul_(a).view(n * mc, h), self._ones).view(n, mc).add_(1.0)
            gram = (w2.unsqueeze(2) * w2.unsqueeze(1)).sum(-1)  # W2 W2^T (M_c, o, o)
            tmp, wwe = self._scratch("tmp", (n, mc), vc), self._scratch("rzs", (n, mc), vc)
            for k in range(o):  # (planes of (N, M_c) in scratch: fresh pages cost more than the passes)
                torch.mul(e[:, :, 0], gram[:, k, 0], out=wwe)
                for j in range(1, o):
                    wwe.addcmul_(e[:, :, j], gram[:, k, j])
                torch.mul(e[:, :, k], a_sq, out=tmp).addcmul_(wwe, xsq)
                ru[:, :, k].add_(tmp, alpha=t)
        re = self._output_errors(net.output_loss.hess_apply(c["s"], ru, self._output_planes("re", e)))
        rr = torch.empty_like(r)
        for k in range(o):
            torch.mm(xat, re[:, :, k], out=rr[k])  # R{R}_c = X~^T R{E}_c
        g1 = torch.einsum("cim,mcj->imj", rr, w2) + torch.einsum("cim,mcj->imj", r, v2)
        gw2 = torch.einsum("cim,mji->mcj", rr, wc) + torch.einsum("cim,mji->mcj", r, va)
        if t:  # their E V2 term sum_n |E_n|^2 a_n x~_n^T = W~ T,  T = sum_n |E_n|^2 x~_n x~_n^T,
            # and sum_n E_n (their R{a}_n)^T = T2 W2,  T2 = sum_n |x~_n|^2 E_n E_n^T
            e_sq = torch.mul(e[:, :, 0], e[:, :, 0], out=self._scratch("rzs", (n, mc), vc))  # (N, M_c)
            for k in range(1, o):
                e_sq.addcmul_(e[:, :, k], e[:, :, k])
            tm = torch.mm(net._inputs_outer_t(), e_sq).view(p1, p1, mc).mul_(t)  # t T, one GEMM
            for k in range(p1):  # [R{gW1}, R{gb1}] += t W~ T   (g1 as (p+1, M_c, h))
                g1.addcmul_(tm[k].unsqueeze(-1), wc[:, :, k])
            for k in range(o):  # R{gW2}_c += t sum_d T2_cd W2_d
                ex = torch.mul(e[:, :, k], xsq, out=self._scratch("rzs", (n, mc), vc))
                for j in range(o):
                    t2 = torch.mul(ex, e[:, :, j], out=tmp).sum(0).mul_(t)
                    gw2[:, k].addcmul_(t2.unsqueeze(-1), w2[:, j])
        self._write(out, g1, gw2, re.sum(0), vc)

    def hvp(self, v: Tensor) -> Tensor:
        return self._apply(v, 0.0)

    def hvp_plus_sample_curvature(self, v: Tensor, gamma: float) -> Tensor:
        """H v + gamma sum_n H(l_n) grad l_n per path, in ONE R-operator pass over the samples.

        The R-operator is linear in its direction, and the direction may differ per sample: here v / N + t grad l_n
        / N^2 for sample n, t = gamma N^2, so that sum_n (H(l_n) / N) (v + t grad l_n / N) + l2 v is the product
        asked for.  The per-sample part is rank one per layer, (t / N) (Delta_n x~_n^T, E_n a~_n^T) in the cached
        E = l'(U) / N (``OneHiddenLayerNet.half_grad_of_sample_sq_norms`` has its R-operator); it adds
        t |x~_n|^2 Delta_n to R{Z}, t (|a_n|^2 + 1) E_n to R{U} and t |E_n|^2 phi'(z_n) * a_n to B."""
        if self._weights is not None:
            raise ValueError("hvp_plus_sample_curvature: a weighted linearization has no per-sample gradients of f")
        return self._apply(v, gamma * self._net.n_data**2)

    def _apply(self, v: Tensor, t: float) -> Tensor:
        if not self._keep:
            raise RuntimeError("this NetworkLinearization was built with keep=False: only .grad is available")
        if v.shape != self.grad.shape:
            raise ValueError(f"hvp: v has shape {tuple(v.shape)}, the point has {tuple(self.grad.shape)}")
        h, p1 = self._net.layout.n_hidden, self._net.layout.n_in + 1
        chunk_hvp = self._hvp_linear if self._linear else self._hvp_chunk
        with torch.no_grad():
            v = v.detach()
            out = torch.empty(v.shape, dtype=v.dtype, device=v.device)
            v_aug = self._augmented_first_layer(v)
            _, _, v2, c2 = self._net.layout.unpack(v)
            c2 = c2.reshape(v.shape[0], -1)
            for rows, c in self._chunks:
                self._rows = rows  # (the sample weights' rows, _output_errors)
                va = v_aug[rows.start * h : rows.stop * h].view(-1, h, p1)
                chunk_hvp(c, self._w2[rows], va, v2[rows], c2[rows], v[rows], out[rows], t)
        return out
