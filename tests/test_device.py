"""Device support: ``device: cpu | cuda | auto``, moving tasks and noise models, and runs that do not depend on
where they run (GPU cases are skipped when torch sees no GPU)."""

from __future__ import annotations

import pytest
import torch

import samsde
from samsde.device import resolve_device
from samsde.noise import make_noise

HAS_GPU = torch.cuda.is_available()
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason="torch sees no GPU")


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if HAS_GPU else "cpu")
    with pytest.raises(ValueError, match="'tpu'"):
        resolve_device("tpu")


@pytest.mark.skipif(HAS_GPU, reason="checks the error on a machine without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="device 'cuda'.*no GPU"):
        resolve_device("cuda")


def test_moving_a_network_task_copies_it_and_rebuilds_its_caches():
    task = samsde.make_task("teacher_student", n_samples=40)
    x = task.initial_point(samsde.make_generator(0, "x0")).expand(3, -1).contiguous()
    task.linearize(x)  # builds the workspace and the augmented inputs
    moved = task.to("cpu")
    assert moved is not task and moved.device == torch.device("cpu")
    assert "_workspace" not in vars(moved) and "_inputs_augmented" not in vars(moved)
    assert "_workspace" in vars(task)  # the original keeps its own
    assert torch.equal(moved.grad(x), task.grad(x))
    noise = make_noise("minibatch", task, batch_size=8).to("cpu")
    assert noise.task is not task and noise.task.device == torch.device("cpu")


def _weak_error_run(task, noise_kind: str, device: torch.device):
    task = task.to(device)
    noise = make_noise(noise_kind, task, sigma=0.5, batch_size=10).to(device)
    eta, rho = 0.05, 0.1
    runners = [samsde.DiscreteRunner(task, noise, "sam", eta, rho, "discrete", samsde.make_generator(0, "batches"))]
    if noise.additive:
        model = samsde.SDEModel(task, noise, eta, rho, "sam", generator=samsde.make_generator(0, "inner"))
        runners.append(samsde.SDERunner(model, "own_sde"))
    x0 = task.initial_point(samsde.make_generator(0, "x0"))
    return samsde.simulate(task, runners, x0, 32, 8, 2, seed=0, observables=samsde.OBSERVABLES)


@pytest.mark.parametrize("noise_kind", ["isotropic", "minibatch"])
def test_a_moved_task_gives_the_same_run(noise_kind):
    task = samsde.make_task("teacher_student", n_samples=40)
    a = _weak_error_run(task, noise_kind, torch.device("cpu"))
    b = _weak_error_run(samsde.make_task("teacher_student", n_samples=40), noise_kind, resolve_device("cpu"))
    for name in a.final:
        assert a.final[name].device.type == "cpu"
        assert torch.equal(a.final[name], b.final[name])
        assert a.final[name].std(0).min() > 0  # the paths are random


@needs_gpu
@pytest.mark.parametrize("noise_kind", ["isotropic", "minibatch"])
def test_a_gpu_run_draws_the_cpu_random_numbers_and_agrees_up_to_rounding(noise_kind):
    task = samsde.make_task("teacher_student", n_samples=40)
    cpu = _weak_error_run(task, noise_kind, torch.device("cpu"))
    gpu = _weak_error_run(task, noise_kind, torch.device("cuda"))
    for name in cpu.final:
        assert gpu.final[name].device.type == "cpu"  # results come back on the CPU
        # float32 inner Monte Carlo sums round differently on the GPU: ~1e-7 relative in E[u], damped by rho dt
        torch.testing.assert_close(gpu.final[name], cpu.final[name], rtol=1e-6, atol=1e-8)
        for obs, values in cpu.values[name].items():
            torch.testing.assert_close(gpu.values[name][obs], values, rtol=1e-6, atol=1e-8)
