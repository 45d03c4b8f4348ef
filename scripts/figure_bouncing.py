"""Figure bouncing: full-batch SAM's two-cycle on a quadratic and its drift to flatter regions along a valley."""

import matplotlib.pyplot as plt
import numpy as np
import torch

from samsde.lecture import Valley, quadratic_two_cycle_amplitude
from samsde_workflow.io import read_table
from samsde_workflow.logs import rule_logging
from samsde_workflow.plotting import PALETTE, finish, save_figure, set_style

ALGORITHMS = {"sam": ("SAM", PALETTE["sam"]), "gd": ("GD (rho = 0)", PALETTE["sgd"])}
ZOOM = 30  # steps shown in the two-cycle panel
FLOOR = 1e-20  # log-axis floor; the decaying coordinates level off at ~1e-17, the rounding error of the rotation

with rule_logging(snakemake):
    set_style()
    quad = read_table(snakemake.input.quadratic)
    valley = read_table(snakemake.input.valley)
    q, v = snakemake.params.bouncing["quadratic"], snakemake.params.bouncing["valley"]
    eig = quad.groupby("eigen_index").eigenvalue.first().sort_values(ascending=False)
    top, second = eig.index[0], eig.index[1]
    q_steps = quad.step.max()
    n_seeds = quad.seed.nunique()
    fig, axes = plt.subplots(2, 3, figsize=(13, 7.6))

    # (a) one run in the plane of the top two eigenvectors
    ax = axes[0, 0]
    run = quad[quad.seed == 0].pivot(index="step", columns="eigen_index", values="projection")
    p1, p2 = run[top].to_numpy(), run[second].to_numpy()
    lim = 1.1 * max(np.abs(p1).max(), np.abs(p2).max())
    g1, g2 = np.meshgrid(np.linspace(-lim, lim, 200), np.linspace(-lim, lim, 200))
    ax.contour(g1, g2, 0.5 * (eig[top] * g1**2 + eig[second] * g2**2), levels=12, colors="0.75", linewidths=0.7)
    ax.plot(p1, p2, "-", color=PALETTE["sam"], lw=0.6, alpha=0.7)
    ax.plot(p1[:-ZOOM], p2[:-ZOOM], "o", color=PALETTE["sam"], ms=2.5, alpha=0.6)
    ax.plot(p1[-ZOOM:], p2[-ZOOM:], "o", color="k", ms=4, label="last steps: +-a v_1")
    ax.plot(p1[0], p2[0], "s", color="k", ms=6, mfc="white", label="start")
    ax.set_xlabel(f"<x, v_1>  (lambda_1 = {eig[top]:g})")
    ax.set_ylabel(f"<x, v_2>  (lambda_2 = {eig[second]:g})")
    ax.set_title("quadratic: one SAM run, top-2 eigenplane", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")

    # (b) the two-cycle along v_1, every run, last ZOOM steps
    ax = axes[0, 1]
    last = quad[(quad.eigen_index == top) & (quad.step > q_steps - ZOOM)]
    amplitude = quadratic_two_cycle_amplitude(eig[top], q["eta"], q["rho"])
    for _, group in last.groupby("seed"):
        ax.plot(group.step, group.projection, "-o", ms=3, lw=0.6, color=PALETTE["sam"], alpha=0.5)
    for sign in (1, -1):
        ax.axhline(sign * amplitude, color=PALETTE["theory"], ls="--", lw=1)
    ax.set_xlabel("step k")
    ax.set_ylabel("<x_k, v_1>")
    ax.set_title(f"two-cycle along v_1, all {n_seeds} runs; dashed: +-a = +-{amplitude:.3g} (closed form)", fontsize=9)

    # (c) every eigen-coordinate's magnitude: v_1 settles at a, the others decay geometrically
    ax = axes[0, 2]
    for i, lam in eig.items():
        mag = quad[quad.eigen_index == i].assign(mag=lambda d: d.projection.abs().clip(lower=FLOOR))
        stats = mag.groupby("step").mag.agg(["min", "max", "median"])
        ax.plot(stats.index, stats["median"], label=f"lambda = {lam:g}")
        ax.fill_between(stats.index, stats["min"], stats["max"], alpha=0.2, lw=0)
    ax.set_yscale("log")
    ax.set_ylim(FLOOR / 3, None)
    ax.set_xlabel("step k")
    ax.set_ylabel("|<x_k, v_i>| (median, min-max band)")
    ax.set_title("eigen-coordinates: only v_1 survives (floor: rounding)", fontsize=9)
    ax.legend(fontsize=7, title="eigenvector", title_fontsize=7)

    # (d) the valley with one SAM and one GD run
    ax = axes[1, 0]
    landscape = Valley(v["a_max"], v["a_min"], v["width"], v["slope"])
    ys = np.linspace(valley.y.min() - 0.3, valley.y.max() + 0.3, 300)
    xlim = 1.1 * valley.x.abs().max()
    gy, gx = np.meshgrid(ys, np.linspace(-xlim, xlim, 200))
    f = landscape.loss(torch.tensor(np.stack([gx, gy], -1))).numpy()
    ax.contour(gy, gx, f, levels=20, colors="0.75", linewidths=0.7)
    for name, (label, color) in ALGORITHMS.items():
        run = valley[(valley.seed == 0) & (valley.algorithm == name)]
        ax.plot(run.y, run.x, "o-", ms=2, lw=0.6, color=color, label=label)
    ax.set_xlabel("y (along the floor; curvature a(y) decreases to the right)")
    ax.set_ylabel("x (across the valley)")
    ax.set_title("valley: one run each (every {}th step)".format(v["record_every"]), fontsize=9)
    ax.legend(fontsize=7)

    # (e, f) lambda_max and the position along the floor, mean +- band over starts
    for ax, column, ylabel in ((axes[1, 1], "lambda_max", "lambda_max(H) at the iterate"),
                               (axes[1, 2], "y", "y (position along the floor)")):  # fmt: skip
        for name, (label, color) in ALGORITHMS.items():
            stats = valley[valley.algorithm == name].groupby("step")[column].agg(["mean", "min", "max"])
            ax.plot(stats.index, stats["mean"], color=color, label=label)
            ax.fill_between(stats.index, stats["min"], stats["max"], color=color, alpha=0.25, lw=0)
        ax.set_xlabel("step k")
        ax.set_ylabel(ylabel)
        ax.set_title(f"mean and min-max band over {valley.seed.nunique()} starts", fontsize=9)
        ax.legend(fontsize=7)
    axes[1, 1].axhline(v["a_min"], color=PALETTE["theory"], ls=":", lw=1)
    axes[1, 1].axhline(v["a_max"], color=PALETTE["theory"], ls=":", lw=1)

    finish(fig, "Full-batch SAM bounces across ravines: two-cycle on a quadratic (top) and drift to lower lambda_max "
                "along a valley (bottom); toy reconstruction")  # fmt: skip
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)
