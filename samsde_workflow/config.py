"""Config validation with messages that name the offending key and value, before any job starts.

Two layers: the JSON schema (types, ranges, allowed names, unknown keys) and semantic checks the schema cannot
express (a task's parameters are accepted by its constructor, a spectrum and x0 of equal length, ...).
"""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import yaml

SCHEMA = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"
TASK_OVERRIDES = ("n_paths", "horizon", "resolution", "etas", "noise", "inner_samples", "sam_moments")


class ConfigError(ValueError):
    """A bad config value; the message names the key path and the value."""


def _key_path(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def _describe(error: jsonschema.ValidationError) -> str:
    key = _key_path(error.absolute_path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"config key {key}: unknown key(s) {extra}"
    if error.validator == "required":
        return f"config key {key}: {error.message}"
    if error.validator == "propertyNames":
        return f"config key {key}: {error.message} (allowed: {error.schema['propertyNames'].get('enum')})"
    return f"config key {key}: value {error.instance!r} is invalid: {error.message}"


def load_schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text())


def validate_config(config: dict) -> dict:
    """Validate ``config``; raise :class:`ConfigError` listing every problem, one per line, keys named."""
    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    messages = [_describe(e) for e in errors]
    if not messages:
        messages = _semantic_errors(config)
    if messages:
        raise ConfigError("invalid config:\n  " + "\n  ".join(messages))
    return config


def _semantic_errors(config: dict) -> list[str]:
    from samsde import make_task  # late imports: keep schema errors fast and torch-free
    from samsde.algorithms import get

    errors = []
    we = config["weak_error"]
    for name, entry in we["tasks"].items():
        key = f"weak_error.tasks.{name}.params"
        params = entry["params"]
        spectrum, x0 = params.get("spectrum"), params.get("x0")
        if spectrum is not None and x0 is not None and len(spectrum) != len(x0):
            errors.append(f"config key {key}.x0: length {len(x0)} does not match the spectrum's length {len(spectrum)}")
            continue
        try:
            make_task(name, **params)
        except ValueError as err:
            errors.append(f"config key {key}: {params!r} rejected: {err}")
        setting = task_setting(config, name)
        etas = setting["etas"]
        if len({str(e) for e in etas}) != len(etas):
            where = f"weak_error.tasks.{name}.etas" if "etas" in entry else "weak_error.etas"
            errors.append(f"config key {where}: {etas!r} has duplicates (one simulation job per eta)")
        noise = setting["noise"]
        if noise["kind"] in ("isotropic", "psd") and "sigma" not in noise:
            errors.append(f"config key weak_error.tasks.{name}.noise: kind {noise['kind']!r} needs sigma")
        if noise["kind"] == "minibatch" and "batch_size" not in noise:
            errors.append(f"config key weak_error.tasks.{name}.noise: kind 'minibatch' needs batch_size")
        needs_moments = [a for a in we["algorithms"] if get(a).needs_inner_moments]
        if setting["sam_moments"] == "closed_form" and noise["kind"] != "isotropic" and needs_moments:
            errors.append(
                f"config key weak_error.tasks.{name}.sam_moments: 'closed_form' needs isotropic noise, "
                f"the task's noise is {noise['kind']!r} (use 'monte_carlo' or 'auto')"
            )
    if "none" in we["scalings"]:
        errors.append("config key weak_error.scalings.none: the name 'none' is reserved for the SGD control's rows")
    for i, name in enumerate(we.get("drift_ablation", [])):
        if name not in we["scalings"]:
            errors.append(
                f"config key weak_error.drift_ablation[{i}]: {name!r} is not a scaling of weak_error.scalings "
                f"({sorted(we['scalings'])})"
            )
    low, high = config["claims"]["own_slope_range"]
    if low > high:
        errors.append(f"config key claims.own_slope_range: low {low} > high {high}")
    return errors


def task_setting(config: dict, task: str) -> dict:
    """The weak-error settings of one task: the section's defaults with the task's overrides applied."""
    we = config["weak_error"]
    entry = we["tasks"][task]
    setting = {k: copy.deepcopy(we[k]) for k in TASK_OVERRIDES}
    setting.update({k: copy.deepcopy(entry[k]) for k in TASK_OVERRIDES if k in entry})
    setting.update(
        task=task,
        source=entry["source"],
        params=copy.deepcopy(entry["params"]),
        n_boot=we["n_boot"],
        diffusion=we["diffusion"],
        algorithms=list(we["algorithms"]),
        scalings=copy.deepcopy(we["scalings"]),
        drift_ablation=list(we.get("drift_ablation", we["scalings"])),
        record_every=we.get("record_every", 1),
    )
    return setting


def load_config(path: str | Path) -> dict:
    return validate_config(yaml.safe_load(Path(path).read_text()))


def simulation_device(name: str, log):
    """The torch device of the config's ``device`` (``auto``: a GPU when torch sees one), logged for the record."""
    from samsde.device import resolve_device

    device = resolve_device(name)
    log.info("simulations run on %s (config device: %s)", device, name)
    return device


def simulation_job(snakemake, experiment: str, log):
    """The start of a simulation rule's script: the job's torch threads, then its config section unpacked as
    ``(params, setting, seed, device)``: the rule's params.section, the experiment's settings, the base seed and the
    simulation device (logged)."""
    import torch

    torch.set_num_threads(snakemake.threads)
    params = snakemake.params.section
    return params, params[experiment], params["seed"], simulation_device(params["device"], log)
