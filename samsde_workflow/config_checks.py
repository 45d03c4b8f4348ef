"""Semantic checks of the sections besides the weak-error stages: values the schema accepts (each in its range)
that make no sense together or with the data, each reported as one line naming the key and the value.

A check states the premise of its experiment it protects: a horizon that is a whole number of steps (every
experiment runs ``round(horizon / eta)`` steps), a batch no larger than the data it is drawn from, a stable step
where a closed form assumes one, the grids a claim compares across.
"""

from __future__ import annotations


def whole_steps(key: str, horizon: float, eta: float) -> list[str]:
    """``horizon`` is at least one step and a whole number of steps of size ``eta`` (to 1e-9 of a step)."""
    if horizon < eta:
        return [f"config key {key}: {horizon} is shorter than one step eta = {eta}"]
    if abs(horizon / eta - round(horizon / eta)) > 1e-9:
        return [
            f"config key {key}: {horizon} is not a whole number of steps eta = {eta} ({horizon / eta:.6g} steps; "
            f"the run would stop at t = {round(horizon / eta) * eta:g})"
        ]
    return []


def records_fit(key: str, record_every: int, n_steps: int) -> list[str]:
    if record_every > n_steps:
        return [f"config key {key}: {record_every} is more than the run's {n_steps} steps (only the start is recorded)"]
    return []


def ordered(key: str, low: float, high: float, what: str = "low") -> list[str]:
    return [f"config key {key}: {what} {low} is not below {high}"] if not low < high else []


def _quadratic_stationary(s: dict) -> list[str]:
    key = "quadratic_stationary"
    errors = whole_steps(f"{key}.horizon", s["horizon"], s["eta"])
    spacing = s["record_every"] * s["eta"]
    if s["horizon"] - s["burn_in"] < 2 * spacing:
        errors.append(
            f"config key {key}.burn_in: {s['burn_in']} leaves fewer than two records (one every record_every * eta "
            f"= {spacing:g}) before the horizon {s['horizon']} to average"
        )
    # linear stability of USAM's recursion x <- x - eta H (I + rho H) x (rho = 0: SGD, always run as the baseline):
    # the stationary closed forms exist only below 2
    lam = max(s["spectrum"]) * max(s["hessian_scales"])
    rho = max(s["rhos"]) if "usam" in s["algorithms"] else 0.0
    if not s["eta"] * lam * (1 + rho * lam) < 2:
        errors.append(
            f"config key {key}.eta: {s['eta']} is unstable: eta lambda_max (1 + rho lambda_max) = "
            f"{s['eta'] * lam * (1 + rho * lam):.4g} >= 2 at lambda_max = {lam:g}, rho = {rho:g} (no stationary law)"
        )
    return errors


def _saddle(s: dict) -> list[str]:
    errors = whole_steps("saddle.horizon", s["horizon"], s["eta"])
    errors += records_fit("saddle.record_every", s["record_every"], round(s["horizon"] / s["eta"]))
    factors = s["radius_factors"]
    if not (min(factors) < 1 < max(factors)):
        errors.append(
            f"config key saddle.radius_factors: {factors} must hold factors below and above 1 (the attraction claim "
            "compares starts inside and outside the predicted radius rho)"
        )
    return errors


def _hessian_trace(s: dict) -> list[str]:
    from samsde.tasks import MatrixSensing

    errors = whole_steps("hessian_trace.horizon", s["horizon"], s["eta"])
    errors += records_fit("hessian_trace.record_every", s["record_every"], round(s["horizon"] / s["eta"]))
    task, error = _constructed("hessian_trace.params", MatrixSensing, s["params"])
    if error:
        return [*errors, error]
    if task.n_data >= task.n * (task.n + 1) // 2:
        errors.append(
            f"config key hessian_trace.params.n_measurements: {task.n_data} is not below n (n + 1) / 2 = "
            f"{task.n * (task.n + 1) // 2}: the global minima would be isolated, with no manifold for the Hessian "
            "trace to vary on"
        )
    return errors


def _flat_minima(s: dict) -> list[str]:
    from samsde.tasks import TwoBasin

    errors = whole_steps("flat_minima.horizon", s["horizon"], s["eta"])
    task, error = _constructed("flat_minima.params", TwoBasin, s["params"])
    if error:
        return [*errors, error]
    return errors + ordered(
        "flat_minima.params.sharp_width", task.sharp_width, task.flat_width, "the sharp well's width"
    )


