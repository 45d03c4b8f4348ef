"""Figure svag_convergence: SVAG_l's coupled weak distance to the own SDE against l, one panel per task and test
function (95% bootstrap intervals, 3x the paired floor dashed, a slope -1 guide, the fitted slope in the legend)."""

import matplotlib.pyplot as plt
import numpy as np

from samsde.algorithms import get
from samsde.weak_error import FLOOR_FACTOR
from samsde_workflow.job import Job
from samsde_workflow.plotting import PALETTE, finish, first, legend, log_axes, save_figure, set_style, slope_text

LABELS = {"loss": "g = f", "grad_norm_plus_norm": r"g = $|\nabla f| + |x|$"}

with Job(snakemake) as job:
    set_style()
    errors, slopes = job.read("errors"), job.read("slopes")
    errors, slopes = errors[errors.reference == "richardson"], slopes[slopes.reference == "richardson"]
    tasks, statistics = list(dict.fromkeys(errors.task)), [g for g in LABELS if g in set(errors.statistic)]
    fig, axes = plt.subplots(len(statistics), len(tasks), figsize=(4.2 * len(tasks), 3.4 * len(statistics)),
                             squeeze=False)  # fmt: skip
    for row, g in enumerate(statistics):
        for col, task in enumerate(tasks):
            ax = axes[row][col]
            for alg, cur in errors[(errors.task == task) & (errors.statistic == g)].groupby("algorithm", sort=False):
                cur = cur.sort_values("l")
                fit = slope_text(slopes[(slopes.task == task) & (slopes.statistic == g) & (slopes.algorithm == alg)])
                label = f"{get(alg).label} ($\\rho$={cur.rho.iloc[0]:.3g}): {fit}"
                yerr = np.clip([cur.distance - cur.ci_low, cur.ci_high - cur.distance], 0, None)
                ax.errorbar(cur.l, cur.distance, yerr=yerr, marker="o", color=PALETTE[alg], label=label, capsize=2)
                ax.plot(cur.l, FLOOR_FACTOR * cur.floor, ls="--", color=PALETTE[alg], alpha=0.6, lw=1)
                start = cur.iloc[0]
                ax.plot(cur.l, start.distance * start.l / cur.l, ls=":", color="#666666", lw=1)
            log_axes(ax)
            ls = sorted(set(errors[errors.task == task].l))
            ax.set_xticks(ls, [str(v) for v in ls])
            ax.set_xlabel("amplification l")
            ax.set_ylabel("weak distance to the own SDE")
            eta = first(errors[errors.task == task].eta, float("nan"))
            ax.set_title(f"{task}, {LABELS[g]} ($\\eta$={eta:g})", fontsize=9)
            legend(ax, fontsize=7, loc="lower left")
    finish(fig, "SVAG_l vs the own SDE (coupled): distance ~ 1/l (dotted: slope -1; dashed: 3x paired floor)")
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)
    job.log.info("figure written: %s", snakemake.output.png)
