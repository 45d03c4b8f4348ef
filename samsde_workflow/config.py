"""Config validation with messages that name the offending key and value, before any job starts.

Two layers: the JSON schema (types, ranges, allowed names, unknown keys) and semantic checks the schema cannot
express (a task's parameters are accepted by its constructor, a spectrum and x0 of equal length, ...).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import jsonschema
import yaml

SCHEMA = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"
TASK_OVERRIDES = ("n_paths", "horizon", "resolution", "etas", "noise", "inner_samples", "sam_moments")
MINIBATCH_OVERRIDES = ("n_paths", "horizon", "resolution", "etas", "batch_size", "n_inner")
#: the weak-error stages: config section -> the keys a task entry may override
STAGES = {"weak_error": TASK_OVERRIDES, "weak_error_minibatch": MINIBATCH_OVERRIDES}


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
    messages = [_describe(e) for e in errors] + _non_finite(config)
    if not messages:
        messages = _semantic_errors(config)
    if messages:
        raise ConfigError("invalid config:\n  " + "\n  ".join(messages))
    return config


def _non_finite(node, path=()) -> list[str]:
    """NaN and infinities pass every range check of the schema (comparisons with NaN are false): name each one."""
    if isinstance(node, float) and not math.isfinite(node):
        return [f"config key {_key_path(path)}: value {node!r} is not a finite number"]
    if isinstance(node, dict):
        return [m for k, v in node.items() for m in _non_finite(v, (*path, k))]
    if isinstance(node, list):
        return [m for i, v in enumerate(node) for m in _non_finite(v, (*path, i))]
    return []


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
    errors += _minibatch_errors(config)
    for stage, ablation in (("weak_error", "drift_ablation"), ("weak_error_minibatch", "formula_ablation")):
        section = config[stage]
        if "none" in section["scalings"]:
            errors.append(f"config key {stage}.scalings.none: the name 'none' is reserved for the SGD control's rows")
        for i, name in enumerate(section.get(ablation, [])):
            if name not in section["scalings"]:
                errors.append(
                    f"config key {stage}.{ablation}[{i}]: {name!r} is not a scaling of {stage}.scalings "
                    f"({sorted(section['scalings'])})"
                )
        for name, entry in section["tasks"].items():
            setting = task_setting(config, name, stage)
            etas = setting["etas"]
            if len({str(e) for e in etas}) != len(etas):
                where = f"{stage}.tasks.{name}" if "etas" in entry else stage
                errors.append(f"config key {where}.etas: {etas!r} has duplicates (one simulation job per eta)")
            where = f"{stage}.tasks.{name}" if "horizon" in entry else stage
            short = [e for e in etas if setting["horizon"] < e]
            if short:
                horizon = setting["horizon"]
                errors.append(f"config key {where}.horizon: {horizon} is shorter than one step eta = {short}")
    low, high = config["claims"]["own_slope_range"]
    if low > high:
        errors.append(f"config key claims.own_slope_range: low {low} > high {high}")
    return errors


def task_setting(config: dict, task: str, stage: str = "weak_error") -> dict:
    """The settings of one task of a weak-error stage (``weak_error`` or ``weak_error_minibatch``): the section's
    defaults with the task's overrides applied, in the form :func:`samsde.experiments.weak_error.run_cell` takes."""
    we = config[stage]
    entry = we["tasks"][task]
    overrides = STAGES[stage]
    setting = {k: copy.deepcopy(we[k]) for k in overrides}
    setting.update({k: copy.deepcopy(entry[k]) for k in overrides if k in entry})
    setting.update(
        task=task,
        source=entry["source"],
        params=copy.deepcopy(entry["params"]),
        n_boot=we["n_boot"],
        diffusion=we["diffusion"],
        algorithms=list(we["algorithms"]),
        scalings=copy.deepcopy(we["scalings"]),
        record_every=we.get("record_every", 1),
    )
    if stage == "weak_error":
        setting["drift_ablation"] = list(we.get("drift_ablation", we["scalings"]))
    else:  # real mini-batches: the noise is the batch; the inner sample draws n_inner of them
        setting.update(
            noise={"kind": "minibatch", "batch_size": setting.pop("batch_size")},
            inner_samples=setting.pop("n_inner"),
            sam_moments="auto",
            formula_ablation=list(we["formula_ablation"]),
        )
    return setting


def _minibatch_errors(config: dict) -> list[str]:
    """A mini-batch task must be a finite sum with 1 <= B < N (B = N is full batch: no noise, nothing to model),
    and the sampled root draws its n_inner normals from the N Brownian coordinates."""
    from samsde import make_task
    from samsde.tasks import FiniteSum

    errors = []
    section = config["weak_error_minibatch"]
    for name, entry in section["tasks"].items():
        key = f"weak_error_minibatch.tasks.{name}"
        try:
            task = make_task(name, **entry["params"])
        except ValueError as err:
            errors.append(f"config key {key}.params: {entry['params']!r} rejected: {err}")
            continue
        if not isinstance(task, FiniteSum):
            errors.append(f"config key {key}: task {name!r} is not a finite sum of samples (no mini-batches)")
            continue
        setting = task_setting(config, name, "weak_error_minibatch")
        where = key if "batch_size" in entry else "weak_error_minibatch"
        batch = setting["noise"]["batch_size"]
        if not 1 <= batch < task.n_data:
            errors.append(
                f"config key {where}.batch_size: {batch} must be in [1, N - 1] = [1, {task.n_data - 1}] for "
                f"{name!r} (N = {task.n_data} samples; B = N has no noise)"
            )
        where = key if "n_inner" in entry else "weak_error_minibatch"
        if section["diffusion"] == "sampled" and setting["inner_samples"] > task.n_data:
            errors.append(
                f"config key {where}.n_inner: {setting['inner_samples']} exceeds N = {task.n_data} for {name!r} "
                "(the sampled diffusion takes its normals from the N Brownian coordinates)"
            )
    return errors


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
