"""Config validation with messages that name the offending key and value, before any job starts.

Two layers: the JSON schema (types, ranges, allowed names, unknown keys) and semantic checks the schema cannot
express (a task's parameters are accepted by its constructor, a spectrum and x0 of equal length, a user's model
file keeps the contract, ...).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import jsonschema
import yaml

from samsde_workflow.config_checks import param_errors, records_fit, section_errors, whole_steps

SCHEMA = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"
TASK_OVERRIDES = ("n_paths", "horizon", "resolution", "etas", "noise", "inner_samples", "sam_moments")
MINIBATCH_OVERRIDES = ("n_paths", "discrete_paths", "horizon", "resolution", "etas", "batch_size", "n_inner")
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
        names = error.schema["propertyNames"]
        allowed = names.get("enum") or f"names matching {names.get('pattern')}"
        return f"config key {key}: {error.message} (allowed: {allowed})"
    return f"config key {key}: value {error.instance!r} is invalid: {error.message}"


def resolve_config(defaults: dict, overrides: dict) -> dict:
    """The run's config: ``overrides`` (the --configfile files and --config values, which Snakemake has merged in
    their order) over ``defaults`` (config.yaml), key by key as Snakemake merges them: a mapping merges into the
    default's mapping, any other value (a list included) replaces it.

    One exception, so that a file overriding part of a task's params does what its user means: a task whose
    constructor takes alternative forms of its parameters (``Task.param_forms``; the quadratic's generated
    ``dim`` or given ``spectrum``) keeps only the form the override names: the default's keys of the other forms
    are dropped, not merged next to it.
    """
    from snakemake.utils import update_config

    merged = copy.deepcopy(defaults)
    for stage in STAGES:  # a task's params first lose the forms the override does not name, then merge
        default_tasks = _mapping(_mapping(merged.get(stage)).get("tasks"))
        for task, entry in _mapping(_mapping(overrides.get(stage)).get("tasks")).items():
            params, named = _mapping(default_tasks.get(task)).get("params"), _mapping(entry).get("params")
            if isinstance(params, dict) and isinstance(named, dict):
                _drop_other_forms(params, named, task)
    update_config(merged, copy.deepcopy(overrides))
    return merged


def _mapping(node) -> dict:
    """``node`` if it is a mapping, else empty: the merge runs before validation, which names a wrong type."""
    return node if isinstance(node, dict) else {}


def _drop_other_forms(params: dict, override: dict, task: str) -> None:
    """Remove from ``params`` the keys of the forms ``override`` does not name (when it names one)."""
    from samsde.tasks import TASKS

    forms = getattr(TASKS.get(task), "param_forms", ())
    named = [form for form in forms if any(key in override for key in form)]
    for form in forms:
        if named and form not in named:
            for key in form:
                params.pop(key, None)


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
    from samsde.algorithms import get  # late imports: keep schema errors fast and torch-free
    from samsde.tasks import FiniteSum

    errors = _selection_errors(config)
    we = config["weak_error"]
    for name, entry in we["tasks"].items():
        task, error = _checked_task(config, "weak_error", name)
        if error:
            errors.append(error)
        setting = task_setting(config, name)
        noise = setting["noise"]
        if noise["kind"] in ("isotropic", "psd") and "sigma" not in noise:
            errors.append(f"config key weak_error.tasks.{name}.noise: kind {noise['kind']!r} needs sigma")
        if noise["kind"] == "minibatch" and "batch_size" not in noise:
            errors.append(f"config key weak_error.tasks.{name}.noise: kind 'minibatch' needs batch_size")
        elif noise["kind"] == "minibatch" and task is not None:
            where = f"weak_error.tasks.{name}" if "noise" in entry else "weak_error"
            if not isinstance(task, FiniteSum):
                errors.append(
                    f"config key {where}.noise: task {name!r} is not a finite sum of samples (no mini-batches)"
                )
            elif noise["batch_size"] >= task.n_data:
                errors.append(
                    f"config key {where}.noise.batch_size: {noise['batch_size']} must be in [1, N - 1] = "
                    f"[1, {task.n_data - 1}] for {name!r} (N = {task.n_data} samples; B = N is full batch, no noise: "
                    "use noise kind 'none')"
                )
        where = f"weak_error.tasks.{name}" if "noise" in entry else "weak_error"
        isotropic_only = [get(a).label for a in we["algorithms"] if get(a).first_order_needs_isotropic]
        if we["diffusion"] == "first_order" and noise["kind"] == "psd" and isotropic_only:
            errors.append(
                f"config key {where}.noise.kind: 'psd' with weak_error.diffusion 'first_order': the first-order "
                f"diffusion of {isotropic_only} needs isotropic noise (set weak_error.diffusion: exact, or an "
                "isotropic noise)"
            )
        needs_moments = [a for a in we["algorithms"] if get(a).needs_inner_moments]
        if setting["sam_moments"] == "closed_form" and noise["kind"] != "isotropic" and needs_moments:
            errors.append(
                f"config key weak_error.tasks.{name}.sam_moments: 'closed_form' needs isotropic noise, "
                f"the task's noise is {noise['kind']!r} (use 'monte_carlo' or 'auto')"
            )
    errors += _minibatch_errors(config)
    errors += _exact_anchor_errors(config)
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
            errors += [m for eta in etas for m in whole_steps(f"{where}.horizon", setting["horizon"], eta)][:1]
            shortest = round(setting["horizon"] / max(etas))
            errors += records_fit(f"{stage}.record_every", setting["record_every"], shortest)
    low, high = config["claims"]["control_slope_range"]
    if low > high:
        errors.append(f"config key claims.control_slope_range: low {low} > high {high}")
    return errors + section_errors(config)


def build_task(setting: dict, stage: str = "weak_error"):
    """The task of one weak-error setting (:func:`task_setting`'s): a registered task by its name and params, or,
    for ``source: user``, the task of the user's model file (:mod:`samsde_workflow.user_model`)."""
    from samsde import make_task
    from samsde_workflow.user_model import load_user_task

    name = setting["task"]
    if setting["source"] == "user":
        return load_user_task(name, setting, f"{stage}.tasks.{name}")
    return make_task(name, **setting["params"])


def _checked_task(config: dict, stage: str, name: str):
    """(task, None) when the entry builds, else (None, the error line naming its key)."""
    from samsde.tasks import TASKS
    from samsde_workflow.user_model import UserModelError

    entry = config[stage]["tasks"][name]
    key = f"{stage}.tasks.{name}"
    if entry["source"] != "user" and name not in TASKS:
        return None, (
            f"config key {key}: {name!r} is not a registered task ({sorted(TASKS)}); a model of your own needs "
            "source: user and module: <path of its .py file>"
        )
    if entry["source"] != "user" and "module" in entry:
        return (
            None,
            f"config key {key}.module: only a task with source 'user' has a module (source is {entry['source']!r})",
        )
    params = entry.get("params", {})
    if entry["source"] != "user" and param_errors(f"{key}.params", TASKS[name], params):
        return None, "\n  ".join(param_errors(f"{key}.params", TASKS[name], params))
    spectrum, x0 = params.get("spectrum"), params.get("x0")
    if spectrum is not None and x0 is not None and len(spectrum) != len(x0):
        return (
            None,
            f"config key {key}.params.x0: length {len(x0)} does not match the spectrum's length {len(spectrum)}",
        )
    try:
        return build_task(task_setting(config, name, stage), stage), None
    except UserModelError as err:
        return None, str(err)
    except ValueError as err:
        return None, f"config key {key}.params: {params!r} rejected: {err}"


def selected_tasks(config: dict, stage: str) -> list[str]:
    """The tasks of a weak-error stage that run: those of ``run.tasks`` (all when it is ``all``), in the stage's
    order; none when the stage is not in ``run.stages``."""
    run = config["run"]
    if stage not in run["stages"]:
        return []
    return [t for t in config[stage]["tasks"] if run["tasks"] == "all" or t in run["tasks"]]


def stage_section(config: dict, stage: str) -> dict:
    """A weak-error stage's config section with only its selected tasks (the tables' and figures' params)."""
    section = dict(config[stage])
    section["tasks"] = {t: config[stage]["tasks"][t] for t in selected_tasks(config, stage)}
    return section


def _selection_errors(config: dict) -> list[str]:
    """``run.tasks`` names tasks that exist, and every weak-error stage of ``run.stages`` keeps at least one."""
    run = config["run"]
    errors = []
    for stage in STAGES:
        if stage in run["stages"] and not selected_tasks(config, stage):
            errors.append(
                f"config key run.tasks: {run['tasks']!r} selects none of {stage}.tasks "
                f"({list(config[stage]['tasks'])}); add an entry for it there or drop {stage!r} from run.stages"
            )
    if run["tasks"] != "all":
        known = {t for stage in STAGES if stage in run["stages"] for t in config[stage]["tasks"]}
        unknown = [t for t in run["tasks"] if t not in known]
        if unknown:
            errors.append(
                f"config key run.tasks: {unknown} is not a task of the weak-error stages in run.stages "
                f"({sorted(known)})"
            )
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
        params=copy.deepcopy(entry.get("params", {})),
        module=entry.get("module"),
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
            antithetic=we["antithetic"],
        )
    return setting


