"""Small-scale reconstructions of the lecture's SAM background (paper-notes section 7), math only.

Two groups of tools:

* Neural-network experiments on a data set that ships with scikit-learn: a seeded train/test split with
  standardized features (:func:`load_dataset`), a small MLP with a seeded init (:func:`make_mlp`), one training
  loop for SGD, SAM and USAM (:func:`train`) and its evaluation (:func:`evaluate`).  Every random stream is a
  ``torch.Generator`` from :func:`samsde.seeding.make_generator`, passed in by the caller.
* Full-batch SAM on toy landscapes ("bouncing across ravines"): the closed-form two-cycle of SAM on a quadratic
  (:func:`quadratic_two_cycle_amplitude`), a detector of two-point oscillations (:func:`two_cycle_summary`) and a
  valley whose curvature varies along its floor (:class:`Valley`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from samsde.algorithms import ALGORITHMS, discrete_step, get
from samsde.sharpness import flat_loss_fn, hvp

__all__ = [
    "DATASETS",
    "METHODS",
    "Dataset",
    "TrainResult",
    "TwoCycle",
    "Valley",
    "dataset_from_config",
    "evaluate",
    "fit_mlp",
    "mlp_from_config",
    "solution_metrics",
    "keskar_radius",
    "load_dataset",
    "make_mlp",
    "mean_ci",
    "bootstrap_gap_closed",
    "split_validation",
    "line_curvature",
    "make_optimizer",
    "quadratic_two_cycle_amplitude",
    "random_rotation",
    "run_full_batch",
    "train",
    "train_loss_closure",
    "two_cycle_summary",
]

DATASETS = ("digits", "breast_cancer")
#: the registered algorithms that have a torch optimizer (what the lecture's training loop can run)
METHODS = tuple(name for name, a in ALGORITHMS.items() if a.has_torch_optimizer)
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}
DTYPES = {"float32": torch.float32, "float64": torch.float64}


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


class Dataset(NamedTuple):
    """Standardized features and integer labels of a seeded train/test split."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_classes(self) -> int:
        return int(torch.cat([self.y_train, self.y_test]).max().item()) + 1


def load_dataset(
    name: str, test_fraction: float, generator: torch.Generator, dtype: torch.dtype = torch.float64
) -> Dataset:
    """``load_digits`` (1797 x 64, 10 classes) or ``load_breast_cancer`` (569 x 30, 2 classes), split at random.

    The permutation comes from ``generator``; the test set is its first ``round(test_fraction * n)`` samples.
    Features are standardized with the training set's mean and standard deviation (constant features, e.g.
    the always-blank border pixels of the digits, are only centred), so no test statistic leaks into training.
    """
    from sklearn import datasets  # late import: keeps ``import samsde`` light

    loaders = {"digits": datasets.load_digits, "breast_cancer": datasets.load_breast_cancer}
    if name not in loaders:
        raise ValueError(f"unknown dataset {name!r}; known: {list(DATASETS)}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    bunch = loaders[name]()
    x = torch.as_tensor(bunch.data, dtype=dtype)
    y = torch.as_tensor(bunch.target, dtype=torch.long)
    perm = torch.randperm(x.shape[0], generator=generator)
    n_test = round(test_fraction * x.shape[0])
    test, tr = perm[:n_test], perm[n_test:]
    mean, std = x[tr].mean(0), x[tr].std(0)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return Dataset((x[tr] - mean) / std, y[tr], (x[test] - mean) / std, y[test])


def split_validation(data: Dataset, fraction: float, generator: torch.Generator) -> Dataset:
    """Hold out ``round(fraction * n_train)`` random training samples as a validation set.

    Returns a :class:`Dataset` whose *test* fields hold the validation samples: hyperparameters chosen on it
    never see the test set.  Features keep the standardization of ``data``.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    n = data.x_train.shape[0]
    perm = torch.randperm(n, generator=generator)
    n_val = round(fraction * n)
    val, tr = perm[:n_val], perm[n_val:]
    return Dataset(data.x_train[tr], data.y_train[tr], data.x_train[val], data.y_train[val])


# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------


def make_mlp(
    n_in: int,
    hidden: list[int],
    n_out: int,
    activation: str,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float64,
) -> nn.Sequential:
    """Fully connected network ``n_in -> hidden... -> n_out`` with ``activation`` between layers.

    Weights and biases are drawn from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's default ``nn.Linear``
    init) with ``generator``, so the init is reproducible without touching the global RNG.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; known: {list(ACTIVATIONS)}")
    sizes = [n_in, *hidden, n_out]
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        linear = nn.Linear(fan_in, fan_out, dtype=dtype)
        bound = 1.0 / math.sqrt(fan_in)
        with torch.no_grad():
            for p in (linear.weight, linear.bias):
                p.copy_((torch.rand(p.shape, generator=generator, dtype=dtype) * 2 - 1) * bound)
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def dataset_from_config(seed: int, data_cfg: dict, model_cfg: dict) -> Dataset:
    """The config's data set (``data_cfg``: dataset, test_fraction) in the model's dtype.

    The split's stream is ``make_generator(seed, "lecture", "split", dataset)``: every lecture experiment sees the
    same split.
    """
    from samsde.seeding import make_generator

    generator = make_generator(seed, "lecture", "split", data_cfg["dataset"])
    return load_dataset(data_cfg["dataset"], data_cfg["test_fraction"], generator, DTYPES[model_cfg["dtype"]])


