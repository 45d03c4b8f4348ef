"""The paper's mini-batch SDEs (paper notes, section 8) against closed forms.

Reference: the finite-sum quadratic f_i = (x - a_i)^T A_i (x - a_i) / 2 with N = 6, B = 2, where every expectation
over batches is an exact finite sum over the C(6, 2) = 15 batches (``exact_moments``).  Statistical tests are
seeded; each states its tolerance in the assertion.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from samsde import make_generator
from samsde.algorithms import get
from samsde.minibatch import BatchDraws
from samsde.noise import MiniBatch, draw_batches
from samsde.sde import SDEModel
from samsde.tasks import FiniteSum, FiniteSumQuadratic

DTYPE = torch.float64
N, B, D = 6, 2, 3
ALGORITHMS = ("usam", "dnsam", "sam")


@pytest.fixture(scope="module")
def setting():
    task = FiniteSumQuadratic(N, D, seed=0)
    x = torch.tensor([[0.7, -0.4, 1.1]], dtype=DTYPE)
    return task, MiniBatch(task, B), x


def exact_moments(task, noise, x, algorithm):
    """m = E[h], K = Cov(g_gamma, h), D = E[(w / sqrt(kappa/N)) (h - m)^T], Cov(h), by enumerating every batch."""
    alg = get(algorithm)
    grads = task.sample_grads(x)[0]  # (N, d)
    full = grads.mean(0, keepdim=True)
    gs, hs, ws = [], [], []
    for batch in task.all_batches(B):
        g = grads[batch].mean(0, keepdim=True)
        h_mat = task.a_mats[batch].mean(0)
        v = alg.perturbation(g, lambda: full, 1.0)
        w = torch.full((N,), -1.0 / N, dtype=DTYPE)
        w[batch] += 1.0 / B
        gs.append(g[0]), hs.append(h_mat @ v[0]), ws.append(w)
    gs, hs, ws = torch.stack(gs), torch.stack(hs), torch.stack(ws)
    m = hs.mean(0)
    n_b = len(ws)
    return {
        "m": m,
        "K": (gs - gs.mean(0)).T @ (hs - m) / n_b,
        "D": (ws / noise.scale).T @ (hs - m) / n_b,
        "cov_h": (hs - m).T @ (hs - m) / n_b,
        "Sigma": (gs - gs.mean(0)).T @ (gs - gs.mean(0)) / n_b,
        "w": ws,
    }


def model(task, noise, algorithm, rho=0.3, mode="first_order", inner=8, seed=0, **kwargs):
    return SDEModel(task, noise, 0.01, rho, algorithm, mode=mode, inner_samples=inner,
                    generator=make_generator(seed, "inner", algorithm), **kwargs)  # fmt: skip


# ---- the batches ---------------------------------------------------------------------------------------------


def test_draw_batches_is_a_uniform_subset_without_replacement():
    rows = draw_batches(150_000, N, B, make_generator(0, "draws"))
    assert (rows[:, 0] != rows[:, 1]).all() and rows.min() >= 0 and rows.max() < N
    counts = np.bincount((rows.min(1).values * N + rows.max(1).values).numpy(), minlength=N * N)
    counts = counts[counts > 0]
    expected = len(rows) / math.comb(N, B)
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert len(counts) == math.comb(N, B)
    assert chi2 < 40.0, f"chi-square {chi2:.1f} over 15 subsets (14 dof; P(chi2 > 40) < 3e-4)"


def test_batch_weights_covariance_and_kappa(setting):
    task, noise, x = setting
    w = exact_moments(task, noise, x, "usam")["w"]
    kappa = (N - B) / (B * (N - 1))
    assert noise.kappa == pytest.approx(kappa, rel=1e-12)
    ref = kappa / N * (torch.eye(N, dtype=DTYPE) - 1.0 / N)
    assert torch.allclose(w.T @ w / len(w), ref, atol=1e-14)


def test_held_batches_repeat_for_hold_calls():
    once, twice = BatchDraws(make_generator(3), hold=1), BatchDraws(make_generator(3), hold=2)
    coarse = [once(4, N, B) for _ in range(3)]
    fine = [twice(4, N, B) for _ in range(6)]
    for j in range(3):
        assert torch.equal(fine[2 * j], coarse[j]) and torch.equal(fine[2 * j + 1], coarse[j])


# ---- the drift ---------------------------------------------------------------------------------------------------


def test_sample_curvature_matches_the_quadratics_closed_form(setting):
    task, _, _ = setting
    x = torch.randn(5, D, generator=make_generator(1), dtype=DTYPE)
    grads = task.sample_grads(x)
    ref = torch.einsum("nij,mnj->mi", task.a_mats, grads - grads.mean(1, keepdim=True))
    assert torch.allclose(task.sample_curvature(x, task.linearize(x)), ref, atol=1e-12)
    assert torch.allclose(FiniteSum.half_grad_of_sample_sq_norms(task, x),
                          torch.einsum("nij,mnj->mi", task.a_mats, grads), atol=1e-12)  # fmt: skip


@pytest.mark.parametrize("algorithm", ["usam", "dnsam"])
def test_usam_and_dnsam_drift_is_exact_and_the_additive_formula_misses_the_trace_term(setting, algorithm):
    """-(grad f + rho E[H_gamma v_gamma]) to rounding; section 3's formula on mini-batch noise is off by
    rho (1/2) grad tr Sigma (over |grad f| for DNSAM), which is not small here."""
    task, noise, x = setting
    rho = 0.3
    m = exact_moments(task, noise, x, algorithm)["m"]
    sde = model(task, noise, algorithm, rho)
    p = sde.point(x)
    assert p.inner is not None  # the diffusion needs the inner sample; the drift must not use it
    ref = -(p.grad[0] + rho * m)
    assert torch.allclose(sde.drift(p)[0], ref, atol=1e-12)
    additive = model(task, noise, algorithm, rho, minibatch_formula="additive")
    gap = additive.drift(additive.point(x))[0] - ref
    trace_term = rho * noise.scale**2 * task.sample_curvature(x, p.lin)[0]  # rho (1/2) grad tr Sigma
    if algorithm == "dnsam":
        trace_term = trace_term / p.grad[0].norm()
    assert torch.allclose(gap, trace_term, atol=1e-12)  # exactly the term it drops ...
    assert gap.norm() > 1e-2 * ref.norm()  # ... which is not small here


def test_drift_term_on_a_network_matches_real_batches():
    """Iris: E[H_gamma g_gamma] from the finite-sum identity against 40 000 real batches (4.5 standard errors)."""
    from samsde.tasks import Iris

    task = Iris()
    noise = MiniBatch(task, 10)
    x = task.initial_point(make_generator(0, "x0")).unsqueeze(0)
    sde = model(task, noise, "usam", rho=0.1)
    p = sde.point(x)
    exact = -(sde.drift(p)[0] + p.grad[0]) / 0.1
    rows = 40_000
    idx = draw_batches(rows, task.n_data, 10, make_generator(1, "iris batches"))
    lin = task.batch_linearize(x.expand(rows, -1), idx)
    h = lin.hvp(lin.grad)
    z = (h.mean(0) - exact) / (h.std(0) / math.sqrt(rows))
    assert z.abs().max() < 4.5, f"largest z-score {z.abs().max():.2f}"


# ---- the inner estimates: unbiased, error ~ n_inner^(-1/2) -----------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_inner_estimates_are_unbiased(setting, algorithm):
    """m (SAM's drift term), K^ and D^T xi over 20 000 independent inner samples (paths at the same x) against the
    enumerated moments: every entry within 4.5 standard errors."""
    task, noise, x = setting
    exact = exact_moments(task, noise, x, algorithm)
    paths = 20_000
    p = model(task, noise, algorithm, inner=8).point(x.expand(paths, -1))
    xi = torch.randn(1, N, generator=make_generator(2), dtype=DTYPE).expand(paths, -1)
    for name, estimates, ref in (
        ("m", p.inner.mean_h, exact["m"]),
        ("K", p.inner.cross_covariance().reshape(paths, -1), exact["K"].reshape(-1)),
        ("D^T xi", p.inner.d_transpose_apply(xi), xi[0] @ exact["D"]),
    ):
        z = (estimates.mean(0) - ref) / (estimates.std(0) / math.sqrt(paths))
        assert z.abs().max() < 4.5, f"{algorithm} {name}: largest z-score {z.abs().max():.2f}"


def test_inner_error_falls_as_one_over_root_n_inner(setting):
    """RMS error of SAM's K^ at n_inner = 4, 16, 64: log-log slope in [-0.6, -0.4]."""
    task, noise, x = setting
    ref = exact_moments(task, noise, x, "sam")["K"]
    sizes, rms = (4, 16, 64), []
    for k in sizes:
        est = model(task, noise, "sam", inner=k, seed=k).point(x.expand(4000, -1)).inner.cross_covariance()
        rms.append(float(((est - ref) ** 2).sum((1, 2)).mean().sqrt()))
    slope = np.polyfit(np.log(sizes), np.log(rms), 1)[0]
    assert -0.6 <= slope <= -0.4, f"slope {slope:.3f} (rms {rms})"


# ---- the diffusion -----------------------------------------------------------------------------------------------


def _columns(sde, p, dim):
    """The matrix of the (linear) diffusion at p, column by column: B e_j."""
    eye = torch.eye(dim, dtype=DTYPE)
    return torch.stack([sde.diffuse(p, eye[j : j + 1])[0] for j in range(dim)], dim=1)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_first_order_root_is_exact_to_first_order_in_rho(setting, algorithm):
    """With one inner sample, B = S + rho D^T (d x N): B B^T - (Sigma + rho (K^ + K^^T)) = rho^2 D^T D, slope 2."""
    task, noise, x = setting
    sigma = noise.covariance(x)[0]
    rhos, residuals = (0.2, 0.1, 0.05), []
    for rho in rhos:
        sde = model(task, noise, algorithm, rho, seed=7)  # the same seed: the same batches at every rho
        p = sde.point(x)
        b = _columns(sde, p, N)
        k = p.inner.cross_covariance()[0]
        residual = b @ b.T - (sigma + rho * (k + k.T))
        d_t = torch.stack([p.inner.d_transpose_apply(torch.eye(N, dtype=DTYPE)[j : j + 1])[0] for j in range(N)], 1)
        if algorithm != "sam":  # SAM's h is rho-free too, but test the general identity once more explicitly
            assert torch.allclose(residual, rho**2 * d_t @ d_t.T, atol=1e-12)
        residuals.append(float(residual.norm()))
    slope = np.polyfit(np.log(rhos), np.log(residuals), 1)[0]
    assert 1.9 <= slope <= 2.1, f"{algorithm}: slope {slope:.3f}"


def test_s_times_d_is_k_exactly(setting):
    """The identity behind the root: K = S D with S = sqrt(kappa/N) G_c^T (enumerated, every algorithm)."""
    task, noise, x = setting
    grads = task.sample_grads(x)[0]
    s = noise.scale * (grads - grads.mean(0)).T
    for algorithm in ALGORITHMS:
        e = exact_moments(task, noise, x, algorithm)
        assert torch.allclose(s @ e["D"], e["K"], atol=1e-13)
        assert torch.allclose(s @ s.T, e["Sigma"], atol=1e-13)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_sampled_root_covariance_is_unbiased(setting, algorithm):
    """The sampled root's covariance is the inner sample's Cov(g + rho h) (algebra, per path); averaged over 20 000
    inner samples it is Sigma + rho (K + K^T) + rho^2 Cov(h) (enumerated), within 4.5 standard errors."""
    task, noise, x = setting
    rho, inner, paths = 0.3, 6, 20_000
    sde = model(task, noise, algorithm, rho, mode="sampled", inner=inner, seed=11)
    p = sde.point(x.expand(paths, -1))
    cols = torch.stack([p.inner.sampled_root_apply(torch.eye(inner, dtype=DTYPE)[j].expand(paths, -1), rho)
                        for j in range(inner)], dim=-1)  # fmt: skip
    cov = cols @ cols.transpose(1, 2)
    samples = p.inner.g + rho * p.inner.h
    centred = samples - samples.mean(0)
    assert torch.allclose(cov, torch.einsum("kmi,kmj->mij", centred, centred) / (inner - 1), atol=1e-12)
    e = exact_moments(task, noise, x, algorithm)
    ref = e["Sigma"] + rho * (e["K"] + e["K"].T) + rho**2 * e["cov_h"]
    z = (cov.mean(0) - ref) / (cov.std(0) / math.sqrt(paths))
    assert z.abs().max() < 4.5, f"largest z-score {z.abs().max():.2f}"


def test_exact_mode_factorizes_the_dense_moments(setting):
    task, noise, x = setting
    sde = model(task, noise, "usam", 0.2, mode="exact", seed=5)
    p = sde.point(x)
    b = _columns(sde, p, D)
    k = p.inner.cross_covariance()[0]
    target = noise.covariance(x)[0] + 0.2 * (k + k.T)
    assert torch.linalg.eigvalsh(target).min() > 0  # nothing clamped: the root is exact
    assert torch.allclose(b @ b.T, target, atol=1e-12)


@pytest.mark.parametrize("algorithm", ["usam", "dnsam"])
def test_additive_formula_exact_root_is_the_formulas_covariance(setting, algorithm):
    """The ablation under the stage's exact diffusion: a d x d root of the additive formula's covariance
    Sigma + r (H Sigma + Sigma H) (r = rho for USAM, rho / |grad f| for DNSAM), as the exact own SDE roots
    Sigma + rho (K + K^T); its first-order root (I + r H) S (d x N) adds r^2 H Sigma H, as the own SDE's adds
    rho^2 D^T D.  Exact to rounding (1e-12) on the finite-sum quadratic (H constant)."""
    task, noise, x = setting
    first = model(task, noise, algorithm, 0.2, minibatch_formula="additive")
    exact = model(task, noise, algorithm, 0.2, mode="exact", minibatch_formula="additive")
    assert (first.dim_w, exact.dim_w) == (N, D)
    b, r = _columns(first, first.point(x), N), _columns(exact, exact.point(x), D)
    h, sigma, eye = task.a_mats.mean(0), noise.covariance(x)[0], torch.eye(D, dtype=DTYPE)
    rho = 0.2 if algorithm == "usam" else 0.2 / task.sample_grads(x).mean(1)[0].norm()
    assert torch.allclose(r @ r.T, sigma + rho * (h @ sigma + sigma @ h), atol=1e-12)
    assert torch.allclose(b @ b.T, (eye + rho * h) @ sigma @ (eye + rho * h), atol=1e-12)


def test_minibatch_cell_runs_under_the_exact_diffusion_with_the_formula_ablation(setting):
    """Before, the ablation's root kept Brownian dimension N = 6 while the exact own SDE had d = 3: every cell of
    the mini-batch stage with diffusion 'exact' and a formula_ablation stopped ("must share the Brownian dimension")."""
    from samsde.experiments.weak_error import run_cell

    task, noise, _ = setting
    setting_ = {"task": "fsq", "algorithms": ["usam", "dnsam", "sam"], "scalings": {"sqrt": {"alpha": 0.5, "c": 0.5}},
                "formula_ablation": ["sqrt"], "resolution": 2, "horizon": 0.2, "n_paths": 50, "n_boot": 10,
                "record_every": 1, "diffusion": "exact", "inner_samples": 4, "sam_moments": "auto"}  # fmt: skip
    errors = run_cell(task, noise, torch.zeros(D, dtype=DTYPE), setting_, 0.1, seed=0)["errors"]
    ablation = errors[errors.model == "additive_formula"]
    assert set(ablation.algorithm) == {"usam", "dnsam"} and ablation.rel_error.notna().all()


def test_minibatch_sde_input_errors(setting):
    task, noise, _ = setting
    with pytest.raises(ValueError, match="additive-noise formula of the SAM SDE"):
        model(task, noise, "sam", minibatch_formula="additive")
    with pytest.raises(ValueError, match="inner_samples must not exceed"):
        model(task, noise, "usam", mode="sampled", inner=N + 1)
    with pytest.raises(ValueError, match="minibatch_formula"):
        model(task, noise, "usam", minibatch_formula="gaussian")
    with pytest.raises(ValueError, match="both take one"):
        SDEModel(task, noise, 0.01, 0.1, "usam", "sam", generator=make_generator(0))
    with pytest.raises(ValueError, match="seeded generator"):
        SDEModel(task, noise, 0.01, 0.1, "sam")
    from samsde.noise import IsotropicGaussian

    with pytest.raises(ValueError, match="'sampled'"):
        SDEModel(task, IsotropicGaussian(D, 0.1), 0.01, 0.1, "usam", mode="sampled")


def test_sde_runners_share_their_path_next_to_an_uncoupled_minibatch_run(setting):
    """A mini-batch discrete run draws its own batches and no increments; the SDE runners of the same simulation
    still share one Brownian path: two copies of one SDE give the same paths bit for bit, and the discrete run's
    paths do not depend on which SDEs run next to it (an earlier loop gave every runner its own stream as soon as
    one runner was uncoupled, which fails the first check)."""
    from samsde.simulate import DiscreteRunner, SDERunner, simulate

    task, noise, x = setting

    def run(*sdes):
        discrete = DiscreteRunner(task, noise, "usam", 0.05, 0.1, "discrete", make_generator(0, "batches"))
        return simulate(task, [discrete, *sdes], x[0], 64, 10, 2, seed=3)

    sdes = [SDERunner(SDEModel(task, noise, 0.05, 0.0, "sgd"), name) for name in ("a", "b")]
    both = run(*sdes)
    assert torch.equal(both.final["a"], both.final["b"])
    assert not torch.equal(both.final["a"], both.final["discrete"])
    alone = run()
    assert torch.equal(alone.final["discrete"], both.final["discrete"])


# ---- the linear root: D_lin^T xi, noise-free, no inner sample ----------------------------------------------------


def linear_parts(task, noise, x, algorithm):
    """By enumeration of every batch: the part of h_gamma = H_gamma v_gamma linear in the batch weights w,
    L(w) = sum_i w_i (H_i grad f + H grad l_i) (over |grad f| for DNSAM), the quadratic part Q(w) = sum_ij w_i w_j
    H_i grad l_j (likewise), and the batch gradients' deviations G^T w; rows over the batches."""
    grads, a = task.sample_grads(x)[0], task.a_mats  # (N, d), (N, d, d): H_i = A_i
    full, h = grads.mean(0), a.mean(0)
    factor = 1.0 if algorithm == "usam" else 1.0 / float(full.norm())
    w = exact_moments(task, noise, x, algorithm)["w"]  # (n_b, N)
    per_sample = torch.einsum("nij,j->ni", a, full) + grads @ h  # H_i grad f + H grad l_i (H symmetric)
    lin = factor * w @ per_sample
    quad = factor * torch.einsum("bi,bj,ijk->bk", w, w, torch.einsum("ikl,jl->ijk", a, grads))
    return w, lin, quad, w @ grads


def _root_columns(sde, p, dim):
    """D_lin^T e_j (at rho = 1, the algorithm's factor included) and S e_j as columns, (d, N) each."""
    eye = torch.eye(dim, dtype=DTYPE)
    cols = [sde.diffusion_algorithm.minibatch_linear_root(sde, p, eye[j : j + 1] - 1.0 / dim) for j in range(dim)]
    return torch.stack([c[1][0] for c in cols], 1), torch.stack([c[0][0] for c in cols], 1)


@pytest.mark.parametrize("algorithm", ["usam", "dnsam"])
def test_linear_root_is_the_part_of_h_linear_in_the_batch_weights(setting, algorithm):
    """Every one of the 15 batches: h_gamma = m + D_lin^T (w_gamma / scale) + (Q(w_gamma) - E Q) to 1e-12, with the
    root from the model and m, h_gamma, Q by enumeration.  Then E[(g_gamma - grad f) (D_lin^T (w/scale))^T] = K_lin
    and K - K_lin = E[(G^T w) Q(w)^T], the third moment of w (not zero here: > 1e-3 |K|)."""
    task, noise, x = setting
    sde = model(task, noise, algorithm, mode="linear")
    p = sde.point(x)
    assert p.inner is None and sde.batch_draws is None  # no inner sample
    w, lin, quad, dev = linear_parts(task, noise, x, algorithm)
    e = exact_moments(task, noise, x, algorithm)
    alg = get(algorithm)
    grads = task.sample_grads(x)[0]
    hs = torch.stack([task.a_mats[b].mean(0) @ alg.perturbation(grads[b].mean(0, keepdim=True),
                                                             lambda: grads.mean(0, keepdim=True), 1.0)[0]
                      for b in task.all_batches(B)])  # fmt: skip
    d_t, s = _root_columns(sde, p, N)
    root_of_w = (w / noise.scale) @ d_t.T  # D_lin^T (w_gamma / scale), one row per batch
    assert torch.allclose(root_of_w, lin, atol=1e-12)
    assert torch.allclose(hs, e["m"] + root_of_w + quad - quad.mean(0), atol=1e-12)
    assert torch.allclose(s @ s.T, e["Sigma"], atol=1e-13)
    k_lin = dev.T @ root_of_w / len(w)
    assert torch.allclose(k_lin, s @ (d_t.T), atol=1e-13)  # K_lin = S D_lin
    third = dev.T @ (quad - quad.mean(0)) / len(w)
    assert torch.allclose(e["K"] - k_lin, third, atol=1e-13)
    assert third.norm() > 1e-3 * e["K"].norm()


@pytest.mark.parametrize("algorithm", ["usam", "dnsam"])
def test_linear_step_covariance_is_sigma_plus_k_lin_terms(setting, algorithm):
    """The linear diffusion's matrix B (d x N, column j = B e_j): B B^T = Sigma + rho (K_lin + K_lin^T)
    + rho^2 D_lin^T D_lin to 1e-12, with Sigma and K_lin by enumeration (independent of the root) and D_lin^T
    applied to the basis of R^N; it is linear in xi and starts with S xi, the SGD SDE's noise."""
    task, noise, x = setting
    rho = 0.3
    sde = model(task, noise, algorithm, rho, mode="linear")
    p = sde.point(x)
    b = _columns(sde, p, N)
    w, lin, _, dev = linear_parts(task, noise, x, algorithm)
    k_lin = dev.T @ lin / len(w)
    sigma = exact_moments(task, noise, x, algorithm)["Sigma"]
    d_t, s = _root_columns(sde, p, N)
    assert torch.allclose(b @ b.T, sigma + rho * (k_lin + k_lin.T) + rho**2 * d_t @ d_t.T, atol=1e-12)
    sgd = model(task, noise, "sgd", 0.0)
    assert torch.allclose(b - rho * d_t, _columns(sgd, sgd.point(x), N), atol=1e-13)
    xi = torch.randn(4, N, generator=make_generator(5), dtype=DTYPE)
    assert torch.allclose(sde.diffuse(p.__class__(x.expand(4, -1), sde.point(x.expand(4, -1)).lin, None), xi),
                          xi @ b.T, atol=1e-12)  # fmt: skip


def test_linear_and_auto_modes(setting):
    """auto: linear (no inner sample) for USAM and DNSAM, sampled for SAM; linear for SAM is an error naming it;
    neither mode exists for the additive-noise formula."""
    task, noise, _ = setting
    for algorithm in ("usam", "dnsam"):
        sde = model(task, noise, algorithm, mode="auto")
        assert sde.mode == "linear" and not sde.needs_inner and sde.batch_draws is None
        assert SDEModel(task, noise, 0.01, 0.1, algorithm, mode="linear").mode == "linear"  # no generator needed
    assert model(task, noise, "sam", mode="auto", inner=4).mode == "sampled"
    with pytest.raises(ValueError, match="'linear'.*SAM \\('sam'\\)"):
        model(task, noise, "sam", mode="linear")
    with pytest.raises(ValueError, match="'linear' is the mini-batch SDE's"):
        model(task, noise, "usam", mode="linear", minibatch_formula="additive")
    assert model(task, noise, "sgd", 0.0, mode="auto").mode == "linear"


@pytest.mark.parametrize("name", ["iris", "teacher_student"])
def test_weighted_linearization_matches_autograd_on_networks(name):
    """The closed-form weighted linearizations of sum_i c_i l_i (the full-batch kernel with sample weights, and the
    batch kernel on all N samples) against the generic autograd one, at 3 random points with random weights:
    gradient and two Hessian-vector products to 1e-12 relative."""
    from samsde import make_task
    from samsde.tasks._batch_kernel import BatchNetworkLinearization

    task = make_task(name)
    gen = make_generator(4, name)
    x = 0.5 * torch.randn(3, task.dim, generator=gen, dtype=DTYPE)
    c = torch.randn(3, task.n_data, generator=gen, dtype=DTYPE)
    ref = FiniteSum.weighted_linearize(task, x, c)
    fast = task.weighted_linearize(x, c)
    kernel = BatchNetworkLinearization(task, x, None, c, l2=False)  # the batch kernel on all N samples
    assert type(fast).__name__ == "NetworkLinearization"
    scale = ref.grad.abs().max()
    for lin in (fast, kernel):
        assert (lin.grad - ref.grad).abs().max() < 1e-12 * scale
        for v in (torch.randn(3, task.dim, generator=gen, dtype=DTYPE), ref.grad):
            hv, hv_ref = lin.hvp(v), ref.hvp(v)
            assert (hv - hv_ref).abs().max() < 1e-12 * hv_ref.abs().max()


@pytest.mark.parametrize("hvp_mode", ["reverse", "forward"])
def test_weighted_linearization_of_a_user_module(hvp_mode, monkeypatch):
    """A user's nn.Module (torch.func, both Hessian-vector routes) against the generic autograd weighted
    linearization: gradient and H v of sum_i c_i l_i to 1e-12 relative."""
    from torch import nn

    from samsde import from_module
    from samsde.tasks import ModuleTask

    monkeypatch.setattr(ModuleTask, "hvp_mode", hvp_mode)
    gen = make_generator(6, "user")
    inputs, targets = torch.randn(30, 3, generator=gen), torch.randn(30, 1, generator=gen)
    task = from_module(nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)), inputs, targets, "mse", l2=1e-3)
    x = task.x0 + 0.3 * torch.randn(2, task.dim, generator=gen, dtype=DTYPE)
    c = torch.randn(2, task.n_data, generator=gen, dtype=DTYPE)
    v = torch.randn(2, task.dim, generator=gen, dtype=DTYPE)
    fast, ref = task.weighted_linearize(x, c), FiniteSum.weighted_linearize(task, x, c)
    assert type(fast).__name__ == "FuncLinearization"
    assert (fast.grad - ref.grad).abs().max() < 1e-12 * ref.grad.abs().max()
    assert (fast.hvp(v) - ref.hvp(v)).abs().max() < 1e-12 * ref.hvp(v).abs().max()


