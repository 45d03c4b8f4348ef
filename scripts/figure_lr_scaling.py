"""Figure lr_scaling: test error (and lambda_max) of SB, plain LB and LB with lr * sqrt(k) and SB's update count."""

import matplotlib.pyplot as plt

from samsde_workflow.job import Job
from samsde_workflow.lecture_figures import ci_bars
from samsde_workflow.plotting import finish, log_axes, save_figure, set_style

NAMES = {"small_batch": "SB", "large_batch": "LB", "large_batch_sqrt_k": "LB, lr x sqrt(k),\nSB's updates"}
COLORS = {"small_batch": "#1b9e77", "large_batch": "#d95f02", "large_batch_sqrt_k": "#7570b3"}
PANELS = (
    ("test_error_pct", "test error (%)", "test error: mean with 95% CI, lines join a seed's runs"),
    ("lambda_max", "lambda_max (training loss)", "sharpness of the solution: mean with 95% CI"),
)

with Job(snakemake) as job:
    set_style()
    table = job.read("table")
    info = table.groupby("regime").first()
    labels = [
        f"{NAMES[r]}\nB={info.loc[r, 'batch_size']}, lr={info.loc[r, 'lr']:.2g}\n{info.loc[r, 'steps']} updates"
        for r in NAMES
    ]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.0))
    for ax, (column, ylabel, title) in zip(axes, PANELS, strict=True):
        ci_bars(ax, table.pivot(index="seed", columns="regime", values=column), COLORS, labels)
        ax.tick_params(axis="x", labelsize=8)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=9)
    log_axes(axes[1], x=False)
    k = info.loc["large_batch", "batch_size"] / info.loc["small_batch", "batch_size"]
    n_seeds = table.seed.nunique()
    title = f"Closing the large-batch gap on digits (MLP, {n_seeds} seeds, k = {k:.3g}): small-scale reconstruction"
    finish(fig, f"{title} of Hoffer et al.")
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)
