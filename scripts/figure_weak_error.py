"""Figure weak_error: relative weak error vs eta (log-log) per task and rho scaling (rows) and algorithm (columns,
plus the SGD control): own SDE vs SGD SDE on both test functions, the solver's bias and the unresolved points."""

import matplotlib.pyplot as plt

from samsde.algorithms import get
from samsde.experiments.weak_error import CONTROL
from samsde_workflow.job import Job
from samsde_workflow.plotting import finish, legend, log_axes, log_marks, save_figure, set_style
from samsde_workflow.weak_error_figures import draw_weak_error

MODELS = {"own_sde": "own SDE", "sgd_sde": "SGD SDE"}
TITLE = (
    "Weak error vs eta: own SDE vs SGD SDE, g = |grad f| + |x| (solid) and g = f (dashed); SDE mean by Richardson "
    "2E_2r - E_r; hollow: not in the fit (its predicted error < 3x its floor); 95% paired-bootstrap bands"
)


with Job(snakemake) as job:
    set_style()
    p, errors = snakemake.params, job.read("errors")
    fits = job.read("slopes").set_index(["task", "algorithm", "scaling", "model", "statistic"])
    rows, columns = [(t, s) for t in p.tasks for s in p.scalings], [*p.algorithms, CONTROL[0]]
    marks = {}
    fig, axes = plt.subplots(len(rows), len(columns), figsize=(3.3 * len(columns), 2.6 * len(rows)), squeeze=False)
    for (i, (task, scaling)), (j, algorithm) in ((r, c) for r in enumerate(rows) for c in enumerate(columns)):
        ax, key = axes[i, j], (task, *CONTROL) if algorithm == CONTROL[0] else (task, algorithm, scaling)
        sub = errors[(errors.task == task) & (errors.algorithm == key[1]) & (errors.scaling == key[2])]
        reference = "sgd_sde" if algorithm == CONTROL[0] else "own_sde"
        marks[", ".join(key)] = draw_weak_error(ax, sub, fits, key, MODELS, reference=reference)
        log_axes(ax)
        rho = "control" if key[2] == CONTROL[1] else scaling
        if len(sub) and key[2] != CONTROL[1]:
            rho = f"rho = {sub.c.iloc[0]:g} eta^{sub.alpha.iloc[0]:g}"
        ax.set_title(f"{task}, {get(key[1]).label}, {rho}", fontsize=9)
        ax.set_ylabel("relative weak error" if j == 0 else "")
        ax.set_xlabel("eta" if i == len(rows) - 1 else "")
        legend(ax, fontsize=5, loc="lower right")
    log_marks(job.log, marks)
    finish(fig, TITLE)
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)
