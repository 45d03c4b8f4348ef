"""Core tests for samsde.sde and the simulation loop: OU moments, Euler-Maruyama order, the first-order
diffusion, the coupling with the discrete runs, eigenvalue clamping and the full-batch limit (paper notes 3-5).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import samsde
from samsde.algorithms import get
from samsde.noise import make_noise
from samsde.theory import ou_moments, usam_diffusion_variance, usam_drift_rate
from samsde.weak_error import fit_loglog_slope

DTYPE = torch.float64


SPECTRUM = [0.5, 1.0, 2.0]
X0 = [1.0, -1.0, 0.5]


def ou_task():
    # rotated, so that the eigendirections are not the coordinate axes
    return samsde.make_task("quadratic", spectrum=SPECTRUM, rotate=True, seed=0, x0=X0)


def em_moments(lam, x0_eigen, n_em: int, dt: float, eta: float, rho: float, sigma: float, mode: str):
    """Exact mean and variance of the Euler-Maruyama recursion X+ = (1 - a dt) X + sqrt(eta) b dW per direction."""
    a = usam_drift_rate(lam, rho)
    b2 = usam_diffusion_variance(lam, rho, sigma, mode)
    m = np.asarray(x0_eigen, dtype=float).copy()
    v = np.zeros_like(m)
    for _ in range(n_em):
        m = (1 - a * dt) * m
        v = (1 - a * dt) ** 2 * v + eta * b2 * dt
    return m, v


def eigen_coordinates(task, x: torch.Tensor) -> np.ndarray:
    return (x @ task.eigenvectors).numpy()


# ---------------------------------------------------------------------------
# Ornstein-Uhlenbeck moments on the quadratic
# ---------------------------------------------------------------------------


def test_ou_moments_usam_exact_first_order_and_sgd():
    task = ou_task()
    sigma, eta, rho, t_end, r, n_paths = 1.0, 0.1, 0.5, 1.0, 10, 20000
    noise = make_noise("isotropic", task, sigma=sigma)
    n_steps = round(t_end / eta)
    specs = {  # runner name -> (model, rho of the closed form, closed-form mode)
        "usam_exact": (samsde.SDEModel(task, noise, eta, rho, drift="usam", mode="exact"), rho, "exact"),
        "usam_first": (samsde.SDEModel(task, noise, eta, rho, drift="usam", mode="first_order"), rho, "first_order"),
        "sgd_sde": (samsde.SDEModel(task, noise, eta, rho, drift="sgd"), 0.0, "exact"),
    }
    runners = [samsde.SDERunner(model, name=name) for name, (model, _, _) in specs.items()]
    x0 = task.initial_point(samsde.make_generator(0, "unused"))
    res = samsde.simulate(task, runners, x0, n_paths, n_steps, r, seed=0, stream=("ou",))
    lam = task.eigenvalues.numpy()
    x0_eigen = eigen_coordinates(task, x0.unsqueeze(0))[0]
    for name, (_, rho_cf, mode) in specs.items():
        y = eigen_coordinates(task, res.final[name])
        mean, var = y.mean(0), y.var(0, ddof=1)
        mean_ou, var_ou = ou_moments(lam, x0_eigen, t_end, eta, rho_cf, sigma, mode)
        mean_em, var_em = em_moments(lam, x0_eigen, n_steps * r, eta / r, eta, rho_cf, sigma, mode)
        # tolerance: 4 Monte Carlo standard errors (Gaussian: SE(mean) = sqrt(var/M), SE(var) = var sqrt(2/(M-1)))
        # plus the exactly computed Euler-Maruyama bias |EM recursion - closed form| (O(dt), dt = 0.01; at most 2 SE)
        se_mean = np.sqrt(var_ou / n_paths)
        se_var = var_ou * np.sqrt(2 / (n_paths - 1))
        tol_mean = 4 * se_mean + np.abs(mean_em - mean_ou)
        tol_var = 4 * se_var + np.abs(var_em - var_ou)
        assert np.all(np.abs(mean - mean_ou) < tol_mean), (name, mean, mean_ou, tol_mean)
        assert np.all(np.abs(var - var_ou) < tol_var), (name, var, var_ou, tol_var)
        # and, tighter, against the EM recursion itself within 4 standard errors
        assert np.all(np.abs(mean - mean_em) < 4 * se_mean), (name, mean, mean_em)
        assert np.all(np.abs(var - var_em) < 4 * se_var), (name, var, var_em)
    # the check can fail: the exact and first-order diffusions (b^2 = 3 vs 4 along lambda = 2) and the SGD diffusion
    # give variances farther apart than the tolerance
    _, v_exact = ou_moments(lam, x0_eigen, t_end, eta, rho, sigma, "exact")
    _, v_first = ou_moments(lam, x0_eigen, t_end, eta, rho, sigma, "first_order")
    assert abs(v_first[-1] - v_exact[-1]) > 3 * (4 * v_exact[-1] * math.sqrt(2 / n_paths))
    assert specs["usam_exact"][0].clamp_count == 0


# ---------------------------------------------------------------------------
# Euler-Maruyama: weak order 1
# ---------------------------------------------------------------------------


def test_em_recursion_second_moment_converges_with_order_one():
    """Deterministic: E|X_T|^2 of the EM recursion against the OU closed form, dt = eta / r halving."""
    lam = np.array(SPECTRUM)
    x0 = np.array(X0)
    eta, rho, sigma, t_end = 0.1, 0.5, 1.0, 2.0
    n_steps = round(t_end / eta)
    resolutions = [2, 4, 8, 16, 32, 64]
    for mode, rho_cf in (("exact", rho), ("first_order", rho), ("exact", 0.0)):
        m_ou, v_ou = ou_moments(lam, x0, t_end, eta, rho_cf, sigma, mode)
        exact = float(np.sum(m_ou**2 + v_ou))
        errors = []
        for r in resolutions:
            m, v = em_moments(lam, x0, n_steps * r, eta / r, eta, rho_cf, sigma, mode)
            errors.append(abs(float(np.sum(m**2 + v)) - exact))
        slope = fit_loglog_slope([eta / r for r in resolutions], errors).slope
        # measured: 1.03 (exact), 1.03 (first_order), ~1.0 (SGD)
        assert 0.8 <= slope <= 1.2, (mode, rho_cf, slope, errors)


def test_simulated_em_noiseless_path_converges_with_order_one():
    """Deterministic through the package: sigma = 0, so simulate's path IS the EM recursion of the drift."""
    task = ou_task()
    noise = make_noise("isotropic", task, sigma=0.0)
    eta, rho, t_end = 0.1, 0.5, 2.0
    n_steps = round(t_end / eta)
    lam = task.eigenvalues.numpy()
    x0 = task.initial_point(samsde.make_generator(0, "unused"))
    x0_eigen = eigen_coordinates(task, x0.unsqueeze(0))[0]
    m_ou, _ = ou_moments(lam, x0_eigen, t_end, eta, rho, 0.0)
    exact = float(np.sum(m_ou**2))
    resolutions = [1, 2, 4, 8, 16, 32]
    errors = []
    for r in resolutions:
        model = samsde.SDEModel(task, noise, eta, rho, drift="usam")
        res = samsde.simulate(task, [samsde.SDERunner(model)], x0, 1, n_steps, r, seed=0)
        m_em, _ = em_moments(lam, x0_eigen, n_steps * r, eta / r, eta, rho, 0.0, "exact")
        got = eigen_coordinates(task, res.final["usam"])[0]
        assert np.allclose(got, m_em, rtol=1e-10, atol=1e-14)  # the simulated path is the recursion (rounding)
        errors.append(abs(float(np.sum(got**2)) - exact))
    slope = fit_loglog_slope([eta / r for r in resolutions], errors).slope
    # measured ~1.0; tolerance [0.8, 1.2]
    assert 0.8 <= slope <= 1.2, (slope, errors)


