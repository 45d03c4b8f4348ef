# ruff: noqa: E741 (l is the SVAG amplification, the paper's symbol)
"""SVAG_l against the Euler-Maruyama-integrated own SDE: the weak distance falls like 1/l (docs/concepts.md, "SVAG").

At one (task, algorithm, eta, rho) the runners share one Brownian path (additive Gaussian noise):
- SVAG_l for every l of the grid (samsde.svag), U from the path, V from a stream keyed (..., "svag", l);
- the algorithm's own SDE at dt = eta / r and eta / (2r) (the 2r increments sum pairwise to the r ones), so the
  reference mean is the Richardson value 2 E_2r - E_r, and the plain 2r solution is a second reference.
SVAG_l's substep increment is a sum of increments of the same path: for l above r (or not dividing it) the path is
drawn finer, q = l / gcd(l, r) increments per base increment (SVAG runner refinement q), and the SDE runners sum
them, so l can grow to where the distance reaches the Monte Carlo floor at the cost of SVAG's own substeps only.
Per l and test function g the distance is max_k |mean_m Delta[k, m]| / mean_k |mean_m g(SVAG_l)| with Delta the
per-path difference to the reference (samsde.weak_error.paired_error): its paired standard error is the Monte Carlo
floor, a point within 3x of it is not resolved.  The log-log slope of distance against l is fitted on the resolved
points with a bootstrap 95% interval (replicates of one set of weights over paths, shared by every l).

The SDE SVAG converges to has the step's exact mean and covariance, dX = -E D dt + sqrt(eta) Cov(D)^(1/2) dW; the
paper's SDE agrees with it up to the O(rho^2) terms the theorems drop, so at large l the distance levels off at
that gap (or at the solver's bias, or at the floor, whichever is largest): ``at_floor`` flags a grid whose largest
l is not resolved.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import torch

from samsde.algorithms import get
from samsde.algorithms.sgd import SGD
from samsde.claims import Claim, in_range
from samsde.noise import NoiseModel, make_noise
from samsde.sde import SDEModel
from samsde.seeding import make_generator
from samsde.simulate import OBSERVABLES, SDERunner, simulate
from samsde.svag import SVAGRunner, check_amplification
from samsde.tasks import Task, make_task
from samsde.weak_error import bootstrap_weights, fit_loglog_slope, paired_error, richardson

EXPERIMENT = "svag_convergence"
TEST_FUNCTIONS = ("loss", "grad_norm_plus_norm")
REFERENCES = ("richardson", "fine")  # 2 E_2r - E_r, and the plain 2r solution
MIN_FIT_POINTS = 3


def convergence(
    task: Task,
    noise: NoiseModel,
    algorithm: str,
    eta: float,
    rho: float,
    ls: list[int],
    n_paths: int,
    seed: int,
    horizon: float,
    resolution: int,
    x0: torch.Tensor,
    stream: tuple = (),
    n_boot: int = 200,
    diffusion: str = "first_order",
    sam_moments: str = "auto",
    inner_samples: int = 16,
    level: float = 0.95,
) -> dict[str, pd.DataFrame]:
    """The weak distance of SVAG_l to the own SDE for every l of ``ls``: tables ``errors`` (one row per l, test
    function and reference) and ``slopes`` (one row per test function and reference).

    ``resolution`` r is the reference SDE's; SVAG_l reads the path at r q, q = l / gcd(l, r) (module doc)."""
    if not noise.additive:
        raise ValueError("the coupled SVAG comparison needs additive Gaussian noise (mini-batch SVAG is not coupled)")
    for l in ls:
        check_amplification(l)

    def svag(l: int) -> SVAGRunner:
        v_stream, q = make_generator(seed, *stream, "svag", l), l // math.gcd(l, resolution)
        return SVAGRunner(task, noise, algorithm, eta, rho, l, f"svag{l}", v_stream, refinement=q)

    runners = [svag(l) for l in ls]
    for q in (1, 2):
        model = SDEModel(task, noise, eta, rho, algorithm, mode=diffusion, inner_samples=inner_samples,
                         generator=make_generator(seed, *stream, "inner", q), sam_moments=sam_moments)  # fmt: skip
        runners.append(SDERunner(model, f"sde{q}", refinement=q))
    n_steps = round(horizon / eta)
    observables = {g: OBSERVABLES[g] for g in TEST_FUNCTIONS}
    result = simulate(task, runners, x0, n_paths, n_steps, resolution, seed, stream, observables=observables)
    weights = bootstrap_weights(n_paths, n_boot, make_generator(seed, *stream, "bootstrap"))
    ident = {"task": task.name, "algorithm": algorithm, "eta": eta, "rho": rho, "n_paths": n_paths,
             "resolution": resolution, "horizon": horizon}  # fmt: skip
    n_diverged_sde = max(result.n_diverged("sde1"), result.n_diverged("sde2"))
    rows, reps = [], {}
    for g in TEST_FUNCTIONS:
        coarse, fine = result.values["sde1"][g], result.values["sde2"][g]
        refs = {"richardson": richardson(coarse, fine), "fine": fine}
        for l in ls:
            a = result.values[f"svag{l}"][g]
            solver = paired_error(coarse, fine, weights, scale=a)
            for ref, b in refs.items():
                e = paired_error(a, b, weights)
                reps[(g, ref, l)] = e.replicates.numpy()
                rows.append({
                    **ident, "statistic": g, "reference": ref, "l": l, "distance": e.value, "ci_low": e.low,
                    "ci_high": e.high, "floor": e.floor, "resolved": e.resolved, "solver_bias": solver.value,
                    "n_diverged": result.n_diverged(f"svag{l}") + n_diverged_sde,
                })  # fmt: skip
    errors = pd.DataFrame(rows)
    return {"errors": errors, "slopes": fit_slopes(errors, reps, level)}


