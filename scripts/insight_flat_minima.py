"""Flat vs sharp minimum: which basin of a two-well landscape SGD / USAM / SAM / DNSAM end in (reconstructed).

f(x) = -exp(-|x + c e_1|^2 / (2 w_s^2)) - exp(-|x - c e_1|^2 / (2 w_f^2)) (samsde.tasks.TwoBasin), isotropic gradient
noise sigma.  Every path starts at its own point, uniform in [-init_box, init_box]^d (seeded); all algorithms and
rhos see the same initial points and the same Brownian increments, so their comparisons are paired per path.
A path ends in the flat basin if task.basin(x) == +1; a diverged path counts as not in the flat basin.
"""

import math
import time

import numpy as np
import pandas as pd
import torch

from samsde import OBSERVABLES, DiscreteRunner, SDEModel, SDERunner, make_generator, make_noise, make_task, simulate
from samsde.stats import Z95, wilson_interval
from samsde_workflow.claims import Claim, claims_frame
from samsde_workflow.config import simulation_job
from samsde_workflow.io import write_table
from samsde_workflow.logs import rule_logging

EXPERIMENT = "flat_minima"


def uniform_box(n_paths: int, dim: int, box: float, generator: torch.Generator) -> torch.Tensor:
    """(n_paths, dim) initial points, uniform in [-box, box]^dim."""
    return (2 * torch.rand(n_paths, dim, generator=generator, dtype=torch.float64) - 1) * box



