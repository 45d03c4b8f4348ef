"""Figure saddle: distance to the saddle over time, the basin-of-attraction sweep, and rho x |lambda| stay maps."""

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.lines import Line2D

from samsde_workflow.io import read_table
from samsde_workflow.logs import rule_logging
from samsde_workflow.plotting import PALETTE, save_figure, set_style

ALGORITHM_ORDER = ["sgd", "usam", "sam", "dnsam"]
MODEL_DASHES = {"discrete": "", "own_sde": (4, 2)}


def category_position(value: float, categories) -> float:
    """Position of ``value`` on a heat map axis whose cells hold the sorted ``categories`` (log-interpolated)."""
    return float(np.interp(np.log(value), np.log(categories), np.arange(len(categories)))) + 0.5


with rule_logging(snakemake) as log:  # noqa: F821
    set_style()
    grid = read_table(snakemake.input.grid).query("statistic == 'stay_fraction'")  # noqa: F821
    traj = read_table(snakemake.input.trajectories)  # noqa: F821
    sweep = read_table(snakemake.input.radius)  # noqa: F821
    algorithms = [a for a in ALGORITHM_ORDER if a in set(traj.algorithm)]
    maps = [a for a in algorithms if a != "sgd"]
    lam, rho = traj["lambda"].iloc[0], traj.query("algorithm != 'sgd'").rho.max()

    fig = plt.figure(figsize=(4.3 * max(len(maps), 2) + 1.2, 8.2))
    outer = fig.add_gridspec(2, 1, height_ratios=[1, 1.05], hspace=0.42)
    top = outer[0].subgridspec(1, 2, width_ratios=[1.6, 1], wspace=0.25)
    bottom = outer[1].subgridspec(1, len(maps) + 1, width_ratios=[8] * len(maps) + [1.4], wspace=0.12)

    # distance over time: median and interquartile band over paths (the mean is dominated by escaped paths)
    ax = fig.add_subplot(top[0])
    sns.lineplot(data=traj, x="time", y="median", hue="algorithm", hue_order=algorithms, style="model",
                 dashes=MODEL_DASHES, palette=PALETTE, ax=ax, legend=False)  # fmt: skip
    for alg in algorithms:
        cur = traj.query("algorithm == @alg and model == 'discrete'")
        ax.fill_between(cur.time, cur.q25, cur.q75, color=PALETTE[alg], alpha=0.15, linewidth=0)
    ax.set_yscale("log")
    ax.set_xlabel("time t = k eta")
    ax.set_ylabel("distance to the saddle (median, IQR)")
    ax.set_title(f"trajectories at $\\lambda$={lam:g}, $\\rho$={rho:g} (SGD: $\\rho$=0)")
    handles = [Line2D([], [], color=PALETTE[a], label=a.upper()) for a in algorithms]
    handles += [Line2D([], [], color="#444444", label="discrete"),
                Line2D([], [], color="#444444", dashes=(4, 2), label="own SDE")]  # fmt: skip
    ax.legend(handles=handles, ncol=2, fontsize="small", loc="upper left")

    # basin of attraction: share that stays when starting at factor * rho
    ax = fig.add_subplot(top[1])
    for alg in algorithms:
        cur = sweep.query("algorithm == @alg").sort_values("factor")
        ax.errorbar(cur.factor, cur["mean"], yerr=[cur["mean"] - cur.ci_low, cur.ci_high - cur["mean"]],
                    color=PALETTE[alg], marker="o", markersize=4, capsize=2, label=alg.upper())  # fmt: skip
    ax.axvline(1.0, color=PALETTE["theory"], linestyle="--", linewidth=1)
    ax.set_xlabel(r"start distance / $\rho$")
    ax.set_ylabel("share of paths near the saddle at the end")
    ax.set_ylim(-0.04, 1.04)
    ax.set_title(r"attracting ball of radius $\sim\rho$ (SAM, DNSAM)")
    ax.legend(fontsize="small", loc="center right")

    # stay maps over rho x |lambda|, with the USAM threshold rho = 1/|lambda|
    rhos = sorted(grid.query("algorithm != 'sgd'").rho.unique())
    lams = sorted(grid["lambda"].abs().unique())
    for i, alg in enumerate(maps):
        ax = fig.add_subplot(bottom[i])
        cur = grid.query("algorithm == @alg").assign(abs_lambda=lambda d: d["lambda"].abs())
        mat = cur.pivot_table(index="abs_lambda", columns="rho", values="mean").reindex(index=lams, columns=rhos)
        sns.heatmap(mat, ax=ax, vmin=0, vmax=1, cmap="viridis", annot=True, fmt=".2f", annot_kws={"size": 7},
                    cbar=False, xticklabels=[f"{r:g}" for r in rhos],
                    yticklabels=[f"{v:g}" for v in lams] if i == 0 else False)  # fmt: skip
        ax.invert_yaxis()
        inside = [v for v in lams if min(rhos) <= 1 / v <= max(rhos)]
        ax.plot([category_position(1 / v, rhos) for v in inside], [lams.index(v) + 0.5 for v in inside],
                color="white", linewidth=2.2, linestyle="--")  # fmt: skip
        ax.set_xlabel(r"$\rho$")
        ax.set_ylabel(r"$|\lambda|$" if i == 0 else "")
        ax.set_title(f"{alg.upper()}: share near the saddle")
    ax = fig.add_subplot(bottom[-1])
    sgd = grid.query("algorithm == 'sgd'").assign(abs_lambda=lambda d: d["lambda"].abs())
    mat = sgd.pivot_table(index="abs_lambda", values="mean").reindex(index=lams)
    sns.heatmap(mat, ax=ax, vmin=0, vmax=1, cmap="viridis", annot=True, fmt=".2f", annot_kws={"size": 7},
                cbar=False, xticklabels=["any"], yticklabels=False)  # fmt: skip
    ax.invert_yaxis()
    ax.set_xlabel(r"$\rho$")
    ax.set_ylabel("")
    ax.set_title("SGD")
    fig.suptitle("Escaping saddles (reconstructed setting); white dashes: USAM threshold "
                 r"$\rho = 1/|\lambda|$", y=0.995)  # fmt: skip
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)  # noqa: F821
    log.info("figure written: %s", snakemake.output.png)  # noqa: F821
