"""Objective functions f: R^d -> R, batched over M independent paths.

Every task works on a parameter tensor ``x`` of shape ``(M, d)`` (one row per Monte Carlo path) and returns
per-path quantities: ``loss(x) -> (M,)``, ``grad(x) -> (M, d)``, ``hvp(x, v) -> (M, d)`` and, for small d,
``hessian(x) -> (M, d, d)``.  Because the M rows never interact, the gradient of ``loss(x).sum()`` with
respect to ``x`` is the stack of per-path gradients: one autograd call serves every path.

Data tasks (iris, breast_cancer, teacher_student, matrix_sensing) are finite sums
f(x) = (1/N) sum_i f_i(x) + (l2/2) ||x||^2 and also expose ``per_sample_loss(x, batch)`` so that mini-batch
noise and its matrix-free covariance square root can be built on them (see :mod:`samsde.noise`).
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import torch
from torch import Tensor

from samsde.device import moved
from samsde.seeding import make_generator

DTYPE = torch.float64


class Task:
    """A smooth objective, batched over paths.  Subclasses implement :meth:`loss` (and may override the rest)."""

    name: str = "task"
    dim: int
    n_data: int | None = None
    device: torch.device = torch.device("cpu")

    def to(self, device: torch.device | str) -> Task:
        """A copy of the task with its data on ``device`` (see :mod:`samsde.device`)."""
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


# --------------------------------------------------------------------------------------------------------------
# Quadratic
# --------------------------------------------------------------------------------------------------------------


class Quadratic(Task):
    """f(x) = x^T H x / 2 with H = Q diag(spectrum) Q^T.

    Either ``spectrum`` is given (then Q = I unless ``rotate``), or H = A A^T / (2d) with A ~ N(0,1)^{d x 2d}.
    Negative eigenvalues are allowed: the origin is then a saddle.
    """

    name = "quadratic"

    def __init__(
        self,
        dim: int | None = None,
        spectrum: list[float] | None = None,
        seed: int = 0,
        x0: list[float] | None = None,
        rotate: bool = False,
    ):
        gen = make_generator(seed, "quadratic")
        if spectrum is not None:
            spectrum_t = torch.as_tensor(spectrum, dtype=DTYPE)
            if dim is not None and dim != spectrum_t.numel():
                raise ValueError(f"quadratic: dim {dim} does not match the spectrum's length {spectrum_t.numel()}")
            dim = spectrum_t.numel()
            q = _random_orthogonal(dim, gen) if rotate else torch.eye(dim, dtype=DTYPE)
            self.H = (q * spectrum_t) @ q.T
        else:
            dim = 10 if dim is None else dim
            if dim < 1:
                raise ValueError(f"quadratic: dim must be >= 1, got {dim}")
            a = torch.randn(dim, 2 * dim, generator=gen, dtype=DTYPE)
            self.H = a @ a.T / (2 * dim)
        self.H = (self.H + self.H.T) / 2
        self.dim = dim
        self.eigenvalues, self.eigenvectors = torch.linalg.eigh(self.H)
        if x0 is not None and len(x0) != dim:
            raise ValueError(f"quadratic: x0 has length {len(x0)} but the dimension is {dim}")
        self._x0 = None if x0 is None else torch.as_tensor(x0, dtype=DTYPE)

    def loss(self, x: Tensor) -> Tensor:
        return 0.5 * ((x @ self.H) * x).sum(-1)

    def grad(self, x: Tensor, batch: Tensor | None = None) -> Tensor:
        if batch is not None:
            self.batch_loss(x, batch)  # raises: a quadratic is not a finite sum
        return x @ self.H

    def linearize(self, x: Tensor) -> Linearization:
        return ConstantHessian(x @ self.H, self.H)

    def hessian(self, x: Tensor) -> Tensor:
        return self.H.expand(x.shape[0], -1, -1)

    def initial_point(self, generator: torch.Generator) -> Tensor:
        return self._x0.clone() if self._x0 is not None else super().initial_point(generator)


def _random_orthogonal(d: int, gen: torch.Generator) -> Tensor:
    q, r = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=DTYPE))
    return q * torch.sign(torch.diagonal(r))


# --------------------------------------------------------------------------------------------------------------
# Two-basin landscape (flat vs sharp minimum)
# --------------------------------------------------------------------------------------------------------------


class TwoBasin(Task):
    """Two Gaussian wells of equal depth, a sharp one at -c e_1 and a flat one at +c e_1.

    f(x) = -exp(-|x + c e_1|^2 / (2 w_s^2)) - exp(-|x - c e_1|^2 / (2 w_f^2)).  Both wells have depth ~1, so the
    minima have (nearly) equal loss and only their curvature, ~1/w_s^2 versus ~1/w_f^2, tells them apart.
    The initial point is the origin, on the ridge between the basins.
    """

    name = "two_basin"

    def __init__(self, dim: int = 2, center: float = 1.0, sharp_width: float = 0.25, flat_width: float = 0.75):
        if dim < 1:
            raise ValueError(f"two_basin: dim must be >= 1, got {dim}")
        self.dim = dim
        self.center = center
        self.sharp_width = sharp_width
        self.flat_width = flat_width

    def loss(self, x: Tensor) -> Tensor:
        shift = torch.zeros(self.dim, dtype=x.dtype, device=x.device)
        shift[0] = self.center
        sharp = torch.exp(-((x + shift) ** 2).sum(-1) / (2 * self.sharp_width**2))
        flat = torch.exp(-((x - shift) ** 2).sum(-1) / (2 * self.flat_width**2))
        return -sharp - flat

    def basin(self, x: Tensor) -> Tensor:
        """+1 for the flat basin (x_1 > ridge), -1 for the sharp one, by the sign of the first coordinate."""
        return torch.where(x[:, 0] > 0, 1, -1)

    def initial_point(self, generator: torch.Generator) -> Tensor:
        return torch.zeros(self.dim, dtype=DTYPE)


# --------------------------------------------------------------------------------------------------------------
# Finite-sum data tasks
# --------------------------------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class _Layout:
    """Slices of the flat parameter vector of a one-hidden-layer network."""

    n_in: int
    n_hidden: int
    n_out: int

    @property
    def dim(self) -> int:
        return self.n_hidden * self.n_in + self.n_hidden + self.n_out * self.n_hidden + self.n_out

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


# --------------------------------------------------------------------------------------------------------------
# One-hidden-layer networks, with closed-form full-batch derivatives
# --------------------------------------------------------------------------------------------------------------
#
# Symbols, per path (the M paths never interact):
#   X (N x p) inputs with rows x_n; y_n targets;  W1 (h x p), b1 (h)  first layer;  W2 (o x h), b2 (o)  second layer
#   z_n = W1 x_n + b1   pre-activations (h)       a_n = phi(z_n)   activations (h), phi elementwise
#   u_n = W2 a_n + b2   outputs (o)               f = (1/N) sum_n l(u_n, y_n) + (l2/2) |x|^2
#   e_n = (1/N) dl/du(u_n)  output error (o)      S_n = (1/N) d2l/du2(u_n)  output Hessian (o x o, symmetric)
# A network task chooses two small pieces: an Activation (phi, phi', phi'') and an OutputLoss (dl/du and the action
# of d2l/du2).  NetworkLinearization turns any such pair into the closed-form gradient and Hessian-vector products.


class Activation:
    """An elementwise activation a = phi(z) with its first two derivatives phi'(z), phi''(z).

    ``apply``, ``first`` and ``second`` write into ``out`` (a preallocated tensor shaped like z) and return it; they
    must not modify their other arguments.  They get the activations a = phi(z) and, only if ``needs_pre = True``,
    the pre-activations z (else ``z = None``: sigmoid and tanh need a alone, and z then need not be kept).
    ``linear = True`` declares phi(z) = z: NetworkLinearization then uses the collapsed linear network instead.
    """

    name = "activation"
    linear = False
    needs_pre = False

    def __call__(self, z: Tensor) -> Tensor:
        """phi(z), differentiable by autograd (used by ``forward``)."""
        raise NotImplementedError

    def apply(self, z: Tensor, out: Tensor) -> Tensor:
        raise NotImplementedError

    def first(self, z: Tensor | None, a: Tensor, out: Tensor) -> Tensor:
        raise NotImplementedError

    def second(self, z: Tensor | None, a: Tensor, first: Tensor, out: Tensor) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Identity(Activation):
    """phi(z) = z,  phi' = 1,  phi'' = 0 (a linear network)."""

    name = "identity"
    linear = True

    def __call__(self, z: Tensor) -> Tensor:
        return z

    def apply(self, z: Tensor, out: Tensor) -> Tensor:
        return out.copy_(z)

    def first(self, z: Tensor | None, a: Tensor, out: Tensor) -> Tensor:
        return out.fill_(1.0)

    def second(self, z: Tensor | None, a: Tensor, first: Tensor, out: Tensor) -> Tensor:
        return out.zero_()


