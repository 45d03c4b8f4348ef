"""Figure quadratic_stationary: stationary E f against rho, one panel per Hessian scale, closed forms overlaid."""

import matplotlib.pyplot as plt
import seaborn as sns
from matplotlib.lines import Line2D

from samsde_workflow.io import read_table
from samsde_workflow.logs import rule_logging
from samsde_workflow.plotting import PALETTE, save_figure, set_style

MARKERS = {"discrete": "o", "own_sde": "s", "own_sde_exact": "^"}
MODEL_LABELS = {
    "discrete": "discrete algorithm",
    "own_sde": "own SDE (first_order)",
    "own_sde_exact": "USAM SDE (exact)",
}
THEORY_STYLES = {"theory_discrete": "-", "theory_sde_first_order": "--", "theory_sde_exact": ":"}
THEORY_LABELS = {
    "theory_discrete": "closed form: discrete USAM",
    "theory_sde_first_order": "closed form: USAM SDE, first_order",
    "theory_sde_exact": "closed form: USAM SDE, exact (paper)",
}
ALGORITHM_ORDER = ["sgd", "usam", "sam", "dnsam"]

with rule_logging(snakemake) as log:  # noqa: F821
    set_style()
    table = read_table(snakemake.input.table).query("statistic == 'stationary_loss'")  # noqa: F821
    simulated = table[~table.model.str.startswith("theory")]
    theory = table[table.model.str.startswith("theory")]
    scales = sorted(table.scale.unique())
    rho_max = table.rho.max()
    algorithms = [a for a in ALGORITHM_ORDER if a in set(simulated.algorithm)]
    # dodge the markers of different (algorithm, model) pairs so that overlapping points stay visible
    pairs = sorted({(a, m) for a, m in zip(simulated.algorithm, simulated.model, strict=True)},
                   key=lambda p: (ALGORITHM_ORDER.index(p[0]), list(MARKERS).index(p[1])))  # fmt: skip
    dodge = {p: (i - (len(pairs) - 1) / 2) * 0.006 * rho_max for i, p in enumerate(pairs)}

    fig, axes = plt.subplots(1, len(scales), figsize=(4.2 * len(scales), 4.2), sharey=True, squeeze=False)
    for ax, scale in zip(axes[0], scales, strict=True):
        cur = theory[theory.scale == scale]
        sns.lineplot(data=cur, x="rho", y="mean", style="model", style_order=list(THEORY_STYLES),
                     dashes={k: "" if v == "-" else (4, 2) if v == "--" else (1, 2) for k, v in THEORY_STYLES.items()},
                     color=PALETTE["theory"], ax=ax, legend=False, linewidth=1.3)  # fmt: skip
        sgd_level = cur[(cur.rho == 0) & (cur.model == "theory_sde_first_order")]["mean"]
        if len(sgd_level):
            ax.axhline(float(sgd_level.iloc[0]), color=PALETTE["sgd"], linewidth=0.8, alpha=0.6)
        for (alg, model), offset in dodge.items():
            pts = simulated[(simulated.scale == scale) & (simulated.algorithm == alg) & (simulated.model == model)]
            if pts.empty:
                continue
            filled = model == "discrete"
            ax.errorbar(pts.rho + offset, pts["mean"], yerr=1.96 * pts["sem"], fmt=MARKERS[model], markersize=5,
                        color=PALETTE[alg], markerfacecolor=PALETTE[alg] if filled else "white",
                        capsize=2, linewidth=1, zorder=3)  # fmt: skip
        ax.set_title(f"Hessian scale {scale:g}")
        ax.set_xlabel(r"$\rho$")
        ax.set_yscale("log")
    axes[0, 0].set_ylabel(r"stationary $E\,f$ (time and path average)")

    handles = [Line2D([], [], color=PALETTE[a], marker="o", linestyle="", label=a.upper()) for a in algorithms]
    handles += [Line2D([], [], color="#444444", marker=MARKERS[m], linestyle="", label=MODEL_LABELS[m],
                       markerfacecolor="#444444" if m == "discrete" else "white")
                for m in MARKERS if m in set(simulated.model)]  # fmt: skip
    handles += [Line2D([], [], color=PALETTE["theory"], linestyle=s, label=THEORY_LABELS[m])
                for m, s in THEORY_STYLES.items() if m in set(theory.model)]  # fmt: skip
    handles.append(Line2D([], [], color=PALETTE["sgd"], alpha=0.6, label=r"SGD SDE level $\eta\sigma^2 d/4$"))
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    eta, sigma = table.eta.iloc[0], table.sigma.iloc[0]
    fig.suptitle(f"Stationary loss on a quadratic, $\\eta$={eta:g}, $\\sigma$={sigma:g} (reconstructed setting)")
    fig.tight_layout()
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)  # noqa: F821
    log.info("figure written: %s", snakemake.output.png)  # noqa: F821
