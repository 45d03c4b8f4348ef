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

import math
import time
import warnings

import numpy as np
import pandas as pd
import torch

from samsde import DiscreteRunner, SDEModel, SDERunner, make_generator, make_noise, make_task, simulate
from samsde.stats import wilson_interval
from samsde_workflow.claims import Claim, claims_frame
from samsde_workflow.config import simulation_job
from samsde_workflow.io import write_table
from samsde_workflow.logs import rule_logging

EXPERIMENT = "saddle"
DISTANCE = {"distance": lambda task, x: torch.linalg.vector_norm(x, dim=-1)}



def stay_summary(final_distance: np.ndarray, radius: float) -> dict:
    """Share of paths with final distance < radius (NaN, a diverged path, counts as escaped), with its binomial
    standard error and Wilson interval."""
    n = final_distance.size
    stays = int(np.sum(np.nan_to_num(final_distance, nan=np.inf) < radius))
    p = stays / n
    low, high = wilson_interval(stays, n)
    return {"mean": p, "sem": math.sqrt(p * (1 - p) / n), "ci_low": low, "ci_high": high, "n_paths": n}


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


if __name__ == "__main__":
    with rule_logging(snakemake) as log:  # noqa: F821
        params, s, seed, device = simulation_job(snakemake, EXPERIMENT, log)  # noqa: F821
        eta, sigma, radius = s["eta"], s["sigma"], s["near_radius"]
        n_steps = round(s["horizon"] / eta)
        sam_type = [a for a in s["algorithms"] if a != "sgd"]

        def setup(lam):
            task = make_task("quadratic", spectrum=[s["positive_eigenvalue"], lam]).to(device)
            return task, make_noise("isotropic", task, sigma=sigma)

        def discrete_runners(task, noise, rhos):
            """SGD once (rho plays no role), each SAM-type algorithm at every rho; named algorithm/rho."""
            runners = [DiscreteRunner(task, noise, "sgd", eta, 0.0, "sgd/0.0")] if "sgd" in s["algorithms"] else []
            runners += [DiscreteRunner(task, noise, a, eta, r, f"{a}/{r!r}") for a in sam_type for r in rhos]
            return runners

        def final_distances(result, name):
            return result.values[name]["distance"][-1].numpy()

        # ---- grid over (rho, lambda) ----------------------------------------------------------------------------
        rows = []
        for lam in s["negative_eigenvalues"]:
            started = time.perf_counter()
            task, noise = setup(lam)
            runners = discrete_runners(task, noise, s["rhos"])
            result = simulate(task, runners, torch.tensor([0.0, s["x0_distance"]]), s["n_paths"], n_steps, 1,
                              seed, stream=(EXPERIMENT, "grid", lam), observables=DISTANCE,
                              record_every=n_steps)  # fmt: skip
            for runner in runners:
                final = final_distances(result, runner.name)
                ident = {"algorithm": runner.algorithm, "model": "discrete", "lambda": lam, "rho": runner.rho,
                         "eta": eta, "sigma": sigma, "n_diverged": result.n_diverged(runner.name)}  # fmt: skip
                rows.append({**ident, "statistic": "stay_fraction", **stay_summary(final, radius)})
                finite = final[np.isfinite(final)]
                rows.append({**ident, "statistic": "final_distance_median", "mean": float(np.median(finite))
                             if finite.size else math.nan, "sem": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                             "n_paths": finite.size})  # fmt: skip
            log.info("grid lambda=%g done in %.1f s", lam, time.perf_counter() - started)
        grid = pd.DataFrame(rows)
        write_table(grid, snakemake.output.grid, params, seed, rule=EXPERIMENT)  # noqa: F821

        # ---- distance over time at (trajectory_lambda, trajectory_rho): discrete and own SDE ---------------------
        started = time.perf_counter()
        lam, rho = s["trajectory_lambda"], s["trajectory_rho"]
        task, noise = setup(lam)
        runners = []
        for alg in s["algorithms"]:
            r = 0.0 if alg == "sgd" else rho
            model = SDEModel(task, noise, eta, r, alg, inner_samples=s["inner_samples"],
                             generator=make_generator(seed, EXPERIMENT, "trajectories", "inner", alg),
                             sam_moments=s["sam_moments"])  # fmt: skip
            runners += [DiscreteRunner(task, noise, alg, eta, r, f"{alg}/discrete"), SDERunner(model, f"{alg}/own_sde")]
        result = simulate(task, runners, torch.tensor([0.0, s["x0_distance"]]), s["n_paths"], n_steps, s["resolution"], seed, stream=(EXPERIMENT, "trajectories"), observables=DISTANCE,
                          record_every=s["record_every"])  # fmt: skip
        frames = []
        for runner in runners:
            alg, model = runner.name.split("/")
            d = result.values[runner.name]["distance"].numpy()  # (n_records, M), NaN after divergence
            with warnings.catch_warnings():  # all-NaN records (every path diverged) give NaN, not a warning
                warnings.simplefilter("ignore", RuntimeWarning)
                n = np.isfinite(d).sum(1)
                frames.append(pd.DataFrame({
                    "algorithm": alg, "model": model, "lambda": lam, "rho": 0.0 if alg == "sgd" else rho, "eta": eta,
                    "sigma": sigma, "step": result.steps.numpy(), "time": result.times.numpy(),
                    "statistic": "distance", "mean": np.nanmean(d, 1), "sem": np.nanstd(d, 1, ddof=1) / np.sqrt(n),
                    "median": np.nanmedian(d, 1), "q25": np.nanquantile(d, 0.25, 1), "q75": np.nanquantile(d, 0.75, 1),
                    "n_paths": n,
                }))  # fmt: skip
        trajectories = pd.concat(frames, ignore_index=True)
        write_table(trajectories, snakemake.output.trajectories, params, seed, rule=EXPERIMENT)  # noqa: F821
        log.info("trajectories done in %.1f s", time.perf_counter() - started)

        # ---- basin of attraction: start at factor * rho ----------------------------------------------------------
        started = time.perf_counter()
        rows = []
        for factor in s["radius_factors"]:
            d0 = factor * rho
            runners = discrete_runners(task, noise, [rho])
            result = simulate(task, runners, torch.tensor([0.0, d0]), s["n_paths"], n_steps, 1, seed,
                              stream=(EXPERIMENT, "radius", factor), observables=DISTANCE,
                              record_every=n_steps)  # fmt: skip
            for runner in runners:
                summary = stay_summary(final_distances(result, runner.name), radius)
                rows.append({"algorithm": runner.algorithm, "model": "discrete", "lambda": lam, "rho": runner.rho,
                             "eta": eta, "sigma": sigma, "factor": factor, "x0_distance": d0,
                             "n_diverged": result.n_diverged(runner.name), "statistic": "stay_fraction",
                             **summary})  # fmt: skip
        radius_table = pd.DataFrame(rows)
        write_table(radius_table, snakemake.output.radius, params, seed, rule=EXPERIMENT)  # noqa: F821
        log.info("radius sweep done in %.1f s", time.perf_counter() - started)

        # ---- claims ----------------------------------------------------------------------------------------------
        stays = grid.query("statistic == 'stay_fraction'")
        claims = []
        if "usam" in sam_type:
            usam = stays.query("algorithm == 'usam'")
            value, low, high, n_cells = threshold_agreement(usam)
            above = usam[usam.rho * usam["lambda"].abs() > 1 + 1e-9]["mean"].mean()
            below = usam[usam.rho * usam["lambda"].abs() < 1 - 1e-9]["mean"].mean()
            minimum = s["boundary_agreement_min"]
            claims.append(Claim(f"{EXPERIMENT}.usam_threshold", "paper", EXPERIMENT,
                                "USAM is attracted by a saddle iff rho > 1/|lambda|",
                                "share of (rho, lambda) cells with stay share >= 1/2 exactly when rho > 1/|lambda|; "
                                "ci: Wilson intervals surely / not surely on the wrong side", value, low, high,
                                f">= {minimum} (saddle.boundary_agreement_min)", bool(value >= minimum),
                                f"{n_cells} cells off the line; mean stay share {above:.2f} above the line, "
                                f"{below:.2f} below; near = final distance < {radius:g}"))  # fmt: skip
        for alg in [a for a in ("sam", "dnsam") if a in sam_type]:
            sweep = radius_table.query("algorithm == @alg").sort_values("factor")
            value, low, high = attraction_radius(sweep.factor.to_numpy(), sweep["mean"].to_numpy())
            inside = sweep[sweep.factor < 1]["mean"]
            outside = sweep[sweep.factor > 1]["mean"]
            in_grid = stays.query("algorithm == @alg")
            in_grid = in_grid[in_grid.rho > s["x0_distance"]]
            claims.append(Claim(f"{EXPERIMENT}.{alg}_attracted_within_rho", "paper", EXPERIMENT,
                                f"full-batch-like {alg.upper()} is attracted by a saddle from inside a ball of "
                                "radius ~rho, whatever lambda",
                                "radius/rho of the attracting region (start at factor * rho; ci: bracketing factors)",
                                value, low, high, "in [0.5, 2]", bool(0.5 <= value <= 2),
                                f"lambda={lam:g}, rho={rho:g}, sigma={sigma:g}: stay share {inside.min():.2f}.."
                                f"{inside.max():.2f} inside, {outside.min():.2f}..{outside.max():.2f} outside; in the "
                                f"grid (d0 < rho) it stays in {np.mean(in_grid['mean'] >= 0.5):.0%} of the cells, "
                                f"mean share {in_grid['mean'].mean():.2f}"))  # fmt: skip
        if "sgd" in s["algorithms"]:
            sgd = stays.query("algorithm == 'sgd'")
            worst = sgd.loc[sgd["mean"].idxmax()]
            claims.append(Claim(f"{EXPERIMENT}.sgd_escapes", "paper", EXPERIMENT,
                                "SGD escapes the saddle (at rate exp(|lambda| t))",
                                "max over lambda of SGD's stay share", float(worst["mean"]), float(worst.ci_low),
                                float(worst.ci_high), "<= 0.05", bool(worst["mean"] <= 0.05),
                                f"worst lambda={worst['lambda']:g}; Wilson 95% interval; horizon {s['horizon']:g}, "
                                f"start at distance {s['x0_distance']:g}"))  # fmt: skip
        write_table(claims_frame(claims), snakemake.output.claims, params, seed, rule=EXPERIMENT)  # noqa: F821
        log.info("claims:\n%s", claims_frame(claims).to_string())