class Sigmoid(Activation):
    """phi(z) = 1 / (1 + e^-z),  phi' = a (1 - a),  phi'' = phi' (1 - 2 a)   (a = phi(z))."""

    name = "sigmoid"

    def __call__(self, z: Tensor) -> Tensor:
        return torch.sigmoid(z)

    def apply(self, z: Tensor, out: Tensor) -> Tensor:
        return torch.sigmoid(z, out=out)

    def first(self, z: Tensor | None, a: Tensor, out: Tensor) -> Tensor:
        return torch.addcmul(a, a, a, value=-1.0, out=out)  # a - a^2, one pass

    def second(self, z: Tensor | None, a: Tensor, first: Tensor, out: Tensor) -> Tensor:
        return torch.addcmul(first, a, first, value=-2.0, out=out)  # phi' - 2 a phi'


class Tanh(Activation):
    """phi(z) = tanh z,  phi' = 1 - a^2,  phi'' = -2 a phi'   (a = phi(z))."""

    name = "tanh"

    def __call__(self, z: Tensor) -> Tensor:
        return torch.tanh(z)

    def apply(self, z: Tensor, out: Tensor) -> Tensor:
        return torch.tanh(z, out=out)

    def first(self, z: Tensor | None, a: Tensor, out: Tensor) -> Tensor:
        return torch.addcmul(torch.ones((), dtype=a.dtype, device=a.device), a, a, value=-1.0, out=out)

    def second(self, z: Tensor | None, a: Tensor, first: Tensor, out: Tensor) -> Tensor:
        return torch.mul(a, first, out=out).mul_(-2.0)


