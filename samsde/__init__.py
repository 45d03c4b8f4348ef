"""samsde: SDE models of SAM, USAM and DNSAM, and the tools to test them against the discrete optimizers.

The package is math only (no file I/O): tasks, noise models, the discrete optimizers, their SDEs, the one
simulation loop, weak-error statistics and closed forms.  The pipeline's scripts do the reading and writing.
"""

from samsde.algorithms import ALGORITHMS, Algorithm, discrete_step, optimizer_step, register
from samsde.device import resolve_device
from samsde.noise import make_noise
from samsde.sde import SDEModel
from samsde.seeding import derive_seed, make_generator
from samsde.simulate import OBSERVABLES, DiscreteRunner, SDERunner, simulate
from samsde.svag import SVAGRunner
from samsde.tasks import TASKS, from_module, make_task

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "OBSERVABLES",
    "TASKS",
    "DiscreteRunner",
    "SDEModel",
    "SDERunner",
    "SVAGRunner",
    "derive_seed",
    "discrete_step",
    "from_module",
    "make_generator",
    "make_noise",
    "make_task",
    "optimizer_step",
    "register",
    "resolve_device",
    "simulate",
]
