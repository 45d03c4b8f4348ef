"""Core tests for samsde.algorithms: the four discrete steps (paper notes, section 2).

All tensors are float64; every random quantity comes from samsde.make_generator.
"""

from __future__ import annotations

import re

import pytest
import torch

import samsde
from samsde.noise import MiniBatch, make_noise

DTYPE = torch.float64
SAM_TYPE = ("usam", "sam", "dnsam")


def quadratic_grad(h: torch.Tensor):
    return lambda y: y @ h


# ---------------------------------------------------------------------------
# rho = 0 reproduces SGD bit for bit
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", SAM_TYPE)
def test_rho_zero_is_sgd_bit_for_bit(algorithm):
    gen = samsde.make_generator(0, "test_rho_zero", algorithm)
    task = samsde.make_task("teacher_student", n_in=3, n_hidden=3, n_samples=20)
    m = 6
    x = torch.randn(m, task.dim, generator=gen, dtype=DTYPE)
    z = 0.3 * torch.randn(m, task.dim, generator=gen, dtype=DTYPE)
    # path 1: negative zeros everywhere, where a multiplied-by-zero ascent step could flip signs
    x[1] = -0.0
    # paths 0 and 1: z = -grad f(x), so the stochastic gradient g = grad + z is exactly 0 (and |g| = 0 for SAM).
    # The gradient is taken on the whole batch: a batched GEMM need not round like the one-path product.
    z[:2] = -task.grad(x)[:2]
    assert torch.equal(task.grad(x)[:2] + z[:2], torch.zeros(2, task.dim, dtype=DTYPE))
    for eta in (0.1, 0.37):
        sgd = samsde.discrete_step("sgd", x, task.grad, z, eta, 0.0)
        got = samsde.discrete_step(algorithm, x, task.grad, z, eta, 0.0)
        assert torch.equal(got, sgd)
        assert torch.isfinite(got).all()
        # signed zeros agree too (torch.equal treats -0.0 == 0.0, so compare the sign bits separately)
        assert torch.equal(torch.signbit(got), torch.signbit(sgd))
        # paths 0 and 1 do not move at all: g = 0
        assert torch.equal(got[:2], x[:2])
    # the equality is not vacuous: a positive rho changes the step
    moved = samsde.discrete_step(algorithm, x, task.grad, z, 0.1, 0.05)
    assert not torch.allclose(moved[2:], samsde.discrete_step("sgd", x, task.grad, z, 0.1, 0.0)[2:])


@pytest.mark.parametrize("algorithm", SAM_TYPE)
def test_zero_stochastic_gradient_with_positive_rho_gives_no_nan(algorithm):
    h = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=DTYPE)
    x = torch.tensor([[1.0, -2.0], [0.0, 0.0]], dtype=DTYPE)
    z = -(x @ h)  # g = 0 on both paths; on path 1 also grad f(x) = 0 (DNSAM's 1/|grad f| would be 1/0)
    out = samsde.discrete_step(algorithm, x, quadratic_grad(h), z, 0.1, 0.3)
    assert torch.isfinite(out).all()
    # g = 0: the ascent point is x itself, so the step is x - eta (grad f(x) + z) = x
    assert torch.allclose(out, x, rtol=0, atol=1e-15)


# ---------------------------------------------------------------------------
# Hand computation on a small quadratic (table of paper notes section 2)
# ---------------------------------------------------------------------------


def _hand_step(algorithm: str, h: torch.Tensor, x: torch.Tensor, z: torch.Tensor, eta: float, rho: float):
    """One step for ONE path (x, z of shape (d,)), written from the table with plain matrix-vector products."""
    grad = h @ x
    g = grad + z
    if algorithm == "sgd":
        return x - eta * g
    if algorithm == "usam":
        y = x + rho * g
    elif algorithm == "sam":
        y = x + rho * g / torch.sqrt((g * g).sum())
    elif algorithm == "dnsam":
        y = x + rho * g / torch.sqrt((grad * grad).sum())
    return x - eta * (h @ y + z)


