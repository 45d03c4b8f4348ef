"""Closed-form derivatives of the one-hidden-layer networks (samsde.tasks.NetworkLinearization) against autograd.

The autograd reference is the generic path every task had before: ``Task.grad`` (one backward pass) and
``AutogradLinearization`` (double backward), both built on the task's own ``per_sample_loss``, which the closed form
does not use.  Relative errors are per path, |a - b| / |b| over the whole d-vector.
"""

from __future__ import annotations

import pickle

import pytest
import torch

import samsde
from samsde.tasks import (
    Activation,
    AutogradLinearization,
    FiniteSum,
    NetworkLinearization,
    OneHiddenLayerNet,
    Task,
    TeacherStudent,
)

DTYPE = torch.float64


# (id, task name, parameters, number of paths M, scale of the random points)
CASES = [
    ("iris", "iris", {}, 4, 0.5),
    ("iris_h3_l2", "iris", {"n_hidden": 3, "l2": 0.05}, 3, 1.0),
    ("breast_cancer", "breast_cancer", {}, 4, 0.5),
    ("breast_cancer_h5_l2", "breast_cancer", {"n_hidden": 5, "l2": 0.02}, 5, 1.5),
    ("teacher_student", "teacher_student", {}, 5, 0.5),
    ("teacher_student_small", "teacher_student", {"n_in": 3, "n_hidden": 6, "n_samples": 40, "l2": 0.0}, 3, 1.5),
]
IDS = [c[0] for c in CASES]
_TASKS: dict[str, OneHiddenLayerNet] = {}


