"""Matrix-free sharpness measures for any PyTorch model and loss.

Every measure in this module acts on a *loss closure over a flat parameter
vector*: a callable ``loss(theta) -> scalar`` where ``theta`` is a 1-D tensor
holding all trainable parameters.  :func:`flat_loss_fn` builds such a closure
from an ``nn.Module``, a loss function and a data batch, so the same code
measures the sharpness of a toy quadratic and of a neural network.

Curvature is only ever accessed through Hessian-vector products
``H v = d/dtheta (grad L(theta) . v)`` computed by double backward, so the
``d x d`` Hessian is never formed.

Measures provided (``H`` is the Hessian of ``L`` at ``theta``, ``d`` the
number of parameters):

* :func:`lambda_max`, :func:`top_k_spectrum`: extreme eigenvalues of ``H`` by
  Lanczos with full reorthogonalization.
* :func:`spectral_density`: stochastic Lanczos quadrature (SLQ) estimate of the
  Gaussian-smoothed eigenvalue density of ``H``.
* :func:`hutchinson_trace`: ``tr(H) ~ mean_i z_i^T H z_i`` with Rademacher
  ``z_i``.
* :func:`worst_direction_sharpness`:
  ``max_{||e|| <= rho} L(theta + e) - L(theta)``.
* :func:`ascent_direction_sharpness`:
  ``L(theta + rho g / ||g||) - L(theta)`` with ``g = grad L(theta)``.
* :func:`average_direction_sharpness`:
  ``E_{e ~ N(0, rho^2 I / d)} L(theta + e) - L(theta)``.
* :func:`keskar_sharpness`: the worst-direction sharpness normalised by
  ``1 + L(theta)`` (Keskar et al., 2017), over an L2 ball.
* :func:`interpolation_losses`: ``L((1 - a) theta_a + a theta_b)`` on a grid
  of ``a``.

Random quantities take an optional ``torch.Generator`` so results are
reproducible without touching the global RNG state.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Real
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.func import functional_call

__all__ = [
    "EigenPair",
    "Estimate",
    "SpectralDensity",
    "ascent_direction_sharpness",
    "average_direction_sharpness",
    "flat_loss_fn",
    "get_flat_params",
    "hutchinson_trace",
    "hvp",
    "interpolation_losses",
    "keskar_sharpness",
    "lambda_max",
    "set_flat_params",
    "spectral_density",
    "top_k_spectrum",
    "worst_direction_sharpness",
]

LossClosure = Callable[[Tensor], Tensor]


class EigenPair(NamedTuple):
    """An (approximate) eigenvalue of the Hessian and its unit eigenvector."""

    value: float
    vector: Tensor


class Estimate(NamedTuple):
    """A Monte Carlo estimate and its standard error ``std / sqrt(n)``."""

    mean: float
    stderr: float


class SpectralDensity(NamedTuple):
    """A smoothed spectral density ``density[i] ~ phi(grid[i])``."""

    grid: Tensor
    density: Tensor


# ---------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------


def _check_positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return value


def _check_int(name: str, value: object, minimum: int) -> int:
    # bool is an int subclass; iters=True is almost certainly a mistake.
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_theta(theta: object, name: str = "theta") -> Tensor:
    if not isinstance(theta, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(theta).__name__}")
    if theta.dim() != 1 or theta.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 1-D tensor, got shape {tuple(theta.shape)}")
    if not theta.is_floating_point():
        raise ValueError(f"{name} must have a floating dtype, got {theta.dtype}")
    return theta.detach()


def _check_like(name: str, value: object, theta: Tensor) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.shape != theta.shape:
        raise ValueError(f"{name} must have the shape of theta {tuple(theta.shape)}, got {tuple(value.shape)}")
    return value.detach().to(dtype=theta.dtype, device=theta.device)


# ---------------------------------------------------------------------------
# Flat-parameter view of an nn.Module
# ---------------------------------------------------------------------------


def _trainable(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    # named_parameters() drops duplicates, so tied weights are counted once.
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("model has no trainable parameters")
    return named


def get_flat_params(model: nn.Module) -> Tensor:
    """Return a detached copy of all trainable parameters, concatenated.

    The order is that of ``model.named_parameters()`` (tied parameters appear
    once); :func:`set_flat_params` and :func:`flat_loss_fn` use the same order.
    """
    return torch.cat([p.detach().reshape(-1) for _, p in _trainable(model)])


def set_flat_params(model: nn.Module, theta: Tensor) -> None:
    """Copy the flat vector ``theta`` into the trainable parameters, in place."""
    named = _trainable(model)
    theta = _check_theta(theta)
    total = sum(p.numel() for _, p in named)
    if theta.numel() != total:
        raise ValueError(f"theta has {theta.numel()} entries but the model has {total} trainable parameters")
    offset = 0
    with torch.no_grad():
        for _, p in named:
            n = p.numel()
            p.copy_(theta[offset : offset + n].view_as(p))
            offset += n


def flat_loss_fn(
    model: nn.Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    inputs: Tensor | tuple,
    targets: Tensor,
) -> LossClosure:
    """Build ``theta -> loss_fn(model(inputs; theta), targets)``.

    ``theta`` is a flat vector laid out as :func:`get_flat_params`.  The model
    is evaluated with :func:`torch.func.functional_call`, so its parameters
    are never written to and gradients flow to ``theta`` only.  ``inputs`` is
    a tensor, or a tuple of positional arguments for ``model.forward``.

    Buffers are passed as fresh copies on each call: a BatchNorm layer in
    training mode then uses batch statistics without updating the model's
    running statistics.  The mode (``train``/``eval``) is left as the caller
    set it; use ``model.eval()`` to get a deterministic loss with dropout.
    """
    named = _trainable(model)
    names = [n for n, _ in named]
    shapes = [p.shape for _, p in named]
    numels = [p.numel() for _, p in named]
    total = sum(numels)
    args = inputs if isinstance(inputs, tuple) else (inputs,)

    def loss(theta: Tensor) -> Tensor:
        if theta.dim() != 1 or theta.numel() != total:
            raise ValueError(f"theta must be 1-D with {total} entries, got shape {tuple(theta.shape)}")
        chunks = torch.split(theta, numels)
        tensors: dict[str, Tensor] = {n: c.view(s) for n, c, s in zip(names, chunks, shapes, strict=True)}
        # Clone buffers so that in-place updates (BatchNorm running stats)
        # land on throw-away copies rather than on the model.
        tensors.update({n: b.clone() for n, b in model.named_buffers()})
        outputs = functional_call(model, tensors, args)
        return loss_fn(outputs, targets)

    return loss


# ---------------------------------------------------------------------------
# Gradients and Hessian-vector products
# ---------------------------------------------------------------------------


def _scalar(loss: LossClosure, theta: Tensor) -> Tensor:
    value = loss(theta)
    if not isinstance(value, Tensor) or value.numel() != 1:
        raise ValueError("loss(theta) must return a scalar tensor")
    return value.reshape(())


def _value(loss: LossClosure, theta: Tensor) -> float:
    with torch.no_grad():
        return _scalar(loss, theta).item()


def _value_and_grad(loss: LossClosure, theta: Tensor) -> tuple[float, Tensor]:
    x = theta.detach().requires_grad_(True)
    with torch.enable_grad():
        f = _scalar(loss, x)
        if not f.requires_grad:  # loss does not depend on theta
            return f.item(), torch.zeros_like(x)
        (g,) = torch.autograd.grad(f, x, allow_unused=True)
    return f.item(), torch.zeros_like(x) if g is None else g.detach()


def _hessian_operator(loss: LossClosure, theta: Tensor) -> Callable[[Tensor], Tensor]:
    """Return ``v -> H v`` at ``theta``.

    The gradient graph is built once with ``create_graph=True`` and kept
    alive, so each product costs one extra backward pass instead of a full
    forward + double backward.  This matters for Lanczos and Hutchinson, which
    apply the same Hessian many times.
    """
    x = theta.detach().requires_grad_(True)
    with torch.enable_grad():
        f = _scalar(loss, x)
        g = None
        if f.requires_grad:
            (g,) = torch.autograd.grad(f, x, create_graph=True, allow_unused=True)

    if g is None or not g.requires_grad:
        # Constant or affine loss: the Hessian is exactly zero.
        return torch.zeros_like

    def matvec(v: Tensor) -> Tensor:
        (hv,) = torch.autograd.grad(g, x, grad_outputs=v, retain_graph=True, allow_unused=True)
        return torch.zeros_like(v) if hv is None else hv.detach()

    return matvec


def hvp(loss: LossClosure, theta: Tensor, v: Tensor) -> Tensor:
    """Hessian-vector product ``H(theta) v = d/dtheta [grad L(theta) . v]``.

    Computed by double backward (Pearlmutter's trick); the Hessian is never
    materialised.  Returns a detached tensor shaped like ``theta``.
    """
    theta = _check_theta(theta)
    v = _check_like("v", v, theta)
    return _hessian_operator(loss, theta)(v)


# ---------------------------------------------------------------------------
# Lanczos
# ---------------------------------------------------------------------------


def _gaussian(like: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)


def _rademacher(like: Tensor, generator: torch.Generator | None) -> Tensor:
    bits = torch.randint(0, 2, like.shape, generator=generator, device=like.device)
    return bits.to(like.dtype) * 2 - 1


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


# ---------------------------------------------------------------------------
# Spectral density and trace
# ---------------------------------------------------------------------------


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
    return _estimate(samples)


def _estimate(samples: list[float]) -> Estimate:
    x = torch.tensor(samples, dtype=torch.float64)
    return Estimate(x.mean().item(), (x.std(correction=1) / math.sqrt(x.numel())).item())


# ---------------------------------------------------------------------------
# Perturbation-based sharpness
# ---------------------------------------------------------------------------


def _project(e: Tensor, radius: float) -> Tensor:
    norm = torch.linalg.vector_norm(e).item()
    return e if norm <= radius else e * (radius / norm)


def _projected_ascent(
    loss: LossClosure,
    theta: Tensor,
    radius: float,
    steps: int,
    lr: float | None,
    generator: torch.Generator | None,
) -> tuple[float, float]:
    """Approximately solve ``max_{||e|| <= radius} L(theta + e)``.

    Projected gradient ascent ``e <- P(e + lr * grad L(theta + e))`` with a
    monotone step-size rule: a trial that does not increase the loss is
    rejected and halves ``lr``; an accepted one grows it by 1.25.  Monotonicity
    makes the method robust to a poorly chosen ``lr`` and to negative
    curvature (large steps on a quadratic become power iteration, which
    could chase a large negative eigenvalue).  Starts from the SAM point
    ``radius * g / ||g||`` (the maximiser to first order), or a random point
    on the sphere if ``g = 0``.  ``steps`` counts loss/gradient evaluations.

    Returns ``(L(theta), max(L(theta), best L(theta + e)))``; the second is a
    lower bound of the true maximum since the problem is non-concave.
    """
    f0, g0 = _value_and_grad(loss, theta)
    g_norm = torch.linalg.vector_norm(g0).item()
    if g_norm > 0:
        e = g0 * (radius / g_norm)
    else:
        direction = _gaussian(theta, generator)
        e = direction * (radius / torch.linalg.vector_norm(direction).item())
    f, g = _value_and_grad(loss, theta + e)
    if lr is None:
        # Scale-free default: the first step moves by about one radius.
        lr = radius / max(torch.linalg.vector_norm(g).item(), torch.finfo(theta.dtype).tiny)
    min_move = torch.finfo(theta.dtype).eps * radius
    for _ in range(steps):
        trial = _project(e + lr * g, radius)
        if torch.linalg.vector_norm(trial - e).item() <= min_move:
            break  # projected-gradient fixed point: a KKT point of the problem
        f_trial, g_trial = _value_and_grad(loss, theta + trial)
        if f_trial > f:
            e, f, g = trial, f_trial, g_trial
            # Gentle growth: doubling made lr alternate between an accepted
            # and a rejected value, and on sphere-constrained quadratics the
            # accepted steps were then much less effective (in a d=40 test,
            # relative error 4e-4 after 300 evaluations versus 3e-16 here).
            lr *= 1.25
        else:
            lr *= 0.5
    # e = 0 is feasible, so the maximum is never below L(theta).
    return f0, max(f, f0)


def worst_direction_sharpness(
    loss: LossClosure,
    theta: Tensor,
    rho: float,
    steps: int = 100,
    lr: float | None = None,
    generator: torch.Generator | None = None,
) -> float:
    """Worst-direction sharpness ``max_{||e|| <= rho} L(theta + e) - L(theta)``.

    For small ``rho`` at a minimum this is ``~ rho^2 lambda_max / 2``; for a
    quadratic with zero gradient and ``lambda_max >= 0`` it is exactly that.
    Solved by monotone projected gradient ascent (see
    :func:`_projected_ascent`), so the result is a lower bound that is
    accurate when the ascent converges.  ``lr=None`` picks an initial step of
    about ``rho``.  Always ``>= 0``.
    """
    theta = _check_theta(theta)
    rho = _check_positive("rho", rho)
    _check_int("steps", steps, 0)
    if lr is not None:
        lr = _check_positive("lr", lr)
    f0, f_max = _projected_ascent(loss, theta, rho, steps, lr, generator)
    return f_max - f0


def ascent_direction_sharpness(loss: LossClosure, theta: Tensor, rho: float) -> float:
    """Ascent-direction sharpness ``L(theta + rho g / ||g||) - L(theta)``.

    ``g = grad L(theta)``; ``theta + rho g / ||g||`` is SAM's perturbed point.
    For a quadratic ``L = theta^T H theta / 2 + b^T theta`` it equals
    ``rho ||g|| + rho^2 g^T H g / (2 ||g||^2)``.  Returns ``0`` when ``g = 0``,
    where SAM's perturbation is zero.
    """
    theta = _check_theta(theta)
    rho = _check_positive("rho", rho)
    f0, g = _value_and_grad(loss, theta)
    g_norm = torch.linalg.vector_norm(g).item()
    if g_norm == 0.0:
        return 0.0
    return _value(loss, theta + g * (rho / g_norm)) - f0


def average_direction_sharpness(
    loss: LossClosure,
    theta: Tensor,
    rho: float,
    n_samples: int = 100,
    antithetic: bool = True,
    generator: torch.Generator | None = None,
) -> Estimate:
    """Average-direction sharpness ``E_{e ~ N(0, rho^2 I/d)} L(theta + e) - L(theta)``.

    To second order this is ``rho^2 tr(H) / (2 d)`` (``E ||e||^2 = rho^2``).
    Monte Carlo over ``n_samples`` i.i.d. draws of ``e``.  With
    ``antithetic=True`` each draw contributes
    ``(L(theta + e) + L(theta - e)) / 2 - L(theta)``: same expectation since
    the Gaussian is symmetric, but the first-order term ``g . e``, which has
    zero mean and often dominates the variance, cancels exactly.  Returns the
    mean and its standard error.
    """
    theta = _check_theta(theta)
    rho = _check_positive("rho", rho)
    _check_int("n_samples", n_samples, 2)
    f0 = _value(loss, theta)
    scale = rho / math.sqrt(theta.numel())
    samples = []
    for _ in range(n_samples):
        e = _gaussian(theta, generator) * scale
        if antithetic:
            value = 0.5 * (_value(loss, theta + e) + _value(loss, theta - e))
        else:
            value = _value(loss, theta + e)
        samples.append(value - f0)
    return _estimate(samples)


def keskar_sharpness(
    loss: LossClosure,
    theta: Tensor,
    eps0: float = 1e-3,
    steps: int = 100,
    lr: float | None = None,
    percent: bool = False,
    generator: torch.Generator | None = None,
) -> float:
    """Keskar et al.'s epsilon-sharpness over an L2 ball.

        phi = (max_{||e|| <= eps0} L(theta + e) - L(theta)) / (1 + L(theta))

    returned as a plain ratio; ``percent=True`` multiplies by 100 as in the
    paper.  Differences from the paper: the paper maximises over a box
    ``|e_i| <= eps0 (|theta_i| + 1)`` (optionally in a random subspace) with
    L-BFGS-B; here the constraint set is the Euclidean ball of radius
    ``eps0`` and the solver is the projected ascent of
    :func:`worst_direction_sharpness`.  Requires ``L(theta) > -1``.
    """
    theta = _check_theta(theta)
    eps0 = _check_positive("eps0", eps0)
    _check_int("steps", steps, 0)
    if lr is not None:
        lr = _check_positive("lr", lr)
    f0, f_max = _projected_ascent(loss, theta, eps0, steps, lr, generator)
    if not 1.0 + f0 > 0.0:
        raise ValueError(f"keskar_sharpness needs L(theta) > -1, got L(theta) = {f0!r}")
    value = (f_max - f0) / (1.0 + f0)
    return 100.0 * value if percent else value


def interpolation_losses(
    loss: LossClosure,
    theta_a: Tensor,
    theta_b: Tensor,
    alphas: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Losses ``L((1 - a) theta_a + a theta_b)`` along the line through two points.

    ``alphas`` defaults to 31 evenly spaced values in ``[-1, 2]``, so the
    segment ``[theta_a, theta_b]`` and one segment length beyond each end are
    covered.  Returns ``(alphas, losses)`` with ``losses`` in ``theta_a``'s
    dtype.
    """
    theta_a = _check_theta(theta_a, "theta_a")
    theta_b = _check_like("theta_b", theta_b, theta_a)
    if alphas is None:
        alphas = torch.linspace(-1.0, 2.0, 31, dtype=theta_a.dtype)
    else:
        if not isinstance(alphas, Tensor):
            alphas = torch.as_tensor(alphas, dtype=theta_a.dtype)
        if alphas.dim() != 1:
            raise ValueError(f"alphas must be 1-D, got shape {tuple(alphas.shape)}")
    direction = theta_b - theta_a
    losses = torch.tensor(
        [_value(loss, theta_a + a * direction) for a in alphas.tolist()],
        dtype=theta_a.dtype,
    )
    return alphas, losses
