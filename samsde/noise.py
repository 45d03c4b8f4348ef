"""Gradient-noise models: the law of Z in grad f_gamma(x) = grad f(x) + Z, and the matching SDE diffusion.

A noise model provides
- ``dim_w``: the dimension of the Brownian motion W that drives the SDE (d for additive noise, N for mini-batches);
- ``sqrt_apply(x, w)``: Sigma(x)^(1/2) w for w of shape (..., M, dim_w) -> (..., M, d), without a d x d matrix
  where possible (any matrix S with S S^T = Sigma serves);
- ``covariance(x)``: the dense Sigma(x), (d, d) or (M, d, d), for the ``exact`` diffusion and for tests;
- ``stochastic_gradient(task, y, draw)``: the discrete algorithms' gradient oracle at y for one draw.

For additive noise the draw is Z itself, built from Brownian increments so discrete runs and SDE paths can be
coupled (see :mod:`samsde.simulate`).  For mini-batch noise the draw is a per-path batch of indices.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from samsde.device import moved
from samsde.seeding import make_generator
from samsde.tasks import DTYPE, FiniteSum, Task


class NoiseModel:
    name: str
    dim_w: int
    additive: bool = True
    #: sigma when Sigma = sigma^2 I (the matrix-free SAM diffusion needs it), else None
    isotropic_sigma: float | None = None
    is_zero: bool = False
    device: torch.device = torch.device("cpu")

    def to(self, device: torch.device | str) -> NoiseModel:
        """A copy of the noise model with its tensors (and its task, for mini-batches) on ``device``."""
        return moved(self, device)

    def sqrt_apply(self, x: Tensor, w: Tensor) -> Tensor:
        raise NotImplementedError

    def covariance(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def sample(self, x: Tensor, n_inner: int, generator: torch.Generator) -> Tensor:
        """``n_inner`` independent draws of Z ~ N(0, Sigma(x)) per path: (n_inner, M, d), in float32.

        The draws feed the SAM SDE's inner Monte Carlo, whose 1/sqrt(n_inner) error dwarfs float32 rounding: randn
        is five times faster in float32 than in float64 on the CPU, and every later pass over the (n_inner, M, d)
        draws moves half the bytes.  They are drawn on the generator's device and moved to x's.
        """
        shape = (n_inner, x.shape[0], self.dim_w)
        w = torch.randn(shape, generator=generator, dtype=torch.float32, device=generator.device).to(x.device)
        return self.sqrt_apply(x, w)


class NoNoise(NoiseModel):
    """Full batch: Z = 0 and the SDEs reduce to gradient flows."""

    name = "none"
    is_zero = True
    isotropic_sigma = 0.0

    def __init__(self, dim: int):
        self.dim_w = dim

    def sqrt_apply(self, x: Tensor, w: Tensor) -> Tensor:
        return torch.zeros_like(w)

    def covariance(self, x: Tensor) -> Tensor:
        return torch.zeros(x.shape[-1], x.shape[-1], dtype=x.dtype, device=x.device)


class IsotropicGaussian(NoiseModel):
    """Z ~ N(0, sigma^2 I)."""

    name = "isotropic"

    def __init__(self, dim: int, sigma: float):
        if sigma < 0:
            raise ValueError(f"noise sigma must be >= 0, got {sigma}")
        self.dim_w = dim
        self.isotropic_sigma = float(sigma)
        # sigma = 0 is full batch: without this the first-order SAM diffusion divides 0 by 2 sigma (NaN)
        self.is_zero = self.isotropic_sigma == 0.0

    def sqrt_apply(self, x: Tensor, w: Tensor) -> Tensor:
        return self.isotropic_sigma * w

    def covariance(self, x: Tensor) -> Tensor:
        return self.isotropic_sigma**2 * torch.eye(self.dim_w, dtype=x.dtype, device=x.device)


class GaussianCovariance(NoiseModel):
    """Z ~ N(0, Sigma) with Sigma = sigma^2 A A^T / n, A a seeded d x 2d Gaussian matrix (n = 2d), or a given Sigma."""

    name = "psd"

    def __init__(self, dim: int, sigma: float, seed: int = 0, matrix: Tensor | None = None):
        if matrix is None:
            a = torch.randn(dim, 2 * dim, generator=make_generator(seed, "noise_covariance"), dtype=DTYPE)
            matrix = sigma**2 * a @ a.T / (2 * dim)
        self.sigma_matrix = (matrix + matrix.T) / 2
        evals, evecs = torch.linalg.eigh(self.sigma_matrix)
        if evals.min() < -1e-10 * evals.abs().max():
            raise ValueError(f"noise covariance is not PSD: smallest eigenvalue {evals.min().item():.3e}")
        # symmetric square root, so that S = S^T
        self.sqrt_matrix = (evecs * evals.clamp_min(0).sqrt()) @ evecs.T
        self.dim_w = dim

    def sqrt_apply(self, x: Tensor, w: Tensor) -> Tensor:
        return w @ self.sqrt_matrix.to(w)

    def covariance(self, x: Tensor) -> Tensor:
        return self.sigma_matrix.to(x)


class MiniBatch(NoiseModel):
    """Mini-batch noise: gamma is a uniformly random subset of size B, drawn independently per path and step.

    Sigma(x) = c (1/N) sum_i (g_i - gbar)(g_i - gbar)^T / B with g_i = grad f_i(x) and the finite-population
    correction c = (N - B) / (N - 1) of sampling without replacement (c = 1 would be sampling with replacement).
    A draw of N(0, Sigma(x)) is sqrt(c / (B N)) G_c^T xi with xi ~ N(0, I_N): one vector-Jacobian product.
    """

    name = "minibatch"
    additive = False

    def __init__(self, task: Task, batch_size: int):
        if not isinstance(task, FiniteSum):
            raise ValueError(f"minibatch noise needs a data task, got task {task.name!r}")
        n = task.n_data
        if not 1 <= batch_size <= n:
            raise ValueError(f"batch_size must be in [1, {n}] for task {task.name!r}, got {batch_size}")
        self.task = task
        self.batch_size = batch_size
        self.dim_w = n
        self.scale = math.sqrt((n - batch_size) / ((n - 1) * batch_size * n)) if n > 1 else 0.0
        self.is_zero = batch_size == n

    def sqrt_apply(self, x: Tensor, w: Tensor) -> Tensor:
        # G_c^T w = sum_i (w_i - mean(w)) g_i: centring the weights centres the gradients
        centred = w - w.mean(-1, keepdim=True)
        if w.dim() == 2:
            return self.scale * self.task.weighted_sample_grad(x, centred)
        flat = centred.reshape(-1, x.shape[0], self.dim_w)
        out = torch.stack([self.task.weighted_sample_grad(x, c) for c in flat])  # loop over inner draws, not paths
        return self.scale * out.reshape(*w.shape[:-1], x.shape[-1])

    def covariance(self, x: Tensor) -> Tensor:
        g = self.task.per_sample_grads(x)  # (M, N, d)
        gc = g - g.mean(1, keepdim=True)
        return self.scale**2 * gc.transpose(1, 2) @ gc

    @property
    def kappa(self) -> float:
        """kappa = (N - B) / (B (N - 1)): E[w w^T] = (kappa / N) (I - 1 1^T / N) for the batch weights
        w_i = 1[i in gamma] / B - 1/N (docs/concepts.md, "The mini-batch SDEs"); ``scale`` is sqrt(kappa / N)."""
        return self.scale**2 * self.task.n_data

    def draw_batches(self, n_paths: int, generator: torch.Generator) -> Tensor:
        """(M, B) indices, a uniformly random subset (without replacement) per path."""
        return draw_batches(n_paths, self.task.n_data, self.batch_size, generator).to(self.task.device)


def draw_batches(n_rows: int, n: int, batch_size: int, generator: torch.Generator) -> Tensor:
    """(n_rows, B) indices: per row a uniformly random B-subset of {0..n-1}, drawn on the CPU from ``generator``.

    Floyd's algorithm, vectorized over rows: for j = n - B, ..., n - 1 draw t uniform in {0..j} and keep t, or j if
    t is already in the row (every B-subset is then equally likely).  B passes over (n_rows, B) integers: 10x
    faster than the B smallest of n uniform keys (an (n_rows, n) sort or top-k) at n = 150-569.
    """
    out = torch.empty(n_rows, batch_size, dtype=torch.long)
    for step, j in enumerate(range(n - batch_size, n)):
        t = (torch.rand(n_rows, generator=generator, dtype=torch.float64) * (j + 1)).long()
        taken = (out[:, :step] == t.unsqueeze(1)).any(1)
        out[:, step] = torch.where(taken, torch.full_like(t, j), t)
    return out


NOISE_KINDS = ("none", "isotropic", "psd", "minibatch")


def make_noise(kind: str, task: Task, sigma: float = 0.0, batch_size: int | None = None, seed: int = 0) -> NoiseModel:
    """Build a noise model by name (``none``, ``isotropic``, ``psd``, ``minibatch``)."""
    if kind == "none":
        return NoNoise(task.dim)
    if kind == "isotropic":
        return IsotropicGaussian(task.dim, sigma)
    if kind == "psd":
        return GaussianCovariance(task.dim, sigma, seed=seed)
    if kind == "minibatch":
        if batch_size is None:
            raise ValueError("minibatch noise needs batch_size")
        return MiniBatch(task, batch_size)
    raise ValueError(f"unknown noise kind {kind!r}; known kinds: {list(NOISE_KINDS)}")
