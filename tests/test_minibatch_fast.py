"""The networks' fused mini-batch terms equal the unfused computation they replace (float rounding only).

E[H_gamma g_gamma] = H grad f + (kappa/N) sum_i H_i c_i: ``OneHiddenLayerNet.curvature_mean`` (one R-operator pass
from the full linearization's cache, ``NetworkLinearization.hvp_plus_sample_curvature``) against the generic
``FiniteSum.curvature_mean`` (a product H grad f, the closed-form sum_i H(l_i) grad l_i and a product H gbar), and
the fused product against autograd.  Deterministic (seeded points); tolerance 1e-12 relative per path.
"""

from __future__ import annotations

import math

import pytest
import torch

from samsde import SDEModel, make_generator, make_noise, make_task, minibatch
from samsde.algorithms import safe_inverse_norm
from samsde.tasks.base import FiniteSum

TASKS = ("iris", "teacher_student", "breast_cancer")  # identity/softmax, tanh/squared error, sigmoid/logistic


def rel(a, b):
    return ((a - b).norm(dim=-1) / b.norm(dim=-1)).max().item()


def points(task, m=6, spread=0.3):
    """The task's seeded initial point and m - 1 points around it."""
    x0 = task.initial_point(make_generator(0, "x0", task.name))
    noise = torch.randn(m - 1, task.dim, generator=torch.Generator().manual_seed(1), dtype=x0.dtype)
    return torch.cat([x0.unsqueeze(0), x0 + spread * noise])


@pytest.mark.parametrize("name", TASKS)
def test_fused_product_matches_autograd(name):
    task = make_task(name)
    x = points(task)
    v = torch.randn(x.shape, generator=torch.Generator().manual_seed(2), dtype=x.dtype)
    lin = task.linearize(x)
    ref = lin.hvp(v) + 0.3 * FiniteSum.half_grad_of_sample_sq_norms(task, x)  # autograd per-sample gradients
    assert rel(lin.hvp_plus_sample_curvature(v, 0.3), ref) < 1e-12
    assert rel(lin.hvp_plus_sample_curvature(torch.zeros_like(v), 1.0), task.half_grad_of_sample_sq_norms(x)) < 1e-12


@pytest.mark.parametrize("name", TASKS)
@pytest.mark.parametrize("chunk_elements", [None, 1])  # default chunks, and one path per chunk
def test_curvature_mean_equals_the_unfused_computation(name, chunk_elements, monkeypatch):
    task = make_task(name)
    monkeypatch.setattr(task, "chunk_elements", chunk_elements)
    x = points(task)
    k = make_noise("minibatch", task, batch_size=10).scale ** 2  # kappa / N
    lin = task.linearize(x)
    assert rel(task.curvature_mean(x, lin, k), FiniteSum.curvature_mean(task, x, lin, k)) < 1e-12


@pytest.mark.parametrize("name", ("iris", "teacher_student"))
@pytest.mark.parametrize("algorithm", ("usam", "dnsam"))
def test_linear_mode_drift_equals_the_unfused_formula(name, algorithm):
    task = make_task(name)
    noise = make_noise("minibatch", task, batch_size=10)
    rho = 0.5 * math.sqrt(0.05)
    model = SDEModel(task, noise, 0.05, rho, algorithm, mode="linear")
    x = points(task)
    p = model.point(x)
    m = p.lin.hvp(p.grad) + noise.scale**2 * task.sample_curvature(x, p.lin)  # the formula before the fused pass
    if algorithm == "dnsam":
        m = m * safe_inverse_norm(p.grad)
    assert rel(minibatch.drift(model, p), -(p.grad + rho * m)) < 1e-12


def test_weighted_linearization_has_no_fused_product():
    task = make_task("iris")
    x = points(task, m=2)
    c = torch.randn(2, task.n_data, generator=torch.Generator().manual_seed(3), dtype=x.dtype)
    with pytest.raises(ValueError, match="weighted linearization"):
        task.weighted_linearize(x, c).hvp_plus_sample_curvature(x, 1.0)