@pytest.mark.parametrize("mode", ["exact", "first_order"])
def test_simulated_em_moments_match_the_recursion_at_coarse_dt(mode):
    """With noise: simulate's moments equal the EM recursion's at dt = eta / r, and differ visibly from the SDE's."""
    task = ou_task()
    sigma, eta, rho, t_end, n_paths = 1.0, 0.5, 0.25, 3.0, 20000
    noise = make_noise("isotropic", task, sigma=sigma)
    n_steps = round(t_end / eta)
    lam = task.eigenvalues.numpy()
    x0 = task.initial_point(samsde.make_generator(0, "unused"))
    x0_eigen = eigen_coordinates(task, x0.unsqueeze(0))[0]
    m_ou, v_ou = ou_moments(lam, x0_eigen, t_end, eta, rho, sigma, mode)
    for r in (1, 2, 4):
        model = samsde.SDEModel(task, noise, eta, rho, drift="usam", mode=mode)
        res = samsde.simulate(task, [samsde.SDERunner(model)], x0, n_paths, n_steps, r, seed=1, stream=(r,))
        y = eigen_coordinates(task, res.final["usam"])
        m_em, v_em = em_moments(lam, x0_eigen, n_steps * r, eta / r, eta, rho, sigma, mode)
        second = (y**2).sum(1)
        se = second.std(ddof=1) / math.sqrt(n_paths)
        # tolerance: 4 standard errors (second moment: SE from the sample; variance: Gaussian formula)
        assert abs(second.mean() - np.sum(m_em**2 + v_em)) < 4 * se, (r, second.mean(), np.sum(m_em**2 + v_em))
        assert np.all(np.abs(y.var(0, ddof=1) - v_em) < 4 * v_em * math.sqrt(2 / (n_paths - 1)))
        if r == 1:
            # the check discriminates: at r = 1 the EM bias is many standard errors (measured > 50 SE)
            assert abs(np.sum(m_em**2 + v_em) - np.sum(m_ou**2 + v_ou)) > 20 * se


