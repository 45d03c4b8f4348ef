"""What the lecture's network experiments share: the data set and model of a rule's section, the baseline method."""

from __future__ import annotations

import logging

from samsde.algorithms import get
from samsde.lecture import MLP, Dataset, shared_split


def data_and_model(section: dict) -> tuple[Dataset, MLP]:
    """The split and the MLP of a lecture rule's section (``seed``; ``data``: dataset, test_fraction; ``model``:
    hidden, activation, dtype).  The split is :func:`samsde.lecture.shared_split`: every experiment sees the same."""
    model = section["model"]
    mlp = MLP(model["hidden"], model["activation"], model["dtype"])
    data = section["data"]
    return shared_split(data["dataset"], data["test_fraction"], section["seed"], mlp.dtype), mlp


def baseline(methods) -> str:
    """The one method without an ascent perturbation (SGD), which the others are compared with."""
    plain = [m for m in methods if not get(m).perturbs]
    if len(plain) != 1:
        raise ValueError(f"need exactly one method without a perturbation among {list(methods)}, got {plain}")
    return plain[0]


def logger(log: logging.Logger | None) -> logging.Logger:
    return log if log is not None else logging.getLogger("samsde.experiments.lecture")