def _svag_convergence(s: dict) -> list[str]:
    """Per task (with its overrides): a whole number of steps, parameters its constructor accepts, and an ls
    mapping only for the task's algorithms; every floor task one of the tasks with floor algorithms it runs, every
    floor algorithm run somewhere, and a floor claim only where SVAG's limit is the algorithm's SDE exactly
    (samsde.experiments.svag_convergence.floor_refusal: never for SAM)."""
    from samsde.experiments.svag_convergence import floor_refusal
    from samsde.tasks import TASKS

    run_on = {name: entry.get("algorithms", s["algorithms"]) for name, entry in s["tasks"].items()}
    errors = []
    for name, algorithms in s.get("floor_tasks", {}).items():
        key = f"config key svag_convergence.floor_tasks.{name}"
        if name not in s["tasks"]:
            errors.append(f"{key}: {name!r} is not one of svag_convergence.tasks {sorted(s['tasks'])}")
            continue
        for a in algorithms:
            if a not in run_on[name]:
                errors.append(f"{key}: {a!r} does not run on {name!r} (its algorithms: {run_on[name]})")
            elif floor_refusal(name, a):
                errors.append(f"{key}: no floor claim for {a!r} on {name!r}: {floor_refusal(name, a)}")
    run = {a for algorithms in run_on.values() for a in algorithms}
    for a in s.get("floor_algorithms", []):
        key = f"config key svag_convergence.floor_algorithms: {a!r}"
        if a not in run:
            errors.append(f"{key} runs on no task (algorithms run: {sorted(run)})")
        errors += [
            f"{key}: no floor claim on {name!r}: {floor_refusal(name, a)}"
            for name, algorithms in run_on.items()
            if a in algorithms and floor_refusal(name, a)
        ]
    from samsde.algorithms import get

    isotropic_only = sorted(get(a).label for a in run if get(a).first_order_needs_isotropic)
    if s["diffusion"] == "first_order" and s["noise"]["kind"] == "psd" and isotropic_only:
        errors.append(
            "config key svag_convergence.noise.kind: 'psd' with svag_convergence.diffusion 'first_order': the "
            f"first-order diffusion of {isotropic_only} (the reference SDE) needs isotropic noise (set "
            "svag_convergence.diffusion: exact, or noise kind isotropic)"
        )
    for name, entry in s["tasks"].items():
        key = f"svag_convergence.tasks.{name}"
        algorithms = entry.get("algorithms", s["algorithms"])
        if isinstance(entry.get("ls"), dict):
            errors += [
                f"config key {key}.ls.{a}: {a!r} is not one of the task's algorithms {algorithms}"
                for a in entry["ls"]
                if a not in algorithms
            ]
        eta = entry.get("eta", s["eta"])
        where = f"{key}.horizon" if "horizon" in entry else "svag_convergence.horizon"
        errors += whole_steps(where, entry.get("horizon", s["horizon"]), eta)
        _, error = _constructed(f"{key}.params", TASKS[name], entry.get("params", {}))
        if error:
            errors.append(error)
    return errors


def _svag_scale(s: dict) -> list[str]:
    """A whole number of steps at every eta, a known task whose constructor accepts the parameters."""
    from samsde.tasks import TASKS

    errors = [e for eta in s["etas"] for e in whole_steps("svag_scale.horizon", s["horizon"], eta)]
    name = s["task"]["name"]
    if name not in TASKS:
        return [*errors, f"config key svag_scale.task.name: unknown task {name!r} (known: {sorted(TASKS)})"]
    _, error = _constructed("svag_scale.task.params", TASKS[name], s["task"].get("params", {}))
    return errors + ([error] if error else [])


def param_errors(key: str, cls, params: dict) -> list[str]:
    """One line per parameter of ``params`` (the config key ``key``) below the least value the task ``cls`` runs
    with (its ``param_bounds``: a width, a dimension, a sample count of at least 1, ...)."""
    from samsde.tasks.base import param_errors as bound_errors

    return [
        f"config key {key}.{name}: value {params[name]!r} is invalid: {message}"
        for name, message in bound_errors(cls, params).items()
    ]


def _constructed(key: str, cls, params: dict):
    """(the task, None), or (None, the error line) when a parameter is outside its bound or the constructor
    rejects ``params``."""
    errors = param_errors(key, cls, params)
    if errors:
        return None, "\n  ".join(errors)
    try:
        return cls(**params), None
    except (TypeError, ValueError) as err:
        return None, f"config key {key}: {params!r} rejected: {err}"


