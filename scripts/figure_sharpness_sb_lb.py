"""Figure sharpness_sb_lb: Keskar et al.'s table (small vs large batch) rebuilt on digits, with per-seed bars."""

import matplotlib.pyplot as plt
import numpy as np

from samsde.lecture import mean_ci
from samsde_workflow.io import read_table
from samsde_workflow.logs import rule_logging
from samsde_workflow.plotting import finish, save_figure, set_style

REGIMES = {"small_batch": ("SB", "#1b9e77"), "large_batch": ("LB", "#d95f02")}


def fmt(values, scale=1.0, digits=3):
    mean, se, _, _ = mean_ci(np.asarray(values) * scale)
    return f"{mean:.{digits}g} ± {se:.1g}"


def fmt_diff(wide, scale=1.0, digits=3):
    mean, _, low, high = mean_ci((wide.large_batch - wide.small_batch) * scale)
    return f"{mean:+.{digits}g} [{low:+.{digits}g}, {high:+.{digits}g}]"


def paired_bars(ax, wide, title, ylabel):
    """Mean with 95% t-interval per regime, each seed's pair of values joined by a grey line."""
    x = np.arange(len(REGIMES))
    for i, (regime, (_, color)) in enumerate(REGIMES.items()):
        mean, _, low, high = mean_ci(wide[regime])
        ax.bar(i, mean, color=color, alpha=0.75, width=0.6)
        ax.errorbar(i, mean, yerr=[[mean - low], [high - mean]], color="k", capsize=5, lw=1.2)
    ax.plot(x, wide[list(REGIMES)].to_numpy().T, "-o", color="0.35", lw=0.7, ms=3, alpha=0.7)
    ax.set_xticks(x, [label for label, _ in REGIMES.values()])
    ax.set_title(f"{title}\n(mean, 95% CI; lines join a seed's runs)", fontsize=9)
    ax.set_ylabel(ylabel)


with rule_logging(snakemake):
    set_style()
    runs = read_table(snakemake.input.runs)
    keskar = read_table(snakemake.input.keskar)
    by = lambda df, col: df.pivot(index="seed", columns="regime", values=col)  # noqa: E731
    sb, lb = (runs[runs.regime == r].iloc[0] for r in REGIMES)
    n_seeds = runs.seed.nunique()

    table_rows = [
        ("batch size", f"{sb.batch_size:d}", f"{lb.batch_size:d}", ""),
        ("updates (same epochs, lr)", f"{sb.steps:d}", f"{lb.steps:d}", ""),
        ("training accuracy (%)", fmt(by(runs, "train_accuracy").small_batch, 100, 4),
         fmt(by(runs, "train_accuracy").large_batch, 100, 4), fmt_diff(by(runs, "train_accuracy"), 100)),
        ("training loss", fmt(by(runs, "train_loss").small_batch), fmt(by(runs, "train_loss").large_batch),
         fmt_diff(by(runs, "train_loss"))),
        ("test accuracy (%)", fmt(by(runs, "test_accuracy").small_batch, 100, 4),
         fmt(by(runs, "test_accuracy").large_batch, 100, 4), fmt_diff(by(runs, "test_accuracy"), 100)),
    ]  # fmt: skip
    for eps0, group in keskar.groupby("eps0", sort=False):
        wide = by(group, "keskar_pct")
        table_rows.append((f"Keskar sharpness (%), eps0 = {eps0:g}", fmt(wide.small_batch), fmt(wide.large_batch),
                           fmt_diff(wide)))  # fmt: skip
    wide = by(runs, "lambda_max")
    table_rows.append(("lambda_max (Lanczos)", fmt(wide.small_batch), fmt(wide.large_batch), fmt_diff(wide)))

    fig = plt.figure(figsize=(10, 7.2))
    grid = fig.add_gridspec(2, 3, height_ratios=[1.0, 1.15])
    ax_table = fig.add_subplot(grid[0, :])
    ax_table.axis("off")
    table = ax_table.table(
        cellText=[list(r[1:]) for r in table_rows], rowLabels=[r[0] for r in table_rows],
        colLabels=["small batch (SB)", "large batch (LB)", "LB - SB, paired [95% CI]"], loc="center", cellLoc="center",
    )  # fmt: skip
    table.auto_set_font_size(False)
    table.set_fontsize(8.5)
    table.scale(0.82, 1.35)
    ax_table.set_title(f"mean ± s.e. over {n_seeds} seeds (same init per seed)", fontsize=9)

    eps0 = keskar.eps0.iloc[0]
    panels = [
        (by(runs, "test_error_pct"), "test error", "test error (%)"),
        (by(keskar[keskar.eps0 == eps0], "keskar_pct"), f"Keskar sharpness, eps0 = {eps0:g}", "sharpness (%)"),
        (by(runs, "lambda_max"), "lambda_max of the training-loss Hessian", "lambda_max"),
    ]
    for j, (wide, title, ylabel) in enumerate(panels):
        paired_bars(fig.add_subplot(grid[1, j]), wide, title, ylabel)
    finish(fig, f"Small- vs large-batch SGD on digits (MLP, B = {sb.batch_size} vs {lb.batch_size}, lr {sb.lr:g}, "
                "same epochs): small-scale reconstruction of Keskar et al.'s table")  # fmt: skip
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)
