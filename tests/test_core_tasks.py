"""Core tests for samsde.tasks (derivatives, data handling, construction) and the mini-batch noise model."""

from __future__ import annotations

import math

import pytest
import torch

import samsde
from samsde.noise import MiniBatch
from samsde.tasks import random_orthogonal

DTYPE = torch.float64
M = 3


# (id, task name, parameters, scale of the random points).  Points are drawn where the loss is not flat:
# the two-basin wells have widths 0.25 / 0.75 around +-1, matrix sensing needs |U| ~ |U*|.
CASES = [
    ("quadratic", "quadratic", {"dim": 10, "seed": 0}, 1.0),
    ("quadratic_saddle", "quadratic", {"spectrum": [2.0, -1.5, 0.5, 1.0], "rotate": True, "seed": 3}, 1.0),
    ("two_basin", "two_basin", {"dim": 3}, 0.6),
    ("iris", "iris", {}, 0.5),
    ("breast_cancer", "breast_cancer", {}, 0.5),
    ("teacher_student", "teacher_student", {}, 0.5),
    ("matrix_sensing", "matrix_sensing", {"n": 6, "rank": 2, "k": 4, "n_measurements": 40}, 0.4),
]
IDS = [c[0] for c in CASES]

_TASK_CACHE: dict[str, samsde.tasks.Task] = {}


def build(case_id: str):
    _, name, params, scale = next(c for c in CASES if c[0] == case_id)
    if case_id not in _TASK_CACHE:
        _TASK_CACHE[case_id] = samsde.make_task(name, **params)
    task = _TASK_CACHE[case_id]
    x = scale * torch.randn(M, task.dim, generator=samsde.make_generator(0, "points", case_id), dtype=DTYPE)
    return task, x


def test_every_registered_task_is_covered():
    assert {c[1] for c in CASES} == set(samsde.TASKS)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


@pytest.mark.parametrize("case_id", IDS)
def test_grad_matches_finite_differences_of_loss(case_id):
    task, x = build(case_id)
    d, h = task.dim, 1e-5
    # all 2 d M shifted points in one batched call: row (i, j) is x_i +- h e_j
    base = x.repeat_interleave(d, dim=0)
    shift = h * torch.eye(d, dtype=DTYPE).repeat(M, 1)
    fd = ((task.loss(base + shift) - task.loss(base - shift)) / (2 * h)).reshape(M, d)
    g = task.grad(x)
    assert g.shape == (M, d)
    # tolerance: central differences have error ~ h^2 |f'''| + eps |f| / h ~ 1e-10 relative
    for i in range(M):
        assert rel(g[i], fd[i]) < 1e-6, (case_id, i, rel(g[i], fd[i]))


@pytest.mark.parametrize("case_id", IDS)
def test_hvp_matches_finite_differences_of_grad(case_id):
    task, x = build(case_id)
    v = torch.randn(M, task.dim, generator=samsde.make_generator(0, "directions", case_id), dtype=DTYPE)
    h = 1e-5
    fd = (task.grad(x + h * v) - task.grad(x - h * v)) / (2 * h)
    hv = task.hvp(x, v)
    # the linearization handle gives the same gradient and H v (several products from one forward pass)
    lin = task.linearize(x)
    assert torch.allclose(lin.grad, task.grad(x), rtol=1e-13, atol=1e-15)
    assert torch.allclose(lin.hvp(v), hv, rtol=1e-12, atol=1e-14)
    assert torch.allclose(lin.hvp(2 * v), 2 * hv, rtol=1e-12, atol=1e-14)
    # tolerance: relative error of the whole vector per path, central differences ~ 1e-10
    for i in range(M):
        assert rel(hv[i], fd[i]) < 1e-6, (case_id, i, rel(hv[i], fd[i]))


