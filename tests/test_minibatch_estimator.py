"""The mini-batch stage's estimator: unequal path counts, antithetic SDE pairs, a two-sample error statistic.

- Antithetic pairs keep the SDE's law: their mean against a long plain run, within standard errors.
- The two-sample bootstrap covers a known answer at its nominal rate on a synthetic case, and the naive bootstrap
  that treats the two paths of a pair as independent does not (it over-covers): the check can tell them apart.
Every test is seeded and states its tolerance.
"""

from __future__ import annotations

import math

import pytest
import torch

from samsde import make_generator
from samsde.noise import MiniBatch
from samsde.sde import SDEModel
from samsde.simulate import OBSERVABLES, SDERunner, simulate
from samsde.tasks import FiniteSumQuadratic
from samsde.weak_error import bootstrap_weights, pair_means, path_summary, two_sample_error

N, B, D = 6, 2, 3
ETA, RHO, STEPS = 0.1, 0.3, 5


def _run(algorithm: str, n_paths: int, antithetic: bool, seed: int):
    task = FiniteSumQuadratic(N, D, seed=0)
    noise = MiniBatch(task, B)
    model = SDEModel(task, noise, ETA, RHO, algorithm, mode="sampled", inner_samples=3,
                     generator=make_generator(seed, "inner"))  # fmt: skip
    model.batch_draws.pairs = antithetic
    x0 = torch.tensor([0.7, -0.4, 1.1], dtype=torch.float64)
    out = simulate(task, [SDERunner(model, "sde")], x0, n_paths, STEPS, 2, seed,
                   observables={"loss": OBSERVABLES["loss"]}, antithetic=antithetic)  # fmt: skip
    return out.values["sde"]["loss"]


@pytest.mark.parametrize("algorithm", ["usam", "sam"])
def test_antithetic_pairs_keep_the_law(algorithm):
    """Antithetic pairs sharing their inner batches: E f(X_k) equals a plain run's at every step (|difference| below
    4 combined standard errors, the pairs' from their pair means), and the pair means vary less than two plain
    paths would (the part of f linear in the path cancels)."""
    pairs = _run(algorithm, 4000, True, seed=1)
    plain = _run(algorithm, 16000, False, seed=2)
    units = pair_means(pairs)
    m_pair, se_pair = path_summary(units)
    m_plain, se_plain = path_summary(plain)
    z = (m_pair - m_plain).abs() / (se_pair**2 + se_plain**2).sqrt()
    assert float(z[1:].max()) < 4.0, z
    # variance per unit of cost: a pair mean against the mean of two independent paths
    ratio = units[1:].var(1) / (plain[1:].var(1) / 2)
    assert float(ratio.max()) < 0.8, ratio


def test_pair_means_and_odd_counts():
    v = torch.arange(8.0).view(1, 8)
    assert torch.equal(pair_means(v), torch.tensor([[2.0, 3.0, 4.0, 5.0]]))
    task = FiniteSumQuadratic(N, D, seed=0)
    model = SDEModel(task, MiniBatch(task, B), ETA, 0.0, "sgd")
    with pytest.raises(ValueError, match="even"):
        simulate(task, [SDERunner(model)], torch.zeros(D), 5, 1, 1, 0, antithetic=True)


def _coverage(n_rep: int, naive: bool) -> float:
    """Share of seeded repetitions whose 95% interval covers the true relative error (synthetic, known answer).

    a: M_a = 400 discrete values per step, N(mu_a, 1); b: P = 50 antithetic pairs, b = mu_b +- z + e with
    z ~ N(0, 1), e ~ N(0, 0.1^2): the pair mean's variance is 0.005, a single path's 1.01."""
    gen = make_generator(7, "coverage")
    mu_a = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    mu_b = torch.tensor([0.95, 1.8, 2.9], dtype=torch.float64)
    truth = float((mu_a - mu_b).abs().max() / mu_a.abs().mean())
    m_a, p = 400, 50
    w_a = bootstrap_weights(m_a, 400, make_generator(7, "w_a"))
    w_b = bootstrap_weights(2 * p if naive else p, 400, make_generator(7, "w_b"))
    hits = 0
    for _ in range(n_rep):
        a = mu_a[:, None] + torch.randn(3, m_a, generator=gen, dtype=torch.float64)
        z = torch.randn(3, p, generator=gen, dtype=torch.float64)
        e = 0.1 * torch.randn(3, 2 * p, generator=gen, dtype=torch.float64)
        b = mu_b[:, None] + torch.cat([z, -z], 1) + e
        est = two_sample_error(a, b if naive else pair_means(b), w_a, w_b)
        hits += est.low <= truth <= est.high
    return hits / n_rep


def test_two_sample_bootstrap_covers_at_the_nominal_rate():
    """1000 repetitions: coverage within [0.925, 0.975] (the binomial s.e. at 0.95 is 0.007); resampling the
    antithetic paths as if independent over-covers (> 0.99), so the test tells the two apart."""
    assert 0.925 <= _coverage(1000, naive=False) <= 0.975
    assert _coverage(300, naive=True) > 0.99


def test_two_sample_floor_is_the_standard_error_of_the_difference():
    gen = make_generator(3, "floor")
    a = torch.randn(2, 900, generator=gen, dtype=torch.float64) + 2.0
    b = torch.randn(2, 100, generator=gen, dtype=torch.float64) * 3.0 + 2.0
    est = two_sample_error(a, b, bootstrap_weights(900, 50, gen), bootstrap_weights(100, 50, gen))
    se = (a.var(1) / 900 + b.var(1) / 100).sqrt().max() / a.mean(1).abs().mean()
    assert math.isclose(est.floor, float(se), rel_tol=1e-12)
