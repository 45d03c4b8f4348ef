"""Figure flat_minima: the two-well landscape, where each start ends (SGD vs SAM), and the flat-basin share vs rho."""

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from samsde import make_task
from samsde_workflow.io import read_table
from samsde_workflow.logs import rule_logging
from samsde_workflow.plotting import PALETTE, save_figure, set_style

ALGORITHM_ORDER = ["sgd", "usam", "sam", "dnsam"]
BASIN_COLOURS = {1: "#1f78b4", 0: "#e31a1c"}  # flat, sharp (or diverged)

with rule_logging(snakemake) as log:  # noqa: F821
    set_style()
    s = snakemake.params.section["flat_minima"]  # noqa: F821
    table = read_table(snakemake.input.table)  # noqa: F821
    paths = read_table(snakemake.input.paths)  # noqa: F821
    task = make_task("two_basin", **s["params"])
    box = s["init_box"]
    shares = table[table.model != "initial"]
    algorithms = [a for a in ALGORITHM_ORDER if a in set(shares.algorithm)]
    rho_max = shares.rho.max()
    showcase = next((a for a in ("sam", "usam", "dnsam") if a in algorithms), "sgd")

    fig, axes = plt.subplots(1, 4, figsize=(17, 4.3), gridspec_kw={"width_ratios": [1, 1, 1, 1.35]})
    # (a) the landscape (first two coordinates, the others at 0) and the box of initial points
    lim = max(box, s["params"]["center"] + 2 * s["params"]["flat_width"]) * 1.1
    g = np.linspace(-lim, lim, 241)
    xx, yy = np.meshgrid(g, g)
    pts = np.zeros((xx.size, task.dim))
    pts[:, 0] = xx.ravel()
    if task.dim > 1:
        pts[:, 1] = yy.ravel()
    f = task.loss(torch.as_tensor(pts)).numpy().reshape(xx.shape)
    cs = axes[0].contourf(xx, yy, f, levels=20, cmap="mako")
    fig.colorbar(cs, ax=axes[0], fraction=0.046, pad=0.03, label="f")
    axes[0].add_patch(Rectangle((-box, -box), 2 * box, 2 * box, fill=False, color="white", linestyle="--"))
    c = s["params"]["center"]
    for label, x in (("sharp", -c), ("flat", c)):
        axes[0].annotate(label, (x, 0), color="white", ha="center", va="bottom", xytext=(0, 8),
                         textcoords="offset points")  # fmt: skip
    axes[0].set_aspect("equal")
    axes[0].set_title("landscape; dashes: initial box")

    # (b, c) where each initial point ends: SGD and the showcase algorithm at the largest rho
    for ax, (alg, rho) in zip(axes[1:3], [("sgd", 0.0), (showcase, rho_max)], strict=True):
        cur = paths[(paths.algorithm == alg) & (paths.model == "discrete") & np.isclose(paths.rho, rho)]
        ax.scatter(cur.x0_1, cur.x0_2, c=cur.flat.map(BASIN_COLOURS), s=4, linewidths=0)
        ax.set_xlim(-box, box)
        ax.set_ylim(-box, box)
        ax.set_aspect("equal")
        share = cur.flat.mean()
        ax.set_title(f"{alg.upper()}" + (f" ($\\rho$={rho:g})" if alg != "sgd" else "") + f": {share:.0%} end flat")
        ax.set_xlabel("initial $x_1$")
    axes[1].set_ylabel("initial $x_2$")
    basin_handles = [Line2D([], [], color=BASIN_COLOURS[k], marker="o", linestyle="", label=f"ends in {name} basin")
                     for k, name in ((1, "flat"), (0, "sharp"))]  # fmt: skip
    axes[2].legend(handles=basin_handles, loc="lower right", fontsize="small", framealpha=0.9)

    # (d) share in the flat basin against rho, every algorithm starts from SGD's value at rho = 0
    ax = axes[3]
    sgd = shares[shares.algorithm == "sgd"]
    for alg in algorithms:
        for model, marker, face in (("discrete", "o", None), ("own_sde", "s", "white")):
            cur = shares[(shares.model == model) & ((shares.algorithm == alg) | (shares.algorithm == "sgd"))]
            if alg != "sgd":
                cur = cur[(cur.algorithm == alg) | (cur.rho == 0)]
            cur = cur.sort_values("rho")
            if cur.empty or (alg == "sgd" and len(algorithms) > 1):
                continue
            ax.errorbar(cur.rho, cur["mean"], yerr=[cur["mean"] - cur.ci_low, cur.ci_high - cur["mean"]],
                        color=PALETTE[alg], marker=marker, markerfacecolor=face or PALETTE[alg], capsize=2,
                        linestyle="-" if model == "discrete" else "--", markersize=5)  # fmt: skip
    initial = table[table.model == "initial"]["mean"]
    if len(initial):
        ax.axhline(float(initial.iloc[0]), color=PALETTE["theory"], linestyle=":", linewidth=1)
    sns.despine(ax=ax)
    ax.set_xlabel(r"$\rho$ ($\rho$ = 0: SGD)")
    ax.set_ylabel("share of paths ending in the flat basin")
    ax.set_title("flat-basin share (95% Wilson intervals)")
    handles = [Line2D([], [], color=PALETTE[a], marker="o", label=a.upper()) for a in algorithms if a != "sgd"]
    handles += [
        Line2D([], [], color="#444444", marker="o", label="discrete"),
        Line2D([], [], color="#444444", marker="s", markerfacecolor="white", linestyle="--", label="own SDE"),
        Line2D([], [], color=PALETTE["theory"], linestyle=":", label="share of starts with $x_1 > 0$"),
    ]
    ax.legend(handles=handles, fontsize="small", loc="lower right", bbox_to_anchor=(1.0, 0.06))  # fmt: skip
    fig.suptitle(f"Flat vs sharp minimum, $\\eta$={s['eta']:g}, $\\sigma$={s['sigma']:g}, T={s['horizon']:g} "
                 "(reconstructed illustration, tuned landscape)")  # fmt: skip
    fig.tight_layout()
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)  # noqa: F821
    log.info("figure written: %s", snakemake.output.png)  # noqa: F821