# ---------------------------------------------------------------------------
# exact vs first-order diffusion: they agree up to O(rho^2)
# ---------------------------------------------------------------------------

RHOS = [0.1, 0.05, 0.025, 0.0125]

DIFFUSION_CASES = [
    # (id, task name, task parameters, noise kind, algorithms)
    ("quadratic", "quadratic", {"dim": 6, "seed": 1}, "isotropic", ("usam", "dnsam", "sam")),
    ("teacher_student", "teacher_student", {"n_samples": 100}, "isotropic", ("usam", "dnsam", "sam")),
    ("teacher_student_psd", "teacher_student", {"n_samples": 100}, "psd", ("usam", "dnsam")),
    ("breast_cancer", "breast_cancer", {"n_hidden": 2}, "isotropic", ("usam", "dnsam", "sam")),
]


def first_order_covariance(model: samsde.SDEModel, p) -> torch.Tensor:
    """B B^T of the matrix-free diffusion: B's columns are B e_j (batched over the M paths)."""
    m, d = p.x.shape
    cols = []
    for j in range(d):
        e = torch.zeros(m, d, dtype=DTYPE)
        e[:, j] = 1.0
        cols.append(model.diffuse(p, e))
    b = torch.stack(cols, dim=-1)  # (M, d, d)
    return b @ b.transpose(1, 2)


@pytest.mark.parametrize("case", DIFFUSION_CASES, ids=[c[0] for c in DIFFUSION_CASES])
def test_first_order_diffusion_agrees_with_exact_to_second_order(case):
    case_id, task_name, params, noise_kind, algorithms = case
    task = samsde.make_task(task_name, **params)
    noise = make_noise(noise_kind, task, sigma=0.5, seed=0)
    gen = samsde.make_generator(0, "points", case_id)
    x = task.initial_point(gen).expand(2, -1) + 0.3 * torch.randn(2, task.dim, generator=gen, dtype=DTYPE)
    eta = 0.1
    for alg in algorithms:
        # one point (linearization and, for SAM, one inner sample of K = 4096 draws) shared by every rho: the
        # point does not depend on rho, so the comparison isolates the diffusion formulas
        base = samsde.SDEModel(
            task,
            noise,
            eta,
            RHOS[0],
            drift=alg,
            inner_samples=4096,
            generator=samsde.make_generator(0, "inner", case_id),
        )
        p = base.point(x)
        sigma = noise.covariance(x)
        diffs, first_terms = [], []
        for rho in RHOS:
            # the models only apply their formulas to the shared point p: their inner streams are never drawn
            unused = samsde.make_generator(0, "unused")
            first = samsde.SDEModel(task, noise, eta, rho, drift=alg, mode="first_order", generator=unused)
            exact = samsde.SDEModel(task, noise, eta, rho, drift=alg, mode="exact", generator=unused)
            bbt_first = first_order_covariance(first, p)
            bbt_exact = get(alg).diffusion_matrix(exact, p, sigma)
            if rho == RHOS[-1]:
                # the exact mode's factor squared is that matrix (it is PSD here: nothing is clamped)
                root = exact._exact_sqrt(p)
                assert exact.clamp_count == 0
                assert torch.allclose(root @ root, bbt_exact, rtol=1e-9, atol=1e-12)
            diffs.append(float(torch.linalg.matrix_norm(bbt_first - bbt_exact).max()))
            first_terms.append(float(torch.linalg.matrix_norm(bbt_exact - sigma).max()))
        slope = fit_loglog_slope(RHOS, diffs).slope
        # tolerance: slope in [1.8, 2.2] (a wrong first-order term would give ~1; measured 2.000 in every case, the
        # difference is exactly rho^2 H Sigma H for USAM); at the smallest rho it is < 10% of the O(rho) term
        assert 1.8 <= slope <= 2.2, (case_id, alg, slope, diffs)
        assert diffs[-1] < 0.1 * first_terms[-1], (case_id, alg, diffs[-1], first_terms[-1])


