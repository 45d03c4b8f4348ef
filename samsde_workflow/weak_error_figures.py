"""The weak-error panel shared by the figures weak_error (Gaussian noise) and weak_error_minibatch: relative weak
error vs eta (log-log) of each SDE model with its paired-bootstrap band, hollow markers where a point is within 3x
its noise floor (not fitted), and for the panel's reference model the solver's bias E_r - E_2r and 3x the floor."""

from __future__ import annotations

import numpy as np

from samsde_workflow.plotting import PALETTE

STATISTICS = {"grad_norm_plus_norm": ("-", "g"), "loss": ("--", "f")}


def draw_weak_error(ax, sub, fits, key, models: dict, statistics=STATISTICS, reference="own_sde") -> None:
    """One panel for the rows ``sub`` of one (task, algorithm, scaling) ``key``; ``models`` maps model -> label;
    ``fits`` is the slope table indexed by (task, algorithm, scaling, model, statistic)."""
    for (model, label), (statistic, (style, short)) in ((m, t) for m in models.items() for t in statistics.items()):
        d = sub[(sub.model == model) & (sub.statistic == statistic) & ~sub.diverged].sort_values("eta")
        if d.empty:
            continue
        fit, color = fits.loc[(*key, model, statistic)], PALETTE[model]
        slope = f"{fit.slope:.2f}" if fit.usable else "n/a"
        ax.plot(d.eta, d.rel_error, style, color=color, label=f"{label}, {short} (slope {slope})")
        ax.plot(d.eta[d.resolved], d.rel_error[d.resolved], "o", color=color, ms=4)
        ax.plot(d.eta[~d.resolved], d.rel_error[~d.resolved], "o", mfc="white", color=color, ms=4)
        ax.fill_between(d.eta, d.ci_low, d.ci_high, color=color, alpha=0.15, lw=0)
        if model == reference and statistic == next(iter(statistics)):
            ax.plot(d.eta, d.solver_error, ":", color=PALETTE["theory"], lw=1, label=f"EM bias E_r - E_2r, {short}")
            ax.plot(d.eta, 3 * d.floor, "-", color="#bbbbbb", lw=1, label=f"3 x noise floor, {short}")
            e = np.array([d.eta.min(), d.eta.max()])
            for power, guide in ((1.0, ":"), (0.5, "--")):
                ax.plot(e, d.rel_error.min() * (e / e[0]) ** power * 0.5, guide, color="black", lw=0.6, alpha=0.6)
    bad = sub[sub.diverged]
    ax.plot(bad.eta, np.full(len(bad), sub.rel_error.max()), "x", color="red", label="diverged" if len(bad) else None)
