"""Coupled discrete run, own SDE, SGD SDE and drift-only SDE for one (task, algorithm, rho scaling), every eta.

Writes the per-step path means of each test function (trajectories) and, per SDE model, the relative weak error
against the discrete run on all paths and on bootstrap replicates over paths (errors).
"""

import pandas as pd
import torch

from samsde import OBSERVABLES, DiscreteRunner, SDEModel, SDERunner, make_generator, make_noise, make_task, simulate
from samsde.weak_error import estimate_relative_error, path_summary
from samsde_workflow.config import simulation_device
from samsde_workflow.io import write_table
from samsde_workflow.logs import rule_logging

TEST_FUNCTIONS = ("grad_norm_plus_norm", "loss")
SDE_MODELS = ("own_sde", "sgd_sde", "drift_only")


def runners_for(task, noise, algorithm, eta, rho, s, seed, stream):
    """The discrete optimizer and the three SDE models, all driven by the same Brownian increments."""

    def sde(drift, diffusion):
        gen = make_generator(seed, *stream, "inner", drift, diffusion)
        mode, k, moments = s["diffusion"], s["inner_samples"], s["sam_moments"]
        return SDEModel(task, noise, eta, rho, drift, diffusion, mode, k, generator=gen, sam_moments=moments)

    return [
        DiscreteRunner(task, noise, algorithm, eta, rho, "discrete", make_generator(seed, *stream, "batches")),
        SDERunner(sde(algorithm, algorithm), "own_sde"),
        SDERunner(sde("sgd", "sgd"), "sgd_sde"),
        SDERunner(sde(algorithm, "sgd"), "drift_only"),
    ]


def trajectory_rows(result, ident):
    for model, per_stat in result.values.items():
        for statistic, values in per_stat.items():
            mean, sem = path_summary(values)
            yield pd.DataFrame(
                {**ident, "model": model, "step": result.steps.numpy(), "time": result.times.numpy(),
                 "statistic": statistic, "mean": mean.numpy(), "sem": sem.numpy(),
                 "n_paths": torch.isfinite(values).sum(1).numpy()}
            )  # fmt: skip


def error_rows(result, ident, n_boot, seed, stream, log):
    for model in SDE_MODELS:
        for statistic in TEST_FUNCTIONS:
            gen = make_generator(seed, *stream, "bootstrap", model, statistic)
            est = estimate_relative_error(
                result.values["discrete"][statistic], result.values[model][statistic], n_boot, gen
            )
            divergences = [
                k for k in (result.first_divergence("discrete"), result.first_divergence(model)) if k is not None
            ]
            common = {
                **ident, "model": model, "statistic": statistic,
                "n_diverged_discrete": result.n_diverged("discrete"), "n_diverged_model": result.n_diverged(model),
                "diverged_step": min(divergences, default=-1),
            }  # fmt: skip
            log.info("  %s %s: rel_error=%.4g [%.4g, %.4g]", model, statistic, est.value, est.low, est.high)
            yield {**common, "estimate": "point", "replicate": -1, "rel_error": est.value}
            for i, v in enumerate(est.replicates.tolist()):
                yield {**common, "estimate": "bootstrap", "replicate": i, "rel_error": v}


with rule_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    s, seed = snakemake.params.setting, snakemake.params.seed
    algorithm, scaling = snakemake.wildcards.algorithm, snakemake.wildcards.scaling
    alpha, c = snakemake.params.scaling["alpha"], snakemake.params.scaling["c"]
    device = simulation_device(snakemake.params.device, log)
    task = make_task(s["task"], **s["params"]).to(device)
    noise = make_noise(task=task, seed=seed, **s["noise"]).to(device)
    x0 = task.initial_point(make_generator(seed, "x0", s["task"]))

    trajectories, errors = [], []
    for eta in s["etas"]:
        rho = c * eta**alpha
        n_steps = round(s["horizon"] / eta)
        stream = (s["task"], algorithm, scaling, eta)
        ident = {"task": s["task"], "algorithm": algorithm, "scaling": scaling, "alpha": alpha, "c": c,
                 "eta": eta, "rho": rho, "n_paths": s["n_paths"]}  # fmt: skip
        log.info("%s %s eta=%g rho=%.4g: %d steps x %d paths", s["task"], algorithm, eta, rho, n_steps, s["n_paths"])
        result = simulate(
            task, runners_for(task, noise, algorithm, eta, rho, s, seed, stream), x0, s["n_paths"], n_steps, eta,
            s["resolution"], seed, stream, observables={g: OBSERVABLES[g] for g in TEST_FUNCTIONS},
            record_every=s["record_every"], progress=True,
        )  # fmt: skip
        trajectories += trajectory_rows(result, {k: v for k, v in ident.items() if k != "n_paths"})
        errors += error_rows(result, ident, s["n_boot"], seed, stream, log)
    write_table(pd.concat(trajectories), snakemake.output.trajectories, s, seed, rule="simulate_weak_error")
    write_table(pd.DataFrame(errors), snakemake.output.errors, s, seed, rule="simulate_weak_error")
