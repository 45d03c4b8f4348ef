"""Figure quadratic_stationary: stationary E f vs rho per Hessian scale, closed forms overlaid, diverged counted."""

import matplotlib.pyplot as plt
import seaborn as sns
from matplotlib.lines import Line2D

from samsde.algorithms import ALGORITHMS, get
from samsde.experiments.sweep import baseline
from samsde_workflow.job import Job
from samsde_workflow.plotting import PALETTE, first, log_axes, log_marks, mark_table, save_figure, set_style

MARKERS = {"discrete": "o", "own_sde": "s", "own_sde_exact": "^"}
MODEL_LABELS = dict(discrete="discrete algorithm", own_sde="own SDE (first_order)", own_sde_exact="USAM SDE (exact)")
THEORY = {  # closed form: (line style, seaborn dashes, legend)
    "theory_discrete": ("-", "", "closed form: discrete USAM"),
    "theory_sde_first_order": ("--", (4, 2), "closed form: USAM SDE, first_order"),
    "theory_sde_exact": (":", (1, 2), "closed form: USAM SDE, exact (paper)"),
}
ORDER, GREY = list(ALGORITHMS), "#444444"
THEORY_LINES = dict(x="rho", y="mean", style="model", style_order=list(THEORY), legend=False, linewidth=1.3)
THEORY_LINES.update(dashes={m: style[1] for m, style in THEORY.items()}, color=PALETTE["theory"])
POINT = dict(markersize=5, capsize=2, linewidth=1, zorder=3)
face = lambda model, colour: colour if model == "discrete" else "white"  # filled: discrete, open: an SDE
point = lambda c, marker, mfc, label: Line2D([], [], color=c, marker=marker, linestyle="", mfc=mfc, label=label)
line = lambda c, style, label, **kw: Line2D([], [], color=c, linestyle=style, label=label, **kw)

with Job(snakemake) as job:
    set_style()
    table = job.read("table").query("statistic == 'stationary_loss'")
    theory, simulated, present = table[table.model.isin(THEORY)], table[~table.model.isin(THEORY)], set(table.model)
    scales, sgd = sorted(table.scale.unique()), baseline()
    algorithms = [a for a in ORDER if a in set(simulated.algorithm)]
    # dodge the markers of different (algorithm, model) pairs so that overlapping points stay visible
    rank = lambda p: (ORDER.index(p[0]), list(MARKERS).index(p[1]))
    pairs = sorted(set(zip(simulated.algorithm, simulated.model, strict=True)), key=rank)
    dodge = {p: (i - (len(pairs) - 1) / 2) * 0.006 * table.rho.max() for i, p in enumerate(pairs)}

    fig, axes = plt.subplots(1, len(scales), figsize=(4.2 * len(scales), 4.2), sharey=True, squeeze=False)
    marks, name = {}, lambda key: f"{get(key[0]).label} {key[1]}"
    for ax, scale in zip(axes[0], scales, strict=True):
        cur = theory[theory.scale == scale]
        sns.lineplot(data=cur, ax=ax, **THEORY_LINES)
        for level in cur[(cur.rho == 0) & (cur.model == "theory_sde_first_order")]["mean"].iloc[:1]:
            ax.axhline(level, color=PALETTE[sgd], linewidth=0.8, alpha=0.6)  # the SGD SDE's level
        for (alg, model), offset in dodge.items():
            pts = simulated[(simulated.scale == scale) & (simulated.algorithm == alg) & (simulated.model == model)]
            c, yerr = PALETTE[alg], 1.96 * pts["sem"]
            ax.errorbar(pts.rho + offset, pts["mean"], yerr, fmt=MARKERS[model], color=c, mfc=face(model, c), **POINT)
        ax.set(title=f"Hessian scale {scale:g}", xlabel=r"$\rho$")
        log_axes(ax, x=False)  # stays linear without a positive mean (every path diverged)
        marks[ax.get_title()] = mark_table(ax, simulated[simulated.scale == scale], ("algorithm", "model"), name)
    axes[0, 0].set_ylabel(r"stationary $E\,f$ (time and path average)")

    handles = [point(PALETTE[a], "o", PALETTE[a], get(a).label) for a in algorithms]
    handles += [point(GREY, MARKERS[m], face(m, GREY), MODEL_LABELS[m]) for m in MARKERS if m in present]
    handles += [line(PALETTE["theory"], THEORY[m][0], THEORY[m][2]) for m in THEORY if m in present]
    handles.append(line(PALETTE[sgd], "-", r"SGD SDE level $\eta\sigma^2 d/4$", alpha=0.6))
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    eta, sigma = first(table.eta, float("nan")), first(table.sigma, float("nan"))
    fig.suptitle(f"Stationary loss on a quadratic, $\\eta$={eta:g}, $\\sigma$={sigma:g} (reconstructed setting)")
    fig.tight_layout()
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)
    log_marks(job.log, marks)