def fit_slopes(errors: pd.DataFrame, replicates: dict, level: float = 0.95) -> pd.DataFrame:
    """Slope of log distance against log l per (task, algorithm, eta, test function, reference) on the resolved,
    not diverged points; ``usable`` needs ``MIN_FIT_POINTS`` of them; ``at_floor``: the largest l is not resolved."""
    out = []
    keys = ["task", "algorithm", "eta", "rho", "statistic", "reference"]
    for key, grp in errors.groupby(keys, sort=False):
        grp = grp.sort_values("l")
        used = grp[grp.resolved & (grp.n_diverged == 0)]
        g, ref = key[4], key[5]
        if len(used) >= 2:
            fit = fit_loglog_slope(used.l, used.distance, np.stack([replicates[(g, ref, l)] for l in used.l]), level)
            slope, low, high = fit.slope, fit.low, fit.high
        else:
            slope = low = high = float("nan")
        out.append({
            **dict(zip(keys, key, strict=True)), "slope": slope, "ci_low": low, "ci_high": high,
            "n_ls": len(grp), "n_points": len(used), "usable": len(used) >= MIN_FIT_POINTS and bool(np.isfinite(slope)),
            "at_floor": not bool(grp.resolved.iloc[-1]), "largest_l": int(grp.l.iloc[-1]),
            "distance_first": float(grp.distance.iloc[0]), "distance_last": float(grp.distance.iloc[-1]),
            "floor_last": float(grp.floor.iloc[-1]),
        })  # fmt: skip
    return pd.DataFrame(out)


def task_grid(settings: dict, name: str, algorithm: str) -> list[int]:
    """The amplifications l of (task, algorithm): the task's ``ls`` (a list, or a mapping algorithm -> list for the
    algorithms that need their own grid), else the section's."""
    ls = settings["tasks"][name].get("ls", settings["ls"])
    return ls.get(algorithm, settings["ls"]) if isinstance(ls, dict) else ls


def floor_expected(settings: dict, name: str, algorithm: str) -> bool:
    """Whether SVAG's limit is the own SDE to all orders, so the floor is claimed: a task of ``floor_tasks`` (a
    quadratic: the gradient is linear), or an algorithm of ``floor_algorithms`` on any task (SGD under additive
    Gaussian noise: E D = grad f and Cov D = Sigma exactly)."""
    return name in settings.get("floor_tasks", []) or algorithm in settings.get("floor_algorithms", [])


