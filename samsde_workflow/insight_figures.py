"""Panels of the insight figures whose scripts would not fit a screenful (saddle, flat_minima).

Each function draws on a figure it is given, from the tables of its experiment (samsde.experiments); algorithms are
ordered as in the registry and named by their labels.  A panel draws what its rows hold and marks the rest (diverged
paths, no data: samsde_workflow.plotting); a figure function returns the figure and its marks, panel -> texts.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from samsde.algorithms import ALGORITHMS, get
from samsde.algorithms.dnsam import DNSAM
from samsde.algorithms.sam import SAM
from samsde.algorithms.usam import USAM
from samsde.experiments.sweep import baseline
from samsde.tasks import make_task
from samsde_workflow.plotting import PALETTE, first, legend, log_axes, mark_panel, mark_table

GREY = "#444444"
STAY_MAP = dict(vmin=0, vmax=1, cmap="viridis", annot=True, fmt=".2f", annot_kws={"size": 7}, cbar=False)
BASIN_COLOURS = {1: "#1f78b4", 0: "#e31a1c"}  # flat, sharp (or diverged)
#: flat_minima's panel (c) shows the first of these that was run
SHOWCASE = (SAM.name, USAM.name, DNSAM.name)


def registry_order(algorithms) -> list[str]:
    """The registered algorithms among ``algorithms``, in the registry's order."""
    present = set(algorithms)
    return [a for a in ALGORITHMS if a in present]


def category_position(value: float, categories) -> float:
    """Position of ``value`` on a heat map axis whose cells hold the sorted ``categories`` (log-interpolated)."""
    return float(np.interp(np.log(value), np.log(categories), np.arange(len(categories)))) + 0.5


# ---- saddle ------------------------------------------------------------------------------------------------------


def label(algorithm: str) -> str:
    return get(algorithm).label


def saddle_distance(ax, traj: pd.DataFrame, algorithms: list[str]) -> list[str]:
    """Distance over time: median and interquartile band over paths (the mean is dominated by escaped paths)."""
    lam, rho = first(traj["lambda"], np.nan), traj[traj.algorithm.map(lambda a: get(a).perturbs).astype(bool)].rho.max()
    sns.lineplot(
        data=traj,
        x="time",
        y="median",
        hue="algorithm",
        hue_order=algorithms,
        style="model",
        dashes={"discrete": "", "own_sde": (4, 2)},
        palette=PALETTE,
        ax=ax,
        legend=False,
    )
    for alg in algorithms:
        cur = traj[(traj.algorithm == alg) & (traj.model == "discrete")]
        ax.fill_between(cur.time, cur.q25, cur.q75, color=PALETTE[alg], alpha=0.15, linewidth=0)
    log_axes(ax, x=False)  # stays linear without a positive distance (every path diverged)
    ax.set_xlabel("time t = k eta")
    ax.set_ylabel("distance to the saddle (median, IQR)")
    ax.set_title(f"trajectories at $\\lambda$={lam:g}, $\\rho$={rho:g} (SGD: $\\rho$=0)")
    handles = [Line2D([], [], color=PALETTE[a], label=get(a).label) for a in algorithms]
    handles += [
        Line2D([], [], color=GREY, label="discrete"),
        Line2D([], [], color=GREY, dashes=(4, 2), label="own SDE"),
    ]
    ax.legend(handles=handles, ncol=2, fontsize="small", loc="upper left")
    return mark_table(ax, traj[traj.model == "discrete"], name=label)


def saddle_radius(ax, sweep: pd.DataFrame, algorithms: list[str]) -> list[str]:
    """Basin of attraction: the share that stays when starting at factor * rho."""
    for alg in algorithms:
        cur = sweep[sweep.algorithm == alg].sort_values("factor")
        ax.errorbar(
            cur.factor,
            cur["mean"],
            yerr=[cur["mean"] - cur.ci_low, cur.ci_high - cur["mean"]],
            color=PALETTE[alg],
            marker="o",
            markersize=4,
            capsize=2,
            label=get(alg).label,
        )
    ax.axvline(1.0, color=PALETTE["theory"], linestyle="--", linewidth=1)
    ax.set_xlabel(r"start distance / $\rho$")
    ax.set_ylabel("share of paths near the saddle at the end")
    ax.set_ylim(-0.04, 1.04)
    ax.set_title(r"attracting ball of radius $\sim\rho$ (SAM, DNSAM)")
    legend(ax, fontsize="small", loc="center right")
    return mark_table(ax, sweep, name=label)