class OutputLoss:
    """A per-sample loss l(u, y) of the network output u (o values) with its derivatives in u.

    ``derivatives(u, y, grad, state)`` writes dl/du into ``grad`` (shaped like u, ``(N, M, o)``) and returns a state
    for ``hess_apply``: ``state``, a spare tensor shaped like u that it may fill, or ``None``.
    ``hess_apply(state, r, out)`` writes (d2l/du2) r into ``out`` for ``r`` shaped like u, and returns it.
    ``y`` is the task's target vector ``(N,)``.  Neither may modify u or r.
    """

    name = "loss"

    def derivatives(self, u: Tensor, y: Tensor, grad: Tensor, state: Tensor) -> Tensor | None:
        raise NotImplementedError

    def hess_apply(self, state: Tensor | None, r: Tensor, out: Tensor) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SoftmaxCrossEntropy(OutputLoss):
    """l = -log s_y,  s = softmax(u);  dl/du = s - e_y,  d2l/du2 = diag(s) - s s^T,  so  (d2l/du2) r = s * (r - s.r)."""

    name = "softmax_cross_entropy"

    def derivatives(self, u: Tensor, y: Tensor, grad: Tensor, state: Tensor) -> Tensor:
        torch.sub(u, u.amax(-1, keepdim=True), out=state).exp_()
        state.div_(state.sum(-1, keepdim=True))  # s
        grad.copy_(state)
        grad[torch.arange(u.shape[0], device=u.device), :, y.long()] -= 1.0  # s - e_y
        return state

    def hess_apply(self, state: Tensor, r: Tensor, out: Tensor) -> Tensor:
        sr = torch.mul(state, r, out=out).sum(-1, keepdim=True)
        return torch.sub(r, sr, out=out).mul_(state)


class BinaryCrossEntropyWithLogits(OutputLoss):
    """l = log(1 + e^u) - y u  (o = 1),  s = sigmoid(u);  dl/du = s - y,  d2l/du2 = s (1 - s)."""

    name = "binary_cross_entropy_with_logits"

    def derivatives(self, u: Tensor, y: Tensor, grad: Tensor, state: Tensor) -> Tensor:
        s = torch.sigmoid(u, out=state)
        torch.sub(s, y.reshape(-1, 1, 1).to(u.dtype), out=grad)
        return s.addcmul_(s, s, value=-1.0)  # s - s^2

    def hess_apply(self, state: Tensor, r: Tensor, out: Tensor) -> Tensor:
        return torch.mul(state, r, out=out)


