"""The one simulation loop: any set of discrete optimizers and SDE models, advanced together on shared noise.

Time runs on the discrete grid t_k = k eta.  Over [k eta, (k+1) eta] the loop draws r Brownian increments
dW_{k,1..r} ~ N(0, dt I), dt = eta / r, shared by every runner when ``coupled``:
- an SDE runner takes r Euler-Maruyama steps with them;
- a discrete runner with additive noise takes one step with Z_k = -Sigma^(1/2) (dW_{k,1} + ... + dW_{k,r}) / sqrt(eta),
  so Z_k ~ N(0, Sigma) and -eta Z_k equals the SDE's noise sqrt(eta) Sigma^(1/2) (W_{(k+1)eta} - W_{k eta}).
  (The opposite sign would make the two noises anti-correlated.)
A discrete runner with mini-batch noise draws its own batches, so it is never coupled (and draws no increments);
the SDE runners of the same simulation still share their Brownian path with each other.

Solver refinement (docs/concepts.md): an SDE runner with ``refinement = q`` takes q r Euler-Maruyama steps per
discrete step.  The loop then draws the increments on the finest grid, dt = eta / (r q_max), and hands each runner
the sums of consecutive fine increments on its own grid, so every runner, coarse or fine, sees the same Brownian
path.  Without a refined runner (q_max = 1) the draws are exactly those of the plain loop.

The paths live on the task's device (``task.to(device)``, see :mod:`samsde.device`); the Brownian increments are
drawn on the CPU and moved there, so a GPU run uses the same random numbers; the records come back on the CPU.

All M paths of a runner advance in one batched tensor operation.  A path whose iterate is not finite or exceeds
``blowup`` in norm is marked diverged at that step; from then on its records are NaN and it is parked at the
origin so it cannot poison batched linear algebra.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor

from samsde._kept import KeptAt
from samsde.algorithms import check_step_sizes, get, optimizer_step
from samsde.noise import MiniBatch, NoiseModel
from samsde.sde import SDEModel
from samsde.seeding import make_generator
from samsde.solvers import brownian_increments, coarsened, euler_maruyama_step
from samsde.tasks import Task

Observable = Callable[[Task, Tensor], Tensor]


def _grad_norm(task: Task, x: Tensor) -> Tensor:
    return torch.linalg.vector_norm(task.grad(x), dim=-1)


OBSERVABLES: dict[str, Observable] = {
    # the paper's test function g(x) = |grad f(x)| + |x|
    "grad_norm_plus_norm": lambda task, x: _grad_norm(task, x) + torch.linalg.vector_norm(x, dim=-1),
    "loss": lambda task, x: task.loss(x),
    "grad_norm": _grad_norm,
    "norm": lambda task, x: torch.linalg.vector_norm(x, dim=-1),
}


class Runner(Protocol):
    """What the loop needs of a runner.  It may also offer ``gradient_at(x)``: the full-batch gradient at its state
    x, computed once for the observables and the runner's next step (see ``_RecordedState``)."""

    name: str
    eta: float  # the discrete time step t_{k+1} - t_k the runner advances over
    dim_w: int
    coupled: bool  # it advances on the Brownian increments (False: it draws its own noise and gets None)
    refinement: int  # Euler-Maruyama steps per Brownian increment of the base grid (1 for discrete runners)

    def advance(self, x: Tensor, increments: Tensor, dt: float) -> Tensor: ...


class _RecordedState:
    """The task as the observables see it at one runner's state x: ``grad(x)`` is computed once per record, by the
    runner's ``gradient_at`` when it has one (which keeps it for its next step); everything else is the task's."""

    def __init__(self, task: Task, x: Tensor, gradient_at: Callable[[Tensor], Tensor] | None):
        self._task, self._x, self._gradient_at, self._grad = task, x, gradient_at or task.grad, None

    def grad(self, y: Tensor, batch: Tensor | None = None) -> Tensor:
        if y is not self._x or batch is not None:
            return self._task.grad(y, batch)
        if self._grad is None:
            self._grad = self._gradient_at(y)
        return self._grad

    def __getattr__(self, name: str):
        return getattr(self._task, name)


