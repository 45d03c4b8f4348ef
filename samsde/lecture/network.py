"""The lecture's model: a small fully connected network with a seeded init."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from samsde.lecture.data import Dataset

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def make_mlp(
    n_in: int,
    hidden: list[int],
    n_out: int,
    activation: str,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float64,
) -> nn.Sequential:
    """Fully connected network ``n_in -> hidden... -> n_out`` with ``activation`` between layers.

    Weights and biases are drawn from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's default ``nn.Linear``
    init) with ``generator``, so the init is reproducible without touching the global RNG.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; known: {list(ACTIVATIONS)}")
    sizes = [n_in, *hidden, n_out]
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        linear = nn.Linear(fan_in, fan_out, dtype=dtype)
        bound = 1.0 / math.sqrt(fan_in)
        with torch.no_grad():
            for p in (linear.weight, linear.bias):
                p.copy_((torch.rand(p.shape, generator=generator, dtype=dtype) * 2 - 1) * bound)
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class MLP:
    """The architecture of :func:`make_mlp` without its input and output sizes, which come from the data set.

    ``dtype`` is a torch dtype or its name (``"float32"``, ``"float64"``).
    """

    hidden: tuple[int, ...]
    activation: str
    dtype: torch.dtype | str = torch.float64

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(self.hidden))
        if isinstance(self.dtype, str):
            if self.dtype not in DTYPES:
                raise ValueError(f"unknown dtype {self.dtype!r}; known: {list(DTYPES)}")
            object.__setattr__(self, "dtype", DTYPES[self.dtype])

    def build(self, data: Dataset, generator: torch.Generator) -> nn.Sequential:
        """A network sized for ``data`` (features in, classes out), init drawn from ``generator``."""
        return make_mlp(data.n_features, list(self.hidden), data.n_classes, self.activation, generator, self.dtype)