@pytest.mark.parametrize("algorithm", samsde.ALGORITHMS)
def test_step_matches_hand_computation(algorithm):
    h = torch.tensor([[2.0, 0.5, 0.0], [0.5, 1.0, -0.3], [0.0, -0.3, 0.5]], dtype=DTYPE)
    x = torch.tensor([[1.0, -2.0, 0.5], [0.3, 0.7, -1.1]], dtype=DTYPE)
    z = torch.tensor([[0.3, 0.1, -0.2], [-0.4, 0.2, 0.6]], dtype=DTYPE)
    eta, rho = 0.1, 0.2
    got = samsde.discrete_step(algorithm, x, quadratic_grad(h), z, eta, rho)
    expected = torch.stack([_hand_step(algorithm, h, x[i], z[i], eta, rho) for i in range(2)])
    # tolerance: rounding only (different summation order), values are O(1)
    assert torch.allclose(got, expected, rtol=0, atol=1e-14), (got - expected).abs().max()


def test_hand_computation_numbers_for_one_path():
    # d = 2, H = diag(2, 1), x = (1, 1), z = (0, 1), eta = 0.5, rho = 0.25.  Worked out by hand:
    # grad f(x) = (2, 1), g = (2, 2), |g| = 2 sqrt 2, |grad f| = sqrt 5.
    # SGD   x+ = (1, 1) - 0.5 (2, 2)                                       = (0, 0)
    # USAM  y = (1.5, 1.5), grad f(y) + z = (3, 2.5), x+ = (1, 1) - (1.5, 1.25) = (-0.5, -0.25)
    # SAM   y = x + 0.25 (2, 2) / (2 sqrt 2) = x + (1, 1) / (4 sqrt 2);
    #       grad f(y) + z = (2 + 1/(2 sqrt 2), 2 + 1/(4 sqrt 2))
    # DNSAM y = x + 0.25 (2, 2) / sqrt 5 = x + (1, 1) / (2 sqrt 5); grad f(y) + z = (2 + 1/sqrt 5, 2 + 1/(2 sqrt 5))
    h = torch.diag(torch.tensor([2.0, 1.0], dtype=DTYPE))
    x = torch.tensor([[1.0, 1.0]], dtype=DTYPE)
    z = torch.tensor([[0.0, 1.0]], dtype=DTYPE)
    s2, s5 = 2.0**0.5, 5.0**0.5
    expected = {
        "sgd": [0.0, 0.0],
        "usam": [-0.5, -0.25],
        "sam": [1 - 0.5 * (2 + 1 / (2 * s2)), 1 - 0.5 * (2 + 1 / (4 * s2))],
        "dnsam": [1 - 0.5 * (2 + 1 / s5), 1 - 0.5 * (2 + 1 / (2 * s5))],
    }
    for algorithm, value in expected.items():
        got = samsde.discrete_step(algorithm, x, quadratic_grad(h), z, 0.5, 0.25)
        assert torch.allclose(got, torch.tensor([value], dtype=DTYPE), rtol=0, atol=1e-15), algorithm


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


def _args():
    x = torch.zeros(2, 3, dtype=DTYPE)
    return x, (lambda y: y), torch.zeros_like(x)


@pytest.mark.parametrize("name", ["adam", "SAM", ""])
def test_unknown_algorithm_raises(name):
    x, grad_fn, z = _args()
    with pytest.raises(ValueError, match=re.escape(repr(name))):
        samsde.discrete_step(name, x, grad_fn, z, 0.1, 0.1)


@pytest.mark.parametrize("eta", [0.0, -0.5, float("nan")])
def test_bad_eta_raises(eta):
    x, grad_fn, z = _args()
    with pytest.raises(ValueError, match=re.escape(str(eta))):
        samsde.discrete_step("usam", x, grad_fn, z, eta, 0.1)


@pytest.mark.parametrize("rho", [-0.1, -1e-12, float("nan")])
def test_bad_rho_raises(rho):
    x, grad_fn, z = _args()
    with pytest.raises(ValueError, match=re.escape(str(rho))):
        samsde.discrete_step("sam", x, grad_fn, z, 0.1, rho)