def _lecture(lecture: dict) -> list[str]:
    from samsde.lecture.data import split_sizes

    data, errors = lecture["data"], []
    n_train, n_test = split_sizes(data["dataset"], data["test_fraction"])
    if min(n_train, n_test) < 1:
        errors.append(
            f"config key lecture.data.test_fraction: {data['test_fraction']} leaves {n_train} training and {n_test} "
            f"test samples of {data['dataset']!r} (each needs at least one)"
        )
        return errors
    lb = lecture["large_batch"]
    errors += ordered("lecture.large_batch.small_batch", lb["small_batch"], lb["large_batch"], "the small batch")
    if lb["large_batch"] > n_train:
        errors.append(
            f"config key lecture.large_batch.large_batch: {lb['large_batch']} is larger than the {n_train} training "
            f"samples of {data['dataset']!r}"
        )
    errors += ordered("lecture.interpolation.alpha_range", *lecture["interpolation"]["alpha_range"])
    sv = lecture["sam_vs_sgd"]
    n_val = round(sv["validation_fraction"] * n_train)
    n_fit = n_train - n_val  # the rho sweep trains on the rest
    if min(n_val, n_fit) < 1:
        errors.append(
            f"config key lecture.sam_vs_sgd.validation_fraction: {sv['validation_fraction']} holds out {n_val} of "
            f"the {n_train} training samples, leaving {n_fit} to train the rho sweep (each needs at least one)"
        )
    if sv["batch_size"] > n_fit:
        errors.append(
            f"config key lecture.sam_vs_sgd.batch_size: {sv['batch_size']} is larger than the {n_fit} samples the "
            f"rho sweep trains on ({n_train} training samples less validation_fraction {sv['validation_fraction']})"
        )
    ascent = [m for m in sv["methods"] if m != "sgd"]
    missing, unused = sorted(set(ascent) - set(sv["rho_grid"])), sorted(set(sv["rho_grid"]) - set(ascent))
    if missing or unused:
        errors.append(
            f"config key lecture.sam_vs_sgd.rho_grid: {sorted(sv['rho_grid'])} must have one grid per ascent "
            f"method of methods {sv['methods']} (missing {missing}, not a method {unused})"
        )
    percents = [round(100 * share) for share in sv["label_noise"]]
    if len(set(percents)) != len(percents) or min(percents, default=1) < 1:
        errors.append(
            f"config key lecture.sam_vs_sgd.label_noise: {sv['label_noise']} must be distinct whole percents of at "
            f"least 1% (each names its runs noise_<percent>: {percents})"
        )
    hs = lecture["hessian_spectrum"]
    if hs["n_seeds"] > sv["n_seeds"]:
        errors.append(
            f"config key lecture.hessian_spectrum.n_seeds: {hs['n_seeds']} is more than the {sv['n_seeds']} "
            "solutions of lecture.sam_vs_sgd.n_seeds it analyses"
        )
    n_params = _n_parameters(data["dataset"], lecture["model"]["hidden"])
    if hs["top_k"] > n_params:
        errors.append(
            f"config key lecture.hessian_spectrum.top_k: {hs['top_k']} is more than the {n_params} parameters of "
            "the network (the Hessian's size)"
        )
    if hs["top_k"] > hs["topk_iters"]:
        errors.append(
            f"config key lecture.hessian_spectrum.top_k: {hs['top_k']} is more than the {hs['topk_iters']} Ritz "
            "values of topk_iters Lanczos steps"
        )
    return errors + _full_batch(lecture["full_batch_sharpness"]) + _bouncing(lecture["bouncing"])


def _full_batch(fb: dict) -> list[str]:
    points, errors = fb["checkpoints"], []
    if points != sorted(points) or points[-1] != fb["n_steps"]:
        errors.append(
            f"config key lecture.full_batch_sharpness.checkpoints: {points} must increase and end at n_steps "
            f"{fb['n_steps']}"
        )
    if 2 * fb["compare"] > len(points):
        errors.append(
            f"config key lecture.full_batch_sharpness.compare: {fb['compare']} first and {fb['compare']} last of "
            f"{len(points)} checkpoints overlap"
        )
    return errors


def _n_parameters(dataset: str, hidden: list[int]) -> int:
    """The parameter count of the lecture's MLP (weights and biases) on ``dataset``: inputs, ``hidden``, classes."""
    from samsde.lecture.data import _loader

    x, y = _loader(dataset)(return_X_y=True)
    widths = [x.shape[1], *hidden, int(y.max()) + 1]
    return sum((fan_in + 1) * fan_out for fan_in, fan_out in zip(widths, widths[1:], strict=False))


def _bouncing(b: dict) -> list[str]:
    q, v = b["quadratic"], b["valley"]
    errors = []
    # the two-cycle's closed-form amplitude eta lam rho / (2 - eta lam) assumes gradient descent converges
    if not q["eta"] * max(q["spectrum"]) < 2:
        errors.append(
            f"config key lecture.bouncing.quadratic.eta: {q['eta']} x lambda_max {max(q['spectrum'])} = "
            f"{q['eta'] * max(q['spectrum']):g} >= 2: gradient descent diverges, there is no two-cycle to measure"
        )
    if q["window"] > q["n_steps"]:
        errors.append(f"config key lecture.bouncing.quadratic.window: {q['window']} exceeds n_steps {q['n_steps']}")
    errors += ordered("lecture.bouncing.valley.a_min", v["a_min"], v["a_max"], "the flat end's curvature")
    if not v["eta"] * v["a_max"] < 2:
        errors.append(
            f"config key lecture.bouncing.valley.eta: {v['eta']} x a_max {v['a_max']} = {v['eta'] * v['a_max']:g} "
            ">= 2: gradient descent diverges at the sharp end"
        )
    return errors + records_fit("lecture.bouncing.valley.record_every", v["record_every"], v["n_steps"])


def section_errors(config: dict) -> list[str]:
    """Every semantic error of the insight sections and the lecture (the weak-error stages:
    :mod:`samsde_workflow.config`)."""
    return [
        *_svag_convergence(config["svag_convergence"]),
        *_svag_scale(config["svag_scale"]),
        *_quadratic_stationary(config["quadratic_stationary"]),
        *_saddle(config["saddle"]),
        *_hessian_trace(config["hessian_trace"]),
        *_flat_minima(config["flat_minima"]),
        *_lecture(config["lecture"]),
    ]
