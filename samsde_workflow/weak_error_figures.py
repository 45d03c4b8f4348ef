"""The weak-error panel shared by the figures weak_error (Gaussian noise) and weak_error_minibatch: relative weak
error vs eta (log-log) of each SDE model with its paired-bootstrap band, hollow markers where a point is not in the
slope fit (the error the other etas predict for it is within 3x its noise floor), and for the panel's reference
model the solver's bias E_r - E_2r and 3x the floor.
Diverged runs get a red "x" at their eta and a text in the panel; a panel without rows says "no data"."""

from __future__ import annotations

import numpy as np

from samsde_workflow.plotting import PALETTE, finite, mark_diverged, mark_panel, numbers

STATISTICS = {"grad_norm_plus_norm": ("-", "g"), "loss": ("--", "f")}


def _slope(fits, index) -> str:
    fit = fits.loc[index] if index in fits.index else None
    return f"{fit.slope:.2f}" if fit is not None and fit.usable and np.isfinite(fit.slope) else "n/a"


def draw_weak_error(ax, sub, fits, key, models: dict, statistics=STATISTICS, reference="own_sde") -> list[str]:
    """One panel for the rows ``sub`` of one (task, algorithm, scaling) ``key``; ``models`` maps model -> label;
    ``fits`` is the slope table indexed by (task, algorithm, scaling, model, statistic).  Returns the panel's marks
    (what it could not draw: diverged etas, unresolved points, no data)."""
    sub = sub[sub.model.isin(list(models)) & sub.statistic.isin(list(statistics))].astype({"diverged": bool})
    # filled: the point entered the slope fit (the other etas predict it above 3x its floor); older tables: resolved
    sub = sub.assign(fitted=(sub.in_fit if "in_fit" in sub else sub.resolved).astype(bool))
    hollow = False
    for (model, label), (statistic, (style, short)) in ((m, t) for m in models.items() for t in statistics.items()):
        d = sub[(sub.model == model) & (sub.statistic == statistic) & ~sub.diverged].sort_values("eta")
        d = d[finite(d.rel_error)]
        if d.empty:
            continue
        color = PALETTE[model]
        slope = _slope(fits, (*key, model, statistic))
        ax.plot(d.eta, d.rel_error, style, color=color, label=f"{label}, {short} (slope {slope})")
        ax.plot(d.eta[d.fitted], d.rel_error[d.fitted], "o", color=color, ms=4)
        ax.plot(d.eta[~d.fitted], d.rel_error[~d.fitted], "o", mfc="white", color=color, ms=4)
        hollow |= bool((~d.fitted).any())
        ax.fill_between(d.eta, d.ci_low, d.ci_high, color=color, alpha=0.15, lw=0)
        if model == reference and statistic == next(iter(statistics)):
            ax.plot(d.eta, d.solver_error, ":", color=PALETTE["theory"], lw=1, label=f"EM bias E_r - E_2r, {short}")
            ax.plot(d.eta, 3 * d.floor, "-", color="#bbbbbb", lw=1, label=f"3 x noise floor, {short}")
            e = np.array([d.eta.min(), d.eta.max()])
            for power, guide in ((1.0, ":"), (0.5, "--")):
                ax.plot(e, d.rel_error.min() * (e / e[0]) ** power * 0.5, guide, color="black", lw=0.6, alpha=0.6)
    if hollow:
        ax.plot([], [], "o", mfc="white", color="#555555", ms=4, label="hollow: not in the fit (predicted < 3x floor)")
    ok = sub[~sub.diverged & finite(sub.rel_error)]
    unresolved = len(ok) and not ok.fitted.any()
    return mark_runs(ax, sub, ["not resolved: no point predicted above 3x its floor" if unresolved else ""])


def mark_runs(ax, sub, extra=()) -> list[str]:
    """Mark in the panel what its error rows ``sub`` cannot show: a red "x" (in the legend) and a text at the etas
    of diverged runs, "no data" without rows, "no finite error" when no row has one; returns the marks."""
    sub = sub.astype({"diverged": bool})
    bad, ok = sub[sub.diverged], sub[~sub.diverged & finite(sub.rel_error)]
    mark_diverged(ax, bad.eta)
    if ok.empty:
        ax.set_yticks([])  # no error to read off
    marks = [f"diverged at eta = {numbers(bad.eta)}" if len(bad) else ""]
    marks.append("no data" if sub.empty else ("no finite error" if ok.empty else ""))
    return mark_panel(ax, [*marks, *extra])


def draw_trajectories(ax, sub, models: dict) -> list[str]:
    """One panel of the figure trajectories: each model's path mean +- 2 s.e. over time, from the rows ``sub`` of
    one (task, algorithm, statistic) at one eta.  A model whose finite paths fall below its starting count (diverged
    paths: their records are NaN) gets a red "x" at the first such time and a text; returns the panel's marks."""
    marks, lost_at = [], []
    for model, label in models.items():
        d = sub[sub.model == model].sort_values("time")
        if d.empty:
            continue
        d = d.assign(mean=d["mean"].where(d.n_paths > 0))  # no path left: no mean (the table's summary writes 0)
        ax.plot(d.time, d["mean"], color=PALETTE[model], label=label, lw=1.2)
        ax.fill_between(
            d.time, d["mean"] - 2 * d["sem"], d["mean"] + 2 * d["sem"], color=PALETTE[model], alpha=0.2, lw=0
        )
        lost = d[d.n_paths < d.n_paths.max()]
        if len(lost):
            lost_at.append(lost.time.min())
            left = f"{int(d.n_paths.iloc[-1])} of {int(d.n_paths.max())}"
            marks.append(f"{label}: paths diverge from t = {lost.time.min():g} ({left} left)")
    mark_diverged(ax, lost_at)
    return mark_panel(ax, [*marks, "" if len(sub) else "no data"])


def draw_exact(ax, exact, models: dict) -> list[str]:
    """The exact anchor's panel (samsde.experiments.minibatch_exact): each SDE's exact relative weak error vs eta
    (g = f, no Monte Carlo: no band), the local slope at the smallest eta in the legend, eta^1 and eta^0.5 guides
    through the smallest eta's own-SDE error.  Diverged etas get a red "x"; returns the panel's marks."""
    exact = exact[exact.model.isin(list(models))].astype({"diverged": bool})
    for model, label in models.items():
        d = exact[(exact.model == model) & ~exact.diverged].sort_values("eta")
        d = d[finite(d.rel_error)]
        if d.empty:
            continue
        slope = f"{d.local_slope.iloc[0]:.2f}" if len(d) > 1 and np.isfinite(d.local_slope.iloc[0]) else "n/a"
        ax.plot(d.eta, d.rel_error, "o-", ms=3, color=PALETTE[model], label=f"{label} (slope {slope} at smallest eta)")
    ok = exact[~exact.diverged & finite(exact.rel_error)]
    if len(ok):
        e = np.array([ok.eta.min(), ok.eta.max()])
        base = ok[ok.eta == e[0]].rel_error.min() * 0.5
        for power, guide in ((1.0, ":"), (0.5, "--")):
            ax.plot(e, base * (e / e[0]) ** power, guide, color="black", lw=0.6, alpha=0.6, label=f"eta^{power:g}")
    return mark_runs(ax, exact)
