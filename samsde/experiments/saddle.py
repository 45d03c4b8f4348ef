"""Saddles: who stays near the saddle of f(x) = (mu x_1^2 + lambda x_2^2) / 2, lambda < 0, and for how long.

Three tables, all from paths started at distance d0 from the saddle along the negative direction (x_1 = 0):
- grid: for each algorithm, rho and lambda, the share of paths whose final distance is below near_radius
  (binomial standard error, Wilson 95% interval); USAM's drift -lambda (1 + rho lambda) x_2 attracts iff
  rho > 1/|lambda| (theory.usam_saddle_threshold);
- trajectories: the distance over time at (trajectory_lambda, trajectory_rho) for every algorithm and its own SDE;
- radius: at the same (lambda, rho), starting at d0 = factor * rho: full-batch SAM and DNSAM move toward the saddle
  at speed ~ rho |lambda| whenever d0 < rho, so the share that stays should drop from ~1 to ~0 near factor 1.
A path that diverges (|x| > 1e8) counts as escaped.
"""

from __future__ import annotations

import logging
import math
import time
import warnings

import numpy as np
import pandas as pd
import torch

from samsde.algorithms import ALGORITHMS, get
from samsde.algorithms.dnsam import DNSAM
from samsde.algorithms.sam import SAM
from samsde.algorithms.usam import USAM
from samsde.claims import Claim
from samsde.experiments.sweep import Sweep, ascent, baseline, grid, rho_of
from samsde.noise import make_noise
from samsde.seeding import make_generator
from samsde.stats import binomial_summary
from samsde.tasks import make_task

EXPERIMENT = "saddle"
DISTANCE = {"distance": lambda task, x: torch.linalg.vector_norm(x, dim=-1)}
#: the algorithm whose attraction follows the line rho = 1/|lambda|
THRESHOLD = USAM.name
#: the algorithms whose ascent step has length ~rho (a normalized gradient): attracted from inside a ball ~rho
NORMALIZED = (SAM, DNSAM)


def stay_summary(final_distance: np.ndarray, radius: float) -> dict:
    """Share of paths with final distance < radius (NaN, a diverged path, counts as escaped), with its binomial
    standard error and Wilson interval."""
    stays = int(np.sum(np.nan_to_num(final_distance, nan=np.inf) < radius))
    return binomial_summary(stays, final_distance.size)


def threshold_agreement(cells: pd.DataFrame, tol: float = 1e-9) -> tuple[float, float, float, int]:
    """Agreement of USAM's stay shares with the line rho = 1/|lambda|, over cells not on the line.

    A cell agrees if its share is >= 1/2 exactly when rho > 1/|lambda|.  Returns the agreeing share, the share
    whose Wilson interval lies entirely on the predicted side of 1/2, the share whose interval is not entirely on
    the wrong side, and the number of cells used.  ``cells`` has columns rho, lambda, mean, ci_low, ci_high.
    """
    product = cells["rho"] * cells["lambda"].abs()
    used = cells[(product - 1).abs() > tol]
    if used.empty:
        return math.nan, math.nan, math.nan, 0
    attract = used["rho"] * used["lambda"].abs() > 1
    agree = (used["mean"] >= 0.5) == attract
    sure = np.where(attract, used["ci_low"] > 0.5, used["ci_high"] < 0.5)
    wrong = np.where(attract, used["ci_high"] < 0.5, used["ci_low"] > 0.5)
    return float(agree.mean()), float(np.mean(sure)), float(1 - np.mean(wrong)), len(used)


def attraction_radius(factors, shares) -> tuple[float, float, float]:
    """Radius (in units of rho) of the region that attracts: the largest factor below which every start stays
    (share >= 1/2), bracketed by the next factor.  Returns (midpoint, lower, upper); upper is inf if every start
    stays and all three are NaN if none does."""
    order = np.argsort(factors)
    factors, shares = np.asarray(factors, dtype=float)[order], np.asarray(shares, dtype=float)[order]
    escaped = np.flatnonzero(shares < 0.5)
    first = escaped[0] if escaped.size else factors.size
    if first == 0:
        return math.nan, math.nan, math.nan
    low = factors[first - 1]
    high = factors[first] if first < factors.size else math.inf
    return (low + high) / 2 if math.isfinite(high) else low, low, high


def distance_summary(d: np.ndarray) -> dict[str, np.ndarray]:
    """Per record of the distances (n_records, M), NaN after divergence: mean, standard error, median, quartiles
    and count over the finite paths."""
    with warnings.catch_warnings():  # all-NaN records (every path diverged) give NaN, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        n = np.isfinite(d).sum(1)
        return {
            "mean": np.nanmean(d, 1),
            "sem": np.nanstd(d, 1, ddof=1) / np.sqrt(n),
            "median": np.nanmedian(d, 1),
            "q25": np.nanquantile(d, 0.25, 1),
            "q75": np.nanquantile(d, 0.75, 1),
            "n_paths": n,
        }


