"""Figure drift_ablation: weak error of the full SDE vs the drift-only SDE (the algorithm's drift, SGD's noise)."""

import matplotlib.pyplot as plt

from samsde.algorithms import get
from samsde_workflow.io import read_table
from samsde_workflow.logs import rule_logging
from samsde_workflow.plotting import PALETTE, finish, log_axes, save_figure, set_style

MODELS = {"own_sde": "full SDE", "drift_only": "drift only", "sgd_sde": "SGD SDE"}

with rule_logging(snakemake):
    set_style()
    errors = read_table(snakemake.input.errors)
    errors = errors[(errors.statistic == "grad_norm_plus_norm") & errors.model.isin(list(MODELS)) & ~errors.diverged]
    tasks, scalings, algorithms = snakemake.params.tasks, snakemake.params.drift_ablation, snakemake.params.algorithms
    n_rows = len(scalings) * len(algorithms)
    fig, axes = plt.subplots(n_rows, len(tasks), squeeze=False, figsize=(3.2 * len(tasks), 2.4 * n_rows), sharex=True)
    for i, (scaling, algorithm) in enumerate((s, a) for s in scalings for a in algorithms):
        for j, task in enumerate(tasks):
            ax = axes[i, j]
            sub = errors[(errors.task == task) & (errors.scaling == scaling) & (errors.algorithm == algorithm)]
            for model, label in MODELS.items():
                d = sub[sub.model == model].sort_values("eta")
                ax.plot(d.eta, d.rel_error, "o-", color=PALETTE[model], label=label, ms=3)
                ax.fill_between(d.eta, d.ci_low, d.ci_high, color=PALETTE[model], alpha=0.2, lw=0)
            log_axes(ax)
            ax.set_title(f"{task}, {get(algorithm).label}, rho = c eta^{sub.alpha.iloc[0]:g}", fontsize=8)
            if j == 0:
                ax.set_ylabel("relative weak error")
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("eta")
    finish(
        fig,
        "Drift-only ablation: what the Hessian-dependent noise contributes "
        "(g = |grad f| + |x|; 95% paired-bootstrap bands)",
    )
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)
