"""Hessian trace along SGD / USAM / SAM / DNSAM trajectories on matrix sensing (reconstructed setting).

f(U) = (1/m) sum_i (<A_i, U U^T> - y_i)^2 / 2 with isotropic gradient noise sigma.  All paths start at the task's
seeded initial point and share the Brownian stream across algorithms, so the comparison at the end is paired.
Every record_every steps: the exact trace of the Hessian (from the dense (M, d, d) Hessian), the loss and the
relative recovery error |U U^T - X*|_F / |X*|_F.  With fewer measurements than n (n + 1) / 2 the global minima form
a manifold on which the trace (about 4 tr(S U U^T), S = (1/m) sum_i A_i^2) varies: a flatter minimum is one with a
smaller nuclear norm of U U^T.
"""


import numpy as np
import pandas as pd
import torch

from samsde import OBSERVABLES, DiscreteRunner, make_generator, make_noise, make_task, simulate
from samsde.stats import ratio_of_means
from samsde_workflow.claims import Claim, claims_frame
from samsde_workflow.config import simulation_job
from samsde_workflow.io import write_table
from samsde_workflow.logs import rule_logging

EXPERIMENT = "hessian_trace"


def hessian_trace(task, x: torch.Tensor) -> torch.Tensor:
    """tr H(x) per path, from the dense Hessian (d Hessian-vector products batched into one call)."""
    return torch.diagonal(task.hessian(x), dim1=-2, dim2=-1).sum(-1)



def path_summary(values: np.ndarray) -> dict[str, np.ndarray]:
    """Mean, standard error and count over the finite paths of each record of a (n_records, M) array."""
    finite = np.isfinite(values)
    n = finite.sum(1)
    filled = np.where(finite, values, 0.0)
    mean = filled.sum(1) / np.maximum(n, 1)
    var = (np.where(finite, values - mean[:, None], 0.0) ** 2).sum(1) / np.maximum(n - 1, 1)
    return {"mean": np.where(n > 0, mean, np.nan), "sem": np.where(n > 1, np.sqrt(var / np.maximum(n, 1)), np.nan),
            "n_paths": n}  # fmt: skip


if __name__ == "__main__":
    with rule_logging(snakemake) as log:  # noqa: F821
        params, s, seed, device = simulation_job(snakemake, EXPERIMENT, log)  # noqa: F821
        eta, rho, sigma = s["eta"], s["rho"], s["sigma"]
        task = make_task("matrix_sensing", **s["params"]).to(device)
        noise = make_noise("isotropic", task, sigma=sigma)
        x0 = task.initial_point(make_generator(seed, EXPERIMENT, "initial_point"))
        runners = [DiscreteRunner(task, noise, a, eta, 0.0 if a == "sgd" else rho, a) for a in s["algorithms"]]
        observables = {
            "hessian_trace": hessian_trace,
            "loss": OBSERVABLES["loss"],
            "recovery_error": lambda t, x: t.recovery_error(x),
        }
        result = simulate(task, runners, x0, s["n_paths"], round(s["horizon"] / eta), 1, seed,
                          stream=(EXPERIMENT,), observables=observables, record_every=s["record_every"])  # fmt: skip
        frames = []
        for runner in runners:
            for statistic, values in result.values[runner.name].items():
                frames.append(pd.DataFrame({
                    "algorithm": runner.name, "model": "discrete", "rho": runner.rho, "eta": eta, "sigma": sigma,
                    "step": result.steps.numpy(), "time": result.times.numpy(), "statistic": statistic,
                    **path_summary(values.numpy()), "n_diverged": result.n_diverged(runner.name),
                }))  # fmt: skip
            final = {k: float(np.nanmean(v[-1].numpy())) for k, v in result.values[runner.name].items()}
            log.info("%s: final %s, %d diverged", runner.name, final, result.n_diverged(runner.name))
        table = pd.concat(frames, ignore_index=True)
        write_table(table, snakemake.output.table, params, seed, rule=EXPERIMENT)  # noqa: F821

        # ---- claims: final Hessian trace relative to SGD's, paired over paths ------------------------------------
        claims = []
        if "sgd" in s["algorithms"]:
            sgd_final = result.values["sgd"]["hessian_trace"][-1].numpy()
            for alg in [a for a in s["algorithms"] if a != "sgd"]:
                final = result.values[alg]["hessian_trace"][-1].numpy()
                ratio, low, high = ratio_of_means(final, sgd_final)
                recovery = {a: float(np.nanmean(result.values[a]["recovery_error"][-1].numpy())) for a in (alg, "sgd")}
                claims.append(Claim(f"{EXPERIMENT}.{alg}_lower_than_sgd", "paper", EXPERIMENT,
                                    f"{alg.upper()} ends at a lower Hessian trace than SGD (a flatter minimum)",
                                    f"tr H at t = {s['horizon']:g}: mean({alg.upper()}) / mean(SGD)", ratio, low, high,
                                    "< 1 (ci_high < 1)", bool(high < 1),
                                    f"matrix sensing {s['params']}, rho={rho:g}, eta={eta:g}, sigma={sigma:g}; "
                                    f"{int(np.isfinite(final).sum())} paths (shared start, paired noise), "
                                    f"delta-method 95% interval; recovery error {recovery[alg]:.3f} vs SGD "
                                    f"{recovery['sgd']:.3f}; {result.n_diverged(alg)} diverged"))  # fmt: skip
        write_table(claims_frame(claims), snakemake.output.claims, params, seed, rule=EXPERIMENT)  # noqa: F821
        log.info("claims:\n%s", claims_frame(claims).to_string())
