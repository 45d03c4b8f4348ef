"""The three parts of a measured weak error (paper notes, section 9): the solver's bias removed by Richardson
extrapolation on a refined Brownian grid, the Monte Carlo floor of a paired difference, and bootstrap replicates
shared by every model of a cell."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import samsde
from samsde.experiments.weak_error import replicate_table, run_cell
from samsde.noise import make_noise
from samsde.theory import ou_moments
from samsde.weak_error import bootstrap_weights, paired_error, richardson

SPECTRUM = [0.5, 1.0, 2.0]
X0 = [1.0, -1.0, 0.5]


def ou_task():
    return samsde.make_task("quadratic", spectrum=SPECTRUM, rotate=True, seed=0, x0=X0)


def test_refined_runner_sees_the_same_brownian_path():
    """A runner at refinement 2 integrates on the fine grid of the draws; one at refinement 1 on their pairwise sums.
    The refined runner equals a plain run at resolution 2r (same draws), bit for bit."""
    task = ou_task()
    noise = make_noise("isotropic", task, sigma=1.0)
    model = samsde.SDEModel(task, noise, 0.25, 0.5, drift="usam")
    x0 = task.initial_point(samsde.make_generator(0, "unused"))
    both = samsde.simulate(task, [samsde.SDERunner(model, "r", 1), samsde.SDERunner(model, "2r", 2)], x0, 64, 4,
                           5, seed=1, stream=("refine",))  # fmt: skip
    fine = samsde.simulate(task, [samsde.SDERunner(model, "2r")], x0, 64, 4, 10, seed=1, stream=("refine",))
    assert torch.equal(both.final["2r"], fine.final["2r"])
    # the coarse runner is a different discretisation of the same path: close, but not equal
    gap = (both.final["r"] - both.final["2r"]).abs().max()
    assert 0 < gap < 0.1, gap


def test_richardson_mean_matches_the_ou_law_where_plain_euler_maruyama_does_not():
    """USAM SDE on a quadratic (an OU process, theory.ou_moments): E X_T per eigen-direction.

    eta = 0.25, T = 1, r = 5: plain Euler-Maruyama is biased by 0.013 along lambda = 1 (computed from the exact EM
    recursion: ~8 standard errors at 40000 paths); the Richardson mean's residual bias is 1.4e-4 (0.1 SE).
    Tolerance: 4 standard errors of each estimate."""
    task = ou_task()
    sigma, eta, rho, t_end, r, n_paths = 1.0, 0.25, 0.5, 1.0, 5, 40000
    noise = make_noise("isotropic", task, sigma=sigma)
    model = samsde.SDEModel(task, noise, eta, rho, drift="usam", mode="first_order")
    runners = [samsde.SDERunner(model, "r", refinement=1), samsde.SDERunner(model, "2r", refinement=2)]
    x0 = task.initial_point(samsde.make_generator(0, "unused"))
    res = samsde.simulate(task, runners, x0, n_paths, round(t_end / eta), r, seed=0, stream=("richardson",))
    to_eigen = lambda x: (x @ task.eigenvectors).numpy()  # noqa: E731
    plain, rich = to_eigen(res.final["r"]), to_eigen(richardson(res.final["r"], res.final["2r"]))
    exact, _ = ou_moments(task.eigenvalues.numpy(), to_eigen(x0.unsqueeze(0))[0], t_end, eta, rho, sigma, "first_order")
    se = lambda y: y.std(0, ddof=1) / np.sqrt(n_paths)  # noqa: E731
    assert np.all(np.abs(rich.mean(0) - exact) < 4 * se(rich)), (rich.mean(0) - exact, se(rich))
    # the plain r solution is off by more than its Monte Carlo error: the check can tell the two apart
    assert np.any(np.abs(plain.mean(0) - exact) > 4 * se(plain)), (plain.mean(0) - exact, se(plain))


def _two_runs(eta: float, same: bool, n_paths: int = 2000):
    """Two SDE runs on independent Brownian paths: the same model (true weak error 0) or two different ones."""
    task = samsde.make_task("quadratic", dim=5, seed=0)
    noise = make_noise("isotropic", task, sigma=0.5)
    a = samsde.SDEModel(task, noise, eta, 0.5 * eta**0.5, drift="usam")
    b = a if same else samsde.SDEModel(task, noise, eta, 0.0, drift="sgd")
    x0 = task.initial_point(samsde.make_generator(0, "x0"))
    res = samsde.simulate(task, [samsde.SDERunner(a, "a"), samsde.SDERunner(b, "b")], x0, n_paths,
                          round(1.0 / eta), 2, seed=3, stream=("floor", eta), coupled=False)  # fmt: skip
    weights = bootstrap_weights(n_paths, 100, samsde.make_generator(0, "boot", eta))
    obs = "grad_norm_plus_norm"
    return paired_error(res.values["a"][obs], res.values["b"][obs], weights)


@pytest.mark.parametrize("eta", [0.1, 0.05, 0.025])
def test_same_model_is_flagged_at_the_floor(eta):
    """True error 0: the measured max_k |Delta_k| is Monte Carlo noise, within 3x its floor, so never 'resolved'
    (a percentile interval of it would still exclude 0).  The same check resolves a real difference."""
    same = _two_runs(eta, same=True)
    assert not same.resolved and same.value <= 3 * same.floor, (same.value, same.floor)
    assert same.low > 0  # the bias the floor guards against
    different = _two_runs(eta, same=False)
    assert different.resolved, (different.value, different.floor)


def test_cell_shares_bootstrap_weights_across_models():
    """In one cell every model's replicate j re-weights the same paths: a model compared with itself through two
    different routes (the own SDE of rho = 0 is the SGD SDE) gives ratio 1 in every replicate."""
    task = samsde.make_task("quadratic", dim=4, seed=0)
    noise = make_noise("isotropic", task, sigma=0.5)
    x0 = task.initial_point(samsde.make_generator(0, "x0"))
    setting = {"task": "quadratic", "algorithms": ["usam"], "scalings": {"zero": {"alpha": 1.0, "c": 1e-300}},
               "drift_ablation": ["zero"], "resolution": 2, "horizon": 0.5, "n_paths": 300, "n_boot": 50,
               "record_every": 1, "diffusion": "first_order", "inner_samples": 4, "sam_moments": "auto"}  # fmt: skip
    out = run_cell(task, noise, x0, setting, 0.1, seed=0)
    reps = replicate_table(out["replicates"], "quadratic", "usam", "zero", "loss", 0.1)
    assert len(reps) == 50
    np.testing.assert_allclose(reps["own_sde"] / reps["sgd_sde"], 1.0, rtol=1e-9)
    errors = out["errors"]
    assert {"floor", "resolved", "solver_error", "solver_floor", "rel_error_r", "rel_error_2r"} <= set(errors.columns)
    assert set(errors.model) == {"own_sde", "sgd_sde", "drift_only"}
    assert ((errors.algorithm == "sgd") & (errors.scaling == "none")).sum() == 2  # the control, both test functions
