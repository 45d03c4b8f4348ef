# ruff: noqa: E741 (l is the SVAG amplification, the paper's symbol)
"""SVAG_l's weak convergence in 1/l, coupled on one Brownian path, and the gap between its limit and the paper's SDE.

At one (task, algorithm, eta, rho) the runners share one Brownian path (additive Gaussian noise):
- SVAG_l for every l of the grid (samsde.svag), U from the path, V from a stream keyed (..., "svag", l);
- the algorithm's SDE as the paper states it (first order in rho) at dt = eta / r and eta / (2r) (the 2r increments
  sum pairwise to the r ones), so its mean is the Richardson value 2 E_2r - E_r, and the plain 2r solution.
SVAG_l's substep increment is a sum of increments of the same path: for l above r (or not dividing it) the path is
drawn finer, q = l / gcd(l, r) increments per base increment (SVAG runner refinement q).
Per l and test function g a distance is max_k |mean_m Delta[k, m]| / mean_k |mean_m g(SVAG_l)| with Delta a per-path
difference (samsde.weak_error.paired_error; its paired standard error is the Monte Carlo floor).  References:
- ``self``: SVAG_2l (when 2l is on the grid).  SVAG_l converges to the SDE with the step's exact mean and covariance,
  dX = -E D dt + sqrt(eta) Cov(D)^(1/2) dW, at order 1 in 1/l, so E g(SVAG_l) - E g(SVAG_2l) = C / (2l) + O(1/l^2)
  whatever that limit is: the order-1 claim (``svag.order1.*``);
- ``richardson`` and ``fine``: the paper's SDE.  It keeps the drift and covariance to first order in rho, so this
  distance is C / l plus the gap between the two SDEs, O(rho^2): it levels off at that gap (shown, not claimed, but
  on the cells where the gap is zero: ``svag.floor.*``, see :func:`floor_refusal`).
The gap itself (:func:`gap_row`): the Richardson extrapolation in 1/l at the largest pair (L/2, L) of the grid,
2 g(SVAG_L) - g(SVAG_L/2) per path, minus the paper SDE's Richardson value 2 g(X_2r) - g(X_r), on the same path; run
at several rho = c eta^alpha (``gap_cs``), its log-log slope against rho is the order of the gap (expected 2).
Slopes are fitted on the points :func:`samsde.weak_error.screen_resolved` admits (the value the other points
predict above 3x the point's own floor: no selection on the point's own value), with a bootstrap 95% interval
(replicates of one set of weights over paths, shared by every l and every rho of a cell).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math

import numpy as np
import pandas as pd
import torch

from samsde.algorithms import get
from samsde.algorithms.sgd import SGD
from samsde.claims import Claim
from samsde.noise import NoiseModel, make_noise
from samsde.sde import SDEModel
from samsde.seeding import make_generator
from samsde.simulate import OBSERVABLES, SDERunner, simulate
from samsde.svag import SVAGRunner, check_amplification
from samsde.tasks import Task, make_task
from samsde.weak_error import (
    bootstrap_weights,
    fit_loglog_slope,
    paired_error,
    richardson,
    screen_resolved,
    short_of_minimum,
)

EXPERIMENT = "svag_convergence"
TEST_FUNCTIONS = ("loss", "grad_norm_plus_norm")
REFERENCES = ("self", "richardson", "fine")  # SVAG_2l; the paper SDE's 2 E_2r - E_r; its plain 2r solution
MIN_FIT_POINTS = 3
#: algorithms whose first-order SDE is SVAG's limit exactly on a quadratic (linear gradient): the first-order
#: diffusion root, e.g. USAM's (I + rho H) S, squares to the step's covariance there
EXACT_ON_QUADRATIC = ("usam", "dnsam")
#: the smallest floor of the gap statistic (relative): float64 rounding accumulated over a run
ROUNDING_FLOOR = 1e-12
GAP_COLUMNS = ["task", "algorithm", "eta", "rho", "n_paths", "resolution", "horizon", "statistic", "l", "gap", "ci_low",
               "ci_high", "floor", "resolved", "n_diverged", "c"]  # fmt: skip


def floor_refusal(task: str, algorithm: str) -> str | None:
    """Why SVAG_l of ``algorithm`` on ``task`` does not converge to the algorithm's SDE exactly (so no floor claim is
    made there), or None when it does: SGD on any model (rho = 0: E D = grad f, Cov D = Sigma), USAM and DNSAM on the
    quadratic.  SAM never: its step's covariance carries rho^2 H Cov(u) H, where the SAM SDE's first-order root gives
    rho^2 (C H + H C)^2 / (4 sigma^2), an O(rho^2) gap even on a quadratic."""
    name = get(algorithm).name
    if name == SGD.name or (task == "quadratic" and name in EXACT_ON_QUADRATIC):
        return None
    if name == "sam":
        return (
            "SAM's SVAG limit is not its SDE: the step's covariance carries rho^2 H Cov(u) H where the SAM SDE's "
            "first-order root gives rho^2 (C H + H C)^2 / (4 sigma^2), an O(rho^2) gap even on a quadratic"
        )
    return (f"{get(algorithm).label}'s first-order SDE is SVAG's limit only on the quadratic (linear gradient); on "
            f"{task} they differ by O(rho^2) terms")  # fmt: skip


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
) -> dict:
    """SVAG_l's distances for every l of ``ls``: tables ``errors`` (one row per l, test function and reference),
    ``slopes`` (one row per test function and reference) and ``gap`` (one row per test function, when the grid's
    largest l is even and l / 2 is on it, else empty), and ``gap_replicates`` {g: (n_boot,) array}.

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
    observables = {g: OBSERVABLES[g] for g in TEST_FUNCTIONS}
    result = simulate(task, runners, x0, n_paths, round(horizon / eta), resolution, seed, stream, observables)
    weights = bootstrap_weights(n_paths, n_boot, make_generator(seed, *stream, "bootstrap"))
    ident = {"task": task.name, "algorithm": algorithm, "eta": eta, "rho": rho, "n_paths": n_paths,
             "resolution": resolution, "horizon": horizon}  # fmt: skip
    n_div_sde = max(result.n_diverged("sde1"), result.n_diverged("sde2"))
    top = max(ls)
    pair = top // 2 if top % 2 == 0 and top // 2 in ls else None
    rows, reps, gap_rows, gap_reps = [], {}, [], {}
    for g in TEST_FUNCTIONS:
        svag_g = {l: result.values[f"svag{l}"][g] for l in ls}
        coarse, fine = result.values["sde1"][g], result.values["sde2"][g]
        paper = richardson(coarse, fine)
        for l in ls:
            a = svag_g[l]
            solver = paired_error(coarse, fine, weights, scale=a)
            refs = {"self": svag_g.get(2 * l), "richardson": paper, "fine": fine}
            for ref, b in refs.items():
                if b is None:
                    continue
                e = paired_error(a, b, weights, level)
                reps[(g, ref, l)] = e.replicates.numpy()
                n_div = result.n_diverged(f"svag{l}") + (
                    result.n_diverged(f"svag{2 * l}") if ref == "self" else n_div_sde
                )
                rows.append({
                    **ident, "statistic": g, "reference": ref, "l": l, "distance": e.value, "ci_low": e.low,
                    "ci_high": e.high, "floor": e.floor, "resolved": e.resolved, "solver_bias": solver.value,
                    "n_diverged": n_div,
                })  # fmt: skip
        if pair is not None:
            e = limit_gap(svag_g[pair], svag_g[top], coarse, fine, weights, level)
            gap_reps[g] = e.replicates.numpy()
            n_div = result.n_diverged(f"svag{pair}") + result.n_diverged(f"svag{top}") + n_div_sde
            gap_rows.append({
                **ident, "statistic": g, "l": top, "gap": e.value, "ci_low": e.low, "ci_high": e.high,
                "floor": e.floor, "resolved": e.resolved, "n_diverged": n_div,
            })  # fmt: skip
    errors = pd.DataFrame(rows)
    return {"errors": errors, "slopes": fit_slopes(errors, reps, level), "gap": pd.DataFrame(gap_rows),
            "gap_replicates": gap_reps}  # fmt: skip


