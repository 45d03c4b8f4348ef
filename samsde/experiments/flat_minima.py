"""Flat vs sharp minimum: which basin of a two-well landscape SGD / USAM / SAM / DNSAM end in (reconstructed).

f(x) = -exp(-|x + c e_1|^2 / (2 w_s^2)) - exp(-|x - c e_1|^2 / (2 w_f^2)) (samsde.tasks.TwoBasin), isotropic gradient
noise sigma.  Every path starts at its own point, uniform in [-init_box, init_box]^d (seeded); all algorithms and
rhos see the same initial points and the same Brownian increments, so their comparisons are paired per path.
A path ends in the flat basin if task.basin(x) == +1; a diverged path counts as not in the flat basin.

Tables: ``table`` (flat-basin shares, and the share of starts with x_1 > 0 as algorithm "initial") and ``paths``
(per path: its start and whether it ends flat).
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import pandas as pd
import torch

from samsde.algorithms import get
from samsde.claims import Claim
from samsde.experiments.sweep import Sweep, ascent, baseline, by_rho, positive_rhos
from samsde.noise import make_noise
from samsde.seeding import make_generator
from samsde.simulate import OBSERVABLES
from samsde.stats import binomial_summary, paired_difference, paired_increasing_shares
from samsde.tasks import make_task

EXPERIMENT = "flat_minima"


def uniform_box(n_paths: int, dim: int, box: float, generator: torch.Generator) -> torch.Tensor:
    """(n_paths, dim) initial points, uniform in [-box, box]^dim."""
    return (2 * torch.rand(n_paths, dim, generator=generator, dtype=torch.float64) - 1) * box


def run(settings: dict, seed: int, device, log: logging.Logger | None = None) -> dict[str, pd.DataFrame]:
    s, log = settings, log or logging.getLogger(__name__)
    eta, sigma, n_paths = s["eta"], s["sigma"], s["n_paths"]
    n_steps = round(s["horizon"] / eta)
    task = make_task("two_basin", **s["params"])  # on the CPU, for the basin labels of the final points
    sim_task = task.to(device)
    noise = make_noise("isotropic", sim_task, sigma=sigma)
    x0 = uniform_box(n_paths, task.dim, s["init_box"], make_generator(seed, EXPERIMENT, "initial_points"))

    rows, path_rows = [], []
    for rho, algorithms in by_rho(s["algorithms"], s["rhos"]):  # rho = 0 is SGD for every algorithm: run it once
        started = time.perf_counter()
        sweep = Sweep(sim_task, noise, eta)
        for alg in algorithms:
            sweep.discrete(alg, rho)
            if s["sde"]:
                inner = make_generator(seed, EXPERIMENT, "inner", alg, rho)
                sweep.sde(alg, rho, inner_samples=s["inner_samples"], generator=inner, sam_moments=s["sam_moments"])
        # one Brownian stream for every rho: the comparisons across rho are paired too
        resolution = s["resolution"] if s["sde"] else 1
        result = sweep.simulate(
            x0,
            n_paths,
            n_steps,
            resolution,
            seed,
            stream=(EXPERIMENT,),
            observables={"norm": OBSERVABLES["norm"]},
            record_every=max(n_steps, 1),
        )
        for name, role in sweep:
            diverged = result.diverged_step[name] >= 0
            in_flat = ((task.basin(result.final[name]) == 1) & ~diverged).numpy().astype(int)
            summary = binomial_summary(int(in_flat.sum()), n_paths)
            ident = {"algorithm": role.algorithm, "model": role.model, "rho": rho, "eta": eta, "sigma": sigma}
            rows.append({**ident, "statistic": "flat_share", **summary, "n_diverged": int(diverged.sum())})
            path_rows.append(
                pd.DataFrame(
                    {
                        "algorithm": role.algorithm,
                        "model": role.model,
                        "rho": rho,
                        "path": np.arange(n_paths),
                        "x0_1": x0[:, 0].numpy(),
                        "x0_2": x0[:, 1].numpy() if task.dim > 1 else 0.0,
                        "flat": in_flat,
                    }
                )
            )
            log.info(
                "rho=%g %s: flat share %.3f [%.3f, %.3f]",
                rho,
                name,
                *[summary[k] for k in ("mean", "ci_low", "ci_high")],
            )
        log.info("rho=%g done in %.1f s", rho, time.perf_counter() - started)
    start_side = (x0[:, 0] > 0).numpy()
    initial = {"algorithm": "initial", "model": "initial", "rho": math.nan, "eta": eta, "sigma": sigma}
    rows.append(
        {**initial, "statistic": "flat_share", **binomial_summary(int(start_side.sum()), n_paths), "n_diverged": 0}
    )
    return {"table": pd.DataFrame(rows), "paths": pd.concat(path_rows, ignore_index=True)}


def claims(tables: dict[str, pd.DataFrame], settings: dict) -> list[Claim]:
    """Per ascent algorithm: flatter than SGD at the largest rho, and a flat share increasing with rho (paired)."""
    s = settings
    rhos = positive_rhos(s["rhos"])
    flat = {key: group["flat"].to_numpy() for key, group in tables["paths"].groupby(["algorithm", "model", "rho"])}
    sgd = flat[(baseline(), "discrete", 0.0)]
    found = []
    for alg in ascent(s["algorithms"]) if rhos else []:
        label, source, top = get(alg).label, "reconstructed illustration", max(rhos)
        diff, low, high = paired_difference(flat[(alg, "discrete", top)], sgd)
        sde_note = ""
        if s["sde"]:
            sde_note = (
                f"; own SDE: {flat[(alg, 'own_sde', top)].mean():.3f} vs SGD SDE "
                f"{flat[(baseline(), 'own_sde', 0.0)].mean():.3f}"
            )
        found.append(
            Claim(
                claim_id=f"{EXPERIMENT}.{alg}_flatter_than_sgd",
                source=source,
                figure=EXPERIMENT,
                claim=f"{label} ends in the flat basin more often than SGD",
                quantity=f"share in the flat basin, {label} (rho={top:g}) minus SGD, paired over paths",
                value=diff,
                ci_low=low,
                ci_high=high,
                expected="> 0 (ci_low > 0)",
                passed=bool(low > 0),
                note=f"{label} {flat[(alg, 'discrete', top)].mean():.3f} vs SGD {sgd.mean():.3f}, "
                f"{s['n_paths']} paths{sde_note}",
            )
        )
        sequence = [sgd] + [flat[(alg, "discrete", r)] for r in rhos]
        value, low, high = paired_increasing_shares(sequence)
        overall = paired_difference(sequence[-1], sequence[0])
        shares = ", ".join(f"{x.mean():.3f}" for x in sequence)
        found.append(
            Claim(
                claim_id=f"{EXPERIMENT}.{alg}_increases_with_rho",
                source=source,
                figure=EXPERIMENT,
                claim=f"{label}'s share in the flat basin increases with rho",
                quantity="share of consecutive rho pairs (rho = 0 is SGD) where the flat share increases; "
                "ci_low: significantly, ci_high: not significantly decreasing",
                value=value,
                ci_low=low,
                ci_high=high,
                expected="ci_high = 1 (no significant decrease between consecutive rhos) and a significant "
                "overall increase",
                passed=bool(high == 1 and overall[1] > 0),
                note=f"flat shares at rho = {[0.0, *rhos]}: {shares}; overall increase {overall[0]:.3f} "
                f"[{overall[1]:.3f}, {overall[2]:.3f}]; paired 95% intervals",
            )
        )
    return found
