"""One weak-error cell: the discrete runs of every algorithm and rho scaling at one eta, their SDE models at r and
2r, and the SGD control, on one Brownian path (samsde.experiments.weak_error).

Writes the cell's errors (Richardson SDE mean, noise floor, solver bias), their bootstrap replicates (one set of
weights for the whole cell) and the path-mean trajectories.
"""

import torch

from samsde import make_generator, make_noise, make_task
from samsde.experiments.weak_error import run_cell
from samsde_workflow.config import simulation_device
from samsde_workflow.io import write_table
from samsde_workflow.logs import rule_logging

with rule_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    s, seed, eta = snakemake.params.setting, snakemake.params.seed, snakemake.params.eta
    device = simulation_device(snakemake.params.device, log)
    task = make_task(s["task"], **s["params"]).to(device)
    noise = make_noise(task=task, seed=seed, **s["noise"]).to(device)
    x0 = task.initial_point(make_generator(seed, "x0", s["task"]))
    log.info("%s eta=%g: %d steps x %d paths, r = %d and %d", s["task"], eta, round(s["horizon"] / eta),
             s["n_paths"], s["resolution"], 2 * s["resolution"])  # fmt: skip
    tables = run_cell(task, noise, x0, s, eta, seed, progress=True)
    log.info("\n%s", tables["errors"].drop(columns=["task", "eta", "n_paths", "resolution"]).to_string())
    for name, table in tables.items():
        write_table(table, snakemake.output[name], s, seed, rule="simulate_weak_error")