def limit_gap(half: torch.Tensor, top: torch.Tensor, coarse: torch.Tensor, fine: torch.Tensor, weights, level=0.95):
    """SVAG's limit minus the paper's SDE as a paired weak distance: per path, the Richardson extrapolation in 1/l,
    2 g(SVAG_L) - g(SVAG_L/2) (SVAG's bias C / l cancels, O(1/L^2) is left), minus the SDE's Richardson value
    2 g(X_2r) - g(X_r) (the solver's C dt cancels); normalised by mean_k |E g(SVAG_L)|.  (n_steps, M) tables on one
    Brownian path; a :class:`samsde.weak_error.PairedError` whose floor is the paired standard error, but at least
    ``ROUNDING_FLOOR``: where the two sides are the same paths up to rounding (USAM on a quadratic with L / 2 = r,
    SVAG_l being Euler-Maruyama at dt = eta / l there) the spread of the differences is rounding, not noise."""
    e = paired_error(richardson(half, top), richardson(coarse, fine), weights, level, scale=top)
    return dataclasses.replace(e, floor=max(e.floor, ROUNDING_FLOOR))


def _fit(x, values, floors, usable, replicates, level: float) -> dict:
    """Log-log slope of ``values`` against ``x`` on the points screen_resolved admits (``in_fit``)."""
    in_fit = screen_resolved(x, values, floors, usable=usable)
    x, values = np.asarray(x, dtype=float), np.asarray(values, dtype=float)
    if in_fit.sum() >= 2:
        fit = fit_loglog_slope(
            x[in_fit], values[in_fit], np.stack([r for r, k in zip(replicates, in_fit, strict=True) if k]), level
        )
        slope, low, high = fit.slope, fit.low, fit.high
    else:
        slope = low = high = float("nan")
    usable_fit = int(in_fit.sum()) >= MIN_FIT_POINTS and bool(np.isfinite(slope))
    return {"slope": slope, "ci_low": low, "ci_high": high, "n_points": int(in_fit.sum()), "usable": usable_fit,
            "in_fit": in_fit}  # fmt: skip


