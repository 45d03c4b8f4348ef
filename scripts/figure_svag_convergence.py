"""Figure svag_convergence: per task and test function, SVAG_l's coupled weak distance to SVAG_2l (solid, the order-1
claim) and to the paper's SDE (dash-dot) against l (95% bootstrap intervals, 3x the paired floor dashed, a slope -1
guide); last row, per task: the gap between SVAG's limit and the paper's SDE against rho, with its 3x floor and a
rho^2 guide (open markers: not resolved)."""

import matplotlib.pyplot as plt
import numpy as np

from samsde.algorithms import get
from samsde.weak_error import FLOOR_FACTOR
from samsde_workflow.job import Job
from samsde_workflow.plotting import PALETTE, finish, log_axes, save_figure, set_style

LABELS = {"loss": "g = f", "grad_norm_plus_norm": r"g = $|\nabla f| + |x|$"}
MARKERS = {"loss": "o", "grad_norm_plus_norm": "s"}
CI = ["slope", "ci_low", "ci_high"]


def interval(value: float, low: float, high: float) -> str:
    return f"{value:.2f} [{low:.2f}, {high:.2f}]" if np.isfinite(value) else "not fitted"


with Job(snakemake) as job:
    set_style()
    errors, slopes, gap, gap_slopes = (job.read(k) for k in ("errors", "slopes", "gap", "gap_slopes"))
    tasks, statistics = list(dict.fromkeys(errors.task)), [g for g in LABELS if g in set(errors.statistic)]
    fits = slopes.set_index(["task", "statistic", "algorithm", "reference"])  # a missing fit draws "not fitted"
    fig, axes = plt.subplots(len(statistics) + 1, len(tasks), figsize=(4.4 * len(tasks), 3.4 * (len(statistics) + 1)),
                             squeeze=False)  # fmt: skip
    for row, g in enumerate(statistics):
        for col, task in enumerate(tasks):
            ax, cell = axes[row][col], errors[(errors.task == task) & (errors.statistic == g)]
            for (alg, ref), cur in cell[cell.reference != "fine"].groupby(["algorithm", "reference"]):
                cur, self_ref = cur.sort_values("l"), ref == "self"
                fit = fits.loc[(task, g, alg, ref), CI] if (task, g, alg, ref) in fits.index else [np.nan] * 3
                label = f"{get(alg).label} vs {'SVAG_2l' if self_ref else 'paper SDE'}: {interval(*fit)}"
                yerr = np.clip([cur.distance - cur.ci_low, cur.ci_high - cur.distance], 0, None)
                ax.errorbar(cur.l, cur.distance, yerr=yerr, marker="o" if self_ref else "x", ls="-" if self_ref else
                            "-.", color=PALETTE[alg], alpha=1 if self_ref else 0.5, label=label, capsize=2)  # fmt: skip
                if self_ref:
                    ax.plot(cur.l, FLOOR_FACTOR * cur.floor, ls="--", color=PALETTE[alg], alpha=0.6, lw=1)
                    ax.plot(cur.l, cur.distance.iloc[0] * cur.l.iloc[0] / cur.l, ls=":", color="#666666", lw=1)
            log_axes(ax)
            ax.set_xticks(sorted(set(cell.l)), [str(v) for v in sorted(set(cell.l))])
            ax.set(xlabel="amplification l", ylabel="weak distance", title=f"{task}, {LABELS[g]}")
            ax.legend(fontsize=6, loc="lower left")
    for col, task in enumerate(tasks):
        ax, cell = axes[-1][col], gap[gap.task == task] if len(gap) else gap
        for (alg, g), cur in cell.groupby(["algorithm", "statistic"]):
            cur = cur.sort_values("rho")
            fit = gap_slopes[(gap_slopes.task == task) & (gap_slopes.algorithm == alg) & (gap_slopes.statistic == g)]
            slope = interval(*fit[CI].iloc[0]) if len(fit) else "not fitted"
            ax.plot(cur.rho, cur.gap, ls="-", color=PALETTE[alg], label=f"{get(alg).label}, {LABELS[g]}: {slope}")
            face = np.where(cur.resolved.astype(bool), PALETTE[alg], "none")
            ax.scatter(cur.rho, cur.gap, marker=MARKERS[g], color=face, edgecolor=PALETTE[alg])
            ax.plot(cur.rho, FLOOR_FACTOR * cur.floor, ls="--", color=PALETTE[alg], alpha=0.5, lw=1)
            ax.plot(cur.rho, cur.gap.iloc[-1] * (cur.rho / cur.rho.iloc[-1]) ** 2, ls=":", color="#666666", lw=1)
        if len(cell):
            log_axes(ax)
            rhos = sorted(set(cell.rho))
            ax.set_xticks(rhos, [f"{v:.2g}" for v in rhos])
            ax.legend(fontsize=6, loc="upper left")
        else:
            ax.text(0.5, 0.5, "no gap measured", ha="center", va="center", transform=ax.transAxes)
        ax.set(
            xlabel=r"$\rho$", ylabel="SVAG limit - paper SDE", title=f"{task}: gap against $\\rho$ (dotted: $\\rho^2$)"
        )
    finish(fig, "SVAG_l coupled: distance to SVAG_2l ~ 1/l (dotted: slope -1; dashed: 3x paired floor); gap ~ rho^2")
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)
    job.log.info("figure written: %s", snakemake.output.png)
