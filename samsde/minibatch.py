"""The paper's mini-batch SDEs (docs/concepts.md): moments from real mini-batches, not Gaussian surrogates.

Notation: f = (1/N) sum_i f_i; a batch gamma is a uniform B-subset drawn without replacement, g_gamma = grad f_gamma
and H_gamma its gradient and Hessian (L2 included); w_i = 1[i in gamma] / B - 1/N, kappa = (N - B) / (B (N - 1)),
Sigma = Cov(g_gamma) = S S^T with S = sqrt(kappa/N) G_c^T (``noise.MiniBatch``).  An algorithm whose ascent step is
rho v_gamma (``Algorithm.perturbation`` at rho = 1: v = g_gamma for USAM, g_gamma / |grad f| for DNSAM,
g_gamma / |g_gamma| for SAM) has, with h_gamma = H_gamma v_gamma,

    dX = -(grad f + rho m) dt + sqrt(eta) (Sigma + rho (K + K^T))^(1/2) dW,
    m = E[h_gamma],  K = Cov(g_gamma, h_gamma).

- m: closed form where the finite sum gives one (``Algorithm.minibatch_mean``: USAM's
  E[H_gamma g_gamma] = H grad f + (kappa/N) sum_i H_i c_i, :func:`batch_curvature_mean`; DNSAM's is that over
  |grad f|), else the mean of h over the inner sample (SAM).
- The inner sample (:class:`BatchSample`): n_inner real batches per path and step, one batch gradient and one
  batch Hessian-vector product each, all paths and draws in one batched call.
- ``first_order`` diffusion, matrix-free, Brownian dimension N: B xi = S xi + rho D^T xi with
  D^T xi = Cov_k(h_k, w_k . xi) / sqrt(kappa/N) (the sample cross-covariance over the inner draws, unbiased), so
  B B^T = Sigma + rho (K + K^T) + rho^2 D^T D.  No (M, N, d) tensor: w_k . xi is a gather of xi at the batch.
- ``exact`` diffusion: the dense Sigma + rho (K^ + K^^T) from the same inner sample, K^ = Cov_k(g_k, h_k) (= S D^),
  and its symmetric root (samsde.sde).
- ``linear`` diffusion (USAM, DNSAM: ``Algorithm.minibatch_linear_root``), no inner sample: with g_gamma =
  grad f + sum_i w_i grad f_i and H_gamma = H + sum_i w_i H_i, USAM's h_gamma - m is linear in w up to its quadratic
  part q(w) - E q, q(w) = sum_ij w_i w_j H_i grad f_j.  The linear part has the noise-free root (:func:`linear_root`)
      D_lin^T xi = sqrt(kappa/N) [(sum_i c_i H_i) grad f + H G^T c],   c = xi - mean(xi),  G^T c = sum_i c_i grad f_i
  (the centring removes the L2 term), over |grad f| for DNSAM, and B xi = S xi + rho D_lin^T xi: linear in xi with
  leading term S xi, the SGD SDE's noise.  B B^T = Sigma + rho (K_lin + K_lin^T) + rho^2 D_lin^T D_lin with
  K_lin = S D_lin; K - K_lin = E[(G^T w) q(w)^T] is a third moment of w and enters the generator at O(eta rho),
  O(eta^1.5) under rho = c sqrt(eta).  ``auto``: ``linear`` where the algorithm has the root, else ``sampled`` (SAM).
Applying the additive-noise formulas of section 3 to mini-batch noise instead (``minibatch_formula="additive"``)
drops the drift term (rho/2) grad tr Sigma and the randomness of H_gamma in K: a named ablation, never the default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from samsde.noise import draw_batches

if TYPE_CHECKING:
    from samsde.sde import Point, SDEModel


@dataclass
class BatchSample:
    """The inner Monte Carlo at one point: K batches per path, their gradients g_k and h_k = H_gamma_k v_k."""

    idx: Tensor  # (K, M, B) batch indices
    g: Tensor  # (K, M, d) batch gradients
    h: Tensor  # (K, M, d)
    scale: float  # sqrt(kappa / N)

    def __post_init__(self):
        self.mean_h = self.h.mean(0)
        self._h_centred = self.h - self.mean_h

    def d_transpose_apply(self, xi: Tensor) -> Tensor:
        """D^T xi = Cov_k(h_k, w_k . xi) / sqrt(kappa/N) per path, (M, d), for xi: (M, N).

        w_k . xi = mean_{i in gamma_k} xi_i - mean_i xi_i; the second term is the same for every k and cancels in
        the covariance."""
        k = self.idx.shape[0]
        dots = torch.gather(xi.unsqueeze(0).expand(k, -1, -1), 2, self.idx).mean(-1)  # (K, M)
        dots = dots - dots.mean(0)
        return (self._h_centred * dots.unsqueeze(-1)).sum(0) / ((k - 1) * self.scale)

    def sampled_root_apply(self, zeta: Tensor, rho: float) -> Tensor:
        """sum_k ((g_k - gbar) + rho (h_k - hbar)) zeta_k / sqrt(K - 1) per path, (M, d), for zeta: (M, K).

        Its covariance over zeta is the inner sample's covariance of g + rho h, an unbiased estimate of
        Sigma + rho (K + K^T) + rho^2 Cov(h): the one-step covariance of the discrete step itself."""
        k = self.g.shape[0]
        centred = (self.g - self.g.mean(0)).add_(self._h_centred, alpha=rho)
        return (centred * zeta.T.unsqueeze(-1)).sum(0) / (k - 1) ** 0.5

    def cross_covariance(self) -> Tensor:
        """K^ = Cov_k(g_k, h_k), (M, d, d), the unbiased sample cross-covariance."""
        k = self.g.shape[0]
        g_centred = self.g - self.g.mean(0)
        return torch.einsum("kmi,kmj->mij", g_centred, self._h_centred) / (k - 1)


class BatchDraws:
    """The batches of the inner sample, drawn from a generator and held for ``hold`` evaluations in a row.

    An SDE integrated at q r steps per eta with ``hold = q`` and the same generator as its r-step twin evaluates
    its coefficients on the very batches the twin uses, two (q) substeps each: the batches are part of the driving
    noise, like the Brownian path, so E_r - E_2r measures the solver's bias and not the inner sample's noise.
    With ``pairs`` (antithetic paths, :func:`samsde.simulate.simulate`) paths m and m + M/2 share their batches, as
    they share their Brownian path up to its sign."""

    def __init__(self, generator: torch.Generator, hold: int = 1, pairs: bool = False):
        self.generator, self.hold, self.pairs = generator, hold, pairs
        self._idx: Tensor | None = None
        self._uses = 0

    def __call__(self, n_rows: int, n: int, batch_size: int) -> Tensor:
        if self._idx is None or self._uses == self.hold or self._idx.shape[0] != n_rows:
            self._idx, self._uses = draw_batches(n_rows, n, batch_size, self.generator), 0
        self._uses += 1
        return self._idx

    def rows(self, k: int, m: int, n: int, batch_size: int) -> Tensor:
        """(k m, B) indices, row j m + i for draw j of path i (paths i and i + m/2 alike with ``pairs``)."""
        if not self.pairs:
            return self(k * m, n, batch_size)
        half = self(k * (m // 2), n, batch_size).view(k, m // 2, batch_size)
        return half.repeat(1, 2, 1).view(k * m, batch_size)


def sample(model: SDEModel, p: Point) -> BatchSample:
    """Draw the inner sample at p: ``model.inner_samples`` batches per path (``model.batch_draws``)."""
    task, noise, algorithm = model.task, model.noise, model.sampled_algorithm
    k, (m, d) = model.inner_samples, p.x.shape
    idx = model.batch_draws.rows(k, m, task.n_data, noise.batch_size).to(p.x.device)  # row j m + i: path i
    lin = task.batch_linearize(p.x.repeat(k, 1), idx)
    v = algorithm.perturbation(lin.grad, lambda: p.grad.repeat(k, 1), 1.0)  # grad f: only DNSAM asks for it
    h = lin.hvp(v)
    return BatchSample(idx.view(k, m, -1), lin.grad.view(k, m, d), h.view(k, m, d), noise.scale)


def batch_curvature_mean(model: SDEModel, p: Point) -> Tensor:
    """E[H_gamma g_gamma] = H grad f + (kappa/N) sum_i H_i c_i, exactly (the finite-sum identity; it equals
    grad E[|g_gamma|^2 / 2] = H grad f + (1/2) grad tr Sigma): ``FiniteSum.curvature_mean`` (the networks: one
    fused pass over the samples from the full linearization's cache)."""
    return model.task.curvature_mean(p.x, p.lin, model.noise.scale**2)


def linear_root(model: SDEModel, p: Point, c: Tensor) -> tuple[Tensor, Tensor]:
    """(S xi, D_lin^T xi) for USAM's ascent direction v_gamma = g_gamma, (M, d) each, with c = xi - mean(xi): (M, N).

    S xi = sqrt(kappa/N) G^T c and D_lin^T xi = sqrt(kappa/N) [(sum_i c_i H_i) grad f + H G^T c], with
    G^T c = sum_i c_i grad l_i: one weighted linearization of sum_i c_i l_i (its gradient G^T c and one product
    with grad f) and one full-batch product H (G^T c); no inner sample."""
    weighted = model.task.weighted_linearize(p.x, c)
    gc = weighted.grad
    root = weighted.hvp(p.grad).add_(p.lin.hvp(gc))
    scale = model.noise.scale
    return gc.mul_(scale), root.mul_(scale)


def _ascent(model: SDEModel, algorithm) -> bool:
    return algorithm.perturbs and model.rho > 0


def drift(model: SDEModel, p: Point) -> Tensor:
    """-(grad f + rho m)."""
    algorithm = model.drift_algorithm
    if not _ascent(model, algorithm):
        return -p.grad
    m = algorithm.minibatch_mean(model, p)
    return -(p.grad + model.rho * (p.inner.mean_h if m is None else m))


def diffusion(model: SDEModel, p: Point, xi: Tensor) -> Tensor:
    """S xi + rho D^T xi (without the factor sqrt(eta)), xi: (M, N)."""
    if not _ascent(model, model.diffusion_algorithm):
        return model.noise.sqrt_apply(p.x, xi)
    if model.mode == "sampled":
        return p.inner.sampled_root_apply(xi[:, : model.inner_samples], model.rho)
    if model.mode == "linear":
        s_xi, root = model.diffusion_algorithm.minibatch_linear_root(model, p, xi - xi.mean(-1, keepdim=True))
        return s_xi.add_(root, alpha=model.rho)
    return model.noise.sqrt_apply(p.x, xi) + model.rho * p.inner.d_transpose_apply(xi)


def diffusion_matrix(model: SDEModel, p: Point, sigma: Tensor) -> Tensor:
    """Sigma + rho (K^ + K^^T), (M, d, d)."""
    if not _ascent(model, model.diffusion_algorithm):
        return sigma
    k = p.inner.cross_covariance()
    return sigma + model.rho * (k + k.transpose(-1, -2))


def needs_sample(model: SDEModel) -> bool:
    """Whether the model draws an inner sample: the diffusion's ascent term, or a drift without a closed form."""
    drift_needs = _ascent(model, model.drift_algorithm) and not model.drift_algorithm.has_minibatch_mean
    return drift_needs or (_ascent(model, model.diffusion_algorithm) and model.mode != "linear")


def resolve_mode(model: SDEModel, mode: str) -> str:
    """The diffusion mode a mini-batch SDE runs: ``auto`` is ``linear`` unless the diffusion's algorithm takes an
    ascent step without a noise-free linear root (SAM: ``sampled``); ``linear`` for such an algorithm is an error."""
    algorithm = model.diffusion_algorithm
    rootless = _ascent(model, algorithm) and not algorithm.has_minibatch_linear_root
    if mode == "auto":
        return "sampled" if rootless else "linear"
    if mode == "linear" and rootless:
        raise ValueError(
            f"diffusion mode 'linear' needs a noise-free linear root, which {algorithm.label} ({algorithm.name!r}) "
            "does not have (its h_gamma is not linear in the batch weights): use 'sampled', 'first_order' or 'auto'"
        )
    return mode
