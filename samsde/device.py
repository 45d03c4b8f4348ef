"""Where the simulations run: ``cpu``, ``cuda`` or ``auto`` (a GPU when torch sees one), and moving tasks there.

Random numbers are always drawn on the CPU from the project's seeded generators and then moved, so a run on a GPU
sees the same Brownian increments, inner samples and mini-batches as on the CPU: its paths differ from the CPU's
only by floating-point rounding (different kernels), not by a different random stream.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor

DEVICES = ("cpu", "cuda", "auto")


def resolve_device(name: str) -> torch.device:
    """The torch device of a config value; ``cuda`` without a visible GPU is an error that says so."""
    if name not in DEVICES:
        raise ValueError(f"unknown device {name!r}; known devices: {list(DEVICES)}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but torch sees no GPU (use device: auto to fall back to cpu)")
    return torch.device(name)


def moved(obj, device: torch.device | str):
    """A shallow copy of ``obj`` (a task or a noise model) with every tensor attribute on ``device``.

    Attributes that can move themselves (a mini-batch noise model's task) are moved by their own ``to``, so an
    object with caches tied to the old device drops them there (see ``OneHiddenLayerNet.to``); this function knows
    no object's internals.
    """
    device = torch.device(device)
    out = copy.copy(obj)
    for name, value in list(vars(out).items()):
        if isinstance(value, Tensor):
            out.__dict__[name] = value.to(device)
        elif hasattr(value, "to") and hasattr(value, "device") and not isinstance(value, torch.device):
            out.__dict__[name] = value.to(device)
    out.__dict__["device"] = device
    return out