class DiscreteRunner:
    """One optimizer step per discrete time step; additive noise is rebuilt from the SDE's increments."""

    coupled = True
    refinement = 1

    def __init__(
        self,
        task: Task,
        noise: NoiseModel,
        algorithm: str,
        eta: float,
        rho: float,
        name: str | None = None,
        generator: torch.Generator | None = None,
    ):
        algorithm = get(algorithm)
        check_step_sizes(eta, rho)
        self.task, self.noise, self.algorithm, self.eta, self.rho = task, noise, algorithm, eta, rho
        self.name = name or algorithm.name
        self.dim_w = noise.dim_w
        self.coupled = noise.additive  # a mini-batch run draws its own batches, not Brownian increments
        if isinstance(noise, MiniBatch) and generator is None:
            raise ValueError("a mini-batch runner needs a seeded generator for its batches (samsde.make_generator)")
        self.generator = generator
        self._known: KeptAt[Tensor] = KeptAt()  # grad f at the state, see gradient_at

    def gradient_at(self, x: Tensor) -> Tensor:
        """grad f(x), kept for the next step from this very tensor (the loop records observables there first)."""
        return self._known.put(x, self.task.grad(x))

    def _full_gradient(self, x: Tensor) -> Tensor:
        g = self._known.take(x)
        return self.task.grad(x) if g is None else g

    def advance(self, x: Tensor, increments: Tensor, dt: float) -> Tensor:
        if isinstance(self.noise, MiniBatch):
            batch = self.noise.draw_batches(x.shape[0], self.generator)
            grad_batch = lambda y: self.task.grad(y, batch=batch)  # noqa: E731
            # the full-data gradient is only needed by DNSAM's normalization: compute it only when asked
            return optimizer_step(self.algorithm, x, self.eta, self.rho, grad_batch, lambda: self._full_gradient(x))
        full = self._full_gradient(x)
        z = -self.noise.sqrt_apply(x, increments.sum(0)) / math.sqrt(self.eta)
        grad_z = lambda y: self.task.grad(y) + z  # noqa: E731
        return optimizer_step(self.algorithm, x, self.eta, self.rho, grad_z, lambda: full, g=full + z)


class SDERunner:
    """r q Euler-Maruyama steps of an SDE model per discrete time step (q = ``refinement``, see the module doc)."""

    coupled = True

    def __init__(self, model: SDEModel, name: str | None = None, refinement: int = 1):
        if not (isinstance(refinement, int) and refinement >= 1):
            raise ValueError(f"refinement must be an integer >= 1, got {refinement!r}")
        self.model = model
        self.eta = model.eta
        self.name = name or model.name
        self.dim_w = model.dim_w
        self.refinement = refinement

    def gradient_at(self, x: Tensor) -> Tensor:
        return self.model.prepare(x).grad

    def advance(self, x: Tensor, increments: Tensor, dt: float) -> Tensor:
        for dw in increments:
            x = euler_maruyama_step(self.model, x, dw, dt)
        return x