# ---------------------------------------------------------------------------
# Coupling: r = 1, SGD SDE path == SGD discrete path
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("task_name, params", [("quadratic", {"dim": 5}), ("teacher_student", {"n_samples": 50})])
def test_resolution_one_sgd_sde_equals_discrete_sgd(task_name, params):
    task = samsde.make_task(task_name, **params)
    noise = make_noise("isotropic", task, sigma=0.5)
    eta = 0.05
    x0 = task.initial_point(samsde.make_generator(0, "x0"))
    runners = [
        samsde.DiscreteRunner(task, noise, "sgd", eta, 0.0),
        samsde.SDERunner(samsde.SDEModel(task, noise, eta, 0.0, drift="sgd"), name="sgd_sde"),
    ]
    res = samsde.simulate(task, runners, x0, 64, 40, 1, seed=0, observables=samsde.OBSERVABLES)
    assert torch.allclose(res.final["sgd"], res.final["sgd_sde"], rtol=1e-12, atol=1e-12)
    for obs in samsde.OBSERVABLES:
        assert torch.allclose(res.values["sgd"][obs], res.values["sgd_sde"][obs], rtol=1e-12, atol=1e-12)
    # the paths really are random and move (not a trivial equality)
    assert res.final["sgd"].std(0).min() > 1e-3
    # with r = 2 the SDE takes two EM steps: the paths differ (by O(eta) per path), so the equality above is specific
    res2 = samsde.simulate(task, runners, x0, 64, 40, 2, seed=0)
    assert not torch.allclose(res2.final["sgd"], res2.final["sgd_sde"], rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------
# Clamped eigenvalues of B B^T (exact mode)
# ---------------------------------------------------------------------------


def test_clamp_count_on_a_saddle_with_large_rho():
    task = samsde.make_task("quadratic", spectrum=[1.0, -1.0], x0=[0.3, 0.2])
    noise = make_noise("isotropic", task, sigma=0.5)
    eta, rho, n_steps, r, m = 0.1, 2.0, 5, 2, 10
    model = samsde.SDEModel(task, noise, eta, rho, drift="usam", mode="exact")
    samsde.simulate(task, [samsde.SDERunner(model)], task.initial_point(None), m, n_steps, r, seed=0)
    # B B^T = sigma^2 (I + 2 rho H) has eigenvalue sigma^2 (1 - 2 rho) < 0 along lambda = -1 at every point:
    # exactly one clamp per path and EM step
    assert model.clamp_count == n_steps * r * m
    assert model.factorization_count == n_steps * r * m * 2
    root = model._exact_sqrt(model.point(torch.zeros(1, 2, dtype=DTYPE)))[0]
    assert torch.allclose(root @ root, torch.diag(torch.tensor([0.25 * (1 + 2 * rho), 0.0], dtype=DTYPE)), atol=1e-14)


def test_no_clamp_on_a_positive_definite_quadratic_with_small_rho():
    task = ou_task()
    noise = make_noise("isotropic", task, sigma=0.5)
    eta, n_steps, r, m = 0.1, 5, 2, 10
    for alg in ("usam", "dnsam"):
        model = samsde.SDEModel(task, noise, eta, 0.05, drift=alg, mode="exact")
        samsde.simulate(task, [samsde.SDERunner(model)], task.initial_point(None), m, n_steps, r, seed=0)
        assert model.clamp_count == 0
        assert model.factorization_count == n_steps * r * m * 3


# ---------------------------------------------------------------------------
# Full batch: the SAM SDE's drift is DNSAM's
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "task_name, params",
    [("quadratic", {"spectrum": [2.0, -1.0, 0.5], "rotate": True}), ("teacher_student", {"n_samples": 50})],
)
def test_full_batch_sam_drift_equals_dnsam_drift(task_name, params):
    task = samsde.make_task(task_name, **params)
    none = make_noise("none", task)
    x = torch.randn(4, task.dim, generator=samsde.make_generator(0, "fb", task_name), dtype=DTYPE)
    eta, rho = 0.1, 0.3
    sam = samsde.SDEModel(task, none, eta, rho, drift="sam")
    dnsam = samsde.SDEModel(task, none, eta, rho, drift="dnsam")
    sgd = samsde.SDEModel(task, none, eta, rho, drift="sgd")
    p = sam.point(x)
    assert p.inner is None  # no inner Monte Carlo without noise
    drift_sam = sam.drift(p)
    assert torch.allclose(drift_sam, dnsam.drift(dnsam.point(x)), rtol=1e-12, atol=1e-14)
    # the drift is -(grad f + rho H grad f / |grad f|), not the SGD drift
    g = task.grad(x)
    expected = -(g + rho * task.hvp(x, g) / torch.linalg.vector_norm(g, dim=-1, keepdim=True))
    assert torch.allclose(drift_sam, expected, rtol=1e-12, atol=1e-14)
    assert not torch.allclose(drift_sam, sgd.drift(p), rtol=1e-3)
    # and no diffusion
    dw = torch.randn(4, task.dim, generator=samsde.make_generator(1, "fb"), dtype=DTYPE)
    assert torch.equal(sam.diffuse(p, dw), torch.zeros_like(x))


