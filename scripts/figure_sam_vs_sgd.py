"""Figure sam_vs_sgd: the rho sweep (validation) and the test error of SGD / SAM / USAM over seeds."""

import matplotlib.pyplot as plt
import numpy as np

from samsde.lecture import mean_ci
from samsde_workflow.io import read_table
from samsde_workflow.logs import rule_logging
from samsde_workflow.plotting import PALETTE, finish, save_figure, set_style

with rule_logging(snakemake):
    set_style()
    sweep = read_table(snakemake.input.sweep)
    runs = read_table(snakemake.input.runs)
    methods = list(dict.fromkeys(runs.method))
    rho = runs.groupby("method").rho.first()
    n_seeds = runs.seed.nunique()
    fig, (ax_sweep, ax_test) = plt.subplots(1, 2, figsize=(10.5, 4.2), gridspec_kw={"width_ratios": [1, 1.25]})

    for method, group in sweep.groupby("method", sort=False):
        stats = group.groupby("rho").val_error_pct.agg(["mean", "sem", "count"])
        sem = stats["sem"].fillna(0.0) if stats["count"].min() > 1 else np.zeros(len(stats))
        ax_sweep.errorbar(stats.index, stats["mean"], yerr=sem, fmt="o-", color=PALETTE[method], capsize=3,
                          label=f"{method.upper()} (chosen rho = {rho[method]:g})")  # fmt: skip
        ax_sweep.plot(rho[method], stats.loc[rho[method], "mean"], "*", ms=14, color=PALETTE[method], mec="k")
    ax_sweep.set_xscale("log")
    ax_sweep.set_xlabel("rho")
    ax_sweep.set_ylabel("validation error (%)")
    n_sweep = sweep.seed.nunique()
    ax_sweep.set_title(f"rho sweep on a validation split, mean ± s.e. over {n_sweep} seed(s)", fontsize=9)
    ax_sweep.legend(fontsize=8)

    wide = runs.pivot(index="seed", columns="method", values="test_error_pct")[methods]
    x = np.arange(len(methods))
    lines = []
    for i, method in enumerate(methods):
        mean, se, low, high = mean_ci(wide[method])
        ax_test.bar(i, mean, color=PALETTE[method], alpha=0.75, width=0.6)
        ax_test.errorbar(i, mean, yerr=[[mean - low], [high - mean]], color="k", capsize=5, lw=1.2)
        line = f"{method.upper():>4}: {mean:.2f} ± {se:.2f}%"
        if method != "sgd":
            d, _, d_low, d_high = mean_ci(wide[method] - wide.sgd)
            line += f"   {method.upper()} - SGD = {d:+.2f} [{d_low:+.2f}, {d_high:+.2f}] pp"
        lines.append(line)
    ax_test.plot(x, wide.to_numpy().T, "-o", color="0.35", lw=0.7, ms=3, alpha=0.6)
    ax_test.set_xticks(x, [f"{m.upper()}\nrho = {rho[m]:g}" if m != "sgd" else "SGD" for m in methods])
    ax_test.set_ylabel("test error (%)")
    top = wide.to_numpy().max()
    ax_test.set_ylim(0, top * 1.45)
    ax_test.text(0.02, 0.97, "\n".join(lines), transform=ax_test.transAxes, va="top", ha="left", fontsize=7.5,
                 family="monospace", bbox=dict(facecolor="white", alpha=0.85, edgecolor="0.8"))  # fmt: skip
    ax_test.set_title(f"test error, mean with 95% CI over {n_seeds} seeds (paired: same init and batches)", fontsize=9)
    finish(fig, "SGD vs SAM vs USAM on digits (MLP, base SGD with momentum): small-scale analogue of the lecture's "
                "CIFAR table")  # fmt: skip
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)