def _discrete_sweep(task, noise, s: dict, rhos) -> Sweep:
    """SGD once (rho plays no role), each SAM-type algorithm at every rho."""
    sweep = Sweep(task, noise, s["eta"])
    for alg, rho in grid(s["algorithms"], rhos):
        sweep.discrete(alg, rho)
    return sweep


def run(settings: dict, seed: int, device, log: logging.Logger | None = None) -> dict[str, pd.DataFrame]:
    s, log = settings, log or logging.getLogger(__name__)
    eta, sigma, radius = s["eta"], s["sigma"], s["near_radius"]
    n_steps = round(s["horizon"] / eta)
    start = torch.tensor([0.0, s["x0_distance"]])

    def setup(lam):
        task = make_task("quadratic", spectrum=[s["positive_eigenvalue"], lam]).to(device)
        return task, make_noise("isotropic", task, sigma=sigma)

    # ---- grid over (rho, lambda) --------------------------------------------------------------------------------
    rows = []
    for lam in s["negative_eigenvalues"]:
        started = time.perf_counter()
        task, noise = setup(lam)
        sweep = _discrete_sweep(task, noise, s, s["rhos"])
        result = sweep.simulate(
            start,
            s["n_paths"],
            n_steps,
            1,
            seed,
            stream=(EXPERIMENT, "grid", lam),
            observables=DISTANCE,
            record_every=n_steps,
        )
        for name, role in sweep:
            final = result.values[name]["distance"][-1].numpy()
            ident = {
                "algorithm": role.algorithm,
                "model": "discrete",
                "lambda": lam,
                "rho": role.rho,
                "eta": eta,
                "sigma": sigma,
                "n_diverged": result.n_diverged(name),
            }
            rows.append({**ident, "statistic": "stay_fraction", **stay_summary(final, radius)})
            finite = final[np.isfinite(final)]
            median = float(np.median(finite)) if finite.size else math.nan
            rows.append(
                {
                    **ident,
                    "statistic": "final_distance_median",
                    "mean": median,
                    "sem": math.nan,
                    "ci_low": math.nan,
                    "ci_high": math.nan,
                    "n_paths": finite.size,
                }
            )
        log.info("grid lambda=%g done in %.1f s", lam, time.perf_counter() - started)
    grid_table = pd.DataFrame(rows)

    # ---- distance over time at (trajectory_lambda, trajectory_rho): discrete and own SDE ----------------------
    started = time.perf_counter()
    lam, rho = s["trajectory_lambda"], s["trajectory_rho"]
    task, noise = setup(lam)
    sweep = Sweep(task, noise, eta)
    for alg in s["algorithms"]:
        r = rho_of(alg, rho)
        sweep.discrete(alg, r)
        inner = make_generator(seed, EXPERIMENT, "trajectories", "inner", alg)
        sweep.sde(alg, r, inner_samples=s["inner_samples"], generator=inner, sam_moments=s["sam_moments"])
    result = sweep.simulate(
        start,
        s["n_paths"],
        n_steps,
        s["resolution"],
        seed,
        stream=(EXPERIMENT, "trajectories"),
        observables=DISTANCE,
        record_every=s["record_every"],
    )
    frames = []
    for name, role in sweep:
        ident = {
            "algorithm": role.algorithm,
            "model": role.model,
            "lambda": lam,
            "rho": role.rho,
            "eta": eta,
            "sigma": sigma,
            "step": result.steps.numpy(),
            "time": result.times.numpy(),
        }
        summary = distance_summary(result.values[name]["distance"].numpy())
        frames.append(pd.DataFrame({**ident, "statistic": "distance", **summary}))
    trajectories = pd.concat(frames, ignore_index=True)
    log.info("trajectories done in %.1f s", time.perf_counter() - started)

    # ---- basin of attraction: start at factor * rho ------------------------------------------------------------
    started = time.perf_counter()
    rows = []
    for factor in s["radius_factors"]:
        d0 = factor * rho
        sweep = _discrete_sweep(task, noise, s, [rho])
        result = sweep.simulate(
            torch.tensor([0.0, d0]),
            s["n_paths"],
            n_steps,
            1,
            seed,
            stream=(EXPERIMENT, "radius", factor),
            observables=DISTANCE,
            record_every=n_steps,
        )
        for name, role in sweep:
            summary = stay_summary(result.values[name]["distance"][-1].numpy(), radius)
            rows.append(
                {
                    "algorithm": role.algorithm,
                    "model": "discrete",
                    "lambda": lam,
                    "rho": role.rho,
                    "eta": eta,
                    "sigma": sigma,
                    "factor": factor,
                    "x0_distance": d0,
                    "n_diverged": result.n_diverged(name),
                    "statistic": "stay_fraction",
                    **summary,
                }
            )
    log.info("radius sweep done in %.1f s", time.perf_counter() - started)
    return {"grid": grid_table, "trajectories": trajectories, "radius": pd.DataFrame(rows)}


