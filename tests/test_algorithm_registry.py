"""The algorithm registry: a new algorithm is one object, registered from this file alone, and runs through the
discrete step, the SDE model, the simulation loop and the torch optimizer with no other file changed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

import samsde
from samsde.algorithms import ALGORITHMS, Algorithm, ascent_algorithms, get, register
from samsde.algorithms.base import safe_inverse_norm, sharpened
from samsde.lecture import METHODS
from samsde.noise import make_noise
from samsde.optim import SAM as TorchSAM

ROOT = Path(__file__).resolve().parent.parent


class TorchSignSAM(TorchSAM):
    """The toy's torch optimizer: an elementwise perturbation e = rho sign(g) / sqrt(n) (not a multiple of g)."""

    def _ascend_(self, p, rho, grad_norm, sign):
        n = sum(q.numel() for group in self.param_groups for q in group["params"])
        p.add_(torch.sign(p.grad), alpha=sign * rho / n**0.5)


class SignSAM(Algorithm):
    """A toy SAM variant whose ascent perturbation is elementwise: e = rho sign(g) / sqrt(d).

    Its SDE (to first order in rho, additive noise): drift -(grad f + rho H E[sign(g)] / sqrt(d)); for the test the
    toy uses the noiseless sign, which is enough to run every code path."""

    name = "sign_sam"
    label = "SignSAM"

    def perturbation(self, g, full_grad, rho):
        return rho * torch.sign(g) / g.shape[-1] ** 0.5

    def drift(self, model, p):
        return -(p.grad + model.rho * p.lin.hvp(torch.sign(p.grad)) / p.grad.shape[-1] ** 0.5)

    def diffusion(self, model, p, dw):
        return sharpened(model.rho * safe_inverse_norm(p.grad), p, model.noise.sqrt_apply(p.x, dw))

    def torch_optimizer(self, params, base, rho, **kwargs):
        return TorchSignSAM(params, base, rho=rho, **kwargs)


@pytest.fixture
def toy():
    algorithm = register(SignSAM())
    yield algorithm
    del ALGORITHMS[algorithm.name]


def test_a_toy_algorithm_runs_everywhere(toy):
    task = samsde.make_task("quadratic", dim=4, seed=0)
    noise = make_noise("isotropic", task, sigma=0.3)
    x = task.initial_point(samsde.make_generator(0, "x0")).expand(8, -1).clone()
    z = torch.randn(8, 4, generator=samsde.make_generator(0, "z"), dtype=torch.float64)
    # the discrete step: x - eta grad f_gamma(x + e) with the toy's elementwise e
    step = samsde.discrete_step("sign_sam", x, task.grad, z, 0.1, 0.2)
    e = 0.2 * torch.sign(task.grad(x) + z) / 2.0
    torch.testing.assert_close(step, x - 0.1 * (task.grad(x + e) + z), rtol=0, atol=1e-15)
    # rho = 0 is SGD bit for bit, through the registry like every algorithm
    assert torch.equal(samsde.discrete_step("sign_sam", x, task.grad, z, 0.1, 0.0), x - 0.1 * (task.grad(x) + z))
    # the SDE model and the simulation loop, coupled with the discrete runner
    model = samsde.SDEModel(task, noise, 0.1, 0.2, drift="sign_sam")
    assert model.name == "sign_sam" and not model.needs_inner
    runners = [samsde.DiscreteRunner(task, noise, "sign_sam", 0.1, 0.2), samsde.SDERunner(model, "toy_sde")]
    res = samsde.simulate(task, runners, x[0], 16, 5, 2, seed=0, stream=("toy",))
    assert res.n_diverged("sign_sam") == 0 and torch.isfinite(res.final["toy_sde"]).all()
    # the torch optimizer: two passes, the base step taken with the gradient at w + e
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    opt = toy.torch_optimizer([w], torch.optim.SGD, 0.5, lr=0.1)
    loss = lambda: (w**2).sum()  # noqa: E731
    loss().backward()
    opt.first_step(zero_grad=True)
    w0 = torch.tensor([1.0, -2.0], dtype=torch.float64)
    perturbed = w0 + 0.5 * torch.tensor([1.0, -1.0], dtype=torch.float64) / 2**0.5
    torch.testing.assert_close(w.detach(), perturbed)
    loss().backward()
    opt.second_step()
    torch.testing.assert_close(w.detach(), w0 - 0.1 * 2 * perturbed)  # SGD at w0 with the gradient at w0 + e
    assert toy.two_pass and toy.perturbs


def test_registry_rejects_duplicates_and_unknown_names():
    with pytest.raises(ValueError, match="registered already"):
        register(type(get("usam"))())
    task = samsde.make_task("quadratic", dim=2, seed=0)
    with pytest.raises(ValueError, match="unknown algorithm 'adam'"):
        samsde.SDEModel(task, make_noise("none", task), 0.1, 0.1, drift="adam")


def test_schema_palette_and_lecture_follow_the_registry():
    """The config schema's algorithm enums and the lecture's methods are the registry's; each algorithm has a colour."""
    from samsde_workflow.plotting import PALETTE

    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    assert schema["$defs"]["algorithm"]["enum"] == list(ALGORITHMS)
    weak = schema["properties"]["weak_error"]["properties"]["algorithms"]["items"]["enum"]
    assert sorted(weak) == sorted(ascent_algorithms())
    methods = schema["properties"]["lecture"]["properties"]["sam_vs_sgd"]["properties"]["methods"]["items"]["enum"]
    assert sorted(methods) == sorted(METHODS) == sorted(n for n, a in ALGORITHMS.items() if a.has_torch_optimizer)
    assert set(ALGORITHMS) <= set(PALETTE)