def test_isotropic_noise_with_zero_sigma_is_full_batch():
    # regression: isotropic sigma = 0 used to give NaN in the first-order SAM diffusion (0 / (2 sigma))
    task = samsde.make_task("quadratic", dim=3)
    x = torch.randn(4, 3, generator=samsde.make_generator(0, "zero_sigma"), dtype=DTYPE)
    dw = 0.1 * torch.randn(4, 3, generator=samsde.make_generator(1, "zero_sigma"), dtype=DTYPE)
    reference = samsde.SDEModel(task, make_noise("none", task), 0.1, 0.2, drift="sam").em_step(x, dw, 0.01)
    for mode in ("first_order", "exact"):
        model = samsde.SDEModel(
            task,
            make_noise("isotropic", task, sigma=0.0),
            0.1,
            0.2,
            drift="sam",
            mode=mode,
            generator=samsde.make_generator(0, "inner"),
        )
        step = model.em_step(x, dw, 0.01)
        assert torch.isfinite(step).all(), mode
        assert torch.allclose(step, reference, rtol=1e-12, atol=1e-14), mode


# ---------------------------------------------------------------------------
# Recording shares the gradient with the next step
# ---------------------------------------------------------------------------


class _CountingTask:
    """Wraps a task and counts its linearizations and gradients (the expensive calls on a network)."""

    def __init__(self, task):
        self._task, self.calls = task, 0

    def linearize(self, x):
        self.calls += 1
        return self._task.linearize(x)

    def grad(self, x, batch=None):
        self.calls += 1
        return self._task.grad(x, batch)

    def __getattr__(self, name):
        return getattr(self._task, name)


def test_recording_the_gradient_reuses_the_steps_linearization_and_changes_nothing():
    """Observables that need grad f at the recorded state reuse the linearization the runner's next step makes
    (and the SAM inner sample, drawn in the same order): the paths are bit for bit those of a run that records
    only |x|, and the records cost one extra gradient per runner (the last record) instead of one per record."""
    base = samsde.make_task("teacher_student", n_samples=50)
    eta, rho, n_paths, n_steps, r = 0.05, 0.1, 16, 6, 2
    x0 = base.initial_point(samsde.make_generator(0, "x0"))

    def run(observables):
        task = _CountingTask(base)
        noise = make_noise("isotropic", task, sigma=0.5)
        runners = [samsde.DiscreteRunner(task, noise, "sam", eta, rho, "discrete")] + [
            samsde.SDERunner(
                samsde.SDEModel(task, noise, eta, rho, drift, generator=samsde.make_generator(0, drift)), drift
            )
            for drift in ("sam", "usam")
        ]
        res = samsde.simulate(task, runners, x0, n_paths, n_steps, r, seed=0, observables=observables)
        return res, task.calls

    plain, plain_calls = run({"norm": samsde.OBSERVABLES["norm"]})
    with_grad, grad_calls = run({"grad_norm": samsde.OBSERVABLES["grad_norm"], "norm": samsde.OBSERVABLES["norm"]})
    for name in ("discrete", "sam", "usam"):
        assert torch.equal(plain.final[name], with_grad.final[name])
        assert torch.equal(plain.values[name]["norm"], with_grad.values[name]["norm"])
        expected = torch.linalg.vector_norm(base.grad(with_grad.final[name]), dim=-1)
        assert torch.allclose(with_grad.values[name]["grad_norm"][-1], expected, rtol=1e-12, atol=0)
    # discrete SAM: 2 gradients per step; each SDE: r linearizations per step; + 1 per runner for the last record
    assert plain_calls == n_steps * (2 + 2 * r)
    assert grad_calls == plain_calls + 3
