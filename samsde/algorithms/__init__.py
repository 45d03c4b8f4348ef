"""The registry of algorithms: the only place where the algorithms' names are listed.

``ALGORITHMS`` maps a name to its :class:`~samsde.algorithms.base.Algorithm` object (one module each: sgd, usam,
sam, dnsam).  :func:`register` adds a new one (a subclass of ``Algorithm``), after which the discrete step, the SDE
model, the simulation loop and the torch optimizer accept its name; the config schema, the figures' palette and
the lecture's methods are derived from this registry.
"""

from __future__ import annotations

from samsde.algorithms.base import Algorithm, safe_inverse_norm
from samsde.algorithms.dnsam import DNSAM
from samsde.algorithms.sam import SAM
from samsde.algorithms.sgd import SGD
from samsde.algorithms.steps import check_step_sizes, discrete_step, optimizer_step, update_direction
from samsde.algorithms.usam import USAM

ALGORITHMS: dict[str, Algorithm] = {}


def register(algorithm: Algorithm) -> Algorithm:
    """Add ``algorithm`` to the registry under its ``name`` (which must be new); returns it."""
    if not isinstance(algorithm, Algorithm):
        raise TypeError(f"register takes an Algorithm instance, got {algorithm!r}")
    if algorithm.name in ALGORITHMS:
        raise ValueError(f"algorithm {algorithm.name!r} is registered already")
    ALGORITHMS[algorithm.name] = algorithm
    return algorithm


def get(algorithm: str | Algorithm) -> Algorithm:
    """The registered algorithm of that name (an Algorithm passes through)."""
    if isinstance(algorithm, Algorithm):
        return algorithm
    try:
        return ALGORITHMS[algorithm]
    except (KeyError, TypeError):
        raise ValueError(f"unknown algorithm {algorithm!r}; known algorithms: {list(ALGORITHMS)}") from None


def check_algorithm(algorithm: str | Algorithm) -> None:
    get(algorithm)


def ascent_algorithms() -> list[str]:
    """The registered algorithms with an ascent step (SAM-type: what the weak-error stage compares)."""
    return [name for name, a in ALGORITHMS.items() if a.perturbs]


for _algorithm in (SGD(), USAM(), SAM(), DNSAM()):
    register(_algorithm)

__all__ = [
    "ALGORITHMS",
    "DNSAM",
    "SAM",
    "SGD",
    "USAM",
    "Algorithm",
    "ascent_algorithms",
    "check_algorithm",
    "check_step_sizes",
    "discrete_step",
    "get",
    "optimizer_step",
    "register",
    "safe_inverse_norm",
    "update_direction",
]