class HalfSquaredError(OutputLoss):
    """l = (u - y)^2 / 2  (o = 1);  dl/du = u - y,  d2l/du2 = 1."""

    name = "half_squared_error"

    def derivatives(self, u: Tensor, y: Tensor, grad: Tensor, state: Tensor) -> None:
        torch.sub(u, y.reshape(-1, 1, 1).to(u.dtype), out=grad)
        return None

    def hess_apply(self, state: None, r: Tensor, out: Tensor) -> Tensor:
        return out.copy_(r)


IDENTITY, SIGMOID, TANH = Identity(), Sigmoid(), Tanh()


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

    Symbols as in the comment above ``Activation``; per path, over all N samples at once, with the augmented inputs
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

    def __init__(self, net: OneHiddenLayerNet, x: Tensor, keep: bool = True):
        self._net, self._ws, self._keep = net, net.workspace, keep
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

    def _write(self, out: Tensor, g1: Tensor, gw2: Tensor, gb2: Tensor, xc: Tensor) -> None:
        """out = ([gW1, gb1] = g1 (p+1, M_c, h), gW2 (M_c, o, h), gb2 (M_c, o)) + l2 xc, in the flat layout of x."""
        p1, mc, h = g1.shape
        hp, oh = h * (p1 - 1), gw2.shape[1] * h
        out[:, :hp].view(mc, h, p1 - 1).copy_(g1[:-1].permute(1, 2, 0))
        out[:, hp : hp + h].copy_(g1[-1])
        out[:, hp + h : hp + h + oh].view(gw2.shape).copy_(gw2)
        out[:, hp + h + oh :].copy_(gb2)
        if self._net.l2:
            out.add_(xc, alpha=self._net.l2)

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
        e = c["e"].mul_(1.0 / net.n_data)  # E
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

    def _hvp_chunk(self, c: _Chunk, w2: Tensor, va: Tensor, v2: Tensor, c2: Tensor, vc: Tensor, out: Tensor) -> None:
        net = self._net
        xa, xat = net.inputs_augmented, net.inputs_augmented_t
        a = c["a"]
        n, mc, h = a.shape
        o = v2.shape[1]
        rz = self._scratch("rz", (n, mc, h), vc)
        torch.mm(xa, va.view(mc * h, -1).T, out=rz.view(n, mc * h))  # R{Z}, one GEMM
        tmp = self._scratch("tmp", (n, mc, h), vc)
        ones = self._ones
        ru = self._output_planes("u", c["e"])
        for k in range(o):  # R{U}_c = sum_h (K_c * R{Z} + A * V2_c)
            torch.mul(c[f"k{k}"], rz, out=tmp).addcmul_(a, v2[:, k])
            torch.mv(tmp.view(n * mc, h), ones, out=ru[:, :, k].view(n * mc))
        ru.add_(c2)
        re = net.output_loss.hess_apply(c["s"], ru, self._output_planes("re", c["e"])).mul_(1.0 / net.n_data)
        p = c["p"].view(o, -1, mc, h)
        va_t = va.permute(2, 0, 1)  # V~ as (p+1, M_c, h)
        rgw2 = torch.empty(mc, o, h, dtype=vc.dtype, device=vc.device)
        for k in range(o):  # R{gW2}_c = sum_n R{E}_c * A + sum_i P_c V~   (sum_n E_c * R{A} = sum_i P_c V~)
            torch.sum(torch.mul(a, re[:, :, k : k + 1], out=tmp), 0, out=rgw2[:, k])
            rgw2[:, k] += torch.mul(p[k], va_t).sum(0)
        b = torch.mul(c["q"], rz, out=self._scratch("b", (n, mc, h), vc))  # B = Q * R{Z} + sum_c K_c * R{E}_c
        for k in range(o):
            b.addcmul_(c[f"k{k}"], re[:, :, k : k + 1])
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
        e = c["e"].mul_(1.0 / net.n_data)  # E
        r = c["r"]
        for k in range(w2.shape[1]):
            torch.mm(xat, e[:, :, k], out=r[k])  # R_c = X~^T E_c
        g1 = torch.einsum("cim,mcj->imj", r, w2)  # sum_c W2_c (x) R_c
        gw2 = torch.einsum("cim,mji->mcj", r, wc)  # R_c^T W~
        self._write(out, g1, gw2, e.sum(0), xc)

    def _hvp_linear(self, c: _Chunk, w2: Tensor, va: Tensor, v2: Tensor, c2: Tensor, vc: Tensor, out: Tensor) -> None:
        net = self._net
        xa, xat = net.inputs_augmented, net.inputs_augmented_t
        wc, r = c["w"], c["r"]
        o = w2.shape[1]
        y = torch.einsum("mcj,mji->cmi", w2, va) + torch.einsum("mcj,mji->cmi", v2, wc)  # W2_c V~ + V2_c W~
        ru = self._output_planes("u", c["e"])
        for k in range(o):
            torch.mm(xa, y[k].T, out=ru[:, :, k])  # R{U}_c
        ru.add_(c2)
        re = net.output_loss.hess_apply(c["s"], ru, self._output_planes("re", c["e"])).mul_(1.0 / net.n_data)
        rr = torch.empty_like(r)
        for k in range(o):
            torch.mm(xat, re[:, :, k], out=rr[k])  # R{R}_c = X~^T R{E}_c
        g1 = torch.einsum("cim,mcj->imj", rr, w2) + torch.einsum("cim,mcj->imj", r, v2)
        gw2 = torch.einsum("cim,mji->mcj", rr, wc) + torch.einsum("cim,mji->mcj", r, va)
        self._write(out, g1, gw2, re.sum(0), vc)

    def hvp(self, v: Tensor) -> Tensor:
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
                va = v_aug[rows.start * h : rows.stop * h].view(-1, h, p1)
                chunk_hvp(c, self._w2[rows], va, v2[rows], c2[rows], v[rows], out[rows])
        return out


