# ruff: noqa: E741 (l is the SVAG amplification, the paper's symbol)
"""The scale experiment: discrete SAM, USAM, DNSAM against SVAG_L on a network with d ~ 10^3.

Euler-Maruyama of the SAM-type SDEs needs Hessian-vector products and inner moments at every substep; SVAG_L
(samsde.svag) simulates the SDE with the step's exact mean and covariance, dX = -E D dt + sqrt(eta) Cov(D)^(1/2) dW,
with optimizer steps only.  At each eta (rho = c eta^alpha) one coupled :func:`samsde.simulate` call runs, for every
algorithm, the discrete optimizer (l = 1), SVAG_L and SVAG_{L/2}, all on one Brownian path (additive Gaussian noise;
SVAG's V halves from streams keyed (..., algorithm, "svag", l)).  Per algorithm, eta and test function g:
- ``model``: the weak error max_k |mean_m Delta[k, m]| / mean_k |mean_m g(x_k)|, Delta = g(x_k) - g(SVAG_L) paired
  by path (:func:`samsde.weak_error.paired_error`; its paired standard error is the Monte Carlo floor);
- ``svag_residual``: the same statistic for SVAG_{L/2} against SVAG_L, normalised by the discrete run: SVAG's own
  bias is O(1/l), so this estimates SVAG_L's distance to its limit, the part of ``model`` that is not model error.
The weak error's log-log slope against eta is fitted on the points samsde.weak_error.screen_resolved admits, with a
bootstrap 95% interval (replicates of one set of path weights per eta, shared by the algorithms), next to the
two-term fit a eta + b eta^(3/2); order 1 is an upper bound, a slope at least near 1.

What it tests: that the discrete algorithms are order-1 weak approximations of the SDE with their step's exact mean
and covariance at network scale; not the paper's SDEs with first-order-in-rho drift and diffusion (they differ by
O(rho^2) terms; docs/differences.md, "SVAG").
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from samsde.algorithms import get
from samsde.claims import Claim
from samsde.noise import make_noise
from samsde.seeding import make_generator
from samsde.simulate import OBSERVABLES, DiscreteRunner, simulate
from samsde.svag import SVAGRunner, check_amplification
from samsde.tasks import make_task
from samsde.weak_error import (
    bootstrap_weights,
    fit_loglog_slope,
    fit_two_term,
    order1_lower_bound_holds,
    paired_error,
    screen_resolved,
)

EXPERIMENT = "svag_scale"
TEST_FUNCTIONS = ("loss", "grad_norm_plus_norm")
COMPARISONS = ("model", "svag_residual")  # discrete vs SVAG_L; SVAG_{L/2} vs SVAG_L
MIN_FIT_POINTS = 3


def check_settings(settings: dict) -> None:
    """L even (SVAG_{L/2} is the residual check) and >= 2, a whole number of steps at every eta."""
    l = settings["l"]
    check_amplification(l)
    if l < 2 or l % 2:
        raise ValueError(f"svag_scale l must be an even integer >= 2 (SVAG_l/2 is compared), got {l}")
    for eta in settings["etas"]:
        if abs(settings["horizon"] / eta - round(settings["horizon"] / eta)) > 1e-9:
            raise ValueError(f"svag_scale horizon {settings['horizon']} is not a whole number of steps of eta {eta}")


def run_eta(task, noise, algorithms, eta, rho, l, n_paths, horizon, x0, seed, n_boot=200, level=0.95):
    """One coupled simulation at one eta: tables ``errors`` (one row per algorithm, test function and comparison)
    and the bootstrap replicates {(algorithm, g, comparison): (n_boot,) array} of each row."""
    runners = []
    for alg in algorithms:
        runners.append(DiscreteRunner(task, noise, alg, eta, rho, f"{alg}.discrete"))
        for q in (l, l // 2):
            gen = make_generator(seed, EXPERIMENT, eta, alg, "svag", q)
            runners.append(SVAGRunner(task, noise, alg, eta, rho, q, f"{alg}.svag{q}", gen))
    observables = {g: OBSERVABLES[g] for g in TEST_FUNCTIONS}
    result = simulate(task, runners, x0, n_paths, round(horizon / eta), l, seed, (EXPERIMENT, eta), observables)
    weights = bootstrap_weights(n_paths, n_boot, make_generator(seed, EXPERIMENT, eta, "bootstrap"))
    rows, reps = [], {}
    for alg in algorithms:
        n_div = sum(result.n_diverged(f"{alg}.{kind}") for kind in ("discrete", f"svag{l}", f"svag{l // 2}"))
        for g in TEST_FUNCTIONS:
            discrete, ref, half = (result.values[f"{alg}.{k}"][g] for k in ("discrete", f"svag{l}", f"svag{l // 2}"))
            for comparison, a in zip(COMPARISONS, (discrete, half), strict=True):
                e = paired_error(a, ref, weights, level=level, scale=discrete)
                reps[(alg, g, comparison)] = e.replicates.numpy()
                rows.append({
                    "task": task.name, "dim": task.dim, "algorithm": alg, "eta": eta, "rho": rho, "l": l,
                    "n_paths": n_paths, "horizon": horizon, "statistic": g, "comparison": comparison,
                    "error": e.value, "ci_low": e.low, "ci_high": e.high, "floor": e.floor, "resolved": e.resolved,
                    "n_diverged": n_div,
                })  # fmt: skip
    return pd.DataFrame(rows), reps


def fit_slopes(errors: pd.DataFrame, replicates: dict, level: float = 0.95) -> pd.DataFrame:
    """Slope of log weak error (``model``) against log eta per (algorithm, test function), and the two-term fit
    a eta + b eta^(3/2) on the same points (samsde.weak_error.fit_two_term: a is the leading order-1 coefficient, b
    the next term under rho = c sqrt(eta)).  A point enters when it is not diverged and the error the other etas
    predict for it is above 3x its own floor (samsde.weak_error.screen_resolved: no selection on its own value);
    ``usable`` needs MIN_FIT_POINTS of them.  ``residual_share``: the largest ratio of SVAG_L's residual to the model
    error over the etas (small: the error is the discrete step's, not SVAG's)."""
    out = []
    for (alg, g), grp in errors.groupby(["algorithm", "statistic"], sort=False):
        model = grp[grp.comparison == "model"].sort_values("eta")
        resid = grp[grp.comparison == "svag_residual"].set_index("eta").loc[model.eta]
        in_fit = screen_resolved(model.eta, model.error, model.floor, usable=model.n_diverged == 0)
        used = model[in_fit]
        reps = np.stack([replicates[(eta, alg, g, "model")] for eta in used.eta]) if len(used) else None
        if len(used) >= 2:
            fit = fit_loglog_slope(used.eta, used.error, reps, level)
            slope, low, high = fit.slope, fit.low, fit.high
        else:
            slope = low = high = float("nan")
        two = fit_two_term(used.eta, used.error, reps, level)
        out.append({
            "task": grp.task.iloc[0], "dim": int(grp.dim.iloc[0]), "algorithm": alg, "statistic": g,
            "l": int(grp.l.iloc[0]), "slope": slope, "ci_low": low, "ci_high": high, "a": two.a, "a_low": two.a_low,
            "a_high": two.a_high, "b": two.b, "n_etas": len(model), "n_points": len(used),
            "n_resolved": int(model.resolved.sum()), "usable": len(used) >= MIN_FIT_POINTS and bool(np.isfinite(slope)),
            "residual_share": float((resid.error.to_numpy() / model.error.to_numpy()).max()),
            "error_min": float(model.error.min()), "error_max": float(model.error.max()),
            "floor_max": float(model.floor.max()),
        })  # fmt: skip
    return pd.DataFrame(out)


def run(settings: dict, seed: int, device, log: logging.Logger | None = None) -> dict[str, pd.DataFrame]:
    """The config section ``svag_scale``: every eta of ``etas``, rho = c eta^alpha, tables ``errors``, ``slopes``."""
    s, log = settings, log or logging.getLogger(__name__)
    check_settings(s)
    task = make_task(s["task"]["name"], **s["task"].get("params", {})).to(device)
    noise = make_noise(s["noise"]["kind"], task, sigma=s["noise"]["sigma"], seed=seed)
    if not noise.additive:
        raise ValueError("the coupled scale experiment needs additive Gaussian noise")
    x0 = task.initial_point(make_generator(seed, EXPERIMENT, "initial_point"))
    errors, replicates = [], {}
    for eta in s["etas"]:
        rho = s["rho"]["c"] * eta ** s["rho"]["alpha"]
        table, reps = run_eta(task, noise, s["algorithms"], eta, rho, s["l"], s["n_paths"], s["horizon"], x0, seed,
                              s["n_boot"])  # fmt: skip
        errors.append(table)
        replicates.update({(eta, *key): value for key, value in reps.items()})
        log.info("eta %g (d = %d):\n%s", eta, task.dim, table[["algorithm", "statistic", "comparison", "error",
                                                               "floor"]].to_string())  # fmt: skip
    errors = pd.concat(errors, ignore_index=True)
    return {"errors": errors, "slopes": fit_slopes(errors, replicates)}


def claims(tables: dict[str, pd.DataFrame], thresholds: dict) -> list[Claim]:
    """Per (algorithm, test function): the discrete algorithm is an order-1 weak approximation of the SDE SVAG_L
    simulates: its error decays at least linearly in eta (the lower end of the slope's interval at least
    ``thresholds["own_slope_min"]``, on at least MIN_FIT_POINTS resolved etas; order 1 is an upper bound)."""
    low = thresholds["own_slope_min"]
    found = []
    for fit in tables["slopes"].itertuples():
        label = get(fit.algorithm).label
        found.append(Claim(
            claim_id=f"svag.scale.{fit.algorithm}.{fit.statistic}", source="reconstructed", figure=EXPERIMENT,
            claim=f"{label} is an order-1 weak approximation of the SDE with its step's exact mean and covariance "
            f"(SVAG_{fit.l}) on {fit.task} with d = {fit.dim} (g = {fit.statistic})",
            quantity="log-log slope of the coupled weak error against eta (reference SVAG_L)",
            value=fit.slope, ci_low=fit.ci_low, ci_high=fit.ci_high,
            expected=f"lower end of the slope's 95% interval >= {low} (order 1 is an upper bound, O(eta))",
            passed=bool(fit.usable and order1_lower_bound_holds(fit.ci_low, low)),
            note=f"{fit.n_points} of {fit.n_etas} etas in the fit (screened); error {fit.error_min:.3g} .. "
            f"{fit.error_max:.3g} (floor <= {fit.floor_max:.2g}); two-term fit a eta + b eta^1.5: a = {fit.a:.3g} "
            f"[{fit.a_low:.3g}, {fit.a_high:.3g}], b = {fit.b:.3g}; SVAG_L/2 vs SVAG_L residual <= "
            f"{fit.residual_share:.2g} of the error",
        ))  # fmt: skip
    return found