@pytest.mark.parametrize("case_id", IDS)
def test_dense_hessian_is_symmetric_and_stacks_hvps(case_id):
    task, x = build(case_id)
    d = task.dim
    hess = task.hessian(x)
    assert hess.shape == (M, d, d)
    scale = hess.abs().max()
    assert scale > 0
    # symmetric up to rounding of the double backward pass
    assert (hess - hess.transpose(1, 2)).abs().max() <= 1e-12 * scale
    # column j is H e_j, computed one basis vector at a time: every column for d <= 40; for breast_cancer (d = 257)
    # 40 columns spread over all layers, for speed (the random-v check below involves every column)
    for j in sorted(set(torch.linspace(0, d - 1, min(d, 40)).round().long().tolist())):
        e = torch.zeros(M, d, dtype=DTYPE)
        e[:, j] = 1.0
        assert torch.allclose(hess[:, :, j], task.hvp(x, e), rtol=1e-10, atol=1e-12 * float(scale))
    v = torch.randn(M, d, generator=samsde.make_generator(1, "directions", case_id), dtype=DTYPE)
    assert torch.allclose((hess @ v.unsqueeze(-1)).squeeze(-1), task.hvp(x, v), rtol=1e-10, atol=1e-12 * float(scale))


def test_quadratic_dense_hessian_is_the_matrix():
    task, x = build("quadratic_saddle")
    assert torch.equal(task.hessian(x)[1], task.H)
    # rotate=True: H is not diagonal but has exactly the given spectrum
    assert (task.H - torch.diag(torch.diagonal(task.H))).abs().max() > 0.1
    assert torch.allclose(task.eigenvalues, torch.tensor([-1.5, 0.5, 1.0, 2.0], dtype=DTYPE), atol=1e-13)


def test_random_orthogonal_is_orthogonal_seeded_and_the_quadratic_rotation():
    q = random_orthogonal(5, samsde.make_generator(0, "rotation"))
    assert q.dtype == DTYPE
    torch.testing.assert_close(q.T @ q, torch.eye(5, dtype=DTYPE), rtol=0, atol=1e-14)
    assert torch.equal(q, random_orthogonal(5, samsde.make_generator(0, "rotation")))
    assert random_orthogonal(3, samsde.make_generator(0, "r"), torch.float32).dtype == torch.float32
    # the quadratic's rotation is this matrix, drawn from the task's own stream
    spectrum = [2.0, -1.5, 0.5, 1.0]
    task = samsde.make_task("quadratic", spectrum=spectrum, rotate=True, seed=3)
    r = random_orthogonal(4, samsde.make_generator(3, "quadratic"))
    h = (r * torch.tensor(spectrum, dtype=DTYPE)) @ r.T
    assert torch.equal(task.H, (h + h.T) / 2)


# ---------------------------------------------------------------------------
# Data tasks
# ---------------------------------------------------------------------------

DATA_CASES = ["iris", "breast_cancer", "teacher_student", "matrix_sensing"]


@pytest.mark.parametrize(
    "case_id, n_data", [("iris", 150), ("breast_cancer", 569), ("teacher_student", 200), ("matrix_sensing", 40)]
)
def test_n_data(case_id, n_data):
    task, _ = build(case_id)
    assert task.n_data == n_data


