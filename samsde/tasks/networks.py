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
from samsde.tasks._network_kernel import NetworkLinearization, _Layout, _Workspace
from samsde.tasks.base import DTYPE, AutogradLinearization, FiniteSum, Linearization


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

    def to(self, device: torch.device | str) -> OneHiddenLayerNet:
        """A copy on ``device`` without the caches tied to the old device (the scratch workspace and the augmented
        inputs): the copy rebuilds them on first use, and the original keeps its own."""
        out = super().to(device)
        for cache in ("_workspace", "_inputs_augmented"):
            out.__dict__.pop(cache, None)
        return out

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
