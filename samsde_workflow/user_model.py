"""A user's model file (config ``source: user``): import it, call its ``build(**params)``, check what it returns.

The contract (docs/your-own-model.md): ``build`` returns a dict with ``model`` (a ``torch.nn.Module``; its
parameters are the initial point), ``inputs`` and ``targets`` (tensors with the same first dimension N), ``loss``
(``"mse"``, ``"cross_entropy"``, ``"bce"`` or a callable (outputs, targets) -> per-sample losses (N,)) and optionally
``l2`` (float, default 0).  The file needs nothing from samsde; :func:`samsde.from_module` makes it a task.
Every problem is a :class:`ConfigError` naming the config key, so the run stops before any job.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REQUIRED = ("model", "inputs", "targets", "loss")
OPTIONAL = ("l2",)


class UserModelError(ValueError):
    """A user model file that breaks the contract; the message names the config key."""


def _import(path: Path, key: str):
    spec = importlib.util.spec_from_file_location(f"samsde_user_model_{abs(hash(str(path)))}", path)
    if spec is None or spec.loader is None:
        raise UserModelError(f"config key {key}.module: {str(path)!r} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))  # the file may import its neighbours
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        raise UserModelError(
            f"config key {key}.module: importing {str(path)!r} raised {type(err).__name__}: {err}"
        ) from None
    finally:
        sys.path.remove(str(path.parent))
    return module


def load_user_task(name: str, entry: dict, key: str):
    """The task of config entry ``entry`` (``source: user``) named ``name``; ``key`` is the entry's config key."""
    from samsde import from_module

    module_path = entry.get("module")
    if not module_path:
        raise UserModelError(f"config key {key}: source 'user' needs module: <path of a .py file>")
    path = Path(module_path)
    if not path.is_file():
        where = f" (relative to the working directory {Path.cwd()})" if not path.is_absolute() else ""
        raise UserModelError(f"config key {key}.module: file {module_path!r} not found{where}")
    build = getattr(_import(path, key), "build", None)
    if not callable(build):
        raise UserModelError(f"config key {key}.module: {module_path!r} defines no function build(**params)")
    params = entry.get("params") or {}
    try:
        built = build(**params)
    except Exception as err:
        raise UserModelError(
            f"config key {key}.params: build(**{params!r}) raised {type(err).__name__}: {err}"
        ) from None
    if not isinstance(built, dict):
        raise UserModelError(f"config key {key}.module: build() must return a dict, got {type(built).__name__}")
    missing = [k for k in REQUIRED if k not in built]
    unknown = sorted(set(built) - set(REQUIRED) - set(OPTIONAL))
    if missing or unknown:
        problem = f"misses {missing}" if missing else f"has unknown key(s) {unknown}"
        raise UserModelError(
            f"config key {key}.module: build()'s dict {problem} (keys: {list(REQUIRED)}, optional {list(OPTIONAL)})"
        )
    try:
        return from_module(
            built["model"], built["inputs"], built["targets"], built["loss"], l2=built.get("l2", 0.0), name=name
        )
    except ValueError as err:
        raise UserModelError(f"config key {key}.module: {module_path!r}: {err}") from None
