"""Figure sharpness_sb_lb: Keskar et al.'s table (small vs large batch) rebuilt on digits, with per-seed bars."""

import matplotlib.pyplot as plt

from samsde_workflow import lecture_figures as panels
from samsde_workflow.job import Job
from samsde_workflow.plotting import finish, save_figure, set_style

REGIMES = {"small_batch": "#1b9e77", "large_batch": "#d95f02"}
COLUMNS = ["small batch (SB)", "large batch (LB)", "LB - SB, paired [95% CI]"]

with Job(snakemake) as job:
    set_style()
    runs, keskar = job.read("runs"), job.read("keskar")
    sb, lb = (runs[runs.regime == r].iloc[0] for r in REGIMES)
    fig = plt.figure(figsize=(10, 7.2))
    grid = fig.add_gridspec(2, 3, height_ratios=[1.0, 1.15])
    title = f"mean ± s.e. over {runs.seed.nunique()} seeds (same init per seed)"
    panels.table_panel(fig.add_subplot(grid[0, :]), panels.sb_lb_rows(runs, keskar), COLUMNS, title)

    eps0 = keskar.eps0.iloc[0]
    bars = [
        (runs, "test_error_pct", "test error", "test error (%)"),
        (keskar[keskar.eps0 == eps0], "keskar_pct", f"Keskar sharpness, eps0 = {eps0:g}", "sharpness (%)"),
        (runs, "lambda_max", "lambda_max of the training-loss Hessian", "lambda_max"),
    ]
    for j, (table, column, name, ylabel) in enumerate(bars):
        ax = fig.add_subplot(grid[1, j])
        panels.ci_bars(ax, table.pivot(index="seed", columns="regime", values=column), REGIMES, ["SB", "LB"])
        ax.set_title(f"{name}\n(mean, 95% CI; lines join a seed's runs)", fontsize=9)
        ax.set_ylabel(ylabel)
    finish(
        fig,
        f"Small- vs large-batch SGD on digits (MLP, B = {sb.batch_size} vs {lb.batch_size}, lr {sb.lr:g}, "
        "same epochs): small-scale reconstruction of Keskar et al.'s table",
    )
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)