def saddle_stay_map(ax, grid: pd.DataFrame, algorithm: str, rhos: list[float], lams: list[float], first: bool) -> list:
    """The stay shares over rho x |lambda| with USAM's threshold rho = 1/|lambda|; one column ("any") for an
    algorithm without ascent step, for which rho plays no role (a diverged path counts as escaped)."""
    cur = grid[grid.algorithm == algorithm].assign(abs_lambda=lambda d: d["lambda"].abs())
    ascent = get(algorithm).perturbs
    if cur.empty or (ascent and not rhos):
        ax.set_title(get(algorithm).label)
        return mark_panel(ax, ["no data"])
    if ascent:
        mat = cur.pivot_table(index="abs_lambda", columns="rho", values="mean").reindex(index=lams, columns=rhos)
    else:
        mat = cur.pivot_table(index="abs_lambda", values="mean").reindex(index=lams)
    sns.heatmap(
        mat,
        ax=ax,
        xticklabels=[f"{r:g}" for r in rhos] if ascent else ["any"],
        yticklabels=[f"{v:g}" for v in lams] if first else False,
        **STAY_MAP,
    )
    ax.invert_yaxis()
    if ascent:
        inside = [v for v in lams if min(rhos) <= 1 / v <= max(rhos)]
        ax.plot(
            [category_position(1 / v, rhos) for v in inside],
            [lams.index(v) + 0.5 for v in inside],
            color="white",
            linewidth=2.2,
            linestyle="--",
        )
    ax.set_xlabel(r"$\rho$")
    ax.set_ylabel(r"$|\lambda|$" if first else "")
    ax.set_title(f"{get(algorithm).label}: share near the saddle" if ascent else get(algorithm).label)
    return mark_table(ax, cur, name=label)


def saddle_figure(grid: pd.DataFrame, traj: pd.DataFrame, sweep: pd.DataFrame) -> tuple[plt.Figure, dict]:
    """Trajectories and the basin sweep on top; below, one stay map per ascent algorithm and one for SGD."""
    grid = grid[grid.statistic == "stay_fraction"]
    algorithms = registry_order(traj.algorithm)
    maps = [a for a in algorithms if get(a).perturbs]
    fig = plt.figure(figsize=(4.3 * max(len(maps), 2) + 1.2, 8.2))
    outer = fig.add_gridspec(2, 1, height_ratios=[1, 1.05], hspace=0.42)
    top = outer[0].subgridspec(1, 2, width_ratios=[1.6, 1], wspace=0.25)
    bottom = outer[1].subgridspec(1, len(maps) + 1, width_ratios=[8] * len(maps) + [1.4], wspace=0.12)
    marks = {"distance": saddle_distance(fig.add_subplot(top[0]), traj, algorithms)}
    marks["radius"] = saddle_radius(fig.add_subplot(top[1]), sweep, algorithms)
    rhos = sorted(grid[grid.algorithm.isin(maps)].rho.unique())
    lams = sorted(grid["lambda"].abs().unique())
    for i, alg in enumerate([*maps, baseline()]):
        marks[f"stay map {alg}"] = saddle_stay_map(fig.add_subplot(bottom[i]), grid, alg, rhos, lams, first=i == 0)
    fig.suptitle(
        "Escaping saddles (reconstructed setting); white dashes: USAM threshold "
        r"$\rho = 1/|\lambda|$",
        y=0.995,
    )
    return fig, marks


# ---- flat_minima -------------------------------------------------------------------------------------------------


def flat_minima_landscape(fig, ax, settings: dict) -> None:
    """The two-well landscape (first two coordinates, the others at 0) and the box of initial points."""
    task, box, p = make_task("two_basin", **settings["params"]), settings["init_box"], settings["params"]
    lim = max(box, p["center"] + 2 * p["flat_width"]) * 1.1
    xx, yy = np.meshgrid(np.linspace(-lim, lim, 241), np.linspace(-lim, lim, 241))
    pts = np.zeros((xx.size, task.dim))
    pts[:, 0] = xx.ravel()
    if task.dim > 1:
        pts[:, 1] = yy.ravel()
    f = task.loss(torch.as_tensor(pts)).numpy().reshape(xx.shape)
    cs = ax.contourf(xx, yy, f, levels=20, cmap="mako")
    fig.colorbar(cs, ax=ax, fraction=0.046, pad=0.03, label="f")
    ax.add_patch(Rectangle((-box, -box), 2 * box, 2 * box, fill=False, color="white", linestyle="--"))
    for label, x in (("sharp", -p["center"]), ("flat", p["center"])):
        ax.annotate(label, (x, 0), color="white", ha="center", va="bottom", xytext=(0, 8), textcoords="offset points")
    ax.set_aspect("equal")
    ax.set_title("landscape; dashes: initial box")


