"""The runners of one simulation in a sweep over (algorithm, rho), each with what it is.

An insight experiment simulates, on one task, the discrete algorithms and their SDEs at several (algorithm, rho):
:func:`grid` and :func:`by_rho` list the pairs, a :class:`Sweep` builds the runners of one call of
:func:`samsde.simulate` and keeps, per runner name, its :class:`Role` (algorithm, model, rho), so the experiment's
rows carry ``algorithm`` and ``rho`` as columns and never read them back from a name.

Rho = 0 is SGD for every algorithm, so an algorithm without ascent step (``perturbs`` False) is run once, at rho 0.
Runner names are unique readable keys and nothing else.  They enter the numbers only through uncoupled runners
(``simulate`` then draws one Brownian stream per runner name); the insight experiments use additive noise, whose
runners all share the stream ``(seed, *stream, "brownian")``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from samsde.algorithms import ALGORITHMS, get
from samsde.noise import NoiseModel
from samsde.sde import SDEModel
from samsde.simulate import DiscreteRunner, SDERunner, SimulationResult, simulate
from samsde.tasks import Task


def baseline() -> str:
    """The registry's algorithm without ascent step (SGD): the rho = 0 limit of every ascent algorithm."""
    return next(name for name, a in ALGORITHMS.items() if not a.perturbs)


def ascent(algorithms) -> list[str]:
    """The algorithms (in the given order) that take an ascent step."""
    return [a for a in algorithms if get(a).perturbs]


def rho_of(algorithm: str, rho: float) -> float:
    """The rho an algorithm runs at: rho, or 0 if it takes no ascent step."""
    return rho if get(algorithm).perturbs else 0.0


def positive_rhos(rhos) -> list[float]:
    return sorted({r for r in rhos if r > 0})


def grid(algorithms, rhos) -> list[tuple[str, float]]:
    """(algorithm, rho) pairs for one simulation: each algorithm without ascent step once at rho = 0, then each
    ascent algorithm at every rho (algorithm-major)."""
    return [(a, 0.0) for a in algorithms if not get(a).perturbs] + [(a, r) for a in ascent(algorithms) for r in rhos]


def by_rho(algorithms, rhos) -> list[tuple[float, list[str]]]:
    """One simulation per rho: (0, [the baseline]) whatever the algorithms, then (rho, the ascent algorithms) for
    each distinct rho > 0 in increasing order."""
    return [(0.0, [baseline()])] + [(r, ascent(algorithms)) for r in positive_rhos(rhos)]


@dataclass(frozen=True)
class Role:
    """What one runner is: ``model`` "discrete" (the algorithm itself) or the name of an SDE of it."""

    algorithm: str
    model: str
    rho: float


class Sweep:
    """The runners of one simulation on ``task`` with ``noise`` and step size ``eta``, and their roles."""

    def __init__(self, task: Task, noise: NoiseModel, eta: float):
        self.task, self.noise, self.eta = task, noise, eta
        self.runners: list = []
        self.roles: dict[str, Role] = {}

    def _add(self, runner, role: Role) -> None:
        if runner.name in self.roles:
            raise ValueError(f"runner names must be unique: {role} is in the sweep already")
        self.runners.append(runner)
        self.roles[runner.name] = role

    @staticmethod
    def _name(role: Role) -> str:
        return f"{role.algorithm} {role.model} rho={role.rho!r}"

    def discrete(self, algorithm: str, rho: float) -> None:
        role = Role(algorithm, "discrete", rho)
        self._add(DiscreteRunner(self.task, self.noise, algorithm, self.eta, rho, self._name(role)), role)

    def sde(self, algorithm: str, rho: float, model: str = "own_sde", **options) -> None:
        """The SDE of ``algorithm`` (its drift and diffusion); ``options`` go to :class:`samsde.SDEModel`."""
        role = Role(algorithm, model, rho)
        sde = SDEModel(self.task, self.noise, self.eta, rho, algorithm, **options)
        self._add(SDERunner(sde, self._name(role)), role)

    def simulate(self, x0, n_paths: int, n_steps: int, resolution: int, seed: int, **kwargs) -> SimulationResult:
        """:func:`samsde.simulate` of every runner (``kwargs``: stream, observables, record_every, ...)."""
        return simulate(self.task, self.runners, x0, n_paths, n_steps, resolution, seed, **kwargs)

    def __iter__(self) -> Iterator[tuple[str, Role]]:
        """(runner name, role) in the order the runners were added."""
        return iter(self.roles.items())