def fit_slopes(errors: pd.DataFrame, replicates: dict, level: float = 0.95) -> pd.DataFrame:
    """Slope of log distance against log l per (task, algorithm, eta, test function, reference) on the points
    :func:`samsde.weak_error.screen_resolved` admits among the not diverged ones (``n_points``; ``usable`` needs
    ``MIN_FIT_POINTS``); ``at_floor``: the largest l's own value is not resolved (information, not a fit choice)."""
    out = []
    keys = ["task", "algorithm", "eta", "rho", "statistic", "reference"]
    for key, grp in errors.groupby(keys, sort=False):
        grp = grp.sort_values("l")
        g, ref = key[4], key[5]
        reps = [replicates[(g, ref, l)] for l in grp.l]
        fit = _fit(grp.l, grp.distance, grp.floor, grp.n_diverged == 0, reps, level)
        fit.pop("in_fit")
        out.append({
            **dict(zip(keys, key, strict=True)), **fit, "n_ls": len(grp), "n_resolved": int(grp.resolved.sum()),
            "at_floor": not bool(grp.resolved.iloc[-1]), "largest_l": int(grp.l.iloc[-1]),
            "distance_first": float(grp.distance.iloc[0]), "distance_last": float(grp.distance.iloc[-1]),
            "floor_last": float(grp.floor.iloc[-1]),
        })  # fmt: skip
    return pd.DataFrame(out)