def mlp_from_config(model_cfg: dict, data: Dataset, generator: torch.Generator) -> nn.Sequential:
    """The config's MLP (``model_cfg``: hidden, activation, dtype) sized for ``data``, init drawn from ``generator``."""
    return make_mlp(
        data.n_features, model_cfg["hidden"], data.n_classes, model_cfg["activation"], generator,
        DTYPES[model_cfg["dtype"]],
    )  # fmt: skip


# ---------------------------------------------------------------------------
# Training and evaluation
# ---------------------------------------------------------------------------


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
    data: Dataset, model_cfg: dict, init: torch.Generator, batches: torch.Generator, **train_kwargs
) -> tuple[nn.Sequential, TrainResult]:
    """A fresh MLP initialized from ``init`` and trained by :func:`train` on ``data``'s training set."""
    model = mlp_from_config(model_cfg, data, init)
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


# ---------------------------------------------------------------------------
# Statistics over seeds
# ---------------------------------------------------------------------------


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float, float]:
    """Mean, standard error and Student-t confidence interval ``mean +- t_{n-1} s.e.`` of i.i.d. values.

    Used on per-seed values and on per-seed paired differences (same init and batch order), where the
    pairing removes the seed-to-seed variation common to both arms.
    """
    from scipy import stats

    x = torch.from_numpy(np.asarray(values, dtype=np.float64)).flatten()  # also takes a pandas Series
    n = x.numel()
    if n < 2:
        raise ValueError(f"need at least two values, got {n}")
    mean = x.mean().item()
    se = (x.std(correction=1) / math.sqrt(n)).item()
    half = stats.t.ppf(0.5 + level / 2, n - 1) * se
    return mean, se, mean - half, mean + half


def bootstrap_gap_closed(
    small: Tensor, large: Tensor, fixed: Tensor, n_boot: int, generator: torch.Generator, level: float = 0.95
) -> tuple[float, float, float]:
    """Share of the large-batch gap that a fix closes, ``(mean L - mean F) / (mean L - mean S)``, with a CI.

    ``small``, ``large``, ``fixed`` are per-seed errors of the small-batch, large-batch and fixed large-batch
    runs, paired by seed; seeds are resampled with replacement (percentile bootstrap).  1 means the gap is
    closed, 0 that nothing changed, > 1 that the fix beats the small batch.  Replicates whose gap is not
    positive have no meaningful share and count as NaN (ignored by the percentiles).
    """
    small, large, fixed = (torch.as_tensor(v, dtype=torch.float64) for v in (small, large, fixed))

    def share(s: Tensor, la: Tensor, f: Tensor) -> Tensor:
        gap = la.mean(-1) - s.mean(-1)
        return torch.where(gap > 0, (la.mean(-1) - f.mean(-1)) / gap, torch.full_like(gap, math.nan))

    value = share(small, large, fixed).item()
    idx = torch.randint(0, small.numel(), (n_boot, small.numel()), generator=generator)
    reps = share(small[idx], large[idx], fixed[idx])
    reps = reps[torch.isfinite(reps)]
    if reps.numel() == 0:
        return value, math.nan, math.nan
    q = torch.quantile(reps, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64))
    return value, q[0].item(), q[1].item()


# ---------------------------------------------------------------------------
# Full-batch SAM on toy landscapes
# ---------------------------------------------------------------------------


def quadratic_two_cycle_amplitude(lam: float, eta: float, rho: float) -> float:
    """Amplitude ``a`` of full-batch SAM's two-cycle ``x -> -x`` on ``f(x) = lam x^2 / 2``.

    One step from ``x > 0`` is ``x+ = x - eta lam (x + rho)`` (SAM's ascent point is ``x + rho sign(x)``);
    ``x+ = -x`` gives ``a (2 - eta lam) = eta lam rho``, i.e. ``a = eta lam rho / (2 - eta lam)``.  The cycle
    attracts every ``x != 0`` when ``0 < eta lam < 2``: near it the map is affine with slope ``1 - eta lam``.
    In ``d`` dimensions the cycle ``+-a v_1`` along the top eigenvector ``v_1`` of ``H`` is attracting too: at
    the cycle the other coordinates are multiplied by ``1 - eta lam_i - (lam_i / lam_1)^2 (2 - eta lam_1)``,
    which lies in ``(-1, 1)`` for ``0 < lam_i < lam_1``.
    """
    h = eta * lam
    if not (lam > 0 and 0 < h < 2 and rho >= 0):
        raise ValueError(f"need lam > 0, 0 < eta lam < 2, rho >= 0; got lam={lam}, eta={eta}, rho={rho}")
    return h * rho / (2 - h)


