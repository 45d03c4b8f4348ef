"""Curvature from Hessian-vector products: Lanczos (extreme eigenvalues, top-k spectrum), stochastic Lanczos
quadrature (spectral density) and Hutchinson's trace estimator."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from samsde.sharpness._core import (
    LossClosure,
    _check_int,
    _check_positive,
    _check_theta,
    _gaussian,
    _hessian_operator,
    _rademacher,
)
from samsde.stats import Estimate, mean_stderr


class EigenPair(NamedTuple):
    """An (approximate) eigenvalue of the Hessian and its unit eigenvector."""

    value: float
    vector: Tensor


class SpectralDensity(NamedTuple):
    """A smoothed spectral density ``density[i] ~ phi(grid[i])``."""

    grid: Tensor
    density: Tensor


def _tridiagonal_eigh(alphas: list[float], betas: list[float]) -> tuple[Tensor, Tensor]:
    """Eigen-decomposition of the symmetric tridiagonal Lanczos matrix ``T``.

    Done in float64 whatever the model dtype: ``T`` is tiny and its accuracy
    bounds the accuracy of every Ritz value.
    """
    t = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if betas:
        off = torch.tensor(betas, dtype=torch.float64)
        t = t + torch.diag(off, 1) + torch.diag(off, -1)
    return torch.linalg.eigh(t)


class _Lanczos(NamedTuple):
    alphas: list[float]
    betas: list[float]  # off-diagonal of T; a 0.0 marks a restart
    basis: Tensor  # (m, d), orthonormal rows
    last_beta: float  # norm of the final residual, for error bounds


def _lanczos(
    matvec: Callable[[Tensor], Tensor],
    v0: Tensor,
    n_steps: int,
    *,
    restart: Callable[[], Tensor] | None = None,
    converged: Callable[[list[float], list[float], float], bool] | None = None,
) -> _Lanczos:
    """Symmetric Lanczos with full reorthogonalization.

    Builds an orthonormal basis ``Q`` (rows) and a tridiagonal
    ``T = Q H Q^T`` with diagonal ``alphas`` and off-diagonal ``betas`` such
    that ``H Q^T = Q^T T + last_beta q_{m+1} e_m^T``.  Eigenvalues of ``T``
    (Ritz values) approximate extreme eigenvalues of ``H``; a Ritz pair
    ``(t, s)`` has residual ``||H Q^T s - t Q^T s|| = last_beta |s_m|``.

    If the Krylov space becomes invariant (``beta ~ 0``) the run stops, or,
    when ``restart`` is given, continues from a fresh vector orthogonal to the
    basis with a zero coupling in ``T``; the latter lets repeated eigenvalues
    appear with their multiplicity.
    """
    d = v0.numel()
    n_steps = min(n_steps, d)
    basis = v0.new_zeros(n_steps, d)
    alphas: list[float] = []
    betas: list[float] = []
    eps = torch.finfo(v0.dtype).eps
    q = v0 / torch.linalg.vector_norm(v0)
    beta = 0.0
    for j in range(n_steps):
        basis[j] = q
        w = matvec(q)
        alphas.append(torch.dot(q, w).item())
        # Classical Gram-Schmidt against the whole basis, applied twice
        # ("twice is enough"), replaces the three-term recurrence.  Without it
        # rounding errors destroy orthogonality once a Ritz value converges and
        # spurious duplicate eigenvalues ("ghosts") appear.
        active = basis[: j + 1]
        for _ in range(2):
            w = w - active.T @ (active @ w)
        beta = torch.linalg.vector_norm(w).item()
        if j == n_steps - 1:
            break
        scale = max(max(abs(a) for a in alphas), max(betas, default=0.0))
        if beta <= 100.0 * d * eps * scale:
            # Invariant subspace found: the Ritz values are exact eigenvalues.
            if restart is None:
                break
            w = restart()
            for _ in range(2):
                w = w - active.T @ (active @ w)
            norm = torch.linalg.vector_norm(w).item()
            if norm == 0.0:
                break
            betas.append(0.0)
            q = w / norm
            beta = 0.0
            continue
        betas.append(beta)
        q = w / beta
        if converged is not None and converged(alphas, betas[: len(alphas) - 1], beta):
            break
    m = len(alphas)
    return _Lanczos(alphas, betas[: m - 1], basis[:m], beta)


def _ritz_converged(select: Callable[[Tensor], Tensor], tol: float):
    """Stopping rule: the selected Ritz pairs have relative residual <= tol."""

    def check(alphas: list[float], betas: list[float], beta: float) -> bool:
        evals, evecs = _tridiagonal_eigh(alphas, betas)
        idx = select(evals)
        residual = beta * evecs[-1, idx].abs()
        scale = max(evals.abs().max().item(), torch.finfo(torch.float64).tiny)
        return bool((residual <= tol * scale).all())

    return check


def lambda_max(
    loss: LossClosure,
    theta: Tensor,
    iters: int = 100,
    tol: float = 1e-10,
    which: str = "LA",
    generator: torch.Generator | None = None,
) -> EigenPair:
    """Extreme Hessian eigenvalue and unit eigenvector by Lanczos.

    ``which="LA"`` returns the largest algebraic eigenvalue
    ``max_i lambda_i``; ``which="LM"`` the eigenvalue of largest magnitude
    ``argmax_i |lambda_i|`` (they differ at saddle points, where a large
    negative eigenvalue may dominate).

    At most ``min(iters, d)`` Hessian-vector products are used; the run stops
    early once the Ritz residual ``||H y - t y||`` falls below
    ``tol * max|Ritz value|``.  For symmetric ``H`` there is an eigenvalue
    within that residual of ``t``.  The start vector is Gaussian, drawn from
    ``generator``.
    """
    theta = _check_theta(theta)
    _check_int("iters", iters, 1)
    _check_positive("tol", tol)
    if which not in ("LA", "LM"):
        raise ValueError(f"which must be 'LA' or 'LM', got {which!r}")

    def select(evals: Tensor) -> Tensor:
        key = evals if which == "LA" else evals.abs()
        return torch.argmax(key).reshape(1)

    matvec = _hessian_operator(loss, theta)
    run = _lanczos(
        matvec,
        _gaussian(theta, generator),
        iters,
        restart=lambda: _gaussian(theta, generator),
        converged=_ritz_converged(select, tol),
    )
    evals, evecs = _tridiagonal_eigh(run.alphas, run.betas)
    idx = select(evals)[0]
    vector = run.basis.T @ evecs[:, idx].to(run.basis.dtype)
    vector = vector / torch.linalg.vector_norm(vector)
    return EigenPair(evals[idx].item(), vector)


def top_k_spectrum(
    loss: LossClosure,
    theta: Tensor,
    k: int,
    iters: int = 100,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The ``k`` largest (algebraic) Hessian eigenvalues, in descending order.

    These are the ``k`` largest Ritz values after exactly ``min(iters, d)``
    Lanczos steps (``iters`` Hessian-vector products).  Lanczos converges
    from the ends of the spectrum inwards, so ``iters`` should comfortably
    exceed ``k`` (``2k`` to ``3k`` plus a margin is typical); unconverged
    values are lower bounds of the true ones (Cauchy interlacing).

    There is deliberately no early stop on converged residuals: a
    single-vector Krylov space contains each distinct eigenvalue once, so
    a repeated eigenvalue can look converged while its other copies are
    missing.  Running all steps lets the restart on an invariant subspace
    recover multiplicities (guaranteed when ``iters >= d``).  Returned as a
    float64 tensor of shape ``(k,)``.
    """
    theta = _check_theta(theta)
    _check_int("k", k, 1)
    if k > theta.numel():
        raise ValueError(f"k must be <= the number of parameters {theta.numel()}, got {k}")
    _check_int("iters", iters, k)
    run = _lanczos(
        _hessian_operator(loss, theta),
        _gaussian(theta, generator),
        iters,
        restart=lambda: _gaussian(theta, generator),
    )
    evals, _ = _tridiagonal_eigh(run.alphas, run.betas)
    return torch.sort(evals, descending=True).values[:k]