def claims(tables: dict[str, pd.DataFrame], settings: dict) -> list[Claim]:
    """USAM's threshold rho = 1/|lambda|, the attracting ball ~rho of SAM and DNSAM, SGD's escape."""
    s = settings
    sam_type = ascent(s["algorithms"])
    lam, rho, sigma, radius = s["trajectory_lambda"], s["trajectory_rho"], s["sigma"], s["near_radius"]
    grid_table, radius_table = tables["grid"], tables["radius"]
    stays = grid_table[grid_table.statistic == "stay_fraction"]
    found = []
    if THRESHOLD in sam_type:
        usam = stays[stays.algorithm == THRESHOLD]
        value, low, high, n_cells = threshold_agreement(usam)
        above = usam[usam.rho * usam["lambda"].abs() > 1 + 1e-9]["mean"].mean()
        below = usam[usam.rho * usam["lambda"].abs() < 1 - 1e-9]["mean"].mean()
        minimum = s["boundary_agreement_min"]
        found.append(
            Claim(
                claim_id=f"{EXPERIMENT}.usam_threshold",
                source="paper",
                figure=EXPERIMENT,
                claim="USAM is attracted by a saddle iff rho > 1/|lambda|",
                quantity="share of (rho, lambda) cells with stay share >= 1/2 exactly when rho > 1/|lambda|; "
                "ci: Wilson intervals surely / not surely on the wrong side",
                value=value,
                ci_low=low,
                ci_high=high,
                expected=f">= {minimum} (saddle.boundary_agreement_min)",
                passed=bool(value >= minimum),
                note=f"{n_cells} cells off the line; mean stay share {above:.2f} above the line, "
                f"{below:.2f} below; near = final distance < {radius:g}",
            )
        )
    for alg in [a for a in ALGORITHMS if a in sam_type and isinstance(get(a), NORMALIZED)]:
        label = get(alg).label
        sweep = radius_table[radius_table.algorithm == alg].sort_values("factor")
        value, low, high = attraction_radius(sweep.factor.to_numpy(), sweep["mean"].to_numpy())
        inside = sweep[sweep.factor < 1]["mean"]
        outside = sweep[sweep.factor > 1]["mean"]
        in_grid = stays[stays.algorithm == alg]
        in_grid = in_grid[in_grid.rho > s["x0_distance"]]
        found.append(
            Claim(
                claim_id=f"{EXPERIMENT}.{alg}_attracted_within_rho",
                source="paper",
                figure=EXPERIMENT,
                claim=f"full-batch-like {label} is attracted by a saddle from inside a ball of radius ~rho, "
                "whatever lambda",
                quantity="radius/rho of the attracting region (start at factor * rho; ci: bracketing factors)",
                value=value,
                ci_low=low,
                ci_high=high,
                expected="in [0.5, 2]",
                passed=bool(0.5 <= value <= 2),
                note=f"lambda={lam:g}, rho={rho:g}, sigma={sigma:g}: stay share {inside.min():.2f}.."
                f"{inside.max():.2f} inside, {outside.min():.2f}..{outside.max():.2f} outside; in the "
                f"grid (d0 < rho) it stays in {np.mean(in_grid['mean'] >= 0.5):.0%} of the cells, "
                f"mean share {in_grid['mean'].mean():.2f}",
            )
        )
    if baseline() in s["algorithms"]:
        sgd = stays[stays.algorithm == baseline()]
        worst = sgd.loc[sgd["mean"].idxmax()]
        found.append(
            Claim(
                claim_id=f"{EXPERIMENT}.sgd_escapes",
                source="paper",
                figure=EXPERIMENT,
                claim="SGD escapes the saddle (at rate exp(|lambda| t))",
                quantity="max over lambda of SGD's stay share",
                value=float(worst["mean"]),
                ci_low=float(worst.ci_low),
                ci_high=float(worst.ci_high),
                expected="<= 0.05",
                passed=bool(worst["mean"] <= 0.05),
                note=f"worst lambda={worst['lambda']:g}; Wilson 95% interval; horizon {s['horizon']:g}, "
                f"start at distance {s['x0_distance']:g}",
            )
        )
    return found
