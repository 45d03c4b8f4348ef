"""Tests for samsde.sharpness.

Most checks use a quadratic L(theta) = theta^T H theta / 2 + b^T theta with
H = Q diag(lam) Q^T, Q a seeded random orthogonal matrix, so every sharpness
measure has a closed form.  Everything is float64 and seeded.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from samsde import sharpness as sh

DTYPE = torch.float64
D = 40
# Distinct, well separated top eigenvalues, a bulk of both signs and one large
# negative eigenvalue so that "largest algebraic" and "largest magnitude"
# disagree.
LAM = torch.cat(
    [
        torch.tensor([10.0, 9.0, 8.0, 7.0, 6.0], dtype=DTYPE),
        torch.linspace(-3.0, 5.0, D - 6, dtype=DTYPE),
        torch.tensor([-12.0], dtype=DTYPE),
    ]
)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_orthogonal(d: int, seed: int) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(d, d, generator=gen(seed), dtype=DTYPE))
    # Sign fix makes Q Haar-distributed; mostly it just makes Q deterministic.
    return q * torch.sign(torch.diagonal(r))


def make_hessian(lam: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    q = random_orthogonal(lam.numel(), seed)
    h = q @ torch.diag(lam) @ q.T
    return 0.5 * (h + h.T), q


def quadratic(h: torch.Tensor, b: torch.Tensor | None = None):
    if b is None:
        b = torch.zeros(h.shape[0], dtype=DTYPE)

    def loss(theta: torch.Tensor) -> torch.Tensor:
        return 0.5 * theta @ h @ theta + b @ theta

    return loss


def rademacher_variance(a: torch.Tensor) -> float:
    """Var(z^T A z) for Rademacher z and symmetric A: 2 sum_{i != j} A_ij^2."""
    return 2.0 * ((a**2).sum() - (torch.diagonal(a) ** 2).sum()).item()


@pytest.fixture(scope="module")
def quad():
    h, q = make_hessian(LAM)
    return h, q, quadratic(h)


# ---------------------------------------------------------------------------
# Flat-parameter plumbing and Hessian-vector products
# ---------------------------------------------------------------------------


def small_mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 2)).to(DTYPE)


def batch(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = gen(seed)
    return torch.randn(16, 3, generator=g, dtype=DTYPE), torch.randn(16, 2, generator=g, dtype=DTYPE)


def test_hvp_on_quadratic_is_exact(quad):
    h, _, loss = quad
    theta = torch.randn(D, generator=gen(2), dtype=DTYPE)
    v = torch.randn(D, generator=gen(3), dtype=DTYPE)
    hv = sh.hvp(loss, theta, v)
    # Double backward of a quadratic is exact up to rounding.
    assert torch.allclose(hv, h @ v, rtol=0, atol=1e-12), (hv - h @ v).abs().max()


def test_hvp_matches_central_finite_differences_on_mlp():
    model = small_mlp()
    x, y = batch()
    loss = sh.flat_loss_fn(model, nn.functional.mse_loss, x, y)
    theta = sh.get_flat_params(model)
    v = torch.randn(theta.shape, generator=gen(4), dtype=DTYPE)
    v = v / v.norm()

    def grad(t: torch.Tensor) -> torch.Tensor:
        t = t.clone().requires_grad_(True)
        return torch.autograd.grad(loss(t), t)[0]

    # Central differences have O(h^2) truncation and O(eps/h) rounding error;
    # h = 1e-4 balances them at ~1e-8 relative in float64.
    step = 1e-4
    fd = (grad(theta + step * v) - grad(theta - step * v)) / (2 * step)
    hv = sh.hvp(loss, theta, v)
    rel = ((hv - fd).norm() / hv.norm()).item()
    assert rel < 1e-6, f"HVP vs central differences: relative error {rel:.2e} >= 1e-6"


def test_flat_loss_fn_matches_model_and_leaves_it_untouched():
    model = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.Tanh(), nn.Linear(5, 1)).to(DTYPE)
    model.train()  # BatchNorm would update running stats if buffers were shared
    x, y = batch()
    y = y[:, :1]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loss = sh.flat_loss_fn(model, nn.functional.mse_loss, x, y)
    theta = sh.get_flat_params(model)
    assert theta.numel() == sum(p.numel() for p in model.parameters())

    value = loss(theta)
    shifted = theta + 0.1
    t = shifted.clone().requires_grad_(True)
    loss(t).backward()
    assert t.grad is not None and torch.isfinite(t.grad).all()

    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} was modified by flat_loss_fn"
    assert all(p.grad is None for p in model.parameters()), "gradient leaked into the model"

    direct = nn.functional.mse_loss(model(x), y)  # this call does update running stats
    assert torch.equal(value, direct)


def test_set_and_get_flat_params_roundtrip():
    model = small_mlp()
    theta = torch.randn(sh.get_flat_params(model).shape, generator=gen(5), dtype=DTYPE)
    sh.set_flat_params(model, theta)
    assert torch.equal(sh.get_flat_params(model), theta)
    assert torch.equal(model[0].weight.reshape(-1), theta[: model[0].weight.numel()])
    with pytest.raises(ValueError, match="trainable parameters"):
        sh.set_flat_params(model, theta[:-1])


# ---------------------------------------------------------------------------
# Spectrum
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("which, expected, index", [("LA", 10.0, 0), ("LM", -12.0, D - 1)])
def test_lambda_max(quad, which, expected, index):
    h, q, loss = quad
    theta = torch.zeros(D, dtype=DTYPE)
    # iters < d, so this is a genuine Krylov approximation, not a full
    # tridiagonalisation.  Measured error: ~2e-16.
    value, vector = sh.lambda_max(loss, theta, iters=30, which=which, generator=gen(6))
    rel = abs(value - expected) / abs(expected)
    assert rel < 1e-6, f"lambda ({which}) = {value}, relative error {rel:.1e} >= 1e-6"
    overlap = abs(torch.dot(vector, q[:, index]).item())
    assert abs(overlap - 1.0) < 1e-6, f"eigenvector overlap {overlap}"
    residual = (h @ vector - value * vector).norm().item()
    assert residual < 1e-6 * abs(expected)


def test_lambda_max_too_few_iterations_is_inaccurate(quad):
    # Guards against a test that cannot fail: with 3 Lanczos steps the top
    # eigenvalue (gap 10%) is not resolved, and the Ritz value is a lower
    # bound (interlacing).
    _, _, loss = quad
    value, _ = sh.lambda_max(loss, torch.zeros(D, dtype=DTYPE), iters=3, generator=gen(6))
    assert value < 10.0 - 1e-3


def test_top_k_spectrum(quad):
    _, _, loss = quad
    top = sh.top_k_spectrum(loss, torch.zeros(D, dtype=DTYPE), k=5, iters=30, generator=gen(7))
    rel = ((top - LAM[:5]).abs() / LAM[:5]).max().item()
    # Measured: ~1e-13 with 30 of 40 possible steps.
    assert rel < 1e-6, f"top-5 relative error {rel:.1e} >= 1e-6: {top}"


def test_top_k_spectrum_recovers_repeated_eigenvalues():
    # A single Lanczos run sees each distinct eigenvalue once; the restart on
    # an invariant subspace must recover the multiplicity of 5.
    lam = torch.tensor([5.0, 5.0, 5.0, 3.0, 2.0, 1.0, 0.5, -1.0, -2.0, -4.0], dtype=DTYPE)
    h, _ = make_hessian(lam, seed=1)
    top = sh.top_k_spectrum(quadratic(h), torch.zeros(10, dtype=DTYPE), k=4, iters=10, generator=gen(8))
    expected = torch.tensor([5.0, 5.0, 5.0, 3.0], dtype=DTYPE)
    assert torch.allclose(top, expected, rtol=1e-10, atol=0), top


def test_hutchinson_trace_within_three_standard_errors(quad):
    h, _, loss = quad
    n = 200
    est = sh.hutchinson_trace(loss, torch.zeros(D, dtype=DTYPE), n_samples=n, generator=gen(9))
    true = LAM.sum().item()
    # The reported SE must agree with the theoretical one, sqrt(2 sum_{i!=j}
    # H_ij^2 / n), to within sampling noise (~5% relative for n = 200).
    se_theory = math.sqrt(rademacher_variance(h) / n)
    assert 0.8 < est.stderr / se_theory < 1.2, (est.stderr, se_theory)
    assert abs(est.mean - true) < 3 * est.stderr, f"{est} vs tr(H) = {true}"


def test_hutchinson_trace_exact_for_diagonal_hessian():
    # z^T diag(a) z = sum_i a_i z_i^2 = sum_i a_i for every Rademacher z.
    a = torch.linspace(-2.0, 7.0, 25, dtype=DTYPE)

    def loss(theta: torch.Tensor) -> torch.Tensor:
        return 0.5 * (a * theta**2).sum()

    est = sh.hutchinson_trace(loss, torch.ones(25, dtype=DTYPE), n_samples=5, generator=gen(10))
    assert abs(est.mean - a.sum().item()) < 1e-12
    assert est.stderr < 1e-12


def test_spectral_density_normalisation_and_moments(quad):
    h, _, loss = quad
    n_probes, n_lanczos = 30, 20
    grid, density = sh.spectral_density(
        loss, torch.zeros(D, dtype=DTYPE), n_lanczos=n_lanczos, n_probes=n_probes, grid=2000, generator=gen(11)
    )
    mass = torch.trapezoid(density, grid).item()
    # Auto grid spans +-5 bandwidths beyond the extreme Ritz values: missing
    # Gaussian tail mass < 6e-7 per side; trapezoid error is negligible.
    assert abs(mass - 1.0) < 2e-6, mass
    assert (density >= 0).all()

    # First moment: mean over probes of v^T H v / d, unbiased for tr(H)/d.
    mean = torch.trapezoid(grid * density, grid).item()
    se_mean = math.sqrt(rademacher_variance(h) / n_probes) / D
    assert abs(mean - LAM.mean().item()) < 3 * se_mean, (mean, LAM.mean().item(), se_mean)

    # Second moment: Lanczos quadrature with >= 2 nodes integrates t^2
    # exactly, giving v^T H^2 v / d, plus the kernel variance bandwidth^2.
    bandwidth = 0.01 * (LAM.max() - LAM.min()).item()  # default rule, upper bound
    second = torch.trapezoid(grid**2 * density, grid).item()
    h2 = h @ h
    se_second = math.sqrt(rademacher_variance(h2) / n_probes) / D
    expected = (LAM**2).mean().item()
    assert abs(second - expected) < 3 * se_second + bandwidth**2, (second, expected, se_second)


def test_spectral_density_puts_mass_where_the_eigenvalues_are():
    # 30 eigenvalues near 1 and 10 near 10: the mass above 5 estimates
    # ||P v||^2 / d averaged over probes (P: projector on the top cluster),
    # whose mean is 10/40 and whose SE we compute exactly.
    lam = torch.cat([torch.linspace(0.9, 1.1, 30, dtype=DTYPE), torch.linspace(9.5, 10.5, 10, dtype=DTYPE)])
    h, q = make_hessian(lam, seed=2)
    n_probes = 20
    grid, density = sh.spectral_density(
        quadratic(h), torch.zeros(D, dtype=DTYPE), n_lanczos=15, n_probes=n_probes, generator=gen(12)
    )
    upper = grid >= 5.0
    mass_upper = torch.trapezoid(density[upper], grid[upper]).item()
    p = q[:, 30:] @ q[:, 30:].T
    se = math.sqrt(rademacher_variance(p) / n_probes) / D
    assert abs(mass_upper - 0.25) < 3 * se, (mass_upper, se)
    # And essentially nothing between the clusters.
    gap = (grid > 3.0) & (grid < 8.0)
    assert torch.trapezoid(density[gap], grid[gap]).item() < 1e-6


# ---------------------------------------------------------------------------
# Perturbation-based sharpness
# ---------------------------------------------------------------------------


def trust_region_max(h, q, lam, g, rho):
    """max_{||e|| <= rho} g.e + e^T H e / 2 via the secular equation.

    The maximiser is e = (mu I - H)^{-1} g with mu > lambda_max and ||e|| =
    rho (valid when g has a component along the top eigenvector).
    """
    c = q.T @ g
    lo, hi = lam.max().item(), lam.max().item() + 1e6
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if (c / (mid - lam)).norm() > rho:
            lo = mid
        else:
            hi = mid
    e = q @ (c / (0.5 * (lo + hi) - lam))
    return (g @ e + 0.5 * e @ h @ e).item()


def test_worst_direction_sharpness_pure_quadratic(quad):
    _, _, loss = quad
    rho = 0.1
    value = sh.worst_direction_sharpness(loss, torch.zeros(D, dtype=DTYPE), rho, steps=300, generator=gen(13))
    expected = rho**2 * 10.0 / 2
    rel = abs(value - expected) / expected
    # Projected ascent from a random point (g = 0 here); measured ~3e-16.
    assert rel < 1e-8, f"worst-direction {value} vs rho^2 lambda_max / 2 = {expected}: rel {rel:.1e}"


def test_worst_direction_sharpness_with_gradient_matches_trust_region(quad):
    h, q, _ = quad
    b = torch.randn(D, generator=gen(14), dtype=DTYPE)
    theta = torch.zeros(D, dtype=DTYPE)
    b = 0.3 * b / b.norm()  # ||g|| comparable to rho * lambda_max: neither term dominates
    loss = quadratic(h, b)
    rho = 0.1
    value = sh.worst_direction_sharpness(loss, theta, rho, steps=300)
    expected = trust_region_max(h, q, LAM, h @ theta + b, rho)
    rel = abs(value - expected) / expected
    assert rel < 1e-8, f"{value} vs trust-region optimum {expected}: rel {rel:.1e}"
    # The SAM point is feasible but not optimal here, so it must be beaten.
    assert value > sh.ascent_direction_sharpness(loss, theta, rho) + 1e-4


def test_ascent_direction_sharpness_closed_form(quad):
    h, _, _ = quad
    b = torch.randn(D, generator=gen(15), dtype=DTYPE)
    theta = torch.randn(D, generator=gen(16), dtype=DTYPE)
    loss = quadratic(h, b)
    rho = 0.05
    g = h @ theta + b
    expected = (rho * g.norm() + 0.5 * rho**2 * (g @ h @ g) / (g @ g)).item()
    value = sh.ascent_direction_sharpness(loss, theta, rho)
    # Only rounding in L(theta + e) - L(theta) with |L| ~ 10 separates them.
    assert abs(value - expected) < 1e-10 * max(1.0, abs(loss(theta).item())), (value, expected)
    # Zero gradient: SAM's perturbation is zero, so is the sharpness.
    assert sh.ascent_direction_sharpness(quadratic(h), torch.zeros(D, dtype=DTYPE), rho) == 0.0


@pytest.mark.parametrize("antithetic", [True, False])
def test_average_direction_sharpness(quad, antithetic):
    h, _, _ = quad
    b = torch.randn(D, generator=gen(17), dtype=DTYPE)
    theta = 0.1 * torch.randn(D, generator=gen(18), dtype=DTYPE)
    rho = 0.3
    est = sh.average_direction_sharpness(
        quadratic(h, b), theta, rho, n_samples=400, antithetic=antithetic, generator=gen(19)
    )
    # Exact for a quadratic: E[g.e] = 0 and E[e^T H e] = rho^2 tr(H) / d.
    expected = rho**2 * LAM.sum().item() / (2 * D)
    assert est.stderr > 0
    assert abs(est.mean - expected) < 3 * est.stderr, f"{est} vs {expected}"


def test_average_direction_antithetic_reduces_variance(quad):
    h, _, _ = quad
    b = torch.randn(D, generator=gen(17), dtype=DTYPE)
    loss = quadratic(h, b)
    theta = torch.zeros(D, dtype=DTYPE)
    plain = sh.average_direction_sharpness(loss, theta, 0.3, 200, antithetic=False, generator=gen(20))
    anti = sh.average_direction_sharpness(loss, theta, 0.3, 200, antithetic=True, generator=gen(20))
    # With ||b|| ~ sqrt(d) the linear term dominates the plain estimator's
    # variance; cancelling it must shrink the SE several-fold.
    assert anti.stderr < 0.5 * plain.stderr, (anti, plain)


def test_keskar_sharpness(quad):
    h, _, loss = quad
    eps0 = 0.02
    zero = torch.zeros(D, dtype=DTYPE)
    value = sh.keskar_sharpness(loss, zero, eps0=eps0, steps=300, generator=gen(21))
    expected = (eps0**2 * 10.0 / 2) / (1 + 0.0)
    rel = abs(value - expected) / expected
    assert rel < 1e-8, f"Keskar {value} vs {expected}: rel {rel:.1e}"
    percent = sh.keskar_sharpness(loss, zero, eps0=eps0, steps=300, percent=True, generator=gen(21))
    assert percent == pytest.approx(100 * value, rel=1e-12)

    # Away from zero loss the worst-case increase is divided by 1 + L(theta).
    b = torch.randn(D, generator=gen(22), dtype=DTYPE)
    theta = torch.randn(D, generator=gen(23), dtype=DTYPE)
    lossb = quadratic(h, b)
    f0 = lossb(theta).item()
    assert f0 > 0
    worst = sh.worst_direction_sharpness(lossb, theta, eps0, steps=100)
    assert sh.keskar_sharpness(lossb, theta, eps0=eps0, steps=100) == pytest.approx(worst / (1 + f0), rel=1e-12)

    with pytest.raises(ValueError, match="L\\(theta\\) > -1"):
        sh.keskar_sharpness(lambda t: (t**2).sum() - 2.0, zero, eps0=eps0)


def test_interpolation_losses_closed_form(quad):
    h, _, _ = quad
    b = torch.randn(D, generator=gen(24), dtype=DTYPE)
    loss = quadratic(h, b)
    theta_a = torch.randn(D, generator=gen(25), dtype=DTYPE)
    theta_b = torch.randn(D, generator=gen(26), dtype=DTYPE)
    alphas, losses = sh.interpolation_losses(loss, theta_a, theta_b)
    assert alphas[0].item() == -1.0 and alphas[-1].item() == 2.0
    # Along theta_a + a delta: L(theta_a) + a g_a.delta + a^2 delta^T H delta / 2.
    delta = theta_b - theta_a
    g_a = h @ theta_a + b
    expected = loss(theta_a) + alphas * (g_a @ delta) + 0.5 * alphas**2 * (delta @ h @ delta)
    assert torch.allclose(losses, expected, rtol=1e-12, atol=1e-10), (losses - expected).abs().max()
    custom = torch.tensor([0.0, 1.0], dtype=DTYPE)
    _, ends = sh.interpolation_losses(loss, theta_a, theta_b, custom)
    assert torch.allclose(ends, torch.stack([loss(theta_a), loss(theta_b)]), rtol=1e-14)


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda f, t: sh.keskar_sharpness(f, t, eps0=0.0), "eps0.*0.0"),
        (lambda f, t: sh.keskar_sharpness(f, t, eps0=-1e-3), "eps0.*-0.001"),
        (lambda f, t: sh.top_k_spectrum(f, t, k=0), "k must.*got 0"),
        (lambda f, t: sh.top_k_spectrum(f, t, k=D + 1), "k must.*got 41"),
        (lambda f, t: sh.top_k_spectrum(f, t, k=5, iters=3), "iters.*got 3"),
        (lambda f, t: sh.lambda_max(f, t, iters=0), "iters.*got 0"),
        (lambda f, t: sh.lambda_max(f, t, which="SA"), "which"),
        (lambda f, t: sh.worst_direction_sharpness(f, t, rho=0.0), "rho.*0.0"),
        (lambda f, t: sh.ascent_direction_sharpness(f, t, rho=float("nan")), "rho.*nan"),
        (lambda f, t: sh.average_direction_sharpness(f, t, rho=0.1, n_samples=1), "n_samples.*got 1"),
        (lambda f, t: sh.hutchinson_trace(f, t, n_samples=1), "n_samples.*got 1"),
        (lambda f, t: sh.spectral_density(f, t, bandwidth=0.0), "bandwidth.*0.0"),
        (lambda f, t: sh.spectral_density(f, t, n_probes=0), "n_probes.*got 0"),
        (lambda f, t: sh.hvp(f, t, torch.ones(3, dtype=DTYPE)), "v must have the shape"),
        (lambda f, t: sh.lambda_max(f, t.reshape(2, -1)), "1-D"),
        (lambda f, t: sh.hvp(lambda x: x, t, t), "scalar"),
    ],
)
def test_invalid_arguments_raise_value_error(quad, call, match):
    _, _, loss = quad
    with pytest.raises(ValueError, match=match):
        call(loss, torch.zeros(D, dtype=DTYPE))
