"""One weak-error cell: the discrete runs of every algorithm and rho scaling at one eta, their SDE models at r and
2r, and the SGD control, on one Brownian path (samsde.experiments.weak_error.run_cell).

Writes the cell's errors (Richardson SDE mean, noise floor, solver bias), their bootstrap replicates (one set of
weights for the whole cell) and the path-mean trajectories.
"""

from samsde import make_generator, make_noise
from samsde.experiments.weak_error import run_cell
from samsde_workflow.config import build_task
from samsde_workflow.job import Job

with Job(snakemake) as job:
    s, seed, eta = job.section, job.seed, snakemake.params.eta
    task = build_task(s).to(job.device)  # a registered task or the user's model (source: user)
    noise = make_noise(task=task, seed=seed, **s["noise"]).to(job.device)
    x0 = task.initial_point(make_generator(seed, "x0", s["task"]))
    r, n_steps = s["resolution"], round(s["horizon"] / eta)
    job.log.info("%s eta=%g: %d steps x %d paths, r = %d and %d", s["task"], eta, n_steps, s["n_paths"], r, 2 * r)
    tables = run_cell(task, noise, x0, s, eta, seed, progress=True)
    job.log.info("\n%s", tables["errors"].drop(columns=["task", "eta", "n_paths", "resolution"]).to_string())
    job.write(**tables)
