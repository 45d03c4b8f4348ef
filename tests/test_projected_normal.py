"""The SAM SDE's closed-form moments under isotropic noise (samsde.projected_normal, sde.ClosedFormMoments)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import samsde
from samsde.noise import make_noise
from samsde.projected_normal import SCIPY_MAX_DIM, kappa, phi_psi, phi_psi_quadrature, phi_psi_reference
from samsde.sde import ClosedFormMoments, InnerSample

DTYPE = torch.float64


@pytest.mark.parametrize("d", [1, 2, 3, 10, 257, 5000])
def test_table_interpolation_matches_scipy(d):
    # the interpolated tables against scipy's hyp1f1 at 4000 points over a = 0 ... 1e6 sqrt(d), including grid-free
    # points far in both tails; tolerance 1e-10 relative to phi (measured <= 5e-12; a wrong stencil or a missing
    # end point gives >= 1e-6)
    rng = np.random.default_rng(d)
    c = math.sqrt(d)
    a = np.concatenate(
        [[0.0, 1e-9, 1e6 * c], rng.uniform(0, 1e-2, 500), rng.exponential(c, 2500), rng.exponential(50 * c, 1000)]
    )
    ref_phi, ref_psi = phi_psi_reference(a, d)
    phi, psi = (t.numpy() for t in phi_psi(torch.from_numpy(a), d))
    assert np.max(np.abs(phi - ref_phi) / ref_phi) < 1e-10
    assert np.max(np.abs(psi - ref_psi) / ref_phi) < 1e-10


@pytest.mark.parametrize("d", [2000, SCIPY_MAX_DIM])
def test_quadrature_matches_scipy_where_both_are_defined(d):
    # Kummer's integral by Gauss-Legendre (the reference above SCIPY_MAX_DIM) against scipy's series at a = 0 ... 5
    # sqrt(d) and far in the tail; tolerance 1e-10 relative to phi (measured <= 2e-11, scipy's own error at d =
    # 20000; a wrong prefactor, exponent or interval end is off by >= 1e-3)
    a = math.sqrt(d) * np.concatenate([[0.0, 1e-9], np.linspace(0, 5, 400), np.geomspace(5, 1e6, 100)])
    with np.errstate(all="ignore"):
        ref_phi, ref_psi = phi_psi_reference(a, d)
    phi, psi = phi_psi_quadrature(a, d)
    assert np.max(np.abs(phi - ref_phi) / ref_phi) < 1e-10
    assert np.max(np.abs(psi - ref_psi) / ref_phi) < 1e-10


@pytest.mark.parametrize("d", [64_000, 114_689])
def test_large_dimensions_have_finite_tables_that_match_an_independent_quadrature(d):
    # Above d ~ 63,500 scipy's hyp1f1 is NaN near a = sqrt(d) and the table used to raise FloatingPointError.  The
    # interpolated table against mpmath's adaptive quadrature of the same integrals at 30 digits, at six points
    # from a = 0 to 1000 sqrt(d) (around the old NaNs at a ~ sqrt(d)); tolerance 1e-10 relative to phi (measured
    # <= 1.1e-14 for the quadrature itself); and the limits phi(0) = kappa_d, a phi -> 1, a psi -> -1.
    import mpmath

    mpmath.mp.dps = 30
    c = math.sqrt(d)
    a = c * np.array([0.0, 0.3, 0.98, 1.0, 1.7, 10.0, 1000.0])

    def reference(x: float) -> tuple[float, float]:
        x = mpmath.mpf(x)
        end = min(mpmath.mpf(1), mpmath.sqrt(mpmath.mpf(120) / (x * x + d - 1)))
        f = lambda w: (1 - w * w) ** (mpmath.mpf(d - 1) / 2) * mpmath.exp(-x * x * w * w / 2)  # noqa: E731
        nodes = [0, end / 4, end / 2, end]
        scale = mpmath.sqrt(2 / mpmath.pi)
        return float(scale * mpmath.quad(f, nodes)), float(-x * x * scale * mpmath.quad(lambda w: w * w * f(w), nodes))

    ref = np.array([reference(x) for x in a])
    phi, psi = (t.numpy() for t in phi_psi(torch.from_numpy(a), d))
    assert np.all(np.isfinite(phi)) and np.all(np.isfinite(psi))
    assert np.max(np.abs(phi - ref[:, 0]) / ref[:, 0]) < 1e-10
    assert np.max(np.abs(psi - ref[:, 1]) / ref[:, 0]) < 1e-10
    assert phi[0] == pytest.approx(kappa(d), rel=1e-12)
    limit_phi, limit_psi = phi_psi(torch.tensor([1e9], dtype=DTYPE), d)
    assert (1e9 * limit_phi).item() == pytest.approx(1.0, rel=1e-9)
    assert (1e9 * limit_psi).item() == pytest.approx(-1.0, rel=1e-9)


def test_one_dimension_is_the_sign_of_a_normal():
    # d = 1: u = sign(a + xi), so E[u] = phi(a) a = erf(a / sqrt 2), and psi + phi = d E[u]/da = 2 N-pdf(a)
    a = torch.linspace(0, 8, 201, dtype=DTYPE)
    phi, psi = phi_psi(a, 1)
    assert torch.allclose(phi * a, torch.special.erf(a / math.sqrt(2)), rtol=1e-12, atol=1e-14)
    # (phi + psi cancels to 1e-14 at a = 8: the error is measured against phi, the size of each term)
    assert torch.all((phi + psi - math.sqrt(2 / math.pi) * torch.exp(-(a**2) / 2)).abs() <= 1e-11 * phi)


@pytest.mark.parametrize("d", [1, 4, 100, 5000])
def test_limits(d):
    # a = 0: E[u] = 0 with C = sigma kappa_d I (phi = kappa_d, psi = 0); a -> inf: phi ~ 1/a, psi ~ -1/a
    phi, psi = phi_psi(torch.tensor([0.0, 1e9], dtype=DTYPE), d)
    assert phi[0].item() == pytest.approx(kappa(d), rel=1e-12)
    assert psi[0].item() == 0.0
    assert (1e9 * phi[1]).item() == pytest.approx(1.0, rel=1e-9)
    assert (1e9 * psi[1]).item() == pytest.approx(-1.0, rel=1e-9)


@pytest.mark.parametrize("d, a", [(1, 0.7), (2, 0.0), (5, 0.3), (5, 2.0), (30, 4.0), (30, 12.0)])
def test_moments_match_a_large_monte_carlo(d, a):
    # E[u] and C v = Cov(Z, u) v against 2^18 seeded draws, each coordinate within 5 standard errors of the
    # Monte Carlo mean (a wrong kappa, sign or factor of psi is off by tens of standard errors)
    sigma, k = 0.7, 1 << 18
    gen = samsde.make_generator(0, "projected_normal", d, a)
    g = torch.randn(1, d, generator=gen, dtype=DTYPE)
    g *= sigma * a / torch.linalg.vector_norm(g).clamp_min(1e-300)
    v = torch.randn(1, d, generator=gen, dtype=DTYPE)
    cf = ClosedFormMoments(g, sigma)
    z = sigma * torch.randn(k, d, generator=gen, dtype=DTYPE)
    u = (g + z) / torch.linalg.vector_norm(g + z, dim=-1, keepdim=True)
    for samples, expected in ((u, cf.mean_u[0]), (z * (u @ v[0]).unsqueeze(-1), cf.cov_apply(v)[0])):
        mean, se = samples.mean(0), samples.std(0) / math.sqrt(k)
        assert torch.all((mean - expected).abs() <= 5 * se + 1e-12), (mean, expected, se)


def test_closed_form_agrees_with_the_inner_monte_carlo_objects():
    # the closed form and InnerSample share one interface: with K = 2^16 draws the Monte Carlo's E[u], C v, C^T v
    # and its dense C come within 2% (relative, norms) of the closed form on a 10-dimensional quadratic
    task = samsde.make_task("quadratic", dim=10)
    noise = make_noise("isotropic", task, sigma=0.5)
    gen = samsde.make_generator(0, "cf_vs_mc")
    x = torch.randn(3, 10, generator=gen, dtype=DTYPE)
    v = torch.randn(3, 10, generator=gen, dtype=DTYPE)
    kw = dict(task=task, noise=noise, eta=0.1, rho=0.1, drift="sam")
    cf = samsde.SDEModel(**kw, sam_moments="closed_form").point(x).inner
    mc = samsde.SDEModel(**kw, sam_moments="monte_carlo", inner_samples=1 << 16, generator=gen).point(x).inner
    assert isinstance(cf, ClosedFormMoments) and isinstance(mc, InnerSample)

    def rel(a, b):
        return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))

    assert rel(cf.mean_u, mc.mean_u) < 0.02
    assert rel(cf.cov_apply(v), mc.cov_apply(v)) < 0.02
    assert rel(cf.cov_transpose_apply(v), mc.cov_transpose_apply(v)) < 0.02
    assert rel(cf.cov_matrix(), mc.cov_matrix()) < 0.02
    # the dense matrix and the matrix-free products are the same operator
    assert torch.allclose((cf.cov_matrix() @ v.unsqueeze(-1)).squeeze(-1), cf.cov_apply(v), rtol=1e-12, atol=1e-14)


class CountingLinearization:
    def __init__(self, lin):
        self.lin, self.calls = lin, 0
        self.grad = lin.grad

    def hvp(self, v):
        self.calls += 1
        return self.lin.hvp(v)


@pytest.mark.parametrize("diffusion", ["sam", "sgd"])
def test_closed_form_step_takes_two_hessian_vector_products(diffusion):
    # the first-order SAM SDE step with the closed form: H g^ (shared by drift and diffusion) and H dW, against the
    # inner Monte Carlo's three (H E[u], H dW, H C^T dW); the drift-only ablation needs one
    task = samsde.make_task("quadratic", dim=6)
    noise = make_noise("isotropic", task, sigma=0.5)
    gen = samsde.make_generator(0, "hvp_count")
    x = torch.randn(4, 6, generator=gen, dtype=DTYPE)
    dw = torch.randn(4, 6, generator=gen, dtype=DTYPE)
    counts = {}
    for moments in ("closed_form", "monte_carlo"):
        model = samsde.SDEModel(task, noise, 0.1, 0.2, "sam", diffusion, sam_moments=moments, generator=gen)
        p = model.point(x)
        p.lin = CountingLinearization(p.lin)
        model.drift(p), model.diffuse(p, dw)
        counts[moments] = p.lin.calls
    assert counts == (
        {"closed_form": 2, "monte_carlo": 3} if diffusion == "sam" else {"closed_form": 1, "monte_carlo": 1}
    )


def test_closed_form_step_matches_the_formula():
    # one EM step of the SAM SDE (first order), assembled by hand from dense H on a rotated quadratic
    task = samsde.make_task("quadratic", spectrum=[3.0, 1.0, 0.5, -0.2], rotate=True, seed=1)
    sigma, eta, rho, dt = 0.4, 0.1, 0.3, 0.01
    noise = make_noise("isotropic", task, sigma=sigma)
    gen = samsde.make_generator(0, "formula")
    x = torch.randn(5, 4, generator=gen, dtype=DTYPE)
    dw = math.sqrt(dt) * torch.randn(5, 4, generator=gen, dtype=DTYPE)
    model = samsde.SDEModel(task, noise, eta, rho, "sam", sam_moments="closed_form")
    step = model.em_step(x, dw, dt)
    h = task.hessian(x)  # (M, d, d)
    g = task.grad(x)
    a = torch.linalg.vector_norm(g, dim=-1, keepdim=True) / sigma
    phi, psi = phi_psi(a, 4)
    gh = g / (sigma * a)
    mean_u = phi * g / sigma
    c = sigma * (
        phi.unsqueeze(-1) * torch.eye(4, dtype=DTYPE) + psi.unsqueeze(-1) * gh.unsqueeze(-1) * gh.unsqueeze(-2)
    )
    drift = -(g + rho * (h @ mean_u.unsqueeze(-1)).squeeze(-1))
    correction = ((c @ h + h @ c) @ dw.unsqueeze(-1)).squeeze(-1)
    expected = x + drift * dt + math.sqrt(eta) * (sigma * dw + rho * correction / (2 * sigma))
    assert torch.allclose(step, expected, rtol=1e-12, atol=1e-14)


def test_closed_form_needs_isotropic_noise():
    task = samsde.make_task("quadratic", dim=3)
    noise = make_noise("psd", task, sigma=0.5, seed=0)
    with pytest.raises(ValueError, match="sam_moments 'closed_form' needs isotropic noise"):
        samsde.SDEModel(task, noise, 0.1, 0.1, "sam", mode="exact", sam_moments="closed_form")
    with pytest.raises(ValueError, match="unknown sam_moments 'exactly'"):
        samsde.SDEModel(task, noise, 0.1, 0.1, "sam", mode="exact", sam_moments="exactly")
    # auto picks the Monte Carlo for this noise (and then wants a generator)
    with pytest.raises(ValueError, match="seeded generator"):
        samsde.SDEModel(task, noise, 0.1, 0.1, "sam", mode="exact")
