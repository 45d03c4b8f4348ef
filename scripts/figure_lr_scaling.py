"""Figure lr_scaling: test error (and lambda_max) of SB, plain LB and LB with lr * sqrt(k) and SB's update count."""

import matplotlib.pyplot as plt
import numpy as np

from samsde.lecture import mean_ci
from samsde_workflow.io import read_table
from samsde_workflow.logs import rule_logging
from samsde_workflow.plotting import finish, save_figure, set_style

REGIMES = {
    "small_batch": ("SB", "#1b9e77"),
    "large_batch": ("LB", "#d95f02"),
    "large_batch_sqrt_k": ("LB, lr x sqrt(k),\nSB's updates", "#7570b3"),
}

with rule_logging(snakemake):
    set_style()
    table = read_table(snakemake.input.table)
    n_seeds = table.seed.nunique()
    info = table.groupby("regime").first()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.0))
    for ax, (column, ylabel, log) in zip(
        axes,
        (("test_error_pct", "test error (%)", False), ("lambda_max", "lambda_max (training loss)", True)),
        strict=True,
    ):
        wide = table.pivot(index="seed", columns="regime", values=column)[list(REGIMES)]
        x = np.arange(len(REGIMES))
        for i, (regime, (_, color)) in enumerate(REGIMES.items()):
            mean, se, low, high = mean_ci(wide[regime])
            ax.bar(i, mean, color=color, alpha=0.75, width=0.6)
            ax.errorbar(i, mean, yerr=[[mean - low], [high - mean]], color="k", capsize=5, lw=1.2)
        ax.plot(x, wide.to_numpy().T, "-o", color="0.35", lw=0.7, ms=3, alpha=0.7)
        labels = [f"{name}\nB={info.loc[r, 'batch_size']}, lr={info.loc[r, 'lr']:.2g}\n{info.loc[r, 'steps']} updates"
                  for r, (name, _) in REGIMES.items()]  # fmt: skip
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_ylabel(ylabel)
        if log:
            ax.set_yscale("log")
    axes[0].set_title("test error: mean with 95% CI, lines join a seed's runs", fontsize=9)
    axes[1].set_title("sharpness of the solution: mean with 95% CI", fontsize=9)
    k = info.loc["large_batch", "batch_size"] / info.loc["small_batch", "batch_size"]
    finish(fig, f"Closing the large-batch gap on digits (MLP, {n_seeds} seeds, k = {k:.3g}): small-scale "
                "reconstruction of Hoffer et al.")  # fmt: skip
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)