def test_runner_and_model_validate_inputs():
    task = samsde.make_task("quadratic", dim=3)
    noise = make_noise("isotropic", task, sigma=0.1)
    with pytest.raises(ValueError, match="'adamw'"):
        samsde.DiscreteRunner(task, noise, "adamw", 0.1, 0.1)
    with pytest.raises(ValueError, match=re.escape("-0.25")):
        samsde.DiscreteRunner(task, noise, "usam", -0.25, 0.1)
    with pytest.raises(ValueError, match=re.escape("-0.75")):
        samsde.SDEModel(task, noise, 0.1, -0.75, drift="usam")
    with pytest.raises(ValueError, match="'adamw'"):
        samsde.SDEModel(task, noise, 0.1, 0.1, drift="adamw")


# ---------------------------------------------------------------------------
# Mini-batch oracle: both gradient evaluations of one step use the same batch
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", samsde.ALGORITHMS)
def test_minibatch_step_uses_one_batch_for_both_gradients(algorithm):
    task = samsde.make_task("iris")
    noise = MiniBatch(task, batch_size=10)
    m, eta, rho = 5, 0.2, 0.3
    x = task.initial_point(samsde.make_generator(0, "mb_x")).expand(m, -1).clone()
    x += 0.3 * torch.randn(m, task.dim, generator=samsde.make_generator(0, "mb_jitter"), dtype=DTYPE)

    runner = samsde.DiscreteRunner(task, noise, algorithm, eta, rho, generator=samsde.make_generator(0, "mb"))
    increments = torch.zeros(1, m, noise.dim_w, dtype=DTYPE)  # ignored by a mini-batch runner
    got = runner.advance(x, increments, eta)

    # reproduce the runner's batch draw with an identically seeded generator
    batch = noise.draw_batches(m, samsde.make_generator(0, "mb"))
    assert batch.shape == (m, 10)
    assert all(len(set(row.tolist())) == 10 for row in batch)  # without replacement
    g = task.grad(x, batch=batch)
    norm = lambda v: torch.linalg.vector_norm(v, dim=-1, keepdim=True)  # noqa: E731
    scale = {"sgd": 0.0, "usam": rho, "sam": rho / norm(g), "dnsam": rho / norm(task.grad(x))}[algorithm]
    if algorithm == "sgd":
        expected = x - eta * g
    else:
        expected = x - eta * task.grad(x + scale * g, batch=batch)
    # tolerance: rounding only
    assert torch.allclose(got, expected, rtol=0, atol=1e-13), (got - expected).abs().max()

    if algorithm != "sgd":
        # the check can fail: a fresh batch for the second gradient gives a different step
        other = noise.draw_batches(m, samsde.make_generator(1, "mb"))
        wrong = x - eta * task.grad(x + scale * g, batch=other)
        assert (got - wrong).abs().max() > 1e-4


def test_minibatch_runner_inside_simulate():
    # the same step through the simulation loop: the runner keeps its own (owner-set) batch stream
    task = samsde.make_task("iris")
    noise = MiniBatch(task, batch_size=10)
    m, eta, rho = 4, 0.2, 0.3
    x0 = task.initial_point(samsde.make_generator(0, "mb_x"))
    runner = samsde.DiscreteRunner(task, noise, "sam", eta, rho, generator=samsde.make_generator(0, "mb"))
    res = samsde.simulate(task, [runner], x0, n_paths=m, n_steps=1, resolution=1, seed=0)
    batch = noise.draw_batches(m, samsde.make_generator(0, "mb"))
    x = x0.expand(m, -1)
    g = task.grad(x, batch=batch)
    expected = x - eta * task.grad(x + rho * g / torch.linalg.vector_norm(g, dim=-1, keepdim=True), batch=batch)
    assert torch.allclose(res.final["sam"], expected, rtol=0, atol=1e-13)
    # different paths drew different batches
    assert not torch.allclose(res.final["sam"][0], res.final["sam"][1])
