"""Figure hessian_spectrum: top-k eigenvalues, spectral density, lambda_max, trace and three sharpness notions."""

import matplotlib.pyplot as plt
import numpy as np

from samsde.lecture import mean_ci
from samsde_workflow.io import read_table
from samsde_workflow.logs import rule_logging
from samsde_workflow.plotting import PALETTE, finish, save_figure, set_style

ORDER = ["sgd", "sam", "usam"]
NOTIONS = {"worst_direction": "worst direction", "ascent_direction": "ascent direction",
           "average_direction": "average direction"}  # fmt: skip


def ci_bars(ax, wide, methods, ylabel, title):
    """Mean with 95% t-interval per method, each seed's values joined by a grey line."""
    for i, method in enumerate(methods):
        mean, _, low, high = mean_ci(wide[method])
        ax.bar(i, mean, color=PALETTE[method], alpha=0.75, width=0.6)
        ax.errorbar(i, mean, yerr=[[mean - low], [high - mean]], color="k", capsize=5, lw=1.2)
    ax.plot(np.arange(len(methods)), wide[methods].to_numpy().T, "-o", color="0.35", lw=0.7, ms=3, alpha=0.6)
    ax.set_xticks(np.arange(len(methods)), [m.upper() for m in methods])
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)


with rule_logging(snakemake):
    set_style()
    sharp = read_table(snakemake.input.sharpness)
    topk = read_table(snakemake.input.topk)
    density = read_table(snakemake.input.density)
    methods = [m for m in ORDER if m in set(sharp.method)]
    n_seeds = sharp.seed.nunique()
    fig = plt.figure(figsize=(12, 7.5))
    grid = fig.add_gridspec(2, 3)

    ax = fig.add_subplot(grid[0, 0])
    for method in methods:
        stats = topk[topk.method == method].groupby("rank").eigenvalue.agg(["mean", "sem"])
        ax.plot(stats.index, stats["mean"], "o-", ms=3, color=PALETTE[method], label=method.upper())
        ax.fill_between(stats.index, stats["mean"] - stats["sem"], stats["mean"] + stats["sem"], color=PALETTE[method],
                        alpha=0.25, lw=0)  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("rank i")
    ax.set_ylabel("eigenvalue lambda_i")
    ax.set_title("top of the spectrum (Lanczos), mean ± s.e.", fontsize=9)
    ax.legend(fontsize=8)

    ax = fig.add_subplot(grid[0, 1])
    for method in methods:
        stats = density[density.method == method].groupby("eigenvalue").density.mean()
        ax.plot(stats.index, stats.to_numpy(), color=PALETTE[method], label=method.upper())
    ax.set_yscale("log")
    peak = density.groupby(["method", "eigenvalue"]).density.mean().max()
    ax.set_ylim(peak * 1e-7, peak * 3)
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density (smoothed)")
    ax.set_title("spectral density (SLQ), mean over seeds", fontsize=9)
    ax.legend(fontsize=8)

    ci_bars(fig.add_subplot(grid[0, 2]), sharp.pivot(index="seed", columns="method", values="lambda_max"), methods,
            "lambda_max", "lambda_max (worst direction), 95% CI")  # fmt: skip
    ci_bars(fig.add_subplot(grid[1, 0]), sharp.pivot(index="seed", columns="method", values="trace"), methods,
            "tr(H)", "trace (Hutchinson; average direction), 95% CI")  # fmt: skip

    ax = fig.add_subplot(grid[1, 1:])
    width = 0.8 / len(methods)
    for j, method in enumerate(methods):
        sub = sharp[sharp.method == method]
        for i, notion in enumerate(NOTIONS):
            mean, _, low, high = mean_ci(sub[notion])
            x = i + (j - (len(methods) - 1) / 2) * width
            ax.bar(x, mean, width=width, color=PALETTE[method], alpha=0.75, label=method.upper() if i == 0 else None)
            ax.errorbar(x, mean, yerr=[[mean - max(low, mean * 1e-3)], [high - mean]], color="k", capsize=3, lw=1)
    rho, rho_avg = sharp.rho.iloc[0], sharp.average_rho.iloc[0]
    ticks = [
        f"{NOTIONS['worst_direction']}\nmax over |e| <= {rho:g}",
        f"{NOTIONS['ascent_direction']}\ne = {rho:g} g / |g|",
        f"{NOTIONS['average_direction']}\ne ~ N(0, {rho_avg:g}^2 I / d)",
    ]
    ax.set_xticks(np.arange(len(NOTIONS)), ticks)
    ax.set_yscale("log")
    ax.set_ylabel("L(theta + e) - L(theta)")
    ax.set_title("three sharpness notions (training loss), mean with 95% CI", fontsize=9)
    ax.legend(fontsize=8)
    finish(fig, f"Hessian of the training loss at SGD / SAM / USAM solutions on digits (MLP, {n_seeds} seeds): "
                "small-scale reconstruction")  # fmt: skip
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)
