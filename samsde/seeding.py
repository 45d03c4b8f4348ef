"""The project's one seeding scheme.

Every random stream is a ``torch.Generator`` seeded with
    seed = first 8 bytes of SHA-256(JSON of [base_seed, key_1, key_2, ...])  (little-endian, mod 2^63)
where ``base_seed`` comes from the config and the keys name the stream (task, algorithm, eta, purpose, ...).
The hash is stable across processes and machines (unlike Python's ``hash``), so any single run of the pipeline
can be regenerated alone, in any order, and two streams with different keys are independent.
"""

from __future__ import annotations

import hashlib
import json

import torch


def derive_seed(base_seed: int, *keys: object) -> int:
    """Deterministic 63-bit seed from a base seed and keys (str, int, float, bool; anything else by its str).

    JSON keeps the key list unambiguous: ("a", "b") differs from ("a/b",), and 1 from "1"; floats are written
    with their shortest round-trip repr.
    """
    plain = [k if isinstance(k, (str, int, float, bool)) else str(k) for k in keys]
    text = json.dumps([int(base_seed), *plain])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") % (2**63)


def make_generator(base_seed: int, *keys: object, device: str | torch.device = "cpu") -> torch.Generator:
    """A CPU/GPU generator seeded by :func:`derive_seed`."""
    gen = torch.Generator(device=device)
    gen.manual_seed(derive_seed(base_seed, *keys))
    return gen
