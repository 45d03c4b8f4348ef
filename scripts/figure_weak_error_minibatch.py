"""Figure weak_error_minibatch: relative weak error vs eta (log-log) in the mini-batch regime, per task and test
function (rows) and algorithm (columns, plus the SGD control): the paper's mini-batch SDE, the SGD SDE and the
additive-noise formula on the same noise, with the solver's bias and the unresolved points; a last row: the exact
anchor (mini-batch USAM on a finite-sum quadratic, exact moments, no Monte Carlo)."""

import matplotlib.pyplot as plt

from samsde.algorithms import get
from samsde.experiments.weak_error import CONTROL
from samsde_workflow.job import Job
from samsde_workflow.plotting import finish, legend, log_axes, log_marks, save_figure, set_style
from samsde_workflow.weak_error_figures import STATISTICS, draw_exact, draw_weak_error

MODELS = {"own_sde": "mini-batch SDE", "sgd_sde": "SGD SDE", "additive_formula": "additive formula"}
TITLE = (
    "Weak error vs eta on real mini-batches (rho = c sqrt(eta)): the paper's mini-batch SDE, the SGD SDE and the "
    "additive-noise formula; SDE mean by Richardson 2E_2r - E_r; hollow: not in the fit (its predicted error < 3x "
    "its floor); 95% bootstrap bands; discrete runs not coupled to the SDEs; last row: the exact anchor (no Monte "
    "Carlo)"
)

with Job(snakemake) as job:
    set_style()
    p, errors = snakemake.params, job.read("errors")
    fits = job.read("slopes").set_index(["task", "algorithm", "scaling", "model", "statistic"])
    rows = [(t, s, g) for t in p.tasks for s in p.scalings for g in STATISTICS]
    columns, marks = [*p.algorithms, CONTROL[0]], {}
    size = (3.3 * len(columns), 2.6 * len(rows) + 3)
    fig, axes = plt.subplots(len(rows) + 1, len(columns), figsize=size, squeeze=False)
    panels = ((r, c) for r in enumerate(rows) for c in enumerate(columns))
    for (i, (task, scaling, statistic)), (j, algorithm) in panels:
        ax, key = axes[i, j], (task, *CONTROL) if algorithm == CONTROL[0] else (task, algorithm, scaling)
        sub = errors[(errors.task == task) & (errors.algorithm == key[1]) & (errors.scaling == key[2])]
        reference = "sgd_sde" if algorithm == CONTROL[0] else "own_sde"
        g = {statistic: STATISTICS[statistic]}
        marks[", ".join((*key, statistic))] = draw_weak_error(ax, sub, fits, key, MODELS, g, reference)
        log_axes(ax)
        rho = ", control" if key[2] == CONTROL[1] else (f", {key[2]}" if len(p.scalings) > 1 else "")
        ax.set_title(f"{task} (B = {p.batch_sizes[task]}), {get(key[1]).label}{rho}", fontsize=9)
        ax.set_ylabel(f"rel. weak error, {STATISTICS[statistic][1]}" if j == 0 else "")
        ax.set_xlabel("eta" if i == len(rows) - 1 else "")
        legend(ax, fontsize=5, loc="lower right")
    for ax in axes[-1]:
        ax.remove()
    ax, exact = fig.add_subplot(axes[0, 0].get_gridspec()[-1, : min(2, len(columns))]), job.read("exact")
    marks["exact anchor"] = draw_exact(ax, exact, MODELS)
    log_axes(ax)
    b, n = (int(exact[k].iloc[0]) if len(exact) else "?" for k in ("batch_size", "n_data"))
    ax.set_title(f"exact anchor: finite-sum quadratic (N = {n}, B = {b}), USAM, g = f", fontsize=9)
    ax.set_xlabel("eta"), ax.set_ylabel("exact rel. weak error, f")
    legend(ax, fontsize=6, loc="lower right")
    log_marks(job.log, marks)
    finish(fig, TITLE)
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)
