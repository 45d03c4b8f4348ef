"""A finite-sum quadratic: the closed-form reference of the mini-batch SDEs (docs/concepts.md, "The mini-batch SDEs").

    f_i(x) = (x - a_i)^T A_i (x - a_i) / 2,   f = (1/N) sum_i f_i   (no L2 term)

Every per-sample Hessian H_i = A_i is constant, so the mini-batch moments of USAM are polynomials in x:
grad f_i = A_i (x - a_i), H_gamma = (1/B) sum_{i in gamma} A_i, and for a small N every expectation over batches is
a finite sum over all C(N, B) of them (``all_batches``).
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

from samsde.seeding import make_generator
from samsde.tasks.base import DTYPE, ConstantHessian, FiniteSum, Linearization


class FiniteSumQuadratic(FiniteSum):
    """N quadratics with seeded SPD A_i = G_i G_i^T / d + 0.2 I and centres a_i ~ N(0, I)."""

    name = "finite_sum_quadratic"

    def __init__(self, n_data: int = 6, dim: int = 3, seed: int = 0):
        gen = make_generator(seed, "finite_sum_quadratic")
        g = torch.randn(n_data, dim, dim, generator=gen, dtype=DTYPE)
        self.a_mats = g @ g.transpose(1, 2) / dim + 0.2 * torch.eye(dim, dtype=DTYPE)  # (N, d, d)
        self.centres = torch.randn(n_data, dim, generator=gen, dtype=DTYPE)  # (N, d)
        self.n_data, self.dim = n_data, dim

    def per_sample_loss(self, x: Tensor, idx: Tensor | None = None) -> Tensor:
        if idx is None:
            diff = x.unsqueeze(1) - self.centres  # (M, N, d)
            return 0.5 * torch.einsum("mni,nij,mnj->mn", diff, self.a_mats, diff)
        diff = x.unsqueeze(1) - self.centres[idx]  # (M, B, d)
        return 0.5 * torch.einsum("mbi,mbij,mbj->mb", diff, self.a_mats[idx], diff)

    def sample_grads(self, x: Tensor) -> Tensor:
        """grad f_i(x) = A_i (x - a_i), (M, N, d)."""
        return torch.einsum("nij,mnj->mni", self.a_mats, x.unsqueeze(1) - self.centres)

    def linearize(self, x: Tensor) -> Linearization:
        return ConstantHessian(self.sample_grads(x).mean(1), self.a_mats.mean(0))

    def all_batches(self, batch_size: int) -> Tensor:
        """Every subset of size B, (C(N, B), B): a uniform batch is a uniform row."""
        return torch.tensor(list(itertools.combinations(range(self.n_data), batch_size)))
