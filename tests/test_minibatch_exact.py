"""The exact anchor of the mini-batch stage (samsde.experiments.minibatch_exact) against the code the pipeline runs.

- the discrete moment recursion against a seeded Monte Carlo of discrete mini-batch USAM (samsde.simulate);
- the SDE coefficients against samsde's SDEModel (the paper's mini-batch SDE, the additive formula, the SGD SDE) at
  random points, to 1e-10; the moment ODE against a seeded Euler-Maruyama Monte Carlo of the same SDEs;
- the slopes (own SDE ~1, SGD SDE and additive formula ~1/2) and the config checks.
Statistical tests are seeded; each states its tolerance in the assertion.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
import yaml

from samsde import make_generator
from samsde.experiments import minibatch_exact as me
from samsde.minibatch import diffusion_matrix
from samsde.noise import MiniBatch
from samsde.sde import SDEModel
from samsde.simulate import OBSERVABLES, DiscreteRunner, simulate
from samsde.tasks import FiniteSumQuadratic
from samsde_workflow.config import ConfigError, validate_config

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = yaml.safe_load((ROOT / "config.yaml").read_text())
DTYPE = torch.float64
N, B, D = 6, 2, 3
ETA = 0.1
RHO = 0.5 * math.sqrt(ETA)
X0 = torch.tensor([0.7, -0.4, 1.1], dtype=DTYPE)


@pytest.fixture(scope="module")
def task():
    return FiniteSumQuadratic(N, D, seed=0)


def exact_moments(task, step, n_steps):
    """E f and Z = E[z z^T] at k = 0..n_steps by plain iteration of a step map (the reference of the split)."""
    z = torch.cat([X0, torch.ones(1, dtype=DTYPE)])
    vec, q = torch.outer(z, z).reshape(-1), me.loss_form(task)
    out = [vec]
    for _ in range(n_steps):
        out.append(step @ out[-1])
    zs = torch.stack(out).reshape(-1, D + 1, D + 1)
    return torch.einsum("ij,kij->k", q, zs) / 2, zs


def test_loss_form_and_baby_giant_split(task):
    """f = z^T Q z / 2 at random points; q . M^k vec(Z0) by the split equals plain iteration for k = 0..37."""
    x = torch.randn(5, D, generator=make_generator(1), dtype=DTYPE)
    z = torch.cat([x, torch.ones(5, 1, dtype=DTYPE)], 1)
    assert torch.allclose(torch.einsum("mi,ij,mj->m", z, me.loss_form(task), z) / 2, task.loss(x), atol=1e-12)
    step = me.discrete_step_map(task, B, ETA, RHO)
    z0 = torch.outer(torch.cat([X0, torch.ones(1, dtype=DTYPE)]), torch.cat([X0, torch.ones(1, dtype=DTYPE)]))
    split = me.expected_loss(step, z0, me.loss_form(task), 37)
    assert torch.allclose(split, exact_moments(task, step, 37)[0], rtol=1e-12)


def test_discrete_recursion_matches_a_monte_carlo_of_minibatch_usam(task):
    """E f(x_k), k = 0..10, of 200 000 seeded paths of discrete mini-batch USAM (DiscreteRunner, real batches) against
    the exact recursion: every k within 4 standard errors."""
    n_steps, paths = 10, 200_000
    runner = DiscreteRunner(task, MiniBatch(task, B), "usam", ETA, RHO, "usam", make_generator(0, "exact test"))
    result = simulate(task, [runner], X0, paths, n_steps, 1, 0, ("exact test",), {"loss": OBSERVABLES["loss"]})
    values = result.values["usam"]["loss"]
    exact = me.expected_loss(me.discrete_step_map(task, B, ETA, RHO), torch.outer(*(2 * [torch.cat(
        [X0, torch.ones(1, dtype=DTYPE)])])), me.loss_form(task), n_steps)  # fmt: skip
    se = values.std(1) / math.sqrt(paths)
    z = ((values.mean(1) - exact)[1:] / se[1:]).abs()
    assert z.max() < 4.0, f"largest z-score {z.max():.2f} (errors {(values.mean(1) - exact).tolist()})"


def _affine(drift, x):
    return x @ drift[:, :D].T + drift[:, D]


def test_sde_coefficients_are_samsdes(task):
    """At 6 random points: the own SDE's drift and exact-mode covariance Sigma + rho (K + K^T) (its inner sample
    made the 15 enumerated batches; K^ is the unbiased (n - 1) estimate), the additive formula's drift and
    covariance and the SGD SDE's, all equal SDEModel's to 1e-10."""
    noise = MiniBatch(task, B)
    x = torch.randn(6, D, generator=make_generator(2), dtype=DTYPE) * 1.5
    m, batches = x.shape[0], task.all_batches(B)
    n_b = len(batches)
    own = SDEModel(task, noise, ETA, RHO, "usam", mode="exact", inner_samples=n_b, generator=make_generator(0))
    own.batch_draws.rows = lambda k, m_, n, b: batches.repeat_interleave(m, 0)  # row j m + i: path i, batch j
    p = own.point(x)
    drift, pairs = me.sde_coefficients(task, B, RHO, "own_sde")
    assert torch.allclose(_affine(drift, x), own.drift(p), atol=1e-10, rtol=0)
    sigma = noise.covariance(x)
    sampled = diffusion_matrix(own, p, sigma)
    exact_k = sigma + (sampled - sigma) * (n_b - 1) / n_b  # K^ divides by n - 1, the enumerated mean by n
    assert torch.allclose(me.covariance_at(pairs, x), exact_k, atol=1e-10, rtol=0)
    additive = SDEModel(task, noise, ETA, RHO, "usam", mode="exact", minibatch_formula="additive")
    pa = additive.point(x)
    drift, pairs = me.sde_coefficients(task, B, RHO, "additive_formula")
    assert torch.allclose(_affine(drift, x), additive.drift(pa), atol=1e-10, rtol=0)
    cov = additive.diffusion_algorithm.diffusion_matrix(additive, pa, sigma)
    assert torch.allclose(me.covariance_at(pairs, x), cov, atol=1e-10, rtol=0)
    sgd = SDEModel(task, noise, ETA, 0.0, "sgd")
    drift, pairs = me.sde_coefficients(task, B, RHO, "sgd_sde")
    assert torch.allclose(_affine(drift, x), sgd.drift(sgd.point(x)), atol=1e-10, rtol=0)
    assert torch.allclose(me.covariance_at(pairs, x), sigma, atol=1e-10, rtol=0)


def _euler_maruyama(task, model, n_steps, fine, paths, seed):
    """X at t = k eta, k = 0..n_steps, of the SDE with the anchor's coefficients: Euler-Maruyama at dt = eta / fine
    and at dt / 2 on the same Brownian path, Richardson-combined per path (2 X_{dt/2} - X_dt removes the O(dt)
    bias of the means)."""
    drift, pairs = me.sde_coefficients(task, B, RHO, model)
    gen = make_generator(seed, "exact em", model)
    dw = torch.randn(n_steps * 2 * fine, paths, D, generator=gen, dtype=DTYPE) * math.sqrt(ETA / (2 * fine))
    out = []
    for sub in (1, 2):
        x, dt, xs = X0.expand(paths, D).clone(), ETA / (fine * sub), [X0.expand(paths, D)]
        incs = dw.reshape(-1, 2 // sub, paths, D).sum(1)
        for j, inc in enumerate(incs):
            evals, evecs = torch.linalg.eigh(me.covariance_at(pairs, x))
            assert evals.min() > -1e-12  # nothing to clamp: the root is exact
            root = (evecs * evals.clamp_min(0).sqrt().unsqueeze(-2)) @ evecs.transpose(-1, -2)
            x = x + _affine(drift, x) * dt + math.sqrt(ETA) * (root @ inc.unsqueeze(-1)).squeeze(-1)
            if (j + 1) % (fine * sub) == 0:
                xs.append(x)
        out.append(torch.stack(xs))
    return 2 * out[1] - out[0]


@pytest.mark.parametrize("model", ["own_sde", "additive_formula"])
def test_moment_ode_matches_an_euler_maruyama_monte_carlo(task, model):
    """E f(X_t) and Cov(X_t) at t = k eta (k = 1..5) of 20 000 seeded Euler-Maruyama paths (dt = eta / 8 and
    eta / 16, Richardson) against the matrix-exponential moment ODE: every entry within 4 standard errors."""
    n_steps, paths = 5, 20_000
    x = _euler_maruyama(task, model, n_steps, 8, paths, seed=0)
    _, zs = exact_moments(task, me.sde_step_map(task, B, ETA, RHO, model), n_steps)
    mean, second = zs[:, :D, D], zs[:, :D, :D]
    cov = second - mean.unsqueeze(-1) * mean.unsqueeze(-2)
    loss = task.loss(x.reshape(-1, D)).reshape(n_steps + 1, paths)
    q = me.loss_form(task)
    ef = torch.einsum("ij,kij->k", q, zs) / 2
    z_f = ((loss.mean(1) - ef) / (loss.std(1) / math.sqrt(paths)))[1:]
    centred = x - x.mean(1, keepdim=True)
    products = centred.unsqueeze(-1) * centred.unsqueeze(-2)  # (k, M, d, d)
    z_cov = ((products.mean(1) - cov) / (products.std(1) / math.sqrt(paths)))[1:]
    assert z_f.abs().max() < 4.0, f"{model}: E f largest z-score {z_f.abs().max():.2f}"
    assert z_cov.abs().max() < 4.0, f"{model}: Cov(X) largest z-score {z_cov.abs().max():.2f}"


@pytest.fixture(scope="module")
def default_table():
    return me.run(DEFAULT["weak_error_minibatch"]["exact_anchor"])


def test_slopes_order_one_and_one_half_at_the_smallest_etas(default_table):
    """The default grid (halvings of 0.2 down to ~1e-4): the own SDE's local slope at the two smallest etas in
    [0.95, 1.05]; the SGD SDE's and the additive formula's in [0.45, 0.55]; every claim passes."""
    t = default_table
    assert not t.diverged.any() and len(t) == 3 * len(DEFAULT["weak_error_minibatch"]["exact_anchor"]["etas"])
    smallest = t[t.eta == t.eta.min()].set_index("model").local_slope
    assert 0.95 <= smallest["own_sde"] <= 1.05, smallest
    assert 0.45 <= smallest["sgd_sde"] <= 0.55, smallest
    assert 0.45 <= smallest["additive_formula"] <= 0.55, smallest
    claims = me.claims(t, DEFAULT["claims"])
    assert [c.claim_id for c in claims] == [
        "minibatch.exact.own_sde_order1",
        "minibatch.exact.sgd_sde_order_half",
        "minibatch.exact.additive_formula_order_half",
    ]
    assert all(c.passed for c in claims), claims


def test_claims_fail_on_the_wrong_orders(default_table):
    """Swap the own SDE's errors with the SGD SDE's: the order-1 claim fails, the SGD one (now order 1) fails; a
    diverged eta leaves the slope unmeasured and the claim failed."""
    t = default_table.copy()
    own, sgd = t.model == "own_sde", t.model == "sgd_sde"
    t.loc[own, "model"], t.loc[sgd, "model"] = "sgd_sde", "own_sde"
    verdicts = {c.claim_id: c.passed for c in me.claims(t, DEFAULT["claims"])}
    assert not verdicts["minibatch.exact.own_sde_order1"] and not verdicts["minibatch.exact.sgd_sde_order_half"]
    t = default_table.copy()
    t.loc[t.model == "own_sde", "diverged"] = True
    own_claim = me.claims(t, DEFAULT["claims"])[0]
    assert not own_claim.passed and math.isnan(own_claim.value)


def test_a_diverging_step_is_recorded_as_diverged():
    """eta = 2 is beyond the stability of the quadratic: its rows are diverged with no error; the others are not."""
    settings = {**DEFAULT["weak_error_minibatch"]["exact_anchor"], "etas": [2.0, 0.1, 0.05], "horizon": 40.0}
    t = me.run(settings)
    assert t[t.eta == 2.0].diverged.all() and t[t.eta == 2.0].rel_error.isna().all()
    assert not t[t.eta < 1].diverged.any()


def _edited(path, value):
    config = copy.deepcopy(DEFAULT)
    node = config
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    return config


@pytest.mark.parametrize(
    "path, value, needles",
    [
        ("weak_error_minibatch.exact_anchor.batch_size", 6, ["exact_anchor.batch_size", "6", "[1, 5]"]),
        ("weak_error_minibatch.exact_anchor.etas", [0.1, 0.1], ["exact_anchor.etas", "[0.1, 0.1]", "duplicates"]),
        ("weak_error_minibatch.exact_anchor.etas", [0.1, -0.05], ["exact_anchor.etas[1]", "-0.05"]),
        ("weak_error_minibatch.exact_anchor.horizon", 0.1, ["exact_anchor.horizon", "0.1", "largest eta 0.2"]),
        ("weak_error_minibatch.exact_anchor.horizon", 1.01, ["exact_anchor.horizon", "1.01", "whole number"]),
        ("weak_error_minibatch.exact_anchor.x0", [1.0, 2.0], ["exact_anchor.x0", "[1.0, 2.0]", "dim = 3"]),
        ("weak_error_minibatch.exact_anchor.n_data", 1, ["exact_anchor.n_data", "value 1 is invalid"]),
        ("claims.exact_half_order_window", [0.6, 0.4], ["claims.exact_half_order_window", "0.6"]),
    ],
)
def test_bad_exact_anchor_config_is_rejected_with_key_and_value(path, value, needles):
    with pytest.raises(ConfigError) as info:
        validate_config(_edited(path, value))
    assert all(n in str(info.value) for n in needles), str(info.value)
