"""Figure drift_ablation: weak error of the full SDE vs the drift-only SDE (the algorithm's drift, SGD's noise).
Diverged runs: a red "x" at their eta and a text in the panel; a panel without rows says "no data"."""

import matplotlib.pyplot as plt

from samsde.algorithms import get
from samsde_workflow.io import read_table
from samsde_workflow.logs import rule_logging
from samsde_workflow.plotting import PALETTE, finish, finite, legend, log_axes, log_marks, save_figure, set_style
from samsde_workflow.weak_error_figures import mark_runs

MODELS = {"own_sde": "full SDE", "drift_only": "drift only", "sgd_sde": "SGD SDE"}

with rule_logging(snakemake) as log:
    set_style()
    errors = read_table(snakemake.input.errors)
    errors = errors[(errors.statistic == "grad_norm_plus_norm") & errors.model.isin(list(MODELS))]
    errors = errors.astype({"diverged": bool})
    tasks, scalings, algorithms = snakemake.params.tasks, snakemake.params.drift_ablation, snakemake.params.algorithms
    n_rows, marks = len(scalings) * len(algorithms), {}
    fig, axes = plt.subplots(n_rows, len(tasks), squeeze=False, figsize=(3.2 * len(tasks), 2.4 * n_rows), sharex=True)
    for i, (scaling, algorithm) in enumerate((s, a) for s in scalings for a in algorithms):
        for j, task in enumerate(tasks):
            ax = axes[i, j]
            sub = errors[(errors.task == task) & (errors.scaling == scaling) & (errors.algorithm == algorithm)]
            ok = sub[~sub.diverged & finite(sub.rel_error)]
            for model, label in MODELS.items():
                d = ok[ok.model == model].sort_values("eta")
                if d.empty:
                    continue
                ax.plot(d.eta, d.rel_error, "o-", color=PALETTE[model], label=label, ms=3)
                ax.fill_between(d.eta, d.ci_low, d.ci_high, color=PALETTE[model], alpha=0.2, lw=0)
            marks[f"{task}, {algorithm}, {scaling}"] = mark_runs(ax, sub)
            log_axes(ax)
            rho = f"rho = c eta^{sub.alpha.iloc[0]:g}" if len(sub) else scaling
            ax.set_title(f"{task}, {get(algorithm).label}, {rho}", fontsize=8)
            ax.set_ylabel("relative weak error" if j == 0 else "")
            if i == j == 0 or marks[f"{task}, {algorithm}, {scaling}"]:
                legend(ax, fontsize=7 if i == j == 0 else 5)
    for ax in axes[-1]:
        ax.set_xlabel("eta")
    log_marks(log, marks)
    finish(
        fig,
        "Drift-only ablation: what the Hessian-dependent noise contributes "
        "(g = |grad f| + |x|; 95% paired-bootstrap bands)",
    )
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)