class OneHiddenLayerNet(FiniteSum):
    """Per-path network out = act(X W1^T + b1) W2^T + b2 evaluated for all M paths with batched matmuls.

    A subclass sets ``activation`` (an :class:`Activation`) and ``output_loss`` (an :class:`OutputLoss` matching its
    ``per_sample_loss``); the full-batch gradient and Hessian-vector products are then closed-form
    (:class:`NetworkLinearization`).  Without an ``output_loss`` (or with a plain function as activation) they fall
    back to autograd, as do mini-batch gradients.
    """

    activation: Activation = IDENTITY
    output_loss: OutputLoss | None = None
    # elements of one (N, M_c, h) tensor per chunk of NetworkLinearization; None: 2^18 (2 MB) per intra-op thread
    chunk_elements: int | None = None

    def __init__(self, inputs: Tensor, targets: Tensor, n_hidden: int, n_out: int, l2: float, init_scale: float):
        self.inputs = inputs.to(DTYPE)
        self.targets = targets
        self.layout = _Layout(self.inputs.shape[1], n_hidden, n_out)
        self.dim = self.layout.dim
        self.n_data = self.inputs.shape[0]
        self.l2 = l2
        self.init_scale = init_scale

    @property
    def inputs_augmented(self) -> Tensor:
        """X~ = [X, 1] (N x p+1): the first-layer bias as one more input column."""
        return self._augmented()[0]

    @property
    def inputs_augmented_t(self) -> Tensor:
        """X~^T (p+1 x N), contiguous: the left factor of the backward GEMMs."""
        return self._augmented()[1]

    def _augmented(self) -> tuple[Tensor, Tensor]:
        cached = self.__dict__.get("_inputs_augmented")
        if cached is None or cached[0] is not self.inputs:  # rebuilt if ``inputs`` is replaced
            ones = torch.ones(self.inputs.shape[0], 1, dtype=self.inputs.dtype, device=self.inputs.device)
            xa = torch.cat([self.inputs, ones], dim=1)
            cached = self.__dict__["_inputs_augmented"] = (self.inputs, xa, xa.T.contiguous())
        return cached[1], cached[2]

    @property
    def workspace(self) -> _Workspace:
        """Scratch memory of NetworkLinearization, made on first use (and not copied or pickled with the task)."""
        if "_workspace" not in self.__dict__:
            self.__dict__["_workspace"] = _Workspace()
        return self.__dict__["_workspace"]

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_workspace"}

    @property
    def closed_form(self) -> bool:
        """Whether the full-batch derivatives are closed-form (NetworkLinearization) rather than autograd."""
        return self.output_loss is not None and isinstance(self.activation, Activation)

    def grad(self, x: Tensor, batch: Tensor | None = None) -> Tensor:
        if batch is None and self.closed_form:
            return NetworkLinearization(self, x, keep=False).grad
        return super().grad(x, batch)

    def linearize(self, x: Tensor) -> Linearization:
        return NetworkLinearization(self, x) if self.closed_form else AutogradLinearization(self, x)

    def forward(self, x: Tensor, idx: Tensor | None) -> Tensor:
        """Network outputs (M, N or B, n_out).

        On the full data set every path sees the same inputs, so the first layer of all M paths is ONE matrix
        product X (N x p) @ [W1_1; ...; W1_M]^T (p x M h): a large GEMM instead of M small ones (6x faster on a CPU).
        Mini-batches differ per path and use a batched product.
        """
        w1, b1, w2, b2 = self.layout.unpack(x)
        m, n_hidden, n_in = w1.shape
        if idx is None:
            pre = (self.inputs @ w1.reshape(m * n_hidden, n_in).T).reshape(-1, m, n_hidden)  # (N, M, h)
            hidden = self.activation(pre + b1.reshape(1, m, n_hidden))
            out = torch.einsum("nmh,moh->nmo", hidden, w2) + b2.reshape(1, m, -1)
            return out.transpose(0, 1)
        inputs = self.inputs[idx]  # (M, B, p)
        hidden = self.activation(torch.matmul(inputs, w1.transpose(1, 2)) + b1)
        return torch.matmul(hidden, w2.transpose(1, 2)) + b2

    def batch_targets(self, idx: Tensor | None) -> Tensor:
        return self.targets if idx is None else self.targets[idx]

    def initial_point(self, generator: torch.Generator) -> Tensor:
        return self.init_scale * torch.randn(self.dim, generator=generator, dtype=DTYPE)


