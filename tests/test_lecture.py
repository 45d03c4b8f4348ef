"""Tests for samsde.lecture (data, model, training loop, statistics, full-batch SAM on toy landscapes) and the
experiment modules of samsde.experiments.lecture.

The bouncing tests check full-batch SAM against its closed-form two-cycle on f = lam x^2 / 2: from x > 0 one step
is x+ = x - eta lam (x + rho), so x+ = -x gives the amplitude a = eta lam rho / (2 - eta lam).
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from samsde import lecture as lec
from samsde import make_generator
from samsde.experiments.lecture import bouncing
from samsde.experiments.lecture.common import baseline, data_and_model
from samsde.tasks import random_orthogonal

DTYPE = torch.float64


@pytest.fixture(scope="module")
def digits():
    return lec.load_dataset("digits", 0.3, make_generator(0, "test", "split"))


# ---------------------------------------------------------------------------
# Data and model
# ---------------------------------------------------------------------------


def test_split_is_seeded_disjoint_and_standardized(digits):
    again = lec.load_dataset("digits", 0.3, make_generator(0, "test", "split"))
    assert all(torch.equal(a, b) for a, b in zip(digits, again, strict=True))
    assert digits.x_train.shape == (1797 - 539, 64) and digits.x_test.shape == (539, 64)
    assert digits.n_classes == 10 and digits.n_features == 64
    mean, std = digits.x_train.mean(0), digits.x_train.std(0)
    assert mean.abs().max() < 1e-12
    # constant (always blank) pixels are only centred; every other feature has unit training variance
    assert torch.all(((std - 1).abs() < 1e-12) | (std == 0))
    # no sample is in both sets
    train_rows = {tuple(r) for r in digits.x_train.tolist()}
    overlap = sum(tuple(r) in train_rows for r in digits.x_test.tolist())
    assert overlap <= 5  # digits has a handful of exact duplicate images; a leaky split would share ~all
    other = lec.load_dataset("digits", 0.3, make_generator(1, "test", "split"))
    assert not torch.equal(other.y_test, digits.y_test)


def test_breast_cancer_and_bad_names():
    data = lec.load_dataset("breast_cancer", 0.25, make_generator(0, "bc"), torch.float32)
    assert data.x_train.dtype == torch.float32 and data.n_classes == 2 and data.n_features == 30
    with pytest.raises(ValueError, match="unknown dataset"):
        lec.load_dataset("iris", 0.3, make_generator(0, "x"))
    with pytest.raises(ValueError, match="test_fraction"):
        lec.load_dataset("digits", 1.0, make_generator(0, "x"))


def test_split_validation_holds_out_training_samples(digits):
    val = lec.split_validation(digits, 0.2, make_generator(0, "val"))
    n = digits.x_train.shape[0]
    assert val.x_test.shape[0] == round(0.2 * n) and val.x_train.shape[0] + val.x_test.shape[0] == n
    joined = torch.cat([val.y_train, val.y_test]).sort().values
    assert torch.equal(joined, digits.y_train.sort().values)


def test_mlp_init_is_seeded_and_bounded():
    a = lec.make_mlp(64, [32], 10, "relu", make_generator(0, "init"))
    b = lec.make_mlp(64, [32], 10, "relu", make_generator(0, "init"))
    c = lec.make_mlp(64, [32], 10, "relu", make_generator(1, "init"))
    flat = [torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c)]
    assert torch.equal(flat[0], flat[1]) and not torch.equal(flat[0], flat[2])
    assert flat[0].numel() == 64 * 32 + 32 + 32 * 10 + 10
    assert a[0].weight.abs().max() <= 1 / math.sqrt(64) and a[2].weight.abs().max() <= 1 / math.sqrt(32)
    assert isinstance(lec.make_mlp(4, [3, 3], 2, "tanh", make_generator(0, "t"))[1], torch.nn.Tanh)
    with pytest.raises(ValueError, match="activation"):
        lec.make_mlp(4, [3], 2, "gelu", make_generator(0, "t"))


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------


def _fit(data, method="sgd", rho=0.0, batch_seed=0, **kwargs):
    mlp = lec.MLP(hidden=[16], activation="relu", dtype="float64")
    options = dict(lr=0.1, momentum=0.9, batch_size=64, max_epochs=2) | kwargs
    model, result = lec.fit_mlp(
        data, mlp, make_generator(0, "init"), make_generator(batch_seed, "batches"), method=method, rho=rho, **options
    )
    return torch.cat([p.detach().flatten() for p in model.parameters()]), result


def test_training_is_deterministic_given_the_generators(digits):
    theta_a, result_a = _fit(digits)
    theta_b, result_b = _fit(digits)
    theta_c, _ = _fit(digits, batch_seed=1)
    assert torch.equal(theta_a, theta_b) and result_a == result_b
    assert not torch.equal(theta_a, theta_c)
    assert result_a.steps == 2 * (digits.x_train.shape[0] // 64) and result_a.epochs == 2


def test_sam_with_rho_zero_is_sgd_bit_for_bit(digits):
    theta_sgd, _ = _fit(digits, "sgd")
    for method in ("sam", "usam"):
        theta, _ = _fit(digits, method, rho=0.0)
        assert torch.equal(theta, theta_sgd), method
    theta_sam, _ = _fit(digits, "sam", rho=0.05)
    assert not torch.equal(theta_sam, theta_sgd)


def test_training_stops_at_max_steps_and_loss_target(digits):
    _, result = _fit(digits, max_epochs=100, max_steps=7)
    assert result.steps == 7 and result.epochs == 1 and not result.reached_target
    _, result = _fit(digits, max_epochs=100, loss_target=0.5)
    assert result.reached_target and result.train_loss <= 0.5 and result.epochs < 100
    with pytest.raises(FloatingPointError):
        _fit(digits, lr=1e6, momentum=0.0)
    with pytest.raises(ValueError, match="batch_size"):
        _fit(digits, batch_size=10**6)


def test_solution_metrics_and_line_curvature(digits):
    model = lec.make_mlp(64, [8], 10, "relu", make_generator(0, "m"))
    metrics = lec.solution_metrics(model, digits)
    assert metrics["test_error_pct"] == pytest.approx(100 * (1 - metrics["test_accuracy"]))
    assert metrics["train_loss"] == pytest.approx(math.log(10), rel=0.2)  # near-uniform predictions at init
    h = torch.diag(torch.tensor([3.0, 1.0], dtype=DTYPE))
    loss = lambda t: 0.5 * t @ h @ t  # noqa: E731
    theta = torch.tensor([0.3, -0.2], dtype=DTYPE)
    assert lec.line_curvature(loss, theta, torch.tensor([1.0, 1.0], dtype=DTYPE)) == pytest.approx(2.0)
    assert lec.line_curvature(loss, theta, torch.tensor([0.0, 5.0], dtype=DTYPE)) == pytest.approx(1.0)


def test_keskar_radius_circumscribes_the_box():
    theta = torch.tensor([0.0, -1.0, 2.0], dtype=DTYPE)
    assert lec.keskar_radius(theta, 0.1) == pytest.approx(0.1 * math.sqrt(1 + 4 + 9))
    with pytest.raises(ValueError):
        lec.keskar_radius(theta, 0.0)


# ---------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------


def test_mean_ci_matches_the_t_interval():
    mean, se, low, high = lec.mean_ci([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and se == pytest.approx(math.sqrt(5 / 3) / 2)
    assert high - mean == pytest.approx(3.182446305284263 * se)  # t_{3, 0.975}
    assert low == pytest.approx(2 * mean - high)
    with pytest.raises(ValueError):
        lec.mean_ci([1.0])


def test_bootstrap_gap_closed():
    small = torch.tensor([1.0, 1.2, 0.9, 1.1])
    large = small + 1.0
    gen = make_generator(0, "boot")
    share, low, high = lec.bootstrap_gap_closed(small, large, small.clone(), 200, gen)
    assert share == pytest.approx(1.0) and low == pytest.approx(1.0) and high == pytest.approx(1.0)
    share, low, high = lec.bootstrap_gap_closed(small, large, large + torch.tensor([0.1, -0.1, 0.0, 0.0]), 200, gen)
    assert share == pytest.approx(0.0, abs=1e-12) and low < 0 < high
    share, low, high = lec.bootstrap_gap_closed(small, small, small, 50, gen)  # no gap: no meaningful share
    assert math.isnan(share) and math.isnan(low)


# ---------------------------------------------------------------------------
# Bouncing: full-batch SAM on a quadratic
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("lam, eta, rho", [(1.0, 0.5, 0.1), (2.0, 0.9, 0.05), (4.0, 0.1, 0.3), (0.5, 3.0, 0.2)])
def test_sam_on_1d_quadratic_settles_in_the_closed_form_two_cycle(lam, eta, rho):
    a = lec.quadratic_two_cycle_amplitude(lam, eta, rho)
    assert a == pytest.approx(eta * lam * rho / (2 - eta * lam))
    # the cycle is a fixed point of the two-step map: one step from a lands on -a
    assert (a - eta * lam * (a + rho)) == pytest.approx(-a)
    x0 = torch.tensor([[1.7], [-0.4], [1e-3]], dtype=DTYPE)
    xs = lec.run_full_batch("sam", lambda x: lam * x, x0, eta, rho, 400)
    for m in range(x0.shape[0]):
        cycle = lec.two_cycle_summary(xs[-40:, m, 0])
        assert cycle.amplitude == pytest.approx(a, rel=1e-9)
        assert cycle.alternation == 1.0 and cycle.amplitude_spread < 1e-9
    # gradient descent (rho = 0) converges to the minimizer instead
    gd = lec.run_full_batch("sgd", lambda x: lam * x, x0, eta, 0.0, 400)
    assert gd[-1].abs().max() < 1e-12


def test_sam_two_cycle_is_along_the_top_eigenvector():
    lam = torch.tensor([2.0, 1.0, 0.5], dtype=DTYPE)
    q = random_orthogonal(3, make_generator(0, "rot"))
    assert torch.allclose(q.T @ q, torch.eye(3, dtype=DTYPE), atol=1e-12)
    h = q @ torch.diag(lam) @ q.T
    eta, rho = 0.6, 0.1
    x0 = torch.randn(5, 3, generator=make_generator(0, "x0"), dtype=DTYPE)
    proj = lec.run_full_batch("sam", lambda x: x @ h, x0, eta, rho, 300) @ q
    a = lec.quadratic_two_cycle_amplitude(2.0, eta, rho)
    for m in range(5):
        cycle = lec.two_cycle_summary(proj[-20:, m, 0])
        assert cycle.amplitude == pytest.approx(a, rel=1e-9) and cycle.alternation == 1.0
    assert proj[-20:, :, 1:].abs().max() < 1e-12 * a


def test_two_cycle_summary_rejects_non_cycles():
    decaying = torch.tensor([(-0.5) ** k for k in range(10)], dtype=DTYPE)
    cycle = lec.two_cycle_summary(decaying)
    assert cycle.alternation == 1.0 and cycle.amplitude_spread > 0.9
    constant = lec.two_cycle_summary(torch.full((10,), 0.3, dtype=DTYPE))
    assert constant.alternation == 0.0 and constant.amplitude_spread == 0.0
    with pytest.raises(ValueError):
        lec.two_cycle_summary(torch.ones(1))
    with pytest.raises(ValueError):
        lec.quadratic_two_cycle_amplitude(1.0, 2.0, 0.1)  # eta lam = 2: no attracting cycle


# ---------------------------------------------------------------------------
# Bouncing: the valley
# ---------------------------------------------------------------------------


def test_valley_curvature_matches_its_formula_and_autograd():
    v = lec.Valley(a_max=4.0, a_min=0.5, width=1.5, slope=0.01)
    y = torch.linspace(-6, 6, 41, dtype=DTYPE)
    a, da, dda = v.curvature(y).unbind(-1)
    assert torch.allclose(a, 0.5 + 1.75 * (1 - torch.tanh(y / 1.5)))
    assert torch.all(da < 0)  # strictly decreasing along the floor
    assert a[0] == pytest.approx(4.0, abs=2e-3) and a[-1] == pytest.approx(0.5, abs=2e-3)
    y_req = y.clone().requires_grad_(True)
    a_req = v.curvature(y_req)[..., 0]
    (grad,) = torch.autograd.grad(a_req.sum(), y_req, create_graph=True)
    (grad2,) = torch.autograd.grad(grad.sum(), y_req)
    assert torch.allclose(grad, da) and torch.allclose(grad2, dda)


def test_valley_gradient_hessian_and_lambda_max():
    v = lec.Valley(a_max=4.0, a_min=0.5, width=1.0, slope=0.002)
    points = torch.tensor([[0.5, -1.0], [-0.2, 0.3], [0.0, 2.0]], dtype=DTYPE)
    for p in points:
        grad = torch.autograd.functional.jacobian(v.loss, p)
        hess = torch.autograd.functional.hessian(v.loss, p)
        assert torch.allclose(v.grad(p), grad) and torch.allclose(v.hessian(p), hess)
        assert v.lambda_max(p).item() == pytest.approx(torch.linalg.eigvalsh(hess)[-1].item())
    # on the floor lambda_max is the across-valley curvature a(y)
    floor = torch.tensor([[0.0, 0.7]], dtype=DTYPE)
    assert v.lambda_max(floor).item() == pytest.approx(v.curvature(torch.tensor(0.7, dtype=DTYPE))[0].item())
    with pytest.raises(ValueError):
        lec.Valley(a_max=1.0, a_min=2.0, width=1.0)


def test_sam_drifts_to_flatter_regions_of_the_valley_and_gd_does_not():
    v = lec.Valley(a_max=4.0, a_min=0.5, width=1.0, slope=0.002)
    x0 = torch.tensor([[0.5, -1.0]], dtype=DTYPE)
    sam = lec.run_full_batch("sam", v.grad, x0, 0.3, 0.2, 1000)
    gd = lec.run_full_batch("sgd", v.grad, x0, 0.3, 0.0, 1000)
    assert v.lambda_max(sam[-1]).item() < 0.3 * v.lambda_max(x0).item()
    assert v.lambda_max(gd[-1]).item() > 0.9 * v.lambda_max(x0).item()


# ---------------------------------------------------------------------------
# Experiment modules
# ---------------------------------------------------------------------------


def test_data_and_model_read_a_rule_section_and_share_the_split():
    section = {
        "seed": 3,
        "data": {"dataset": "breast_cancer", "test_fraction": 0.25},
        "model": {"hidden": [4], "activation": "tanh", "dtype": "float32"},
    }
    data, mlp = data_and_model(section)
    again = lec.shared_split("breast_cancer", 0.25, 3, torch.float32)
    assert all(torch.equal(a, b) for a, b in zip(data, again, strict=True))
    assert mlp == lec.MLP(hidden=(4,), activation="tanh", dtype=torch.float32)
    assert mlp.build(data, make_generator(0, "m"))[0].weight.shape == (4, 30)
    assert baseline(["sam", "sgd", "usam"]) == "sgd"
    with pytest.raises(ValueError):
        baseline(["sam", "usam"])


def test_bouncing_experiment_tables_and_claims():
    settings = {
        "n_seeds": 4,
        "quadratic": {
            "spectrum": [2.0, 1.0, 0.5],
            "eta": 0.6,
            "rho": 0.1,
            "n_steps": 300,
            "window": 20,
            "rel_tol": 1e-6,
        },
        "valley": {
            "a_max": 4.0,
            "a_min": 0.5,
            "width": 1.0,
            "slope": 0.002,
            "eta": 0.3,
            "rho": 0.2,
            "n_steps": 1000,
            "record_every": 10,
            "start": [0.5, -1.0],
            "jitter": 0.05,
            "max_ratio": 0.5,
        },
    }
    tables = bouncing.run(settings, seed=0)
    assert set(tables) == {"quadratic", "valley"}
    assert len(tables["quadratic"]) == 4 * 301 * 3 and set(tables["valley"].algorithm) == {"sam", "gd"}
    claims = bouncing.claims(tables, settings)
    assert [c.claim_id.rsplit(".", 1)[1] for c in claims] == [
        "two_cycle_amplitude",
        "two_cycle_alternates",
        "valley_sam_flatter",
        "valley_gd_control",
    ]
    assert all(c.passed for c in claims), [(c.claim_id, c.value) for c in claims]


def test_each_lecture_claim_names_its_statement_or_is_the_projects_own():
    """hessian_spectrum: only SAM's trace row tests a lecture statement (Wen et al., stochastic SAM minimizes the
    trace); the lambda_max rows and USAM's trace row are the project's own and say why.  sam_vs_sgd: only SAM on the
    true labels is the lecture's (Foret et al.'s CIFAR table)."""
    from samsde.experiments.lecture import hessian_spectrum, sam_vs_sgd

    rows = [
        {"seed": s, "method": m, "lambda_max": lam + 0.01 * s, "trace": tr + 0.1 * s, "trace_se": 0.1}
        for s in range(4)
        for m, lam, tr in (("sgd", 0.04, 5.0), ("sam", 0.02, 3.0), ("usam", 0.05, 4.0))
    ]
    claims = {c.claim_id.rsplit(".", 1)[1]: c for c in hessian_spectrum.claims({"sharpness": pd.DataFrame(rows)}, {})}
    assert set(claims) == {f"{m}_smaller_{q}" for m in ("sam", "usam") for q in ("lambda_max", "trace")}
    assert claims["sam_smaller_trace"].source == "lecture"
    assert claims["sam_smaller_trace"].claim.startswith("lecture (Wen et al.): stochastic SAM minimizes the trace")
    for name in ("sam_smaller_lambda_max", "usam_smaller_lambda_max", "usam_smaller_trace"):
        assert claims[name].source == "own" and "the project's own check" in claims[name].note, name
    assert "full-batch SAM" in claims["sam_smaller_lambda_max"].note
    # the rows keep their numbers and their verdicts: USAM's lambda_max is larger here, and its row fails
    assert (
        claims["usam_smaller_lambda_max"].value == pytest.approx(0.01) and not claims["usam_smaller_lambda_max"].passed
    )

    runs = pd.DataFrame(
        [
            {"label_noise": share, "seed": s, "method": m, "rho": 0.1, "test_error_pct": err + s}
            for share in (0.0, 0.2)
            for s in range(4)
            for m, err in (("sgd", 3.0), ("sam", 2.0), ("usam", 2.5))
        ]
    )
    settings = {"methods": ["sgd", "sam", "usam"], "lr": 0.05, "momentum": 0.9, "batch_size": 32, "epochs": 1}
    sources = {c.claim_id: c.source for c in sam_vs_sgd.claims({"runs": runs}, settings | {"n_seeds": 4})}
    assert sources == {
        "lecture.sam_vs_sgd.sam_beats_sgd": "lecture",
        "lecture.sam_vs_sgd.usam_beats_sgd": "own",
        "lecture.sam_vs_sgd.label_noise_20.sam_beats_sgd": "own",
        "lecture.sam_vs_sgd.label_noise_20.usam_beats_sgd": "own",
    }