def _minibatch_errors(config: dict) -> list[str]:
    """A mini-batch task must be a finite sum with 1 <= B < N (B = N is full batch: no noise, nothing to model),
    the sampled root (also ``auto``'s for SAM) draws its n_inner normals from the N Brownian coordinates, and the
    ``linear`` root exists for USAM and DNSAM only."""
    from samsde.algorithms import get
    from samsde.tasks import FiniteSum

    errors = []
    section = config["weak_error_minibatch"]
    if section["diffusion"] == "linear":
        rootless = [a for a in section["algorithms"] if not get(a).has_minibatch_linear_root]
        if rootless:
            errors.append(
                f"config key weak_error_minibatch.diffusion: 'linear' has no noise-free root for {rootless} "
                "(weak_error_minibatch.algorithms): use 'auto' (linear for USAM and DNSAM, sampled for SAM)"
            )
    for name, entry in section["tasks"].items():
        key = f"weak_error_minibatch.tasks.{name}"
        task, error = _checked_task(config, "weak_error_minibatch", name)
        if error:
            errors.append(error)
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
        where = key if "n_paths" in entry else "weak_error_minibatch"
        if section["antithetic"] and setting["n_paths"] % 2:
            errors.append(
                f"config key {where}.n_paths: {setting['n_paths']} is odd; antithetic SDE paths come in pairs "
                "(weak_error_minibatch.antithetic: true)"
            )
        where = key if "n_inner" in entry else "weak_error_minibatch"
        if section["diffusion"] in ("sampled", "auto") and setting["inner_samples"] > task.n_data:
            errors.append(
                f"config key {where}.n_inner: {setting['inner_samples']} exceeds N = {task.n_data} for {name!r} "
                "(the sampled diffusion takes its normals from the N Brownian coordinates)"
            )
    return errors


def _exact_anchor_errors(config: dict) -> list[str]:
    """The exact anchor (``weak_error_minibatch.exact_anchor``): B < N, x0 of length dim, etas unique, the horizon at
    least the largest eta and whole steps of each; its claims' window ``claims.exact_half_order_window`` ordered."""
    from samsde.experiments.minibatch_exact import setting_errors

    errors = setting_errors(config["weak_error_minibatch"]["exact_anchor"], "weak_error_minibatch.exact_anchor")
    low, high = config["claims"]["exact_half_order_window"]
    if low > high:
        errors.append(f"config key claims.exact_half_order_window: low {low} > high {high}")
    return errors


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