def fit_gap_slopes(gap: pd.DataFrame, replicates: dict, level: float = 0.95) -> pd.DataFrame:
    """Slope of log gap against log rho per (task, algorithm, eta, test function) over the rhos of ``gap_cs``
    (``replicates`` keyed (task, algorithm, g, rho)), on the points screen_resolved admits; ``usable`` needs
    ``MIN_FIT_POINTS`` of them: the gap is resolved at >= 3 rhos."""
    out = []
    keys = ["task", "algorithm", "eta", "statistic"]
    for key, grp in gap.groupby(keys, sort=False):
        grp = grp.sort_values("rho")
        reps = [replicates[(key[0], key[1], key[3], rho)] for rho in grp.rho]
        fit = _fit(grp.rho, grp.gap, grp.floor, grp.n_diverged == 0, reps, level)
        fit.pop("in_fit")
        out.append({
            **dict(zip(keys, key, strict=True)), **fit, "n_rhos": len(grp), "n_resolved": int(grp.resolved.sum()),
            "rho_min": float(grp.rho.min()), "rho_max": float(grp.rho.max()), "l": int(grp.l.iloc[0]),
            "gap_first": float(grp.gap.iloc[0]), "gap_last": float(grp.gap.iloc[-1]),
            "floor_max": float(grp.floor.max()),
        })  # fmt: skip
    columns = [*keys, "slope", "ci_low", "ci_high", "n_points", "usable", "n_rhos", "n_resolved", "rho_min",
               "rho_max", "l", "gap_first", "gap_last", "floor_max"]  # fmt: skip
    return pd.DataFrame(out, columns=columns)


def task_grid(settings: dict, name: str, algorithm: str) -> list[int]:
    """The amplifications l of (task, algorithm): the task's ``ls`` (a list, or a mapping algorithm -> list for the
    algorithms that need their own grid), else the section's."""
    ls = settings["tasks"][name].get("ls", settings["ls"])
    return ls.get(algorithm, settings["ls"]) if isinstance(ls, dict) else ls


def floor_expected(settings: dict, name: str, algorithm: str) -> bool:
    """Whether the floor is claimed for (task, algorithm): ``floor_tasks`` maps a task to its algorithms with floor
    claims, ``floor_algorithms`` lists algorithms with floor claims on every task; each must be a cell where SVAG's
    limit is the algorithm's SDE exactly (:func:`floor_refusal`; the config check rejects any other)."""
    return algorithm in settings.get("floor_tasks", {}).get(name, []) or algorithm in settings.get(
        "floor_algorithms", []
    )


