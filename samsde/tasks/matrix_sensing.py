"""Matrix sensing: a low-rank matrix recovered from Gaussian linear measurements (a finite-sum task)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from samsde.seeding import make_generator
from samsde.tasks.base import DTYPE, Bound, FiniteSum, check_params


class MatrixSensing(FiniteSum):
    """Recover X* = U* U*^T (n x n, rank r) from m symmetric Gaussian measurements y_i = <A_i, X*>.

    f(U) = (1/m) sum_i (<A_i, U U^T> - y_i)^2 / 2 over U in R^{n x k} (x = vec U, d = n k); reconstructed setting.
    The initial point is small and random (scale ``init_scale``), the regime where implicit regularization matters.
    """

    name = "matrix_sensing"
    param_bounds = {
        "n": Bound(1, "the side of the n x n matrix", integer=True),
        "rank": Bound(1, "the rank of the target X*", integer=True),
        "k": Bound(1, "the columns of U, d = n k", integer=True),
        "n_measurements": Bound(1, "the N samples of the finite sum", integer=True),
        "init_scale": Bound(0, "the scale of the initial point"),
    }

    def __init__(
        self,
        n: int = 10,
        rank: int = 2,
        k: int = 10,
        n_measurements: int = 120,
        init_scale: float = 0.05,
        seed: int = 0,
    ):
        check_params(MatrixSensing, n=n, rank=rank, k=k, n_measurements=n_measurements, init_scale=init_scale)
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
