"""Objective functions f: R^d -> R, batched over M independent paths, and their registry.

Every task works on a parameter tensor ``x`` of shape ``(M, d)`` (one row per Monte Carlo path) and returns
per-path quantities: ``loss(x) -> (M,)``, ``grad(x) -> (M, d)``, ``hvp(x, v) -> (M, d)`` and, for small d,
``hessian(x) -> (M, d, d)`` (the interface: :mod:`samsde.tasks.base`).

Data tasks (iris, breast_cancer, teacher_student, matrix_sensing) are finite sums
f(x) = (1/N) sum_i f_i(x) + (l2/2) ||x||^2 and also expose ``per_sample_loss(x, batch)`` so that mini-batch
noise and its matrix-free covariance square root can be built on them (see :mod:`samsde.noise`).

Modules: ``base`` (Task, Linearization, FiniteSum), ``landscapes`` (quadratic, two_basin), ``networks`` (iris,
breast_cancer, teacher_student), ``_network_kernel`` and ``_batch_kernel`` (their closed-form full-batch and
per-row mini-batch derivatives), ``matrix_sensing``, ``finite_sum_quadratic`` (the closed-form reference of the
mini-batch SDEs; not in the registry), ``user`` (any ``torch.nn.Module`` and data set as a task, through
``torch.func``: :func:`from_module`; not in the registry, a config names it by ``source: user``).
"""

from __future__ import annotations

from samsde.tasks._network_kernel import NetworkLinearization
from samsde.tasks.base import DTYPE, AutogradLinearization, ConstantHessian, FiniteSum, Linearization, Task
from samsde.tasks.finite_sum_quadratic import FiniteSumQuadratic
from samsde.tasks.landscapes import Quadratic, TwoBasin, random_orthogonal
from samsde.tasks.matrix_sensing import MatrixSensing
from samsde.tasks.networks import (
    IDENTITY,
    SIGMOID,
    TANH,
    Activation,
    BinaryCrossEntropyWithLogits,
    BreastCancer,
    HalfSquaredError,
    Identity,
    Iris,
    OneHiddenLayerNet,
    OutputLoss,
    Sigmoid,
    SoftmaxCrossEntropy,
    Tanh,
    TeacherStudent,
)
from samsde.tasks.user import ModuleTask, from_module

__all__ = [
    "DTYPE",
    "IDENTITY",
    "SIGMOID",
    "TANH",
    "TASKS",
    "Activation",
    "AutogradLinearization",
    "BinaryCrossEntropyWithLogits",
    "BreastCancer",
    "ConstantHessian",
    "FiniteSum",
    "FiniteSumQuadratic",
    "HalfSquaredError",
    "Identity",
    "Iris",
    "Linearization",
    "MatrixSensing",
    "ModuleTask",
    "NetworkLinearization",
    "OneHiddenLayerNet",
    "OutputLoss",
    "Quadratic",
    "Sigmoid",
    "SoftmaxCrossEntropy",
    "Tanh",
    "Task",
    "TeacherStudent",
    "TwoBasin",
    "from_module",
    "make_task",
    "random_orthogonal",
]

TASKS: dict[str, type[Task]] = {
    cls.name: cls for cls in (Quadratic, TwoBasin, Iris, BreastCancer, TeacherStudent, MatrixSensing)
}


def make_task(name: str, **params) -> Task:
    """Build a task by name; unknown names and parameters raise a ValueError that names them."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {sorted(TASKS)}")
    try:
        return TASKS[name](**params)
    except TypeError as err:
        raise ValueError(f"task {name!r}: bad parameters {sorted(params)}: {err}") from None
