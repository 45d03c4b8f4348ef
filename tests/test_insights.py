"""Fast tests of the pure helpers of the insight experiments (samsde.experiments) and their statistics."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from samsde import DiscreteRunner, make_generator, make_noise, make_task, simulate, theory
from samsde.experiments import flat_minima as fm
from samsde.experiments import hessian_trace as ht
from samsde.experiments import quadratic_stationary as qs
from samsde.experiments import saddle as sd
from samsde.experiments.sweep import Role, Sweep, baseline, by_rho, grid, rho_of
from samsde.stats import (
    finite_path_summary,
    increasing_shares,
    mean_sem,
    paired_difference,
    paired_increasing_shares,
    ratio_of_means,
    wilson_interval,
)

SPECTRUM = [0.25, 0.5, 1.0, 4.0]


# ---- quadratic_stationary ------------------------------------------------------------------------------------


@pytest.mark.parametrize("rho", [0.0, 0.1, 0.7])
def test_first_order_closed_form_is_linear_in_rho(rho):
    eta, sigma = 0.01, 0.5
    expected = eta * sigma**2 / 4 * sum(1 + rho * lam for lam in SPECTRUM)
    assert qs.first_order_sde_stationary_loss(SPECTRUM, eta, rho, sigma) == pytest.approx(expected, rel=1e-12)


def test_closed_forms_agree_with_sgd_at_rho_zero():
    forms = qs.closed_forms(SPECTRUM, 0.01, 0.0, 0.5)
    sgd = theory.sgd_sde_stationary_loss(SPECTRUM, 0.01, 0.5)
    assert forms["theory_sde_first_order"] == pytest.approx(sgd)
    assert forms["theory_sde_exact"] == pytest.approx(sgd)
    # the discrete recursion is O(eta) above its SDE
    assert sgd < forms["theory_discrete"] < sgd * (1 + 0.01 * max(SPECTRUM))
    assert set(forms) == set(qs.THEORY_DIFFUSION)


def test_first_order_exceeds_exact_diffusion():
    forms = qs.closed_forms(SPECTRUM, 0.01, 0.4, 0.5)
    assert forms["theory_sde_first_order"] > forms["theory_sde_exact"]


def test_time_averages_window_and_growth():
    times = np.arange(10.0)
    values = np.tile(np.arange(10.0)[:, None], (1, 3))  # f = t on every path
    averages, late_to_early = qs.time_averages(values, times, burn_in=6.0)
    np.testing.assert_allclose(averages, 7.5)  # mean of 6, 7, 8, 9
    assert late_to_early == pytest.approx(8.5 / 6.5)
    with pytest.raises(ValueError, match="two records"):
        qs.time_averages(values, times, burn_in=9.0)


def test_mean_sem_skips_nan():
    mean, sem, n = mean_sem(np.array([1.0, 2.0, 3.0, np.nan]))
    assert (mean, n) == (2.0, 3)
    assert sem == pytest.approx(1 / math.sqrt(3))
    assert math.isnan(mean_sem(np.array([np.nan]))[0])


def test_ratio_of_means_paired():
    gen = np.random.default_rng(0)
    b = gen.exponential(size=500)
    ratio, low, high = ratio_of_means(2 * b, b)
    assert ratio == pytest.approx(2) and high - low < 1e-9  # exactly proportional pairs: no uncertainty
    ratio, low, high = ratio_of_means(b + gen.normal(0, 0.1, 500), b)
    assert low < 1 < high


def test_increasing_shares_of_independent_estimates():
    assert increasing_shares([1, 2, 3], [0.1, 0.1, 0.1]) == (1.0, 1.0, 1.0)
    share, significant, not_decreasing = increasing_shares([1, 1.05, 0.5], [0.1, 0.1, 0.1])
    assert (share, significant, not_decreasing) == (0.5, 0.0, 0.5)


# ---- saddle --------------------------------------------------------------------------------------------------


def test_wilson_interval():
    assert wilson_interval(0, 200)[0] == 0.0
    assert wilson_interval(200, 200)[1] == 1.0
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-4) and high == pytest.approx(0.5962, abs=1e-4)


def test_stay_summary_counts_nan_as_escaped():
    summary = sd.stay_summary(np.array([0.01, 0.2, np.nan, 0.04]), radius=0.05)
    assert summary["mean"] == 0.5 and summary["n_paths"] == 4
    assert summary["sem"] == pytest.approx(0.25)


def _cells(rows):
    return pd.DataFrame(rows, columns=["rho", "lambda", "mean", "ci_low", "ci_high"])


def test_threshold_agreement():
    cells = _cells([
        (2.0, -1.0, 1.0, 0.98, 1.0),   # attracted, stays: agrees surely
        (0.5, -1.0, 0.0, 0.0, 0.02),   # escapes: agrees surely
        (1.0, -1.0, 0.3, 0.2, 0.4),    # on the line: ignored
        (0.5, -4.0, 0.45, 0.3, 0.6),   # attracted but share < 1/2, not surely wrong
    ])  # fmt: skip
    value, low, high, n = sd.threshold_agreement(cells)
    assert n == 3
    assert value == pytest.approx(2 / 3) and low == pytest.approx(2 / 3) and high == 1.0


def test_attraction_radius():
    factors = [0.25, 0.5, 0.9, 1.1, 2.0]
    assert sd.attraction_radius(factors, [1, 1, 0.8, 0.0, 0.0]) == (1.0, 0.9, 1.1)
    assert sd.attraction_radius(factors[::-1], [0.0, 0.0, 0.8, 1, 1]) == (1.0, 0.9, 1.1)  # order does not matter
    assert sd.attraction_radius(factors, [1, 1, 1, 1, 1]) == (2.0, 2.0, math.inf)
    assert all(math.isnan(v) for v in sd.attraction_radius(factors, [0, 1, 1, 1, 1]))


# ---- hessian_trace -------------------------------------------------------------------------------------------


def test_hessian_trace_of_a_quadratic():
    task = make_task("quadratic", spectrum=SPECTRUM)
    trace = ht.hessian_trace(task, torch.randn(3, len(SPECTRUM), dtype=torch.float64))
    torch.testing.assert_close(trace, torch.full((3,), sum(SPECTRUM), dtype=torch.float64))


def test_hessian_trace_matrix_sensing_matches_autograd():
    task = make_task("matrix_sensing", n=4, rank=1, k=2, n_measurements=10, seed=1)
    x = 0.3 * torch.randn(2, task.dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    full = torch.stack([torch.autograd.functional.hessian(lambda v: task.loss(v[None])[0], xi) for xi in x])
    torch.testing.assert_close(ht.hessian_trace(task, x), torch.diagonal(full, dim1=-2, dim2=-1).sum(-1))


def test_path_summary_ignores_diverged_paths():
    values = np.array([[1.0, 3.0, np.nan], [np.nan, np.nan, np.nan]])
    out = finite_path_summary(values)
    assert out["mean"][0] == 2.0 and math.isnan(out["mean"][1])
    assert out["sem"][0] == pytest.approx(1.0) and list(out["n_paths"]) == [2, 0]


# ---- flat_minima ---------------------------------------------------------------------------------------------


def test_uniform_box_is_seeded_and_bounded():
    a = fm.uniform_box(1000, 3, 1.5, make_generator(0, "box"))
    b = fm.uniform_box(1000, 3, 1.5, make_generator(0, "box"))
    torch.testing.assert_close(a, b)
    assert a.abs().max() <= 1.5 and a.min() < -1.4 and a.max() > 1.4


def test_simulate_with_per_path_starts_and_divergence():
    """samsde.simulate with one initial point per path (the flat_minima experiment's use)."""
    task = make_task("quadratic", spectrum=[1.0, 2.0])
    noise = make_noise("none", task)
    eta = 0.1
    x0 = torch.tensor([[1.0, 1.0], [2.0, -1.0], [0.0, 3.0]], dtype=torch.float64)
    result = simulate(task, [DiscreteRunner(task, noise, "sgd", eta, 0.0, "gd")], x0, 3, 5, 1, seed=0)
    contraction = torch.tensor([(1 - eta * 1.0) ** 5, (1 - eta * 2.0) ** 5], dtype=torch.float64)
    torch.testing.assert_close(result.final["gd"], x0 * contraction)
    # a step size beyond 2 / lambda diverges; the path is flagged and parked at the origin
    result = simulate(task, [DiscreteRunner(task, noise, "sgd", 1.5, 0.0, "gd")], x0, 3, 60, 1, seed=0, blowup=1e3)
    assert (result.diverged_step["gd"] >= 0).all() and (result.final["gd"] == 0).all()
    with pytest.raises(ValueError, match="x0 must have shape"):
        simulate(task, [DiscreteRunner(task, noise, "sgd", eta, 0.0, "gd")], x0, 4, 5, 1, seed=0)


def test_paired_difference_and_paired_increasing_shares():
    a = np.array([1, 1, 0, 1])
    diff, low, high = paired_difference(a, a)
    assert diff == low == high == 0.0
    gen = np.random.default_rng(1)
    seq = [(gen.random(400) < p).astype(int) for p in (0.2, 0.5, 0.9)]
    assert paired_increasing_shares(seq) == (1.0, 1.0, 1.0)
    assert paired_increasing_shares(seq[::-1])[2] == 0.0


# ---- the sweep helper ----------------------------------------------------------------------------------------


def test_sweep_pairs():
    algorithms = ["usam", "sgd", "sam"]
    assert grid(algorithms, [0.1, 0.2]) == [("sgd", 0.0), ("usam", 0.1), ("usam", 0.2), ("sam", 0.1), ("sam", 0.2)]
    assert by_rho(algorithms, [0.2, 0.0, 0.1, 0.2]) == [(0.0, ["sgd"]), (0.1, ["usam", "sam"]), (0.2, ["usam", "sam"])]
    assert baseline() == "sgd" and rho_of("sgd", 0.5) == 0.0 and rho_of("sam", 0.5) == 0.5


def test_sweep_roles_key_the_results():
    """Every runner's results are found under its name, and its role says what it is (nothing is parsed)."""
    task = make_task("quadratic", spectrum=[1.0, 2.0])
    sweep = Sweep(task, make_noise("isotropic", task, sigma=0.1), eta=0.01)
    sweep.discrete("sgd", 0.0)
    sweep.discrete("usam", 0.1)
    sweep.sde("usam", 0.1)
    result = sweep.simulate(torch.ones(2), 4, 3, 1, seed=0, stream=("test",))
    roles = [role for _, role in sweep]
    assert roles == [Role("sgd", "discrete", 0.0), Role("usam", "discrete", 0.1), Role("usam", "own_sde", 0.1)]
    assert set(result.values) == set(sweep.roles)
    with pytest.raises(ValueError, match="unique"):
        sweep.discrete("sgd", 0.0)
