"""One-hidden-layer network tasks (iris, breast_cancer, teacher_student) and the pieces a network chooses.

A network task chooses two small pieces: an :class:`Activation` (phi, phi', phi'') and an :class:`OutputLoss` (dl/du
and the action of d2l/du2); its full-batch gradient and Hessian-vector products are then closed-form
(:class:`samsde.tasks._network_kernel.NetworkLinearization`, symbols in that module's docstring).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from samsde.seeding import make_generator
from samsde.tasks._batch_kernel import BatchNetworkLinearization
from samsde.tasks._network_kernel import NetworkLinearization, _Layout, _Workspace
from samsde.tasks.base import DTYPE, AutogradLinearization, Bound, FiniteSum, Linearization, check_params


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


class OneHiddenLayerNet(FiniteSum):
    """Per-path network out = act(X W1^T + b1) W2^T + b2 evaluated for all M paths with batched matmuls.

    A subclass sets ``activation`` (an :class:`Activation`) and ``output_loss`` (an :class:`OutputLoss` matching its
    ``per_sample_loss``); the full-batch gradient and Hessian-vector products are then closed-form
    (:class:`NetworkLinearization`).  Without an ``output_loss`` (or with a plain function as activation) they fall
    back to autograd, as do mini-batch gradients.
    """

    activation: Activation = IDENTITY
    output_loss: OutputLoss | None = None
    param_bounds = {
        "n_hidden": Bound(1, "the hidden layer's width", integer=True),
        "l2": Bound(0, "the L2 weight"),
        "init_scale": Bound(0, "the scale of the initial point"),
    }
    # elements of one (N, M_c, h) tensor per chunk of NetworkLinearization; None: 2^18 (2 MB) per intra-op thread
    chunk_elements: int | None = None
    curvature_chunk_elements: int = 1 << 16  # the same for half_grad_of_sample_sq_norms

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

    def to(self, device: torch.device | str) -> OneHiddenLayerNet:
        """A copy on ``device`` without the caches tied to the old device (the scratch workspace and the augmented
        inputs): the copy rebuilds them on first use, and the original keeps its own."""
        out = super().to(device)
        for cache in ("_workspace", "_inputs_augmented", "_outer"):
            out.__dict__.pop(cache, None)
        return out

    @property
    def closed_form(self) -> bool:
        """Whether the full-batch derivatives are closed-form (NetworkLinearization) rather than autograd."""
        return self.output_loss is not None and isinstance(self.activation, Activation)

    def grad(self, x: Tensor, batch: Tensor | None = None) -> Tensor:
        if self.closed_form:
            if batch is None:
                return NetworkLinearization(self, x, keep=False).grad
            return BatchNetworkLinearization(self, x, batch).grad
        return super().grad(x, batch)

    def linearize(self, x: Tensor) -> Linearization:
        return NetworkLinearization(self, x) if self.closed_form else AutogradLinearization(self, x)

    def weighted_sample_grad(self, x: Tensor, weights: Tensor) -> Tensor:
        if not self.closed_form:
            return super().weighted_sample_grad(x, weights)
        return NetworkLinearization(self, x, keep=False, sample_weights=weights).grad

    def weighted_linearize(self, x: Tensor, weights: Tensor) -> Linearization:
        """sum_n c_n grad l_n and (sum_n c_n H(l_n)) v in closed form: the full-batch kernel with the weights c in
        place of 1/N and no L2 term (its GEMMs over all N samples; on Iris 4x faster than the batch kernel with
        idx = all N samples, ``BatchNetworkLinearization(net, x, None, c, l2=False)``, the same numbers)."""
        if not self.closed_form:
            return super().weighted_linearize(x, weights)
        return NetworkLinearization(self, x, sample_weights=weights)

    def batch_linearize(self, x: Tensor, batch: Tensor) -> Linearization:
        return BatchNetworkLinearization(self, x, batch) if self.closed_form else super().batch_linearize(x, batch)

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
        # einsum, not matmul: with M (up to n_inner M) tiny products, its layout makes the forward and its
        # double backward 1.5x faster
        hidden = self.activation(torch.einsum("mbp,mhp->mbh", inputs, w1) + b1)
        return torch.einsum("mbh,moh->mbo", hidden, w2) + b2

    def batch_targets(self, idx: Tensor | None) -> Tensor:
        return self.targets if idx is None else self.targets[idx]

    def output_losses(self, outputs: Tensor, targets: Tensor) -> Tensor:
        """Per-sample losses l(u_n, y_n), (M, N or B), of outputs (M, N or B, o) and targets (N or (M, B))."""
        raise NotImplementedError

    def per_sample_loss(self, x: Tensor, idx: Tensor | None = None) -> Tensor:
        return self.output_losses(self.forward(x, idx), self.batch_targets(idx))

    def half_grad_of_sample_sq_norms(self, x: Tensor) -> Tensor:
        """sum_n H(l_n) grad l_n in closed form, at the cost of one full Hessian-vector product (see FiniteSum).

        The direction grad l_n differs per sample, but it is rank one per layer: (delta_n x~_n^T, e_n a~_n^T) with
        the per-sample output error e_n = l'(u_n) and hidden error delta_n = phi'(z_n) * W2^T e_n.  Pearlmutter's
        R-operator (samsde.tasks._network_kernel) in that direction collapses to
            R{z} = (|x_n|^2 + 1) delta_n,   R{a} = phi' * R{z},   R{u} = (|a_n|^2 + 1) e_n + W2 R{a},
            R{e} = l''(u_n) R{u},   R{d} = W2^T R{e} + |e_n|^2 a_n,   R{delta} = phi' * R{d} + phi'' * R{z} * d_n
        and the sum over n is [sum_n R{delta} x~_n^T, sum_n (R{e} a_n^T + e_n R{a}^T), sum_n R{e}]:
        (N, M, h) tensors and two GEMMs, no per-sample gradient."""
        if not self.closed_form:
            return super().half_grad_of_sample_sq_norms(x)
        # chunks of paths, so that the (N, M_c, h) temporaries are small blocks the allocator recycles: fresh
        # pages cost more than the passes over them (see _Workspace); 2^16 elements measured 2x faster than 2^18
        step = max(1, self.curvature_chunk_elements // (self.n_data * self.layout.n_hidden))
        return torch.cat([self._half_grad_of_sample_sq_norms(x[i : i + step]) for i in range(0, x.shape[0], step)])

    def curvature_mean(self, x: Tensor, lin: Linearization, k: float) -> Tensor:
        """H grad f + k sum_i H_i c_i from the cache of the full linearization, in one R-operator pass
        (``NetworkLinearization.hvp_plus_sample_curvature``): with gbar = grad f - l2 x, Hbar = H - l2 I and
        sum_i H_i c_i = sum_i H(l_i) grad l_i - N Hbar gbar (see FiniteSum.sample_curvature),
            H grad f + k sum_i H_i c_i = H (grad f - k N gbar) + k N l2 gbar + k sum_i H(l_i) grad l_i."""
        if not isinstance(lin, NetworkLinearization):
            return super().curvature_mean(x, lin, k)
        kn = k * self.n_data
        gbar = lin.grad - self.l2 * x
        return lin.hvp_plus_sample_curvature(lin.grad - kn * gbar, k).add_(gbar, alpha=kn * self.l2)

    def _half_grad_of_sample_sq_norms(self, x: Tensor) -> Tensor:
        act, loss = self.activation, self.output_loss
        w1, b1, w2, b2 = self.layout.unpack(x)
        m, n_hidden, n_in = w1.shape
        n, o = self.n_data, w2.shape[1]
        w2, b2 = w2.transpose(0, 1), b2.reshape(m, o).T  # (o, M, h), (o, M): one output at a time
        pre = torch.mm(self.inputs, w1.reshape(m * n_hidden, n_in).T).view(n, m, n_hidden).add_(b1.view(1, m, -1))
        a = act.apply(pre, torch.empty_like(pre))
        # (N, M, o) views whose o planes (N, M) are contiguous, as the output loss expects them
        u = torch.stack([(a * w2[k]).sum(-1).add_(b2[k]) for k in range(o)]).permute(1, 2, 0)
        e = torch.empty_like(u)
        state = loss.derivatives(u, self.targets, e, torch.empty_like(u))
        d = sum(e[:, :, k : k + 1] * w2[k] for k in range(o))
        first = act.first(pre if act.needs_pre else None, a, torch.empty_like(pre))
        second = act.second(pre if act.needs_pre else None, a, first, torch.empty_like(pre))
        rz = first * d * self._inputs_sq_plus_one()
        ra = first * rz
        a_sq = (a * a).sum(-1).add_(1.0)
        ru = torch.stack([e[:, :, k] * a_sq + (ra * w2[k]).sum(-1) for k in range(o)]).permute(1, 2, 0)
        re = loss.hess_apply(state, ru, torch.empty_like(ru))
        rd = a * (e * e).sum(-1, keepdim=True)
        for k in range(o):
            rd.addcmul_(re[:, :, k : k + 1], w2[k])
        rdelta = first.mul_(rd).addcmul_(second, rz.mul_(d))
        g1 = torch.mm(self.inputs_augmented_t, rdelta.view(n, -1)).view(-1, m, n_hidden)  # (p+1, M, h)
        g2 = torch.stack([(a * re[:, :, k : k + 1]).sum(0) + (ra * e[:, :, k : k + 1]).sum(0) for k in range(o)], 1)
        return self.layout.pack(g1[:-1].permute(1, 2, 0), g1[-1], g2, re.sum(0))

    def _inputs_sq_plus_one(self) -> Tensor:
        """|x~_n|^2 = |x_n|^2 + 1 as (N, 1, 1)."""
        return ((self.inputs * self.inputs).sum(1) + 1.0).view(-1, 1, 1)

    def _inputs_outer_t(self) -> Tensor:
        """(x~_n x~_n^T) flattened, as ((p+1)^2, N): the left factor of sum_n s_n x~_n x~_n^T for all paths."""
        cached = self.__dict__.get("_outer")
        if cached is None or cached[0] is not self.inputs:
            xa = self.inputs_augmented
            outer = (xa.unsqueeze(2) * xa.unsqueeze(1)).reshape(xa.shape[0], -1).T.contiguous()
            cached = self.__dict__["_outer"] = (self.inputs, outer)
        return cached[1]

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

        check_params(Iris, n_hidden=n_hidden, l2=l2, init_scale=init_scale)
        data = load_iris()
        super().__init__(
            _standardize(data.data), torch.as_tensor(data.target), n_hidden, 3, l2=l2, init_scale=init_scale
        )

    def output_losses(self, logits: Tensor, targets: Tensor) -> Tensor:
        targets = targets.expand(logits.shape[:-1])
        logp = torch.log_softmax(logits, dim=-1)
        return -torch.gather(logp, -1, targets.unsqueeze(-1)).squeeze(-1)


class BreastCancer(OneHiddenLayerNet):
    """Breast Cancer Wisconsin (scikit-learn's bundled copy): sigmoid hidden layer, binary cross-entropy + L2."""

    name = "breast_cancer"
    activation = SIGMOID
    output_loss = BinaryCrossEntropyWithLogits()

    def __init__(self, n_hidden: int = 8, l2: float = 1e-3, init_scale: float = 0.5):
        from sklearn.datasets import load_breast_cancer

        check_params(BreastCancer, n_hidden=n_hidden, l2=l2, init_scale=init_scale)
        data = load_breast_cancer()
        super().__init__(
            _standardize(data.data), torch.as_tensor(data.target, dtype=DTYPE), n_hidden, 1, l2, init_scale
        )

    def output_losses(self, logits: Tensor, targets: Tensor) -> Tensor:
        logits = logits.squeeze(-1)
        targets = targets.expand(logits.shape)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")


class TeacherStudent(OneHiddenLayerNet):
    """A fixed tanh teacher network labels Gaussian inputs; a student of the same shape fits them (MSE + L2).

    Reconstructed setting (the paper's exact teacher is not known): inputs ~ N(0, I_p), teacher weights
    ~ N(0, 1/fan_in), all drawn from ``seed``.
    """

    name = "teacher_student"
    activation = TANH
    output_loss = HalfSquaredError()
    param_bounds = {
        **OneHiddenLayerNet.param_bounds,
        "n_in": Bound(1, "the inputs' dimension", integer=True),
        "n_samples": Bound(1, "the N samples of the finite sum", integer=True),
    }

    def __init__(
        self,
        n_in: int = 5,
        n_hidden: int = 4,
        n_samples: int = 200,
        l2: float = 1e-3,
        init_scale: float = 0.5,
        seed: int = 0,
    ):
        check_params(TeacherStudent, n_in=n_in, n_hidden=n_hidden, n_samples=n_samples, l2=l2, init_scale=init_scale)
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

    def output_losses(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return 0.5 * (outputs.squeeze(-1) - targets) ** 2