def spectral_density(
    loss: LossClosure,
    theta: Tensor,
    n_lanczos: int = 80,
    n_probes: int = 10,
    grid: int | Tensor = 1000,
    bandwidth: float | None = None,
    generator: torch.Generator | None = None,
) -> SpectralDensity:
    """Stochastic Lanczos quadrature estimate of the Hessian spectral density.

    For each Rademacher probe ``v`` (normalised), an ``m``-step Lanczos run
    from ``v`` yields Ritz values ``t_j`` and weights ``w_j = s_{1j}^2``
    (squared first components of the eigenvectors of ``T``): the Gauss
    quadrature of the measure ``sum_i (u_i . v)^2 delta(t - lambda_i)``.
    Since ``E[(u_i . v)^2] = 1/d``, averaging over probes estimates the
    spectral density ``(1/d) sum_i delta(t - lambda_i)``, smoothed with a
    Gaussian kernel of standard deviation ``bandwidth``:

        phi(t) = (1/n_probes) sum_probes sum_j w_j N(t; t_j, bandwidth^2).

    Each probe's weights sum to one, so ``phi`` integrates to one when the
    grid covers the support.  Its mean is ``mean_probes v^T H v / ||v||^2``,
    an unbiased estimate of ``tr(H) / d``.

    ``grid`` is either the number of points of a uniform grid spanning the
    Ritz values plus five bandwidths on each side, or a 1-D tensor of
    evaluation points.  ``bandwidth`` defaults to 1% of the Ritz value range.
    """
    theta = _check_theta(theta)
    _check_int("n_lanczos", n_lanczos, 1)
    _check_int("n_probes", n_probes, 1)
    if bandwidth is not None:
        bandwidth = _check_positive("bandwidth", bandwidth)
    if isinstance(grid, Tensor):
        if grid.dim() != 1 or grid.numel() < 2:
            raise ValueError(f"grid must be a 1-D tensor with >= 2 points, got shape {tuple(grid.shape)}")
    else:
        _check_int("grid", grid, 2)

    matvec = _hessian_operator(loss, theta)
    nodes, weights = [], []
    for _ in range(n_probes):
        # No restart: once the Krylov space is invariant the quadrature is
        # exact for this probe, and restarted blocks would get zero weight.
        run = _lanczos(matvec, _rademacher(theta, generator), n_lanczos)
        evals, evecs = _tridiagonal_eigh(run.alphas, run.betas)
        nodes.append(evals)
        weights.append(evecs[0] ** 2)
    t = torch.cat(nodes)
    w = torch.cat(weights) / n_probes

    if bandwidth is None:
        span = (t.max() - t.min()).item()
        # Degenerate spectrum (all Ritz values equal): fall back to a width
        # relative to the eigenvalue itself.
        bandwidth = 0.01 * span if span > 0 else 0.01 * max(t.abs().max().item(), 1.0)
    if isinstance(grid, Tensor):
        points = grid.detach().to(torch.float64)
    else:
        lo = t.min().item() - 5.0 * bandwidth
        hi = t.max().item() + 5.0 * bandwidth
        points = torch.linspace(lo, hi, grid, dtype=torch.float64)

    z = (points[:, None] - t[None, :]) / bandwidth
    kernel = torch.exp(-0.5 * z**2) / (bandwidth * math.sqrt(2.0 * math.pi))
    density = kernel @ w
    return SpectralDensity(points.to(theta.dtype), density.to(theta.dtype))


def hutchinson_trace(
    loss: LossClosure,
    theta: Tensor,
    n_samples: int = 100,
    generator: torch.Generator | None = None,
) -> Estimate:
    """Hutchinson estimator ``tr(H) ~ (1/n) sum_i z_i^T H z_i``.

    ``z_i`` are i.i.d. Rademacher vectors, for which ``E[z z^T] = I`` and the
    variance of one sample is ``2 sum_{i != j} H_ij^2`` (the smallest among
    i.i.d.-entry probes).  In particular the estimate is exact for diagonal
    ``H``.  Returns the mean and the standard error
    ``std(samples, ddof=1) / sqrt(n)``.
    """
    theta = _check_theta(theta)
    _check_int("n_samples", n_samples, 2)
    matvec = _hessian_operator(loss, theta)
    samples = []
    for _ in range(n_samples):
        z = _rademacher(theta, generator)
        samples.append(torch.dot(z, matvec(z)).item())
    return mean_stderr(samples)