def _increments(gen, n: int, n_paths: int, dim_w: int, dt: float, device, antithetic: bool) -> Tensor:
    """(n, M, dim_w) Brownian increments; antithetic: the second half of the paths gets the first half's, negated."""
    if not antithetic:
        return brownian_increments(gen, n, n_paths, dim_w, dt, device)
    half = brownian_increments(gen, n, n_paths // 2, dim_w, dt, device)
    return torch.cat([half, -half], dim=1)


@dataclass
class SimulationResult:
    """Per-path records of every observable: ``values[runner][observable]`` is (n_records, M)."""

    steps: Tensor
    times: Tensor
    values: dict[str, dict[str, Tensor]]
    diverged_step: dict[str, Tensor]  # (M,), -1 where the path never diverged
    final: dict[str, Tensor] = field(default_factory=dict)

    def n_diverged(self, runner: str) -> int:
        return int((self.diverged_step[runner] >= 0).sum())

    def first_divergence(self, runner: str) -> int | None:
        steps = self.diverged_step[runner]
        hit = steps[steps >= 0]
        return int(hit.min()) if hit.numel() else None


def simulate(
    task: Task,
    runners: list[Runner],
    x0: Tensor,
    n_paths: int,
    n_steps: int,
    resolution: int,
    seed: int,
    stream: tuple = (),
    observables: dict[str, Observable] | None = None,
    record_every: int = 1,
    coupled: bool = True,
    blowup: float = 1e8,
    progress: bool = False,
    antithetic: bool = False,
) -> SimulationResult:
    """Advance every runner from x0 for ``n_steps`` steps of their common size eta; record observables.

    Each runner owns its eta (a discrete optimizer's learning rate, an SDE model's time scale); they must agree,
    since the loop's time grid t_k = k eta and the coupling of the noises rest on it.

    ``x0`` is one point (d,) shared by all paths, or one point per path (n_paths, d).

    The noise stream is ``make_generator(seed, *stream, "brownian")`` (one per runner, named after it, when not
    ``coupled``); mini-batch draws and SAM inner samples use their own named streams, set by their owners.

    ``antithetic``: the paths come in pairs (m, m + M/2) driven by opposite Brownian increments (dW, -dW); each path
    still has the law of a plain one, and the mean of a pair cancels the part of g(X) linear in the path
    (:func:`samsde.weak_error.pair_means`).  M must be even.
    """
    if resolution < 1:
        raise ValueError(f"resolution must be >= 1, got {resolution}")
    if n_paths < 1 or n_steps < 0 or record_every < 1:
        raise ValueError(
            f"need n_paths >= 1, n_steps >= 0, record_every >= 1; got {n_paths}, {n_steps}, {record_every}"
        )
    if antithetic and n_paths % 2:
        raise ValueError(f"antithetic paths come in pairs: n_paths must be even, got {n_paths}")
    names = [r.name for r in runners]
    if len(set(names)) != len(names):
        raise ValueError(f"runner names must be unique, got {names}")
    etas = {r.eta for r in runners}
    if len(etas) != 1:
        raise ValueError(f"runners must share one eta (the time step of the loop), got {sorted(etas)}")
    (eta,) = etas
    observables = observables or {"grad_norm_plus_norm": OBSERVABLES["grad_norm_plus_norm"]}
    refinements = {r.name: getattr(r, "refinement", 1) for r in runners}
    finest = math.lcm(*refinements.values())
    dt = eta / (resolution * finest)
    # the runners driven by Brownian increments share one path (each has a stream of its own when not ``coupled``);
    # a runner that is not coupled (a mini-batch discrete run) draws its own batches and no increments
    driven = [r for r in runners if r.coupled]
    dims = {r.dim_w for r in driven}
    if coupled and len(dims) > 1:
        raise ValueError(f"coupled runners must share the Brownian dimension, got {sorted(dims)}")
    shared = make_generator(seed, *stream, "brownian") if coupled and driven else None
    gens = {r.name: shared if coupled else make_generator(seed, *stream, "brownian", r.name) for r in driven}

    record_steps = list(range(0, n_steps + 1, record_every))
    if record_steps[-1] != n_steps:
        record_steps.append(n_steps)
    n_rec = len(record_steps)
    device = task.device
    x0 = x0.to(device=device, dtype=torch.float64)
    if x0.dim() == 1:
        x0 = x0.unsqueeze(0).expand(n_paths, -1)
    if x0.shape[0] != n_paths:
        raise ValueError(f"x0 must have shape (d,) or (n_paths, d) = ({n_paths}, d), got {tuple(x0.shape)}")
    states = {r.name: x0.clone() for r in runners}
    values = {r.name: {o: torch.empty(n_rec, n_paths, dtype=torch.float64) for o in observables} for r in runners}
    diverged = {r.name: torch.full((n_paths,), -1, dtype=torch.long) for r in runners}

    def record(i: int) -> None:
        for r in runners:
            x = states[r.name]
            dead = diverged[r.name] >= 0
            view = _RecordedState(task, x, getattr(r, "gradient_at", None))
            for o, fn in observables.items():
                v = fn(view, x).cpu()
                values[r.name][o][i] = torch.where(dead, torch.full_like(v, float("nan")), v)

    record(0)
    rec_i = 1
    steps_iter = range(1, n_steps + 1)
    if progress:
        from tqdm import tqdm

        steps_iter = tqdm(steps_iter, desc="simulate", mininterval=5.0)
    for k in steps_iter:
        increments = {}
        for r in runners:
            q = refinements[r.name]
            if r.coupled:
                gen = gens[r.name]
                key = id(gen)
                if key not in increments:
                    increments[key] = _increments(gen, resolution * finest, n_paths, r.dim_w, dt, device, antithetic)
                own = coarsened(increments[key], finest // q)
            else:
                own = None
            x = r.advance(states[r.name], own, dt * finest / q)
            bad = ~torch.isfinite(x).all(dim=1) | (torch.linalg.vector_norm(x, dim=1) > blowup)
            if bad.any():
                newly = bad.cpu() & (diverged[r.name] < 0)
                diverged[r.name][newly] = k
                x = torch.where(bad.unsqueeze(1), torch.zeros_like(x), x)
            states[r.name] = x
        if rec_i < n_rec and k == record_steps[rec_i]:
            record(rec_i)
            rec_i += 1
    steps_t = torch.tensor(record_steps)
    final = {name: x.cpu() for name, x in states.items()}
    return SimulationResult(steps_t, steps_t.double() * eta, values, diverged, final=final)
