"""Figure trajectories: path mean +- 2 s.e. of g(x) = |grad f| + |x| and of f over time, discrete vs SDEs; diverged
paths marked where they start (weak_error_figures.draw_trajectories)."""

import matplotlib.pyplot as plt
import pandas as pd

from samsde.algorithms import get
from samsde_workflow.io import read_table
from samsde_workflow.logs import rule_logging
from samsde_workflow.plotting import finish, first, legend, log_marks, save_figure, set_style
from samsde_workflow.weak_error_figures import draw_trajectories

MODELS = {"discrete": "discrete", "own_sde": "own SDE", "sgd_sde": "SGD SDE"}

with rule_logging(snakemake) as log:
    set_style()
    traj = pd.concat([read_table(f) for f in snakemake.input.trajectories], ignore_index=True)
    # the SGD SDE is simulated once per (task, eta) and shared by every algorithm (its rows: the control algorithm)
    sgd_sde = traj[traj.model == "sgd_sde"]
    traj = traj[(traj.alpha == 0.5) & traj.model.isin(["discrete", "own_sde"])]
    traj = pd.concat([traj, *(sgd_sde.assign(algorithm=a) for a in snakemake.params.algorithms)])
    # one learning rate per task: the largest, where the models differ most visibly
    traj = traj[traj.eta == traj.groupby("task").eta.transform("max")]
    tasks, algorithms = snakemake.params.tasks, snakemake.params.algorithms
    stats, marks = ["grad_norm_plus_norm", "loss"], {}
    fig, axes = plt.subplots(
        len(tasks) * 2, len(algorithms), figsize=(3.4 * len(algorithms), 2.2 * 2 * len(tasks)), squeeze=False
    )
    for i, task in enumerate(tasks):
        for k, statistic in enumerate(stats):
            for j, algorithm in enumerate(algorithms):
                ax = axes[2 * i + k, j]
                sub = traj[(traj.task == task) & (traj.algorithm == algorithm) & (traj.statistic == statistic)]
                marked = marks[f"{task}, {algorithm}, {statistic}"] = draw_trajectories(ax, sub, MODELS)
                eta, rho = first(sub.eta, float("nan")), first(sub[sub.model == "own_sde"].rho, float("nan"))
                ax.set_title(f"{task}, {get(algorithm).label}, eta={eta:g}, rho={rho:.3g}", fontsize=8)
                ax.set_ylabel("E |grad f| + |x|" if statistic == "grad_norm_plus_norm" else "E f")
                ax.set_xlabel("time t = k eta")
                if i == k == j == 0 or marked:
                    legend(ax, fontsize=7 if i == k == j == 0 else 5)
    log_marks(log, marks)
    finish(
        fig,
        "Trajectories: discrete optimizer vs its own SDE vs the SGD SDE (SDEs: Richardson mean over paths, +-2 s.e.)",
    )
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)