@pytest.mark.parametrize("case_id", DATA_CASES)
def test_full_index_batch_gives_the_full_gradient(case_id):
    task, x = build(case_id)
    n = task.n_data
    # every path's batch holds all N indices, in a different order per path
    idx = torch.stack([torch.randperm(n, generator=samsde.make_generator(i, "perm", case_id)) for i in range(M)])
    assert torch.allclose(task.grad(x, batch=idx), task.grad(x), rtol=1e-12, atol=1e-14)
    assert torch.allclose(task.batch_loss(x, idx), task.loss(x), rtol=1e-12, atol=1e-14)
    # a strict subset gives a different gradient (the batch argument is really used)
    assert not torch.allclose(task.grad(x, batch=idx[:, : n // 2]), task.grad(x), rtol=1e-3)


@pytest.mark.parametrize("case_id", DATA_CASES)
def test_per_sample_gradients_are_consistent(case_id):
    task, x = build(case_id)
    g = task.per_sample_grads(x)  # (M, N, d), without the L2 term
    assert g.shape == (M, task.n_data, task.dim)
    l2 = getattr(task, "l2", 0.0)
    assert torch.allclose(g.mean(1) + l2 * x, task.grad(x), rtol=1e-12, atol=1e-14)
    w = torch.randn(M, task.n_data, generator=samsde.make_generator(0, "weights", case_id), dtype=DTYPE)
    assert torch.allclose(task.weighted_sample_grad(x, w), (w.unsqueeze(-1) * g).sum(1), rtol=1e-11, atol=1e-13)


def test_non_data_tasks_reject_batches():
    for case_id in ("quadratic", "two_basin"):
        task, x = build(case_id)
        with pytest.raises(ValueError, match=task.name):
            task.grad(x, batch=torch.zeros(M, 2, dtype=torch.long))
        with pytest.raises(ValueError, match=task.name):
            MiniBatch(task, 2)


# ---------------------------------------------------------------------------
# Mini-batch noise: matrix-free square root, covariance, and the finite-population correction
# ---------------------------------------------------------------------------

BATCH = 10


def _iris_point():
    task = samsde.make_task("iris")
    x = task.initial_point(samsde.make_generator(0, "cov_point")).unsqueeze(0)
    return task, MiniBatch(task, BATCH), x


def _check_covariance(samples: torch.Tensor, sigma: torch.Tensor, n_se: float, label: str) -> None:
    """samples: (n, d) zero-mean draws; sigma: (d, d) the claimed covariance.

    Compares, with standard errors estimated from the samples themselves (no Gaussian assumption):
    - the trace, E|d|^2 = tr Sigma;
    - the quadratic forms along the top 3 eigenvectors of Sigma, E (v.d)^2 = v^T Sigma v;
    each within n_se standard errors, and the matrix within 5% in Frobenius norm (measured: 0.6% and 1.0%).
    """
    n = samples.shape[0]
    sq = (samples * samples).sum(1)
    se = sq.std() / math.sqrt(n)
    trace = torch.trace(sigma)
    assert abs(sq.mean() - trace) < n_se * se, (label, "trace", float(sq.mean()), float(trace))
    evals, evecs = torch.linalg.eigh(sigma)
    for j in range(1, 4):
        v = evecs[:, -j]
        q = (samples @ v) ** 2
        err = abs(q.mean() - evals[-j])
        assert err < n_se * q.std() / math.sqrt(n), (label, "eigen", j, float(q.mean()), float(evals[-j]))
    emp = samples.T @ samples / n
    assert torch.linalg.matrix_norm(emp - sigma) < 0.05 * torch.linalg.matrix_norm(sigma), label


def test_minibatch_sqrt_apply_has_the_stated_covariance():
    task, noise, x = _iris_point()
    sigma = noise.covariance(x)[0]
    assert sigma.shape == (task.dim, task.dim)
    assert torch.allclose(sigma, sigma.T, rtol=0, atol=1e-15)
    # 20000 draws of xi ~ N(0, I_N) at one point: batched as 20000 rows of the same x (equivalent to 20000 draws at
    # M = 1, one vector-Jacobian product instead of 20000; the (K, M, N) inner-draw path is checked separately below)
    n = 20000
    xi = torch.randn(n, task.n_data, generator=samsde.make_generator(0, "xi"), dtype=DTYPE)
    samples = noise.sqrt_apply(x.expand(n, -1), xi)
    # tolerance: 4 standard errors on trace and top quadratic forms (relative SE of the trace 0.6%), 5% Frobenius
    _check_covariance(samples, sigma, 4.0, "sqrt_apply")
    # the check can fail: a covariance off by 5% is rejected
    with pytest.raises(AssertionError):
        _check_covariance(samples, 1.05 * sigma, 4.0, "sqrt_apply, scaled")


def test_minibatch_sqrt_apply_batched_inner_draws_equal_single_draws():
    # the (K, M, N) path used by the SAM inner Monte Carlo equals K separate (M, N) calls
    task, noise, x = _iris_point()
    xm = x.expand(2, -1) + 0.1 * torch.randn(2, task.dim, generator=samsde.make_generator(0, "xm"), dtype=DTYPE)
    w = torch.randn(5, 2, task.n_data, generator=samsde.make_generator(0, "w"), dtype=DTYPE)
    out = noise.sqrt_apply(xm, w)
    assert out.shape == (5, 2, task.dim)
    for k in range(5):
        assert torch.allclose(out[k], noise.sqrt_apply(xm, w[k]), rtol=1e-13, atol=1e-15)


def test_minibatch_covariance_matches_actual_minibatch_gradients():
    """Validates Sigma(x), including the finite-population correction (N - B)/(N - 1) = 140/149."""
    task, noise, x = _iris_point()
    sigma = noise.covariance(x)[0]
    n = 60000
    batches = noise.draw_batches(n, samsde.make_generator(0, "batches"))
    assert batches.shape == (n, BATCH)
    # mini-batch gradient minus the full gradient, one batched call for all draws
    samples = task.grad(x.expand(n, -1), batch=batches) - task.grad(x)
    assert abs(float(samples.mean(0).norm()) / math.sqrt(float(torch.trace(sigma)))) < 0.05  # unbiased
    # tolerance: 4 standard errors (estimated from the draws; relative SE of the trace 0.3%), 5% Frobenius
    _check_covariance(samples, sigma, 4.0, "minibatch gradients")
    # the check can fail: sampling WITH replacement (no correction) would predict a 6.4% larger covariance
    n_data = task.n_data
    with_replacement = sigma * (n_data - 1) / (n_data - BATCH)
    with pytest.raises(AssertionError):
        _check_covariance(samples, with_replacement, 4.0, "without correction")


def test_minibatch_full_batch_is_zero_noise():
    task, _, x = _iris_point()
    full = MiniBatch(task, task.n_data)
    assert full.is_zero
    assert torch.allclose(full.covariance(x), torch.zeros(1, task.dim, task.dim, dtype=DTYPE), atol=1e-30)
    with pytest.raises(ValueError, match="151"):
        MiniBatch(task, 151)
    with pytest.raises(ValueError, match="0"):
        MiniBatch(task, 0)


# ---------------------------------------------------------------------------
# Construction
# ---------------------------------------------------------------------------


def test_user_spectrum_and_x0_are_honoured_exactly():
    spectrum = [3.0, -0.5, 1.25]
    x0 = [0.1, -2.0, 7.5]
    task = samsde.make_task("quadratic", spectrum=spectrum, x0=x0)
    assert task.dim == 3
    assert torch.equal(task.H, torch.diag(torch.tensor(spectrum, dtype=DTYPE)))
    assert torch.equal(task.eigenvalues, torch.tensor(sorted(spectrum), dtype=DTYPE))
    for seed in (0, 1):
        assert torch.equal(task.initial_point(samsde.make_generator(seed, "x0")), torch.tensor(x0, dtype=DTYPE))
    # the saddle: f decreases along the negative eigendirection
    e = torch.tensor([[0.0, 1.0, 0.0]], dtype=DTYPE)
    assert float(task.loss(e)) == -0.25
    # a dim that contradicts the spectrum is an error, not silently ignored
    assert samsde.make_task("quadratic", dim=3, spectrum=spectrum).dim == 3
    with pytest.raises(ValueError, match="dim 10"):
        samsde.make_task("quadratic", dim=10, spectrum=spectrum)


def test_random_quadratic_and_initial_points_are_seeded():
    a = samsde.make_task("quadratic", dim=5, seed=0)
    b = samsde.make_task("quadratic", dim=5, seed=0)
    c = samsde.make_task("quadratic", dim=5, seed=1)
    assert torch.equal(a.H, b.H)
    assert not torch.equal(a.H, c.H)
    assert a.eigenvalues.min() > 0  # A A^T / (2d) with A of size d x 2d is positive definite (a.s.)
    p = a.initial_point(samsde.make_generator(0, "x0"))
    assert torch.equal(p, a.initial_point(samsde.make_generator(0, "x0")))
    assert not torch.equal(p, a.initial_point(samsde.make_generator(1, "x0")))


def test_make_task_rejects_unknown_names_and_parameters():
    with pytest.raises(ValueError, match="'resnet'"):
        samsde.make_task("resnet")
    with pytest.raises(ValueError, match="n_hiden"):
        samsde.make_task("iris", n_hiden=3)
    with pytest.raises(ValueError, match="bogus"):
        samsde.make_task("quadratic", dim=3, bogus=1)
    with pytest.raises(ValueError, match="x0 has length 2"):
        samsde.make_task("quadratic", spectrum=[1.0, 2.0, 3.0], x0=[1.0, 2.0])
    with pytest.raises(ValueError, match="dim"):
        samsde.make_task("two_basin", dim=0)
