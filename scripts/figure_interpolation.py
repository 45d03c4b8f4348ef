"""Figure interpolation: loss and accuracy along (1 - a) theta_SB + a theta_LB, mean +- s.e. over seeds."""

import matplotlib.pyplot as plt

from samsde_workflow.job import Job
from samsde_workflow.plotting import finish, log_axes, save_figure, set_style

SPLITS = {"train": ("training set", "#222222", "-"), "test": ("test set", "#7570b3", "--")}
QUANTITIES = (("loss", "cross-entropy", 1), ("accuracy", "accuracy (%)", 100))

with Job(snakemake) as job:
    set_style()
    table = job.read("table")
    stats = table.groupby("alpha").agg(["mean", "sem"])
    alpha = stats.index.to_numpy()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, (quantity, ylabel, scale) in zip(axes, QUANTITIES, strict=True):
        for split, (label, color, style) in SPLITS.items():
            mean = stats[(f"{split}_{quantity}", "mean")].to_numpy() * scale
            sem = stats[(f"{split}_{quantity}", "sem")].to_numpy() * scale
            ax.plot(alpha, mean, style, color=color, label=label)
            ax.fill_between(alpha, mean - sem, mean + sem, color=color, alpha=0.25, lw=0)
        for a, name in ((0.0, "SB"), (1.0, "LB")):
            ax.axvline(a, color="0.5", lw=0.8, ls=":")
            ax.text(a, 1.01, name, transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=8)
        ax.set_xlabel("a in (1 - a) theta_SB + a theta_LB")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
    log_axes(axes[0], x=False)
    finish(
        fig,
        "Linear interpolation between small- and large-batch SGD solutions on digits (MLP; mean ± s.e. over "
        f"{table.seed.nunique()} seeds): small-scale reconstruction of Keskar et al.",
    )
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)
