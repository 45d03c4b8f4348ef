"""Figure sam_vs_sgd: the rho sweep (validation) and the test error of SGD / SAM / USAM over seeds."""

import matplotlib.pyplot as plt

from samsde_workflow import lecture_figures as panels
from samsde_workflow.job import Job
from samsde_workflow.plotting import finish, save_figure, set_style

with Job(snakemake) as job:
    set_style()
    sweep, runs = job.read("sweep"), job.read("runs")
    rho = runs.groupby("method").rho.first()
    fig, (ax_sweep, ax_test) = plt.subplots(1, 2, figsize=(10.5, 4.2), gridspec_kw={"width_ratios": [1, 1.25]})
    panels.rho_sweep_panel(ax_sweep, sweep, rho)
    panels.test_error_panel(ax_test, runs, rho)
    finish(
        fig,
        "SGD vs SAM vs USAM on digits (MLP, base SGD with momentum): small-scale analogue of the lecture's CIFAR table",
    )
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)