def paired_difference(a: np.ndarray, b: np.ndarray, z: float = Z95) -> tuple[float, float, float]:
    """Mean of a - b over paired paths (0/1 outcomes) with its normal 95% interval."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    se = d.std(ddof=1) / math.sqrt(d.size) if d.size > 1 else math.nan
    return float(d.mean()), float(d.mean() - z * se), float(d.mean() + z * se)


def monotone_pairs(outcomes: list[np.ndarray], z: float = Z95) -> tuple[float, float, float]:
    """For paired 0/1 outcome arrays expected to have increasing means: the shares of consecutive pairs whose
    mean increases, increases significantly, and does not decrease significantly (paired differences)."""
    diffs = [paired_difference(b, a, z) for a, b in zip(outcomes[:-1], outcomes[1:], strict=True)]
    if not diffs:
        return math.nan, math.nan, math.nan
    return (float(np.mean([d > 0 for d, _, _ in diffs])), float(np.mean([lo > 0 for _, lo, _ in diffs])),
            float(np.mean([hi >= 0 for _, _, hi in diffs])))  # fmt: skip


if __name__ == "__main__":
    with rule_logging(snakemake) as log:  # noqa: F821
        params, s, seed, device = simulation_job(snakemake, EXPERIMENT, log)  # noqa: F821
        eta, sigma, n_paths = s["eta"], s["sigma"], s["n_paths"]
        n_steps = round(s["horizon"] / eta)
        task = make_task("two_basin", **s["params"])  # on the CPU, for the basin labels of the final points
        sim_task = task.to(device)
        noise = make_noise("isotropic", sim_task, sigma=sigma)
        x0 = uniform_box(n_paths, task.dim, s["init_box"], make_generator(seed, EXPERIMENT, "initial_points"))
        sam_type = [a for a in s["algorithms"] if a != "sgd"]
        rhos = sorted({r for r in s["rhos"] if r > 0})

        flat, rows, path_rows = {}, [], []  # flat[(algorithm, model, rho)]: 0/1 per path
        for rho in [0.0, *rhos]:  # rho = 0 is SGD for every algorithm: run it once
            started = time.perf_counter()
            algorithms = ["sgd"] if rho == 0 else sam_type
            runners = []
            for alg in algorithms:
                runners.append(DiscreteRunner(sim_task, noise, alg, eta, rho, f"{alg}/discrete"))
                if s["sde"]:
                    model = SDEModel(sim_task, noise, eta, rho, alg, inner_samples=s["inner_samples"],
                                     generator=make_generator(seed, EXPERIMENT, "inner", alg, rho),
                                     sam_moments=s["sam_moments"])  # fmt: skip
                    runners.append(SDERunner(model, f"{alg}/own_sde"))
            # one Brownian stream for every rho: the comparisons across rho are paired too
            resolution = s["resolution"] if s["sde"] else 1
            result = simulate(sim_task, runners, x0, n_paths, n_steps, resolution, seed, (EXPERIMENT,),
                              observables={"norm": OBSERVABLES["norm"]}, record_every=max(n_steps, 1))  # fmt: skip
            final = result.final
            diverged = {name: steps >= 0 for name, steps in result.diverged_step.items()}
            for runner in runners:
                alg, model = runner.name.split("/")
                in_flat = ((task.basin(final[runner.name]) == 1) & ~diverged[runner.name]).numpy().astype(int)
                flat[(alg, model, rho)] = in_flat
                k = int(in_flat.sum())
                low, high = wilson_interval(k, n_paths)
                p = k / n_paths
                rows.append({"algorithm": alg, "model": model, "rho": rho, "eta": eta, "sigma": sigma,
                             "statistic": "flat_share", "mean": p, "sem": math.sqrt(p * (1 - p) / n_paths),
                             "ci_low": low, "ci_high": high, "n_paths": n_paths,
                             "n_diverged": int(diverged[runner.name].sum())})  # fmt: skip
                path_rows.append(pd.DataFrame({"algorithm": alg, "model": model, "rho": rho, "path": np.arange(n_paths),
                                               "x0_1": x0[:, 0].numpy(),
                                               "x0_2": x0[:, 1].numpy() if task.dim > 1 else 0.0,
                                               "flat": in_flat}))  # fmt: skip
                log.info("rho=%g %s: flat share %.3f [%.3f, %.3f]", rho, runner.name, p, low, high)
            log.info("rho=%g done in %.1f s", rho, time.perf_counter() - started)
        start_side = (x0[:, 0] > 0).numpy()
        low, high = wilson_interval(int(start_side.sum()), n_paths)
        rows.append({"algorithm": "initial", "model": "initial", "rho": math.nan, "eta": eta, "sigma": sigma,
                     "statistic": "flat_share", "mean": float(start_side.mean()),
                     "sem": math.sqrt(start_side.mean() * (1 - start_side.mean()) / n_paths), "ci_low": low,
                     "ci_high": high, "n_paths": n_paths, "n_diverged": 0})  # fmt: skip
        table = pd.DataFrame(rows)
        write_table(table, snakemake.output.table, params, seed, rule=EXPERIMENT)  # noqa: F821
        write_table(pd.concat(path_rows, ignore_index=True), snakemake.output.paths, params, seed,
                    rule=EXPERIMENT)  # noqa: F821  # fmt: skip

        # ---- claims ----------------------------------------------------------------------------------------------
        claims = []
        sgd = flat[("sgd", "discrete", 0.0)]
        for alg in sam_type if rhos else []:
            source = "reconstructed illustration"
            top = max(rhos)
            diff, low, high = paired_difference(flat[(alg, "discrete", top)], sgd)
            sde_note = ""
            if s["sde"]:
                sde_note = (f"; own SDE: {flat[(alg, 'own_sde', top)].mean():.3f} vs SGD SDE "
                            f"{flat[('sgd', 'own_sde', 0.0)].mean():.3f}")  # fmt: skip
            claims.append(Claim(f"{EXPERIMENT}.{alg}_flatter_than_sgd", source, EXPERIMENT,
                                f"{alg.upper()} ends in the flat basin more often than SGD",
                                f"share in the flat basin, {alg.upper()} (rho={top:g}) minus SGD, paired over paths",
                                diff, low, high, "> 0 (ci_low > 0)", bool(low > 0),
                                f"{alg.upper()} {flat[(alg, 'discrete', top)].mean():.3f} vs SGD {sgd.mean():.3f}, "
                                f"{n_paths} paths{sde_note}"))  # fmt: skip
            sequence = [sgd] + [flat[(alg, "discrete", r)] for r in rhos]
            value, low, high = monotone_pairs(sequence)
            overall = paired_difference(sequence[-1], sequence[0])
            shares = ", ".join(f"{x.mean():.3f}" for x in sequence)
            claims.append(Claim(f"{EXPERIMENT}.{alg}_increases_with_rho", source, EXPERIMENT,
                                f"{alg.upper()}'s share in the flat basin increases with rho",
                                "share of consecutive rho pairs (rho = 0 is SGD) where the flat share increases; "
                                "ci_low: significantly, ci_high: not significantly decreasing", value, low, high,
                                "ci_high = 1 (no significant decrease between consecutive rhos) and a significant "
                                "overall increase", bool(high == 1 and overall[1] > 0),
                                f"flat shares at rho = {[0.0, *rhos]}: {shares}; overall increase {overall[0]:.3f} "
                                f"[{overall[1]:.3f}, {overall[2]:.3f}]; paired 95% intervals"))  # fmt: skip
        write_table(claims_frame(claims), snakemake.output.claims, params, seed, rule=EXPERIMENT)  # noqa: F821
        log.info("claims:\n%s", claims_frame(claims).to_string())
