"""Tests for samsde.optim (SAM and USAM)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from samsde.optim import SAM, USAM

DTYPE = torch.float64
STEPS = 20


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1)).to(DTYPE)


def make_batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(32, 4, generator=g, dtype=DTYPE), torch.randn(32, 1, generator=g, dtype=DTYPE)


def params_of(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def baseline_trajectory(base_cls, base_kwargs) -> list[list[torch.Tensor]]:
    model = make_model()
    x, y = make_batch()
    opt = base_cls(model.parameters(), **base_kwargs)
    traj = []
    for _ in range(STEPS):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
        traj.append(params_of(model))
    return traj


def two_pass_trajectory(sam_cls, base_cls, base_kwargs, rho) -> list[list[torch.Tensor]]:
    model = make_model()
    x, y = make_batch()
    opt = sam_cls(model.parameters(), base_optimizer=base_cls, rho=rho, **base_kwargs)
    traj = []
    for _ in range(STEPS):
        nn.functional.mse_loss(model(x), y).backward()
        opt.first_step(zero_grad=True)
        nn.functional.mse_loss(model(x), y).backward()
        opt.second_step(zero_grad=True)
        traj.append(params_of(model))
    return traj


def closure_trajectory(sam_cls, base_cls, base_kwargs, rho) -> list[list[torch.Tensor]]:
    model = make_model()
    x, y = make_batch()
    opt = sam_cls(model.parameters(), base_optimizer=base_cls, rho=rho, **base_kwargs)

    def closure():
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss

    traj = []
    for _ in range(STEPS):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step(closure)
        traj.append(params_of(model))
    return traj


BASES = [
    (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
    # Adam keeps per-parameter state initialised lazily: SAM must not store
    # anything in the base optimizer's state or Adam would skip its init.
    (torch.optim.Adam, {"lr": 0.01}),
]


@pytest.mark.parametrize("sam_cls", [SAM, USAM])
@pytest.mark.parametrize("base_cls, base_kwargs", BASES, ids=["sgd-momentum", "adam"])
@pytest.mark.parametrize("runner", [two_pass_trajectory, closure_trajectory], ids=["two-pass", "closure"])
def test_rho_zero_reproduces_base_optimizer_bit_for_bit(sam_cls, base_cls, base_kwargs, runner):
    expected = baseline_trajectory(base_cls, base_kwargs)
    got = runner(sam_cls, base_cls, base_kwargs, rho=0.0)
    for step, (e, g) in enumerate(zip(expected, got, strict=True)):
        for pe, pg in zip(e, g, strict=True):
            assert torch.equal(pe, pg), f"trajectories differ at step {step}"
    # The trajectory actually moves, so equality is not vacuous.
    assert not torch.equal(expected[0][0], expected[-1][0])


def test_positive_rho_changes_the_trajectory():
    # Sanity check that the equality above depends on rho = 0.
    base = baseline_trajectory(torch.optim.SGD, {"lr": 0.1, "momentum": 0.9})
    sam = two_pass_trajectory(SAM, torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}, rho=0.05)
    assert not torch.equal(base[-1][0], sam[-1][0])


# ---------------------------------------------------------------------------
# Hand-computed steps on a quadratic split over two parameters
# ---------------------------------------------------------------------------


def quadratic_setup():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(7, 7, generator=g, dtype=DTYPE)
    a = a @ a.T / 7 + torch.eye(7, dtype=DTYPE)
    b = torch.randn(7, generator=g, dtype=DTYPE)
    w0 = torch.randn(7, generator=g, dtype=DTYPE)
    # Two parameters of different sizes: a per-parameter normalisation
    # (instead of the global norm) would give a different step.
    p1 = nn.Parameter(w0[:3].clone())
    p2 = nn.Parameter(w0[3:].clone())

    def loss() -> torch.Tensor:
        w = torch.cat([p1, p2])
        return 0.5 * w @ a @ w + b @ w

    return a, b, w0, (p1, p2), loss


@pytest.mark.parametrize("sam_cls", [SAM, USAM])
def test_single_step_matches_hand_computation(sam_cls):
    a, b, w0, (p1, p2), loss = quadratic_setup()
    rho, lr = 0.2, 0.1
    opt = sam_cls([p1, p2], base_optimizer=torch.optim.SGD, rho=rho, lr=lr)

    g = a @ w0 + b
    e = rho * g / g.norm() if sam_cls is SAM else rho * g
    g_pert = a @ (w0 + e) + b
    expected = w0 - lr * g_pert

    loss().backward()
    opt.first_step(zero_grad=True)
    perturbed = torch.cat([p1, p2]).detach()
    assert torch.allclose(perturbed, w0 + e, rtol=0, atol=1e-14)
    if sam_cls is SAM:
        assert abs((perturbed - w0).norm().item() - rho) < 1e-14
    loss().backward()
    opt.second_step(zero_grad=True)
    got = torch.cat([p1, p2]).detach()
    assert torch.allclose(got, expected, rtol=0, atol=1e-14), (got - expected).abs().max()
    # Plain SGD would land elsewhere, by lr * (g_pert - g) ~ 1e-2.
    assert not torch.allclose(got, w0 - lr * g, atol=1e-4)


def test_closure_steps_with_momentum_match_hand_computation():
    a, b, w0, (p1, p2), loss = quadratic_setup()
    rho, lr, mu = 0.1, 0.05, 0.9
    opt = SAM([p1, p2], base_optimizer=torch.optim.SGD, rho=rho, lr=lr, momentum=mu)

    def closure():
        value = loss()
        value.backward()
        return value

    w, buf = w0.clone(), None
    for _ in range(3):
        g = a @ w + b
        w_pert = w + rho * g / g.norm()
        g_pert = a @ w_pert + b
        loss_pert = (0.5 * w_pert @ a @ w_pert + b @ w_pert).item()
        # torch SGD: buf = g on the first step, then mu * buf + g.
        buf = g_pert if buf is None else mu * buf + g_pert
        w = w - lr * buf

        opt.zero_grad()
        loss().backward()
        returned = opt.step(closure)
        # step returns the closure's value: the loss at the perturbed point.
        assert returned.item() == pytest.approx(loss_pert, rel=1e-13)
    got = torch.cat([p1, p2]).detach()
    assert torch.allclose(got, w, rtol=0, atol=1e-13), (got - w).abs().max()


# ---------------------------------------------------------------------------
# Edge cases
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("sam_cls", [SAM, USAM])
@pytest.mark.parametrize("rho", [0.0, 0.05])
def test_zero_gradient_gives_no_nan_and_no_perturbation(sam_cls, rho):
    p = nn.Parameter(torch.tensor([1.0, -2.0, 3.0], dtype=DTYPE))
    opt = sam_cls([p], base_optimizer=torch.optim.SGD, rho=rho, lr=0.1, momentum=0.9)
    before = p.detach().clone()
    (0.0 * p).sum().backward()  # gradient exactly zero
    opt.first_step()
    assert torch.equal(p.detach(), before), "zero gradient must give zero perturbation"
    opt.second_step(zero_grad=True)
    assert torch.isfinite(p).all()
    assert torch.equal(p.detach(), before)


def test_parameter_without_grad_is_left_alone():
    used = nn.Parameter(torch.tensor([1.0, 2.0], dtype=DTYPE))
    unused = nn.Parameter(torch.tensor([3.0], dtype=DTYPE))
    opt = SAM([used, unused], base_optimizer=torch.optim.SGD, rho=0.1, lr=0.1)
    (used**2).sum().backward()
    opt.first_step(zero_grad=True)
    assert torch.equal(unused.detach(), torch.tensor([3.0], dtype=DTYPE))
    (used**2).sum().backward()
    opt.second_step()
    assert torch.equal(unused.detach(), torch.tensor([3.0], dtype=DTYPE))


def test_param_groups_are_shared_with_base_optimizer():
    model = make_model()
    x, y = make_batch()
    opt = SAM(model.parameters(), base_optimizer=torch.optim.SGD, rho=0.05, lr=0.1, momentum=0.9)
    assert opt.param_groups is opt.base_optimizer.param_groups
    assert opt.param_groups[0]["rho"] == 0.05 and opt.param_groups[0]["momentum"] == 0.9
    # A scheduler acting on SAM must reach the base optimizer.
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.0)
    nn.functional.mse_loss(model(x), y).backward()
    # step(closure) rather than first/second_step: the scheduler counts calls
    # of opt.step and warns if it is stepped first.
    opt.step(lambda: nn.functional.mse_loss(model(x), y).backward())
    sched.step()
    assert opt.base_optimizer.param_groups[0]["lr"] == 0.0


def test_per_group_rho_and_added_group():
    a = nn.Parameter(torch.tensor([1.0], dtype=DTYPE))
    b = nn.Parameter(torch.tensor([1.0], dtype=DTYPE))
    c = nn.Parameter(torch.tensor([1.0], dtype=DTYPE))
    opt = SAM([{"params": [a], "rho": 0.0}, {"params": [b]}], base_optimizer=torch.optim.SGD, rho=0.3, lr=0.1)
    opt.add_param_group({"params": [c], "lr": 0.2})
    assert len(opt.base_optimizer.param_groups) == 3
    assert opt.param_groups[2]["rho"] == 0.3 and opt.param_groups[2]["momentum"] == 0
    (a + b + c).sum().backward()
    opt.first_step()
    # Global gradient norm sqrt(3); group a has rho = 0.
    assert a.item() == 1.0
    assert b.item() == pytest.approx(1.0 + 0.3 / 3**0.5, abs=1e-15)
    assert c.item() == pytest.approx(1.0 + 0.3 / 3**0.5, abs=1e-15)
    opt.second_step()
    assert (a.item(), b.item(), c.item()) == pytest.approx((0.9, 0.9, 0.8), abs=1e-15)


def test_state_dict_roundtrip_keeps_momentum():
    x, y = make_batch()
    kwargs = {"base_optimizer": torch.optim.SGD, "rho": 0.05, "lr": 0.1, "momentum": 0.9}

    def sam_step(model, opt):
        nn.functional.mse_loss(model(x), y).backward()
        opt.first_step(zero_grad=True)
        nn.functional.mse_loss(model(x), y).backward()
        opt.second_step(zero_grad=True)

    model = make_model()
    opt = SAM(model.parameters(), **kwargs)
    for _ in range(3):
        sam_step(model, opt)
    clone = copy.deepcopy(model)
    opt2 = SAM(clone.parameters(), **{**kwargs, "rho": 0.9})
    # deepcopy: state_dict() returns references to the live momentum buffers,
    # which load_state_dict would otherwise share between both optimizers.
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    assert opt2.param_groups is opt2.base_optimizer.param_groups
    assert opt2.param_groups[0]["rho"] == 0.05
    for _ in range(3):
        sam_step(model, opt)
        sam_step(clone, opt2)
    for p, q in zip(model.parameters(), clone.parameters(), strict=True):
        assert torch.equal(p, q)


def test_misuse_is_reported():
    with pytest.raises(ValueError, match="rho.*-0.1"):
        SAM([nn.Parameter(torch.zeros(1))], base_optimizer=torch.optim.SGD, rho=-0.1, lr=0.1)
    p = nn.Parameter(torch.ones(2, dtype=DTYPE))
    opt = SAM([p], base_optimizer=torch.optim.SGD, rho=0.1, lr=0.1)
    with pytest.raises(RuntimeError, match="backward"):
        opt.step(lambda: None)  # no gradient at the current point yet
    (p**2).sum().backward()
    opt.first_step()
    with pytest.raises(RuntimeError, match="twice"):
        opt.first_step()
