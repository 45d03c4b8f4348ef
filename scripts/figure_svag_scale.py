"""Figure svag_scale: discrete SAM, USAM, DNSAM against SVAG_L at d ~ 10^3, the weak error against eta, one panel per
test function (95% bootstrap intervals, 3x the paired floor dashed, SVAG_L/2 vs SVAG_L dotted, a slope 1 guide)."""

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
    statistics = [g for g in LABELS if g in set(errors.statistic)]
    fig, axes = plt.subplots(1, len(statistics), figsize=(4.6 * len(statistics), 3.6), squeeze=False)
    for ax, g in zip(axes[0], statistics, strict=True):
        for alg, cur in errors[errors.statistic == g].groupby("algorithm", sort=False):
            model = cur[cur.comparison == "model"].sort_values("eta")
            resid = cur[cur.comparison == "svag_residual"].sort_values("eta")
            label = f"{get(alg).label}: {slope_text(slopes[(slopes.statistic == g) & (slopes.algorithm == alg)])}"
            yerr = np.clip([model.error - model.ci_low, model.ci_high - model.error], 0, None)
            ax.errorbar(model.eta, model.error, yerr=yerr, marker="o", color=PALETTE[alg], label=label, capsize=2)
            ax.plot(model.eta, FLOOR_FACTOR * model.floor, ls="--", color=PALETTE[alg], alpha=0.6, lw=1)
            ax.plot(resid.eta, resid.error, ls=":", marker="x", color=PALETTE[alg], alpha=0.8, lw=1)
            if len(model):
                last = model.iloc[-1]
                ax.plot(model.eta, last.error * model.eta / last.eta, ls="-", color="#999999", lw=0.6)
        log_axes(ax)
        ax.set_xticks(sorted(set(errors.eta)), [f"{v:g}" for v in sorted(set(errors.eta))])
        ax.set_xlabel(r"learning rate $\eta$ ($\rho = c\sqrt{\eta}$)")
        ax.set_ylabel(f"weak error to SVAG_{first(errors.l, float('nan')):g}")
        ax.set_title(f"{first(errors.task, '')}, d = {first(errors.dim, float('nan')):g}, {LABELS[g]}", fontsize=9)
        legend(ax, fontsize=7, loc="lower right")
    finish(fig, "Discrete vs SVAG_L (coupled): weak error ~ eta (grey: slope 1; dotted: SVAG_L/2 vs SVAG_L)")
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)
    job.log.info("figure written: %s", snakemake.output.png)