def run(settings: dict, seed: int, device, log: logging.Logger | None = None) -> dict[str, pd.DataFrame]:
    """Every (task, algorithm) of ``settings`` (the config section ``svag_convergence``): rho = c eta^alpha (0 for
    SGD); a task entry may override n_paths, horizon, eta, resolution, algorithms and ls (``task_grid``).  Tables
    ``errors`` and ``slopes``, all cells stacked; ``slopes.floor_expected`` marks the cells with floor claims
    (``floor_expected``)."""
    s, log = settings, log or logging.getLogger(__name__)
    errors, slopes = [], []
    for name, entry in s["tasks"].items():
        cell = {k: entry.get(k, s[k]) for k in ("n_paths", "horizon", "eta", "resolution")}
        task = make_task(name, **entry.get("params", {})).to(device)
        noise = make_noise(s["noise"]["kind"], task, sigma=s["noise"]["sigma"], seed=seed)
        x0 = task.initial_point(make_generator(seed, EXPERIMENT, name, "initial_point"))
        eta = cell["eta"]
        for algorithm in entry.get("algorithms", s["algorithms"]):
            rho = 0.0 if get(algorithm).name == SGD.name else s["rho"]["c"] * eta ** s["rho"]["alpha"]
            tables = convergence(
                task, noise, algorithm, eta, rho, task_grid(s, name, algorithm), cell["n_paths"], seed,
                cell["horizon"], cell["resolution"], x0, stream=(EXPERIMENT, name, algorithm, eta),
                n_boot=s["n_boot"], diffusion=s["diffusion"],
            )  # fmt: skip
            errors.append(tables["errors"])
            slopes.append(tables["slopes"].assign(floor_expected=floor_expected(s, name, algorithm)))
            fit = tables["slopes"].set_index(["statistic", "reference"]).loc[("loss", "richardson")]
            log.info("%s %s: slope %.3f [%.3f, %.3f]", name, algorithm, fit.slope, fit.ci_low, fit.ci_high)
    return {"errors": pd.concat(errors, ignore_index=True), "slopes": pd.concat(slopes, ignore_index=True)}


def claims(tables: dict[str, pd.DataFrame], thresholds: dict) -> list[Claim]:
    """Per (task, algorithm, test function): SVAG_l converges to the own SDE at order 1 in 1/l (the slope against
    the Richardson reference in ``thresholds["svag_slope_range"]``, on at least MIN_FIT_POINTS resolved points)."""
    lo, hi = thresholds["svag_slope_range"]
    found = []
    for fit in tables["slopes"][tables["slopes"].reference == "richardson"].itertuples():
        label = get(fit.algorithm).label
        suffix = "" if fit.statistic == "loss" else f".{fit.statistic}"
        floor = f"; the largest l ({fit.largest_l}) is at the Monte Carlo floor" if fit.at_floor else ""
        found.append(Claim(
            claim_id=f"svag.order1.{fit.task}.{fit.algorithm}{suffix}", source="reconstructed", figure=EXPERIMENT,
            claim=f"SVAG_l of {label} converges weakly to {label}'s own SDE at order 1 in 1/l ({fit.task}, "
            f"g = {fit.statistic})",
            quantity="log-log slope of the coupled weak distance against l (Richardson reference)",
            value=fit.slope, ci_low=fit.ci_low, ci_high=fit.ci_high, expected=f"slope in [{lo}, {hi}]",
            passed=bool(fit.usable and in_range(fit.slope, lo, hi)),
            note=f"eta {fit.eta:g}, rho {fit.rho:.3g}; {fit.n_points} of {fit.n_ls} l resolved; distance "
            f"{fit.distance_first:.3g} -> {fit.distance_last:.3g} (floor {fit.floor_last:.2g}){floor}",
        ))  # fmt: skip
        if getattr(fit, "floor_expected", False):
            found.append(floor_claim(fit, label, suffix))
    return found


def floor_claim(fit, label: str, suffix: str) -> Claim:
    """On a task where SVAG's limit is the own SDE to all orders in rho (``floor_tasks``): after at least
    MIN_FIT_POINTS resolved points, the distance at the largest l is within 3x its Monte Carlo floor (nothing is left
    but noise)."""
    ratio = fit.distance_last / fit.floor_last
    return Claim(
        claim_id=f"svag.floor.{fit.task}.{fit.algorithm}{suffix}", source="reconstructed", figure=EXPERIMENT,
        claim=f"SVAG_l of {label} reaches the Monte Carlo floor of its distance to {label}'s own SDE ({fit.task}, "
        f"g = {fit.statistic})",
        quantity="distance at the largest l / its paired standard error", value=ratio, ci_low=float("nan"),
        ci_high=float("nan"), expected=f"< 3 at the largest l, after >= {MIN_FIT_POINTS} resolved l",
        passed=bool(fit.usable and ratio < 3),
        note=f"l = {fit.largest_l}: distance {fit.distance_last:.3g}, floor {fit.floor_last:.2g}; "
        f"{fit.n_points} of {fit.n_ls} l resolved",
    )  # fmt: skip