def build(case_id: str, seed: int = 0):
    _, name, params, m, scale = next(c for c in CASES if c[0] == case_id)
    if case_id not in _TASKS:
        _TASKS[case_id] = samsde.make_task(name, **params)
    task = _TASKS[case_id]
    gen = samsde.make_generator(seed, "network_points", case_id)
    x = scale * torch.randn(m, task.dim, generator=gen, dtype=DTYPE)
    v = torch.randn(m, task.dim, generator=gen, dtype=DTYPE)
    return task, x, v


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest per-path relative error."""
    return float((torch.linalg.vector_norm(a - b, dim=-1) / torch.linalg.vector_norm(b, dim=-1)).max())


def test_cases_cover_every_network_task():
    assert {c[1] for c in CASES} == {n for n, cls in samsde.TASKS.items() if issubclass(cls, OneHiddenLayerNet)}
    for case_id in IDS:
        task, x, _ = build(case_id)
        assert task.closed_form
        assert isinstance(task.linearize(x), NetworkLinearization)


@pytest.mark.parametrize("case_id", IDS)
def test_grad_matches_autograd(case_id):
    task, x, _ = build(case_id)
    g = task.grad(x)
    assert g.shape == x.shape
    # tolerance: both are exact up to rounding (measured ~1e-15)
    assert rel(g, Task.grad(task, x)) < 1e-10
    assert rel(g, AutogradLinearization(task, x).grad) < 1e-10
    # the same backprop with or without the cache (up to rounding: MKL's kernels depend on the buffers' alignment)
    assert rel(task.linearize(x).grad, g) < 1e-14


@pytest.mark.parametrize("case_id", IDS)
def test_hvp_matches_autograd_double_backward(case_id):
    task, x, v = build(case_id)
    reference = AutogradLinearization(task, x)
    lin = task.linearize(x)
    assert rel(lin.grad, reference.grad) < 1e-10
    assert rel(lin.hvp(v), reference.hvp(v)) < 1e-10
    assert rel(task.hvp(x, v), reference.hvp(v)) < 1e-10


@pytest.mark.parametrize("case_id", IDS)
def test_hvp_matches_finite_differences_of_grad(case_id):
    task, x, v = build(case_id)
    h = 1e-5
    fd = (task.grad(x + h * v) - task.grad(x - h * v)) / (2 * h)
    # tolerance: central differences of the gradient have relative error ~h^2 + eps/h ~ 1e-10
    assert rel(task.linearize(x).hvp(v), fd) < 1e-6


@pytest.mark.parametrize("case_id", IDS)
def test_several_hvps_at_one_point(case_id):
    task, x, v = build(case_id)
    _, _, w = build(case_id, seed=1)
    reference = AutogradLinearization(task, x)
    lin = task.linearize(x)
    hv, hw = lin.hvp(v), lin.hvp(w)
    assert rel(hv, reference.hvp(v)) < 1e-10
    assert rel(hw, reference.hvp(w)) < 1e-10
    # linear in v, and the cache is not disturbed by the products (nor by other calls on the same task)
    assert rel(lin.hvp(2.0 * v - 3.0 * w), 2.0 * hv - 3.0 * hw) < 1e-12
    task.linearize(x + 1.0).hvp(w)
    task.grad(x - 1.0)
    assert torch.equal(lin.hvp(v), hv)
    assert rel(lin.grad, task.grad(x)) < 1e-14
    # H is symmetric: w . H v = v . H w
    assert torch.allclose((w * hv).sum(-1), (v * hw).sum(-1), rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("case_id", IDS)
def test_dense_hessian_is_symmetric_and_matches_autograd(case_id):
    task, x, _ = build(case_id)
    m, d = x.shape
    hess = task.hessian(x)  # d closed-form Hessian-vector products, batched
    assert hess.shape == (m, d, d)
    scale = hess.abs().max()
    assert (hess - hess.transpose(1, 2)).abs().max() <= 1e-12 * scale
    basis = torch.eye(d, dtype=DTYPE).repeat(m, 1)
    reference = AutogradLinearization(task, x.repeat_interleave(d, dim=0)).hvp(basis).reshape(m, d, d)
    assert (hess - reference).abs().max() <= 1e-11 * scale


@pytest.mark.parametrize("case_id", ["iris", "breast_cancer", "teacher_student_small"])
@pytest.mark.parametrize("chunk_paths", [1, 2])
def test_chunks_give_the_same_result(case_id, chunk_paths):
    task, x, v = build(case_id)
    x, v = torch.cat([x, -x]), torch.cat([v, 2 * v])  # 6 to 10 paths
    lin = task.linearize(x)
    assert len(lin._chunks) == 1  # the default chunk holds every path here
    chunked = samsde.make_task(task.name, **next(c[2] for c in CASES if c[0] == case_id))
    width = chunked.layout.n_out if chunked.activation.linear else chunked.layout.n_hidden
    chunked.chunk_elements = chunk_paths * chunked.n_data * width
    lin_c = chunked.linearize(x)
    assert len(lin_c._chunks) == -(-x.shape[0] // chunk_paths)
    assert rel(lin_c.grad, lin.grad) < 1e-13
    assert rel(lin_c.hvp(v), lin.hvp(v)) < 1e-13
    assert rel(chunked.grad(x), lin.grad) < 1e-13


@pytest.mark.parametrize("case_id", ["iris", "breast_cancer"])
def test_recycled_cache_and_odd_inputs(case_id):
    task, x, v = build(case_id)
    expected_g, expected_hv = Task.grad(task, x), AutogradLinearization(task, x).hvp(v)
    lin = task.linearize(2.0 * x)
    del lin  # its cache goes back to the workspace and is reused below
    assert len(task.workspace._idle) == 1
    lin = task.linearize(x)
    assert len(task.workspace._idle) == 0
    assert rel(lin.hvp(v), expected_hv) < 1e-10
    # non-contiguous and broadcast (stride 0) inputs; x requiring grad gives a plain tensor back
    xt = x.T.contiguous().T
    assert not xt.is_contiguous()
    assert rel(task.grad(xt), expected_g) < 1e-10
    one = x[:1].expand(3, -1)
    assert rel(task.grad(one), expected_g[:1].expand(3, -1)) < 1e-10
    g = task.grad(x.clone().requires_grad_(True))
    assert not g.requires_grad and rel(g, expected_g) < 1e-10
    assert rel(task.linearize(x).hvp(v.T.contiguous().T), expected_hv) < 1e-10
    # a single path
    assert rel(task.linearize(x[1:2]).hvp(v[1:2]), expected_hv[1:2]) < 1e-10


def test_gradient_only_linearization_and_shape_errors():
    task, x, v = build("breast_cancer")
    lin = NetworkLinearization(task, x, keep=False)
    assert rel(lin.grad, Task.grad(task, x)) < 1e-10
    with pytest.raises(RuntimeError, match="keep=False"):
        lin.hvp(v)
    with pytest.raises(ValueError, match="shape"):
        task.linearize(x).hvp(v[:2])


def test_task_pickles_without_its_workspace():
    task, x, v = build("teacher_student")
    task.linearize(x).hvp(v)
    assert "_workspace" in task.__dict__
    clone = pickle.loads(pickle.dumps(task))
    assert "_workspace" not in clone.__dict__
    assert torch.equal(clone.linearize(x).hvp(v), task.linearize(x).hvp(v))


@pytest.mark.parametrize("case_id", IDS)
def test_minibatch_derivatives_match_autograd(case_id):
    """The closed-form per-row batch kernel (gradient, H_gamma v) and the weighted per-sample gradient sum
    against autograd on the same batch losses."""
    task, x, v = build(case_id)
    m = x.shape[0]
    idx = torch.stack([torch.randperm(task.n_data, generator=samsde.make_generator(i, "perm")) for i in range(m)])
    batch = idx[:, : task.n_data // 3]
    ref = AutogradLinearization(task, x, loss=lambda y: task.batch_loss(y, batch))
    lin = task.batch_linearize(x, batch)
    assert rel(lin.grad, ref.grad) < 1e-12 and rel(task.grad(x, batch=batch), ref.grad) < 1e-12
    assert rel(lin.hvp(v), ref.hvp(v)) < 1e-12
    assert rel(task.grad(x, batch=idx), task.grad(x)) < 1e-12  # a batch of every sample is the full gradient
    w = torch.randn(m, task.n_data, generator=samsde.make_generator(0, "weights"), dtype=torch.float64)
    assert rel(task.weighted_sample_grad(x, w), FiniteSum.weighted_sample_grad(task, x, w)) < 1e-12


@pytest.mark.parametrize("case_id", IDS)
def test_sample_curvature_closed_form_matches_generic(case_id):
    """sum_n H(l_n) grad l_n: the networks' closed form (rank-one R-operator) against the generic per-row
    double backward of FiniteSum, path chunks included."""
    task, x, _ = build(case_id)
    generic = FiniteSum.half_grad_of_sample_sq_norms(task, x)
    assert rel(task.half_grad_of_sample_sq_norms(x), generic) < 1e-11
    task.curvature_chunk_elements = task.n_data * task.layout.n_hidden  # one path per chunk
    try:
        assert rel(task.half_grad_of_sample_sq_norms(x), generic) < 1e-11
    finally:
        del task.curvature_chunk_elements


# ---------------------------------------------------------------------------
# Extending: a new activation is a few lines; a task without an output loss falls back to autograd
# ---------------------------------------------------------------------------


class Softplus(Activation):
    """phi(z) = log(1 + e^z),  phi' = sigmoid(z),  phi'' = phi' (1 - phi'): written with z (``needs_pre``)."""

    name = "softplus"
    needs_pre = True

    def __call__(self, z):
        return torch.nn.functional.softplus(z)

    def apply(self, z, out):
        return out.copy_(torch.nn.functional.softplus(z))

    def first(self, z, a, out):
        return torch.sigmoid(z, out=out)

    def second(self, z, a, first, out):
        return torch.addcmul(first, first, first, value=-1.0, out=out)


class SoftplusStudent(TeacherStudent):
    name = "softplus_student"
    activation = Softplus()


class AutogradOnlyStudent(TeacherStudent):
    name = "autograd_student"
    output_loss = None


def test_a_new_activation_needs_no_derivative_code():
    task = SoftplusStudent(n_in=3, n_hidden=4, n_samples=30, l2=0.01)
    gen = samsde.make_generator(0, "softplus")
    x = torch.randn(4, task.dim, generator=gen, dtype=DTYPE)
    v = torch.randn(4, task.dim, generator=gen, dtype=DTYPE)
    lin = task.linearize(x)
    assert isinstance(lin, NetworkLinearization)
    reference = AutogradLinearization(task, x)
    assert rel(lin.grad, reference.grad) < 1e-10
    assert rel(lin.hvp(v), reference.hvp(v)) < 1e-10
    task.chunk_elements = task.n_data * task.layout.n_hidden  # one path per chunk: Z is cached per chunk too
    assert rel(task.linearize(x).hvp(v), reference.hvp(v)) < 1e-10


def test_a_task_without_output_loss_falls_back_to_autograd():
    task = AutogradOnlyStudent(n_in=3, n_hidden=4, n_samples=30)
    x = torch.randn(2, task.dim, generator=samsde.make_generator(0, "fallback"), dtype=DTYPE)
    assert not task.closed_form
    assert isinstance(task.linearize(x), AutogradLinearization)
    assert torch.equal(task.grad(x), Task.grad(task, x))