class TwoCycle(NamedTuple):
    """Summary of a sequence ``p_k`` over a window: is it ``+-amplitude`` alternating?"""

    amplitude: float  # mean |p_k|
    amplitude_spread: float  # (max |p_k| - min |p_k|) / mean |p_k|
    alternation: float  # share of consecutive pairs with p_k p_{k+1} < 0


def two_cycle_summary(p: Tensor) -> TwoCycle:
    """Detect a two-point oscillation in the 1-D sequence ``p`` (e.g. the projection on the top eigenvector).

    A two-cycle ``+a, -a, +a, ...`` has ``alternation = 1`` and ``amplitude_spread = 0``.
    """
    if p.dim() != 1 or p.numel() < 2:
        raise ValueError(f"p must be 1-D with >= 2 entries, got shape {tuple(p.shape)}")
    mag = p.abs()
    mean = mag.mean().item()
    spread = (mag.max() - mag.min()).item() / mean if mean > 0 else math.nan
    alternation = (p[1:] * p[:-1] < 0).double().mean().item()
    return TwoCycle(mean, spread, alternation)


def random_rotation(d: int, generator: torch.Generator, dtype: torch.dtype = torch.float64) -> Tensor:
    """A Haar-random orthogonal matrix (QR of a Gaussian matrix with the sign convention that makes it uniform)."""
    q, r = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=dtype))
    return q * torch.sign(torch.diagonal(r))


def run_full_batch(
    algorithm: str, grad_fn: Callable[[Tensor], Tensor], x0: Tensor, eta: float, rho: float, n_steps: int
) -> Tensor:
    """Iterates ``x_0 .. x_n`` of full-batch ``algorithm`` (``sgd`` = gradient descent, ``sam``, ``usam``, ...).

    ``x0`` is ``(M, d)`` (one row per run); returns ``(n_steps + 1, M, d)``.  Each step is
    :func:`samsde.algorithms.discrete_step` with noise ``z = 0``.
    """
    xs = [x0]
    zero = torch.zeros_like(x0)
    for _ in range(n_steps):
        xs.append(discrete_step(algorithm, xs[-1], grad_fn, zero, eta, rho))
    return torch.stack(xs)


class Valley:
    """A ravine whose curvature across it decreases along its floor.

        f(x, y) = a(y) x^2 / 2 + slope * y,   a(y) = a_min + (a_max - a_min) (1 - tanh(y / width)) / 2

    The floor is ``x = 0``; across it the curvature is ``a(y)``, which falls smoothly from ``a_max``
    (``y -> -inf``) to ``a_min`` (``y -> +inf``).  ``slope > 0`` tilts the floor down toward the sharp end, so
    gradient descent drifts to *sharper* regions while SAM has to climb to reach flatter ones.  Points are
    ``(M, 2)`` tensors ``[x, y]``.
    """

    def __init__(self, a_max: float, a_min: float, width: float, slope: float = 0.0) -> None:
        if not (a_max > a_min > 0 and width > 0):
            raise ValueError(f"need a_max > a_min > 0 and width > 0, got {a_max}, {a_min}, {width}")
        self.a_max, self.a_min, self.width, self.slope = a_max, a_min, width, slope

    def curvature(self, y: Tensor) -> Tensor:
        """``a(y)`` and its first two derivatives, stacked on a new last axis."""
        t = torch.tanh(y / self.width)
        c = (self.a_max - self.a_min) / 2
        a = self.a_min + c * (1 - t)
        da = -c * (1 - t**2) / self.width
        dda = 2 * c * t * (1 - t**2) / self.width**2
        return torch.stack([a, da, dda], dim=-1)

    def loss(self, p: Tensor) -> Tensor:
        x, y = p[..., 0], p[..., 1]
        return 0.5 * self.curvature(y)[..., 0] * x**2 + self.slope * y

    def grad(self, p: Tensor) -> Tensor:
        x, y = p[..., 0], p[..., 1]
        a, da, _ = self.curvature(y).unbind(-1)
        return torch.stack([a * x, 0.5 * da * x**2 + self.slope], dim=-1)

    def hessian(self, p: Tensor) -> Tensor:
        x, y = p[..., 0], p[..., 1]
        a, da, dda = self.curvature(y).unbind(-1)
        off = da * x
        return torch.stack([torch.stack([a, off], -1), torch.stack([off, 0.5 * dda * x**2], -1)], -2)

    def lambda_max(self, p: Tensor) -> Tensor:
        """Largest Hessian eigenvalue at each point (closed form of the symmetric 2 x 2 case)."""
        h = self.hessian(p)
        mean = 0.5 * (h[..., 0, 0] + h[..., 1, 1])
        half_gap = torch.sqrt((0.5 * (h[..., 0, 0] - h[..., 1, 1])) ** 2 + h[..., 0, 1] ** 2)
        return mean + half_gap
