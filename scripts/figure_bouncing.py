"""Figure bouncing: full-batch SAM's two-cycle on a quadratic and its drift to flatter regions along a valley."""

import matplotlib.pyplot as plt

from samsde_workflow import lecture_figures as panels
from samsde_workflow.job import Job
from samsde_workflow.plotting import PALETTE, finish, save_figure, set_style

with Job(snakemake) as job:
    set_style()
    quad, valley = job.read("quadratic"), job.read("valley")
    q, v = snakemake.params.bouncing["quadratic"], snakemake.params.bouncing["valley"]
    eig = quad.groupby("eigen_index").eigenvalue.first().sort_values(ascending=False)
    fig, axes = plt.subplots(2, 3, figsize=(13, 7.6))
    panels.eigenplane_panel(axes[0, 0], quad, eig)
    panels.two_cycle_panel(axes[0, 1], quad, eig, q)
    panels.eigen_decay_panel(axes[0, 2], quad, eig)
    panels.valley_panel(axes[1, 0], valley, v)
    panels.valley_band_panel(axes[1, 1], valley, "lambda_max", "lambda_max(H) at the iterate")
    panels.valley_band_panel(axes[1, 2], valley, "y", "y (position along the floor)")
    for curvature in (v["a_min"], v["a_max"]):
        axes[1, 1].axhline(curvature, color=PALETTE["theory"], ls=":", lw=1)
    finish(
        fig,
        "Full-batch SAM bounces across ravines: two-cycle on a quadratic (top) and drift to lower lambda_max "
        "along a valley (bottom); toy reconstruction",
    )
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)
