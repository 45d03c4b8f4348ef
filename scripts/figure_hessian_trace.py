"""Figure hessian_trace: Hessian trace, loss and recovery error along the trajectories (mean +- 1.96 sem over the
paths that did not diverge; diverged paths are counted in each panel)."""

import matplotlib.pyplot as plt
import seaborn as sns
from matplotlib.lines import Line2D

from samsde.algorithms import ALGORITHMS, get
from samsde_workflow.job import Job
from samsde_workflow.plotting import PALETTE, first, log_axes, log_marks, mark_table, save_figure, set_style

PANELS = {
    "hessian_trace": "trace of the Hessian",
    "loss": "loss f",
    "recovery_error": r"recovery error $\|UU^T - X^*\|_F / \|X^*\|_F$",
}

with Job(snakemake) as job:
    set_style()
    table = job.read("table")
    algorithms = [a for a in ALGORITHMS if a in set(table.algorithm)]
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.3 * len(PANELS), 3.9))
    marks, label_of = {}, lambda a: get(a).label
    for ax, (statistic, label) in zip(axes, PANELS.items(), strict=True):
        cur = table[table.statistic == statistic]
        sns.lineplot(
            cur, x="time", y="mean", hue="algorithm", hue_order=algorithms, palette=PALETTE, ax=ax, legend=False
        )
        for alg in algorithms:
            a = cur.query("algorithm == @alg")
            half = 1.96 * a["sem"]
            ax.fill_between(a.time, a["mean"] - half, a["mean"] + half, color=PALETTE[alg], alpha=0.2, linewidth=0)
        log_axes(ax, x=False)  # stays linear without positive values (every path diverged)
        marks[statistic] = mark_table(ax, cur, name=label_of)
        ax.set_xlabel("time t = k eta")
        ax.set_ylabel(label)
    # the final traces, where the claim is measured, in the first panel's inset
    inset = axes[0].inset_axes([0.45, 0.45, 0.5, 0.45])
    final = (
        table.query("statistic == 'hessian_trace' and step == step.max()").set_index("algorithm").reindex(algorithms)
    )
    colours = [PALETTE[a] for a in algorithms]
    inset.bar(range(len(algorithms)), final["mean"], yerr=1.96 * final["sem"], color=colours, capsize=2)
    inset.set_xticks(range(len(algorithms)), [get(a).label for a in algorithms], fontsize=7)
    inset.tick_params(axis="y", labelsize=7)
    inset.set_title("final trace", fontsize=8)
    rho, eta, sigma = table.rho.max(), first(table.eta, float("nan")), first(table.sigma, float("nan"))  # SGD: 0
    at = {a: f" ($\\rho$={rho:g})" if get(a).perturbs else "" for a in algorithms}
    handles = [Line2D([], [], color=PALETTE[a], label=get(a).label + at[a]) for a in algorithms]
    fig.legend(handles=handles, loc="upper center", ncol=len(algorithms), bbox_to_anchor=(0.5, 0.93), frameon=False)
    title = f"Matrix sensing, $\\eta$={eta:g}, $\\sigma$={sigma:g}: Hessian trace along the trajectories"
    fig.suptitle(f"{title} (reconstructed setting)", y=1.0)
    fig.tight_layout(rect=(0, 0, 1, 0.88))
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)
    log_marks(job.log, marks)
    job.log.info("figure written: %s", snakemake.output.png)
