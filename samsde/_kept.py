"""A value computed at a state tensor and kept for one later use at that very tensor."""

from __future__ import annotations

from typing import Generic, TypeVar

from torch import Tensor

T = TypeVar("T")


class KeptAt(Generic[T]):
    """Holds one value computed at a state x until it is taken back at the same tensor x, unmodified.

    The simulation loop records observables at the state a runner is about to step from; the runner keeps what it
    computed there (a linearization, a gradient) with :meth:`put` and its next step gets it with :meth:`take`,
    which hands it out once and only for the same tensor object at the same version (no in-place change since).
    """

    def __init__(self) -> None:
        self._entry: tuple[Tensor, int, T] | None = None

    def put(self, x: Tensor, value: T) -> T:
        self._entry = (x, x._version, value)
        return value

    def take(self, x: Tensor) -> T | None:
        entry, self._entry = self._entry, None
        if entry is not None and entry[0] is x and entry[1] == x._version:
            return entry[2]
        return None