def flat_minima_endpoints(ax, paths: pd.DataFrame, algorithm: str, rho: float, box: float) -> None:
    """Each initial point coloured by the basin its path ends in."""
    cur = paths[(paths.algorithm == algorithm) & (paths.model == "discrete") & np.isclose(paths.rho, rho)]
    ax.scatter(cur.x0_1, cur.x0_2, c=cur.flat.map(BASIN_COLOURS), s=4, linewidths=0)
    ax.set_xlim(-box, box)
    ax.set_ylim(-box, box)
    ax.set_aspect("equal")
    at = f" ($\\rho$={rho:g})" if get(algorithm).perturbs else ""
    ax.set_title(f"{get(algorithm).label}{at}: {cur.flat.mean():.0%} end flat")
    ax.set_xlabel("initial $x_1$")


def flat_minima_shares(ax, table: pd.DataFrame, algorithms: list[str]) -> list[str]:
    """The share in the flat basin against rho; every ascent algorithm starts from SGD's value at rho = 0 (a diverged
    path counts as not flat; their count is marked)."""
    shares, sgd = table[table.model != "initial"], baseline()
    for alg in algorithms:
        for model, marker, face in (("discrete", "o", None), ("own_sde", "s", "white")):
            cur = shares[(shares.model == model) & ((shares.algorithm == alg) | (shares.algorithm == sgd))]
            if get(alg).perturbs:
                cur = cur[(cur.algorithm == alg) | (cur.rho == 0)]
            cur = cur.sort_values("rho")
            if cur.empty or (not get(alg).perturbs and len(algorithms) > 1):
                continue
            ax.errorbar(
                cur.rho,
                cur["mean"],
                yerr=[cur["mean"] - cur.ci_low, cur.ci_high - cur["mean"]],
                color=PALETTE[alg],
                marker=marker,
                markerfacecolor=face or PALETTE[alg],
                capsize=2,
                linestyle="-" if model == "discrete" else "--",
                markersize=5,
            )
    initial = table[table.model == "initial"]["mean"]
    if len(initial):
        ax.axhline(float(initial.iloc[0]), color=PALETTE["theory"], linestyle=":", linewidth=1)
    sns.despine(ax=ax)
    ax.set_xlabel(r"$\rho$ ($\rho$ = 0: SGD)")
    ax.set_ylabel("share of paths ending in the flat basin")
    ax.set_title("flat-basin share (95% Wilson intervals)")
    handles = [Line2D([], [], color=PALETTE[a], marker="o", label=get(a).label) for a in algorithms if get(a).perturbs]
    handles += [
        Line2D([], [], color=GREY, marker="o", label="discrete"),
        Line2D([], [], color=GREY, marker="s", markerfacecolor="white", linestyle="--", label="own SDE"),
        Line2D([], [], color=PALETTE["theory"], linestyle=":", label="share of starts with $x_1 > 0$"),
    ]
    ax.legend(handles=handles, fontsize="small", loc="lower right", bbox_to_anchor=(1.0, 0.06))
    return mark_table(ax, table[table.model != "initial"], ("algorithm", "model", "rho"), name=_cell)


def _cell(key) -> str:
    return f"{get(key[0]).label} {key[1]} rho={key[2]:g}"


def flat_minima_figure(table: pd.DataFrame, paths: pd.DataFrame, settings: dict) -> tuple[plt.Figure, dict]:
    """(a) the landscape, (b, c) where each start ends for SGD and for the first of SAM, USAM, DNSAM run at the
    largest rho, (d) the flat-basin share against rho."""
    algorithms = registry_order(table[table.model != "initial"].algorithm)
    showcase = next((a for a in SHOWCASE if a in algorithms), baseline())
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.3), gridspec_kw={"width_ratios": [1, 1, 1, 1.35]})
    flat_minima_landscape(fig, axes[0], settings)
    showcase_rho = table[table.model != "initial"].rho.max()
    for ax, (alg, rho) in zip(axes[1:3], [(baseline(), 0.0), (showcase, showcase_rho)], strict=True):
        flat_minima_endpoints(ax, paths, alg, rho, settings["init_box"])
    axes[1].set_ylabel("initial $x_2$")
    basin_handles = [
        Line2D([], [], color=BASIN_COLOURS[k], marker="o", linestyle="", label=f"ends in {name} basin")
        for k, name in ((1, "flat"), (0, "sharp"))
    ]
    axes[2].legend(handles=basin_handles, loc="lower right", fontsize="small", framealpha=0.9)
    marks = {"flat-basin share": flat_minima_shares(axes[3], table, algorithms)}
    fig.suptitle(
        f"Flat vs sharp minimum, $\\eta$={settings['eta']:g}, $\\sigma$={settings['sigma']:g}, "
        f"T={settings['horizon']:g} (reconstructed illustration, tuned landscape)"
    )
    fig.tight_layout()
    return fig, marks
