"""Figure sam_vs_sgd: the rho sweep (validation) and the test error of SGD / SAM / USAM over seeds."""

import matplotlib.pyplot as plt

from samsde_workflow import lecture_figures as panels
from samsde_workflow.job import Job
from samsde_workflow.plotting import finish, save_figure, set_style

with Job(snakemake) as job:
    set_style()
    sweep, runs = job.read("sweep"), job.read("runs")
    true_labels = runs[runs.label_noise == 0]
    rho = true_labels.groupby("method").rho.first()
    fig, (ax_sweep, ax_test, ax_noise) = plt.subplots(
        1, 3, figsize=(15.5, 4.4), gridspec_kw={"width_ratios": [1, 1.25, 1.1]}
    )
    panels.rho_sweep_panel(ax_sweep, sweep[sweep.label_noise == 0], rho)
    panels.test_error_panel(ax_test, true_labels, rho)
    panels.label_noise_panel(ax_noise, runs)
    finish(
        fig,
        "SGD vs SAM vs USAM on digits (MLP, base SGD with momentum): small-scale analogue of the lecture's CIFAR "
        "table; right: with a share of the training labels replaced at random",
    )
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)