def run(settings: dict, seed: int, device, log: logging.Logger | None = None) -> dict[str, pd.DataFrame]:
    """Every (task, algorithm) of ``settings`` (the config section ``svag_convergence``): rho = c eta^alpha (0 for
    SGD); a task entry may override n_paths, horizon, eta, resolution, algorithms and ls (``task_grid``).  Tables
    ``errors``, ``slopes`` (``floor_expected`` marks the cells with floor claims), ``gap`` (per rho = c' eta^alpha,
    c' in ``gap_cs``, for rho > 0: SVAG's limit minus the paper's SDE, Richardson on both sides; only the grid's
    largest pair (L/2, L) is run at a c' other than c) and ``gap_slopes``, all cells stacked."""
    s, log = settings, log or logging.getLogger(__name__)
    errors, slopes, gaps, gap_reps = [], [], [], {}
    for name, entry in s["tasks"].items():
        cell = {k: entry.get(k, s[k]) for k in ("n_paths", "horizon", "eta", "resolution")}
        task = make_task(name, **entry.get("params", {})).to(device)
        noise = make_noise(s["noise"]["kind"], task, sigma=s["noise"]["sigma"], seed=seed)
        x0 = task.initial_point(make_generator(seed, EXPERIMENT, name, "initial_point"))
        eta = cell["eta"]
        for algorithm in entry.get("algorithms", s["algorithms"]):
            floor = floor_expected(s, name, algorithm)
            if floor and floor_refusal(name, algorithm):
                raise ValueError(f"svag_convergence: no floor claim for {algorithm} on {name}: "
                                 f"{floor_refusal(name, algorithm)}")  # fmt: skip
            sgd = get(algorithm).name == SGD.name
            ls = task_grid(s, name, algorithm)

            cell_run = functools.partial(
                convergence, task=task, noise=noise, algorithm=algorithm, eta=eta, n_paths=cell["n_paths"],
                seed=seed, horizon=cell["horizon"], resolution=cell["resolution"], x0=x0,
                stream=(EXPERIMENT, name, algorithm, eta), n_boot=s["n_boot"], diffusion=s["diffusion"],
            )  # fmt: skip
            tables = cell_run(rho=0.0 if sgd else s["rho"]["c"] * eta ** s["rho"]["alpha"], ls=ls)
            errors.append(tables["errors"])
            slopes.append(tables["slopes"].assign(floor_expected=floor))
            for fit in tables["slopes"][tables["slopes"].reference == "self"].itertuples():
                log.info("%s %s %s: self slope %.3f [%.3f, %.3f]", name, algorithm, fit.statistic, fit.slope,
                         fit.ci_low, fit.ci_high)  # fmt: skip
            if sgd:
                continue
            for c in entry.get("gap_cs", s.get("gap_cs", [])):
                top = max(ls)
                if top < 2:
                    break
                at_c = (
                    tables
                    if c == s["rho"]["c"]
                    else cell_run(rho=c * eta ** s["rho"]["alpha"], ls=sorted({top // 2, top}))
                )
                if len(at_c["gap"]):
                    gaps.append(at_c["gap"].assign(c=c))
                    rho = float(at_c["gap"].rho.iloc[0])
                    gap_reps.update({(name, algorithm, g, rho): r for g, r in at_c["gap_replicates"].items()})
                    log.info(
                        "%s %s c %g: gap %s", name, algorithm, c, at_c["gap"][["statistic", "gap", "floor"]].values
                    )
    gap = pd.concat(gaps, ignore_index=True) if gaps else pd.DataFrame(columns=GAP_COLUMNS)
    return {"errors": pd.concat(errors, ignore_index=True), "slopes": pd.concat(slopes, ignore_index=True),
            "gap": gap, "gap_slopes": fit_gap_slopes(gap, gap_reps)}  # fmt: skip


def claims(tables: dict[str, pd.DataFrame], thresholds: dict) -> list[Claim]:
    """Per (task, algorithm, test function): SVAG_l converges at order 1 in 1/l, read as self-convergence (the slope
    of its distance to SVAG_2l against l has the upper end of its 95% interval <= ``thresholds["svag_slope_max"]``
    on at least MIN_FIT_POINTS screened points: order 1 is an upper bound, C / l); the floor claims of the cells
    where SVAG's limit is the SDE exactly; and, where the gap to the paper's SDE is resolved at >= MIN_FIT_POINTS
    rhos, that it is O(rho^2) (the lower end of the slope's interval against rho >= ``svag_gap_slope_min``)."""
    high = thresholds["svag_slope_max"]
    found = []
    slopes = tables["slopes"]
    paper = slopes[slopes.reference == "richardson"].set_index(["task", "algorithm", "statistic"])
    for fit in slopes[slopes.reference == "self"].itertuples():
        label = get(fit.algorithm).label
        suffix = "" if fit.statistic == "loss" else f".{fit.statistic}"
        to_paper = paper.loc[(fit.task, fit.algorithm, fit.statistic)]
        found.append(Claim(
            claim_id=f"svag.order1.{fit.task}.{fit.algorithm}{suffix}", source="reconstructed", figure=EXPERIMENT,
            claim=f"SVAG_l of {label} converges weakly at order 1 in 1/l: |E g(SVAG_l) - E g(SVAG_2l)| <= C / l "
            f"({fit.task}, g = {fit.statistic})",
            quantity="log-log slope of the coupled distance of SVAG_l to SVAG_2l against l",
            value=fit.slope, ci_low=fit.ci_low, ci_high=fit.ci_high,
            expected=f"upper end of the slope's 95% interval <= {high} (order 1 is an upper bound)",
            passed=bool(fit.usable and np.isfinite(fit.ci_high) and fit.ci_high <= high),
            note=f"eta {fit.eta:g}, rho {fit.rho:.3g}; {fit.n_points} of {fit.n_ls} pairs in the fit (screened"
            f"{'' if fit.usable else f'; fewer than {MIN_FIT_POINTS}, not a pass'}); "
            f"distance {fit.distance_first:.3g} -> {fit.distance_last:.3g} (floor {fit.floor_last:.2g}); to the "
            f"paper's SDE (not claimed): {to_paper.distance_first:.3g} -> {to_paper.distance_last:.3g} at l = "
            f"{to_paper.largest_l}, slope {to_paper.slope:.2f}",
        ))  # fmt: skip
    for fit in slopes[(slopes.reference == "richardson") & slopes.floor_expected.astype(bool)].itertuples():
        suffix = "" if fit.statistic == "loss" else f".{fit.statistic}"
        found.append(floor_claim(fit, get(fit.algorithm).label, suffix))
    gap_min = thresholds["svag_gap_slope_min"]
    for fit in tables["gap_slopes"].itertuples():
        if not fit.usable:
            continue  # not resolved at >= MIN_FIT_POINTS rhos: reported in the table, not claimed
        label = get(fit.algorithm).label
        suffix = "" if fit.statistic == "loss" else f".{fit.statistic}"
        too_wide = short_of_minimum(fit.slope, fit.ci_low, fit.ci_high, gap_min, "paths and rhos")
        too_wide = f"; {too_wide}" if too_wide else ""
        found.append(Claim(
            claim_id=f"svag.gap.{fit.task}.{fit.algorithm}{suffix}", source="own", figure=EXPERIMENT,
            claim=f"The gap between SVAG's limit for {label} (the SDE with the step's exact mean and covariance) and "
            f"the paper's first-order {label} SDE is O(rho^2) ({fit.task}, g = {fit.statistic})",
            quantity="log-log slope against rho of |Richardson-in-1/l SVAG mean - Richardson paper-SDE mean|",
            value=fit.slope, ci_low=fit.ci_low, ci_high=fit.ci_high,
            expected=f"lower end of the slope's 95% interval >= {gap_min} (O(rho^2) is an upper bound)",
            passed=bool(np.isfinite(fit.ci_low) and fit.ci_low >= gap_min),
            note=f"eta {fit.eta:g}, l = {fit.l // 2}, {fit.l}; rho {fit.rho_min:.3g} .. {fit.rho_max:.3g}, "
            f"{fit.n_points} of {fit.n_rhos} in the fit (screened); gap {fit.gap_first:.3g} -> {fit.gap_last:.3g} "
            f"(floor <= {fit.floor_max:.2g})" + too_wide,
        ))  # fmt: skip
    return found





def floor_claim(fit, label: str, suffix: str) -> Claim:
    """On a cell where SVAG's limit is the algorithm's SDE exactly (:func:`floor_refusal`): after at least
    MIN_FIT_POINTS points in the fit, the distance to that SDE at the largest l is within 3x its Monte Carlo floor
    (nothing is left but noise)."""
    ratio = fit.distance_last / fit.floor_last
    return Claim(
        claim_id=f"svag.floor.{fit.task}.{fit.algorithm}{suffix}", source="reconstructed", figure=EXPERIMENT,
        claim=f"SVAG_l of {label} reaches the Monte Carlo floor of its distance to {label}'s own SDE ({fit.task}, "
        f"g = {fit.statistic})",
        quantity="distance at the largest l / its paired standard error", value=ratio, ci_low=float("nan"),
        ci_high=float("nan"), expected=f"< 3 at the largest l, after >= {MIN_FIT_POINTS} points in the fit",
        passed=bool(fit.usable and ratio < 3),
        note=f"l = {fit.largest_l}: distance {fit.distance_last:.3g}, floor {fit.floor_last:.2g}; "
        f"{fit.n_points} of {fit.n_ls} l in the fit"
        f"{'' if fit.usable else f' (fewer than {MIN_FIT_POINTS}: not a pass)'}",
    )  # fmt: skip