@pytest.mark.parametrize("diffusion, algorithms, rejected", [
    ("linear", ["usam", "dnsam", "sam"], True), ("linear", ["usam", "dnsam"], False), ("auto", ["usam", "sam"], False),
])  # fmt: skip
def test_config_rejects_the_linear_diffusion_with_sam(diffusion, algorithms, rejected):
    """weak_error_minibatch.diffusion = linear with sam among the stage's algorithms stops the config check (before
    any job) with one line naming the key, the value and the algorithm; auto, and linear without sam, pass."""
    import copy
    from pathlib import Path

    import yaml

    from samsde_workflow.config import ConfigError, validate_config

    config = copy.deepcopy(yaml.safe_load((Path(__file__).resolve().parent.parent / "config.yaml").read_text()))
    config["weak_error_minibatch"].update(diffusion=diffusion, algorithms=algorithms)
    if not rejected:
        validate_config(config)
        return
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    assert "weak_error_minibatch.diffusion" in str(info.value) and "'linear'" in str(info.value)
    assert "['sam']" in str(info.value)


@pytest.mark.parametrize("diffusion", ["auto", "linear"])
def test_minibatch_cell_runs_under_the_linear_and_auto_diffusions(setting, diffusion):
    """The stage's cell with diffusion 'auto' (USAM and DNSAM linear, SAM sampled) or 'linear' (no SAM): every row of
    the paper's SDE and of the ablation gets a finite error."""
    from samsde.experiments.weak_error import run_cell

    task, noise, _ = setting
    algorithms = ["usam", "dnsam", "sam"] if diffusion == "auto" else ["usam", "dnsam"]
    setting_ = {"task": "fsq", "algorithms": algorithms, "scalings": {"sqrt": {"alpha": 0.5, "c": 0.5}},
                "formula_ablation": ["sqrt"], "resolution": 2, "horizon": 0.2, "n_paths": 50, "n_boot": 10,
                "record_every": 1, "diffusion": diffusion, "inner_samples": 4, "sam_moments": "auto"}  # fmt: skip
    errors = run_cell(task, noise, torch.zeros(D, dtype=DTYPE), setting_, 0.1, seed=0)["errors"]
    assert set(errors.algorithm) >= set(algorithms) and errors.rel_error.notna().all()
