"""Figure hessian_spectrum: top-k eigenvalues, spectral density, lambda_max, trace and three sharpness notions."""

import matplotlib.pyplot as plt

from samsde_workflow import lecture_figures as panels
from samsde_workflow.job import Job
from samsde_workflow.plotting import finish, save_figure, set_style

with Job(snakemake) as job:
    set_style()
    sharp, topk, density = job.read("sharpness"), job.read("topk"), job.read("density")
    methods = panels.baseline_first(sharp.method)
    fig = plt.figure(figsize=(12, 7.5))
    grid = fig.add_gridspec(2, 3)
    panels.top_spectrum_panel(fig.add_subplot(grid[0, 0]), topk, methods)
    panels.density_panel(fig.add_subplot(grid[0, 1]), density, methods)
    ax = fig.add_subplot(grid[0, 2])
    panels.method_bars(ax, sharp, "lambda_max", methods, "lambda_max", "lambda_max (worst direction), 95% CI")
    ax = fig.add_subplot(grid[1, 0])
    panels.method_bars(ax, sharp, "trace", methods, "tr(H)", "trace (Hutchinson; average direction), 95% CI")
    panels.notions_panel(fig.add_subplot(grid[1, 1:]), sharp, methods)
    finish(
        fig,
        f"Hessian of the training loss at SGD / SAM / USAM solutions on digits (MLP, {sharp.seed.nunique()} seeds): "
        "small-scale reconstruction",
    )
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)
