"""Figure weak_error: relative weak error vs eta (log-log) per task and rho scaling (rows) and algorithm (columns,
plus the SGD control): own SDE vs SGD SDE on both test functions, the solver's bias and the unresolved points."""

import matplotlib.pyplot as plt
import numpy as np

from samsde.experiments.weak_error import CONTROL
from samsde_workflow.io import read_table
from samsde_workflow.logs import rule_logging
from samsde_workflow.plotting import PALETTE, finish, log_axes, save_figure, set_style

MODELS = {"own_sde": "own SDE", "sgd_sde": "SGD SDE"}
TEST_FUNCTIONS = {"grad_norm_plus_norm": ("-", "g"), "loss": ("--", "f")}


def draw(ax, sub, slopes, key, control):
    """Curves of one panel: each (model, test function) with its band; hollow markers for unresolved points."""
    for model, label in MODELS.items():
        for statistic, (style, short) in TEST_FUNCTIONS.items():
            d = sub[(sub.model == model) & (sub.statistic == statistic)].sort_values("eta")
            if d.empty:
                continue
            ok = d[~d.diverged]
            fit = slopes.loc[(*key, model, statistic)]
            slope = f"{fit.slope:.2f}" if fit.usable else "n/a"
            ax.plot(ok.eta, ok.rel_error, style, color=PALETTE[model], label=f"{label}, {short} (slope {slope})")
            res = ok[ok.resolved]
            ax.plot(res.eta, res.rel_error, "o", color=PALETTE[model], ms=4)
            low = ok[~ok.resolved]
            ax.plot(low.eta, low.rel_error, "o", mfc="white", color=PALETTE[model], ms=4)
            ax.fill_between(ok.eta, ok.ci_low, ok.ci_high, color=PALETTE[model], alpha=0.15, lw=0)
            if model == ("sgd_sde" if control else "own_sde") and statistic == "grad_norm_plus_norm":
                ax.plot(ok.eta, ok.solver_error, ":", color=PALETTE["theory"], lw=1, label="EM bias E_r - E_2r, g")
                ax.plot(ok.eta, 3 * ok.floor, "-", color="#bbbbbb", lw=1, label="3 x noise floor, g")
            bad = d[d.diverged]
            if len(bad):
                y = ok.rel_error.max() if len(ok) else 1.0
                ax.plot(bad.eta, np.full(len(bad), y), "x", color="red", label="diverged")


with rule_logging(snakemake):
    set_style()
    errors = read_table(snakemake.input.errors)
    errors = errors[errors.model.isin(list(MODELS))]
    slopes = read_table(snakemake.input.slopes).set_index(["task", "algorithm", "scaling", "model", "statistic"])
    rows = [(t, s) for t in snakemake.params.tasks for s in snakemake.params.scalings]
    columns = [*snakemake.params.algorithms, CONTROL[0]]
    fig, axes = plt.subplots(
        len(rows), len(columns), figsize=(3.3 * len(columns), 2.6 * len(rows)), squeeze=False, sharex=True
    )
    for i, (task, scaling) in enumerate(rows):
        for j, algorithm in enumerate(columns):
            ax = axes[i, j]
            control = algorithm == CONTROL[0]
            key = (task, *CONTROL) if control else (task, algorithm, scaling)
            sub = errors[(errors.task == task) & (errors.algorithm == key[1]) & (errors.scaling == key[2])]
            draw(ax, sub, slopes, key, control)
            anchor = sub[(sub.statistic == "grad_norm_plus_norm") & ~sub.diverged].sort_values("eta")
            if len(anchor):
                e = np.array([anchor.eta.min(), anchor.eta.max()])
                y0 = anchor.rel_error.min()
                for power, style in ((1.0, ":"), (0.5, "--")):
                    ax.plot(e, y0 * (e / e[0]) ** power * 0.5, style, color="black", lw=0.6, alpha=0.6,
                            label=f"slope {power:g}")  # fmt: skip
            log_axes(ax)
            if control:
                ax.set_title(f"{task}: control, SGD vs SGD SDE", fontsize=9)
            else:
                c, alpha = sub.c.iloc[0], sub.alpha.iloc[0]
                ax.set_title(f"{task}, {algorithm.upper()}, rho = {c:g} eta^{alpha:g}", fontsize=9)
            if j == 0:
                ax.set_ylabel("relative weak error")
            if i == len(rows) - 1:
                ax.set_xlabel("eta")
            ax.legend(fontsize=5, loc="lower right")
    title = (
        "Weak error vs eta: own SDE vs SGD SDE, g = |grad f| + |x| (solid) and g = f (dashed); SDE mean by "
        "Richardson 2E_2r - E_r; hollow: within 3x the noise floor (not fitted); 95% paired-bootstrap bands"
    )
    finish(fig, title)
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)