def _standardize(a) -> Tensor:
    t = torch.as_tensor(a, dtype=DTYPE)
    return (t - t.mean(0)) / t.std(0).clamp_min(1e-12)


class Iris(OneHiddenLayerNet):
    """Iris (scikit-learn's bundled copy): linear one-hidden-layer network, softmax cross-entropy + L2."""

    name = "iris"
    activation = IDENTITY
    output_loss = SoftmaxCrossEntropy()

    def __init__(self, n_hidden: int = 4, l2: float = 1e-3, init_scale: float = 0.5):
        from sklearn.datasets import load_iris

        data = load_iris()
        super().__init__(
            _standardize(data.data), torch.as_tensor(data.target), n_hidden, 3, l2=l2, init_scale=init_scale
        )

    def per_sample_loss(self, x: Tensor, idx: Tensor | None = None) -> Tensor:
        logits = self.forward(x, idx)
        targets = self.batch_targets(idx).expand(logits.shape[:-1])
        logp = torch.log_softmax(logits, dim=-1)
        return -torch.gather(logp, -1, targets.unsqueeze(-1)).squeeze(-1)


class BreastCancer(OneHiddenLayerNet):
    """Breast Cancer Wisconsin (scikit-learn's bundled copy): sigmoid hidden layer, binary cross-entropy + L2."""

    name = "breast_cancer"
    activation = SIGMOID
    output_loss = BinaryCrossEntropyWithLogits()

    def __init__(self, n_hidden: int = 8, l2: float = 1e-3, init_scale: float = 0.5):
        from sklearn.datasets import load_breast_cancer

        data = load_breast_cancer()
        super().__init__(
            _standardize(data.data), torch.as_tensor(data.target, dtype=DTYPE), n_hidden, 1, l2, init_scale
        )

    def per_sample_loss(self, x: Tensor, idx: Tensor | None = None) -> Tensor:
        logits = self.forward(x, idx).squeeze(-1)
        targets = self.batch_targets(idx).expand(logits.shape)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")


