"""Figure full_batch_sharpness: lambda_max and SAM's ascent alignment with v_1 along full-batch SAM and GD runs."""

import matplotlib.pyplot as plt

from samsde_workflow import lecture_figures as panels
from samsde_workflow.job import Job
from samsde_workflow.plotting import finish, save_figure, set_style

with Job(snakemake) as job:
    set_style()
    checkpoints, final = job.read("checkpoints"), job.read("final")
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.4))
    panels.checkpoint_panel(
        axes[0], checkpoints, "lambda_max", "lambda_max of the objective's Hessian", "lambda_max along training"
    )
    panels.checkpoint_panel(
        axes[1], checkpoints, "alignment", "|cos(grad L, v_1)|", "alignment of the ascent direction with v_1"
    )
    axes[1].set_ylim(0, 1.1)
    panels.final_lambda_panel(axes[2], final)
    finish(
        fig,
        f"Full-batch SAM vs gradient descent on digits (MLP, {final.seed.nunique()} seeds, same init): lambda_max "
        "and the ascent direction's alignment with the top eigenvector; reconstructed setting",
    )
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)
