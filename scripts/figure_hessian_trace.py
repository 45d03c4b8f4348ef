"""Figure hessian_trace: Hessian trace, loss and recovery error along the trajectories (mean +- 1.96 sem)."""

import matplotlib.pyplot as plt
import seaborn as sns
from matplotlib.lines import Line2D

from samsde_workflow.io import read_table
from samsde_workflow.logs import rule_logging
from samsde_workflow.plotting import PALETTE, save_figure, set_style

ALGORITHM_ORDER = ["sgd", "usam", "sam", "dnsam"]
PANELS = {
    "hessian_trace": ("trace of the Hessian", "log"),
    "loss": ("loss f", "log"),
    "recovery_error": (r"recovery error $\|UU^T - X^*\|_F / \|X^*\|_F$", "log"),
}

with rule_logging(snakemake) as log:  # noqa: F821
    set_style()
    table = read_table(snakemake.input.table)  # noqa: F821
    algorithms = [a for a in ALGORITHM_ORDER if a in set(table.algorithm)]
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.3 * len(PANELS), 3.9))
    for ax, (statistic, (label, scale)) in zip(axes, PANELS.items(), strict=True):
        cur = table[table.statistic == statistic]
        sns.lineplot(data=cur, x="time", y="mean", hue="algorithm", hue_order=algorithms, palette=PALETTE, ax=ax,
                     legend=False)  # fmt: skip
        for alg in algorithms:
            a = cur.query("algorithm == @alg")
            ax.fill_between(a.time, a["mean"] - 1.96 * a["sem"], a["mean"] + 1.96 * a["sem"], color=PALETTE[alg],
                            alpha=0.2, linewidth=0)  # fmt: skip
        ax.set_yscale(scale)
        ax.set_xlabel("time t = k eta")
        ax.set_ylabel(label)
    # the final traces, where the claim is measured, in the first panel's inset
    inset = axes[0].inset_axes([0.45, 0.45, 0.5, 0.45])
    final = table.query("statistic == 'hessian_trace' and step == step.max()").set_index("algorithm").loc[algorithms]
    inset.bar(range(len(algorithms)), final["mean"], yerr=1.96 * final["sem"],
              color=[PALETTE[a] for a in algorithms], capsize=2)  # fmt: skip
    inset.set_xticks(range(len(algorithms)), [a.upper() for a in algorithms], fontsize=7)
    inset.tick_params(axis="y", labelsize=7)
    inset.set_title("final trace", fontsize=8)
    rho, eta, sigma = table.query("algorithm != 'sgd'").rho.max(), table.eta.iloc[0], table.sigma.iloc[0]
    handles = [Line2D([], [], color=PALETTE[a], label=a.upper() + ("" if a == "sgd" else f" ($\\rho$={rho:g})"))
               for a in algorithms]  # fmt: skip
    fig.legend(handles=handles, loc="upper center", ncol=len(algorithms), bbox_to_anchor=(0.5, 0.93), frameon=False)
    fig.suptitle(f"Matrix sensing, $\\eta$={eta:g}, $\\sigma$={sigma:g}: Hessian trace along the trajectories "
                 "(reconstructed setting)", y=1.0)  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 0.88))
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)  # noqa: F821
    log.info("figure written: %s", snakemake.output.png)  # noqa: F821