class TeacherStudent(OneHiddenLayerNet):
    """A fixed tanh teacher network labels Gaussian inputs; a student of the same shape fits them (MSE + L2).

    Reconstructed setting (the paper's exact teacher is not known): inputs ~ N(0, I_p), teacher weights
    ~ N(0, 1/fan_in), all drawn from ``seed``.
    """

    name = "teacher_student"
    activation = TANH
    output_loss = HalfSquaredError()

    def __init__(
        self,
        n_in: int = 5,
        n_hidden: int = 4,
        n_samples: int = 200,
        l2: float = 1e-3,
        init_scale: float = 0.5,
        seed: int = 0,
    ):
        gen = make_generator(seed, "teacher_student")
        inputs = torch.randn(n_samples, n_in, generator=gen, dtype=DTYPE)
        layout = _Layout(n_in, n_hidden, 1)
        teacher = torch.cat(
            [
                torch.randn(n_hidden * n_in, generator=gen, dtype=DTYPE) / math.sqrt(n_in),
                torch.zeros(n_hidden, dtype=DTYPE),
                torch.randn(n_hidden, generator=gen, dtype=DTYPE) / math.sqrt(n_hidden),
                torch.zeros(1, dtype=DTYPE),
            ]
        )
        super().__init__(inputs, torch.zeros(n_samples, dtype=DTYPE), n_hidden, 1, l2, init_scale)
        assert layout.dim == self.dim
        self.teacher = teacher
        self.targets = self.forward(teacher.unsqueeze(0), None)[0, :, 0]

    def per_sample_loss(self, x: Tensor, idx: Tensor | None = None) -> Tensor:
        pred = self.forward(x, idx).squeeze(-1)
        return 0.5 * (pred - self.batch_targets(idx)) ** 2


class MatrixSensing(FiniteSum):
    """Recover X* = U* U*^T (n x n, rank r) from m symmetric Gaussian measurements y_i = <A_i, X*>.

    f(U) = (1/m) sum_i (<A_i, U U^T> - y_i)^2 / 2 over U in R^{n x k} (x = vec U, d = n k); reconstructed setting.
    The initial point is small and random (scale ``init_scale``), the regime where implicit regularization matters.
    """

    name = "matrix_sensing"

    def __init__(
        self,
        n: int = 10,
        rank: int = 2,
        k: int = 10,
        n_measurements: int = 120,
        init_scale: float = 0.05,
        seed: int = 0,
    ):
        gen = make_generator(seed, "matrix_sensing")
        u_star = torch.randn(n, rank, generator=gen, dtype=DTYPE) / math.sqrt(n)
        self.x_star = u_star @ u_star.T
        a = torch.randn(n_measurements, n, n, generator=gen, dtype=DTYPE)
        self.A = (a + a.transpose(1, 2)) / 2
        self.y = torch.einsum("mij,ij->m", self.A, self.x_star)
        self.n, self.k = n, k
        self.dim = n * k
        self.n_data = n_measurements
        self.init_scale = init_scale

    def per_sample_loss(self, x: Tensor, idx: Tensor | None = None) -> Tensor:
        u = x.reshape(x.shape[0], self.n, self.k)
        # <A_i, U U^T> = sum_c u_c^T A_i u_c, computed as a batched product without forming U U^T per measurement
        uu = u @ u.transpose(1, 2)  # (M, n, n)
        a = self.A if idx is None else self.A[idx]  # (m, n, n) or (M, B, n, n)
        y = self.y if idx is None else self.y[idx]
        if idx is None:
            pred = uu.reshape(uu.shape[0], -1) @ a.reshape(a.shape[0], -1).T
        else:
            pred = torch.einsum("mbij,mij->mb", a, uu)
        return 0.5 * (pred - y) ** 2

    def recovery_error(self, x: Tensor) -> Tensor:
        u = x.reshape(x.shape[0], self.n, self.k)
        return torch.linalg.matrix_norm(u @ u.transpose(1, 2) - self.x_star) / torch.linalg.matrix_norm(self.x_star)

    def initial_point(self, generator: torch.Generator) -> Tensor:
        return self.init_scale * torch.randn(self.dim, generator=generator, dtype=DTYPE)


# --------------------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------------------

TASKS: dict[str, type[Task]] = {
    cls.name: cls for cls in (Quadratic, TwoBasin, Iris, BreastCancer, TeacherStudent, MatrixSensing)
}


def make_task(name: str, **params) -> Task:
    """Build a task by name; unknown names and parameters raise a ValueError that names them."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {sorted(TASKS)}")
    try:
        return TASKS[name](**params)
    except TypeError as err:
        raise ValueError(f"task {name!r}: bad parameters {sorted(params)}: {err}") from None
