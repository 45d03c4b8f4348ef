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
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from samsde.seeding import make_generator

DTYPE = torch.float64


class Task:
    """A smooth objective, batched over paths.  Subclasses implement :meth:`loss` (and may override the rest)."""

    name: str = "task"
    dim: int
    n_data: int | None = None

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

    def hessian(self, x: Tensor) -> Tensor:
        """Dense Hessian ``(M, d, d)`` from d Hessian-vector products batched into one call (small d only)."""
        m, d = x.shape
        x_rep = x.repeat_interleave(d, dim=0)
        basis = torch.eye(d, dtype=x.dtype, device=x.device).repeat(m, 1)
        return self.hvp(x_rep, basis).reshape(m, d, d)

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
        dim: int = 10,
        spectrum: list[float] | None = None,
        seed: int = 0,
        x0: list[float] | None = None,
        rotate: bool = False,
    ):
        gen = make_generator(seed, "quadratic")
        if spectrum is not None:
            spectrum_t = torch.as_tensor(spectrum, dtype=DTYPE)
            dim = spectrum_t.numel()
            q = _random_orthogonal(dim, gen) if rotate else torch.eye(dim, dtype=DTYPE)
            self.H = (q * spectrum_t) @ q.T
        else:
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


class OneHiddenLayerNet(FiniteSum):
    """Per-path network out = act(X W1^T + b1) W2^T + b2 evaluated for all M paths with batched matmuls."""

    activation: Callable[[Tensor], Tensor] = staticmethod(lambda h: h)

    def __init__(self, inputs: Tensor, targets: Tensor, n_hidden: int, n_out: int, l2: float, init_scale: float):
        self.inputs = inputs.to(DTYPE)
        self.targets = targets
        self.layout = _Layout(self.inputs.shape[1], n_hidden, n_out)
        self.dim = self.layout.dim
        self.n_data = self.inputs.shape[0]
        self.l2 = l2
        self.init_scale = init_scale

    def forward(self, x: Tensor, idx: Tensor | None) -> Tensor:
        w1, b1, w2, b2 = self.layout.unpack(x)
        inputs = self.inputs if idx is None else self.inputs[idx]  # (N, p) or (M, B, p)
        hidden = self.activation(torch.matmul(inputs, w1.transpose(1, 2)) + b1)
        return torch.matmul(hidden, w2.transpose(1, 2)) + b2  # (M, N or B, n_out)

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
    activation = staticmethod(torch.sigmoid)

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
    activation = staticmethod(torch.tanh)

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
