"""Figure weak_error: relative weak error vs eta (log-log) per task and rho scaling (rows) and algorithm (columns,
plus the SGD control): own SDE vs SGD SDE on both test functions, the solver's bias and the unresolved points."""

import matplotlib.pyplot as plt
import numpy as np

from samsde.algorithms import get
from samsde.experiments.weak_error import CONTROL
from samsde_workflow.job import Job
from samsde_workflow.plotting import PALETTE, finish, log_axes, save_figure, set_style

MODELS = {"own_sde": "own SDE", "sgd_sde": "SGD SDE"}
STYLES = {"grad_norm_plus_norm": ("-", "g"), "loss": ("--", "f")}
TITLE = (
    "Weak error vs eta: own SDE vs SGD SDE, g = |grad f| + |x| (solid) and g = f (dashed); SDE mean by Richardson "
    "2E_2r - E_r; hollow: within 3x the noise floor (not fitted); 95% paired-bootstrap bands"
)


def draw(ax, sub, fits, key):
    """One panel: each (model, test function) with its band, hollow markers at unresolved points, and for the
    panel's reference model the solver's bias and 3x the noise floor on g."""
    for (model, label), (statistic, (style, short)) in ((m, t) for m in MODELS.items() for t in STYLES.items()):
        d = sub[(sub.model == model) & (sub.statistic == statistic) & ~sub.diverged].sort_values("eta")
        if d.empty:
            continue
        fit, color = fits.loc[(*key, model, statistic)], PALETTE[model]
        slope = f"{fit.slope:.2f}" if fit.usable else "n/a"
        ax.plot(d.eta, d.rel_error, style, color=color, label=f"{label}, {short} (slope {slope})")
        ax.plot(d.eta[d.resolved], d.rel_error[d.resolved], "o", color=color, ms=4)
        ax.plot(d.eta[~d.resolved], d.rel_error[~d.resolved], "o", mfc="white", color=color, ms=4)
        ax.fill_between(d.eta, d.ci_low, d.ci_high, color=color, alpha=0.15, lw=0)
        if model == ("sgd_sde" if key[1] == CONTROL[0] else "own_sde") and statistic == "grad_norm_plus_norm":
            ax.plot(d.eta, d.solver_error, ":", color=PALETTE["theory"], lw=1, label="EM bias E_r - E_2r, g")
            ax.plot(d.eta, 3 * d.floor, "-", color="#bbbbbb", lw=1, label="3 x noise floor, g")
            e = np.array([d.eta.min(), d.eta.max()])
            for power, guide in ((1.0, ":"), (0.5, "--")):
                ax.plot(e, d.rel_error.min() * (e / e[0]) ** power * 0.5, guide, color="black", lw=0.6, alpha=0.6)
    bad = sub[sub.diverged]
    ax.plot(bad.eta, np.full(len(bad), sub.rel_error.max()), "x", color="red", label="diverged" if len(bad) else None)


with Job(snakemake) as job:
    set_style()
    p, errors = snakemake.params, job.read("errors")
    fits = job.read("slopes").set_index(["task", "algorithm", "scaling", "model", "statistic"])
    rows, columns = [(t, s) for t in p.tasks for s in p.scalings], [*p.algorithms, CONTROL[0]]
    fig, axes = plt.subplots(len(rows), len(columns), figsize=(3.3 * len(columns), 2.6 * len(rows)), squeeze=False)
    for (i, (task, scaling)), (j, algorithm) in ((r, c) for r in enumerate(rows) for c in enumerate(columns)):
        ax, key = axes[i, j], (task, *CONTROL) if algorithm == CONTROL[0] else (task, algorithm, scaling)
        sub = errors[(errors.task == task) & (errors.algorithm == key[1]) & (errors.scaling == key[2])]
        draw(ax, sub[sub.model.isin(list(MODELS))], fits, key)
        log_axes(ax)
        rho = f"rho = {sub.c.iloc[0]:g} eta^{sub.alpha.iloc[0]:g}" if key[2] != CONTROL[1] else "control"
        ax.set_title(f"{task}, {get(key[1]).label}, {rho}", fontsize=9)
        ax.set_ylabel("relative weak error" if j == 0 else "")
        ax.set_xlabel("eta" if i == len(rows) - 1 else "")
        ax.legend(fontsize=5, loc="lower right")
    finish(fig, TITLE)
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)
