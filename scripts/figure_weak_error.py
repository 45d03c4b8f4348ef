"""Figure weak_error: relative weak error vs eta (log-log), own SDE vs SGD SDE, per task, rho scaling, algorithm."""

import matplotlib.pyplot as plt
import numpy as np

from samsde_workflow.io import read_table
from samsde_workflow.logs import rule_logging
from samsde_workflow.plotting import PALETTE, finish, log_axes, save_figure, set_style

MODELS = {"own_sde": "own SDE", "sgd_sde": "SGD SDE"}

with rule_logging(snakemake):
    set_style()
    errors = read_table(snakemake.input.errors)
    errors = errors[(errors.statistic == "grad_norm_plus_norm") & errors.model.isin(list(MODELS))]
    slopes = read_table(snakemake.input.slopes).set_index(["task", "algorithm", "scaling", "model", "statistic"])
    rows = [(t, s) for t in snakemake.params.tasks for s in snakemake.params.scalings]
    algorithms = snakemake.params.algorithms
    fig, axes = plt.subplots(
        len(rows), len(algorithms), figsize=(3.4 * len(algorithms), 2.6 * len(rows)), squeeze=False, sharex=True
    )
    for i, (task, scaling) in enumerate(rows):
        for j, algorithm in enumerate(algorithms):
            ax = axes[i, j]
            sub = errors[(errors.task == task) & (errors.scaling == scaling) & (errors.algorithm == algorithm)]
            alpha = sub.alpha.iloc[0]
            for model, label in MODELS.items():
                d = sub[sub.model == model].sort_values("eta")
                ok = d[~d.diverged]
                fit = slopes.loc[(task, algorithm, scaling, model, "grad_norm_plus_norm")]
                ax.plot(ok.eta, ok.rel_error, "o-", color=PALETTE[model], label=f"{label} (slope {fit.slope:.2f})")
                ax.fill_between(ok.eta, ok.ci_low, ok.ci_high, color=PALETTE[model], alpha=0.25, lw=0)
                bad = d[d.diverged]
                if len(bad):
                    ax.plot(bad.eta, np.full(len(bad), ok.rel_error.max() if len(ok) else 1.0), "x", color="red",
                            label="diverged")  # fmt: skip
            # slope guides through the smallest-eta point of the own SDE
            anchor = sub[(sub.model == "own_sde") & ~sub.diverged].sort_values("eta")
            if len(anchor):
                e = np.array([anchor.eta.min(), anchor.eta.max()])
                y0 = anchor.rel_error.iloc[0]
                for power, style in ((1.0, ":"), (0.5, "--")):
                    ax.plot(e, y0 * (e / e[0]) ** power * 0.6, style, color=PALETTE["theory"], lw=1,
                            label=f"slope {power:g}")  # fmt: skip
            log_axes(ax)
            ax.set_title(f"{task}, {algorithm.upper()}, rho = {sub.c.iloc[0]:g} eta^{alpha:g}", fontsize=9)
            if j == 0:
                ax.set_ylabel("relative weak error")
            if i == len(rows) - 1:
                ax.set_xlabel("eta")
            ax.legend(fontsize=6, loc="lower right")
    finish(fig, "Weak error of the SDE models vs the discrete optimizers (g = |grad f| + |x|; 95% bootstrap bands)")
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)
