"""Panels of the lecture's figures (sharpness_sb_lb, lr_scaling, sam_vs_sgd, hessian_spectrum, full_batch_sharpness,
bouncing).

Every interval is the 95% Student-t interval over seeds of :func:`samsde.lecture.mean_ci`; a "wide" table has one
row per seed and one column per arm (regime or method).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from samsde.algorithms import get
from samsde.algorithms.sam import SAM
from samsde.algorithms.sgd import SGD
from samsde.experiments.lecture.bouncing import GD
from samsde.lecture import Valley, mean_ci, quadratic_two_cycle_amplitude
from samsde_workflow.plotting import PALETTE, log_axes


def ci_bars(ax, wide: pd.DataFrame, colors: dict[str, str], labels, line_alpha: float = 0.7) -> None:
    """Mean with 95% t-interval per column of ``wide`` (in the order of ``colors``), each seed's values joined by a
    grey line."""
    columns = list(colors)
    for i, column in enumerate(columns):
        mean, _, low, high = mean_ci(wide[column])
        ax.bar(i, mean, color=colors[column], alpha=0.75, width=0.6)
        ax.errorbar(i, mean, yerr=[[mean - low], [high - mean]], color="k", capsize=5, lw=1.2)
    x = np.arange(len(columns))
    ax.plot(x, wide[columns].to_numpy().T, "-o", color="0.35", lw=0.7, ms=3, alpha=line_alpha)
    ax.set_xticks(x, labels)


def method_colors(methods) -> dict[str, str]:
    return {m: PALETTE[m] for m in methods}


def baseline_first(methods) -> list[str]:
    """The methods with the one without a perturbation (SGD) first, the others by name."""
    return sorted(set(methods), key=lambda m: (get(m).perturbs, m))


# ---------------------------------------------------------------------------
# sharpness_sb_lb
# ---------------------------------------------------------------------------


def _mean_se(values, scale=1.0, digits=3) -> str:
    mean, se, _, _ = mean_ci(np.asarray(values) * scale)
    return f"{mean:.{digits}g} ± {se:.1g}"


def _paired_diff(wide, scale=1.0, digits=3) -> str:
    mean, _, low, high = mean_ci((wide.large_batch - wide.small_batch) * scale)
    return f"{mean:+.{digits}g} [{low:+.{digits}g}, {high:+.{digits}g}]"


def sb_lb_rows(runs: pd.DataFrame, keskar: pd.DataFrame) -> list[tuple[str, str, str, str]]:
    """Keskar et al.'s table: (quantity, SB mean ± s.e., LB mean ± s.e., paired LB - SB [95% CI]) per row."""
    sb, lb = (runs[runs.regime == r].iloc[0] for r in ("small_batch", "large_batch"))
    rows = [
        ("batch size", f"{sb.batch_size:d}", f"{lb.batch_size:d}", ""),
        ("updates (same epochs, lr)", f"{sb.steps:d}", f"{lb.steps:d}", ""),
    ]
    measured = [
        ("training accuracy (%)", runs, "train_accuracy", 100, 4),
        ("training loss", runs, "train_loss", 1.0, 3),
        ("test accuracy (%)", runs, "test_accuracy", 100, 4),
    ]
    measured += [
        (f"Keskar sharpness (%), eps0 = {eps0:g}", group, "keskar_pct", 1.0, 3)
        for eps0, group in keskar.groupby("eps0", sort=False)
    ]
    measured.append(("lambda_max (Lanczos)", runs, "lambda_max", 1.0, 3))
    for label, table, column, scale, digits in measured:
        wide = table.pivot(index="seed", columns="regime", values=column)
        rows.append(
            (
                label,
                _mean_se(wide.small_batch, scale, digits),
                _mean_se(wide.large_batch, scale, digits),
                _paired_diff(wide, scale),
            )
        )
    return rows


def table_panel(ax, rows, columns, title: str) -> None:
    """A table of text ``rows`` (row label first) in an empty axis."""
    ax.axis("off")
    table = ax.table(
        cellText=[list(r[1:]) for r in rows],
        rowLabels=[r[0] for r in rows],
        colLabels=columns,
        loc="center",
        cellLoc="center",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(8.5)
    table.scale(0.82, 1.35)
    ax.set_title(title, fontsize=9)


# ---------------------------------------------------------------------------
# sam_vs_sgd
# ---------------------------------------------------------------------------


def rho_sweep_panel(ax, sweep: pd.DataFrame, rho: pd.Series) -> None:
    """Validation error against rho per method, the chosen rho starred."""
    for method, group in sweep.groupby("method", sort=False):
        stats = group.groupby("rho").val_error_pct.agg(["mean", "sem", "count"])
        sem = stats["sem"].fillna(0.0) if stats["count"].min() > 1 else np.zeros(len(stats))
        label = f"{get(method).label} (chosen rho = {rho[method]:g})"
        ax.errorbar(stats.index, stats["mean"], yerr=sem, fmt="o-", color=PALETTE[method], capsize=3, label=label)
        ax.plot(rho[method], stats.loc[rho[method], "mean"], "*", ms=14, color=PALETTE[method], mec="k")
    ax.set_xscale("log")
    ax.set_xlabel("rho")
    ax.set_ylabel("validation error (%)")
    ax.set_title(f"rho sweep on a validation split, mean ± s.e. over {sweep.seed.nunique()} seed(s)", fontsize=9)
    ax.legend(fontsize=8)


def test_error_panel(ax, runs: pd.DataFrame, rho: pd.Series) -> None:
    """Test error per method (95% CI, lines join a seed's runs) and a text box of paired differences to SGD."""
    methods = list(dict.fromkeys(runs.method))
    base = next(m for m in methods if not get(m).perturbs)
    wide = runs.pivot(index="seed", columns="method", values="test_error_pct")[methods]
    ticks = [f"{get(m).label}\nrho = {rho[m]:g}" if get(m).perturbs else get(m).label for m in methods]
    ci_bars(ax, wide, method_colors(methods), ticks, line_alpha=0.6)
    lines = []
    for method in methods:
        mean, se, _, _ = mean_ci(wide[method])
        line = f"{get(method).label:>4}: {mean:.2f} ± {se:.2f}%"
        if get(method).perturbs:
            d, _, d_low, d_high = mean_ci(wide[method] - wide[base])
            line += f"   {get(method).label} - {get(base).label} = {d:+.2f} [{d_low:+.2f}, {d_high:+.2f}] pp"
        lines.append(line)
    ax.set_ylabel("test error (%)")
    ax.set_ylim(0, wide.to_numpy().max() * 1.45)
    box = dict(facecolor="white", alpha=0.85, edgecolor="0.8")
    text = "\n".join(lines)
    ax.text(0.02, 0.97, text, transform=ax.transAxes, va="top", ha="left", fontsize=7.5, family="monospace", bbox=box)
    n_seeds = runs.seed.nunique()
    ax.set_title(f"test error, mean with 95% CI over {n_seeds} seeds (paired: same init and batches)", fontsize=9)


def label_noise_panel(ax, runs: pd.DataFrame) -> None:
    """Paired test-error difference to SGD (mean, 95% t-interval over seeds) against the share of training labels
    replaced at random, per method with a perturbation; SGD's own mean test error written under each share."""
    methods = list(dict.fromkeys(runs.method))
    base = next(m for m in methods if not get(m).perturbs)
    shares = sorted(runs.label_noise.unique())
    offsets = np.linspace(-0.012, 0.012, max(1, len(methods) - 1))
    for offset, method in zip(offsets, [m for m in methods if get(m).perturbs], strict=True):
        rows = []
        for share in shares:
            wide = runs[runs.label_noise == share].pivot(index="seed", columns="method", values="test_error_pct")
            mean, _, low, high = mean_ci(wide[method] - wide[base])
            rows.append((100 * share, mean, low, high))
        x, mean, low, high = (np.array(c) for c in zip(*rows, strict=True))
        ax.errorbar(x + 100 * offset, mean, yerr=[mean - low, high - mean], fmt="o-", capsize=3,
                    color=PALETTE[method], label=f"{get(method).label} - {get(base).label}")  # fmt: skip
    ax.axhline(0.0, color="0.5", lw=0.8, ls="--")
    for share in shares:
        sgd = runs[(runs.label_noise == share) & (runs.method == base)].test_error_pct.mean()
        ax.annotate(f"{get(base).label} {sgd:.1f}%", (100 * share, 0), textcoords="offset points", xytext=(0, 6),
                    ha="center", fontsize=7, color="0.3")  # fmt: skip
    ax.set_xticks([100 * s for s in shares])
    ax.set_xlabel("training labels replaced at random (%)")
    ax.set_ylabel("test error difference to SGD (pp)")
    n_seeds = runs.seed.nunique()
    ax.set_title(f"label noise: paired difference, 95% CI over {n_seeds} seeds; rho re-chosen per share", fontsize=9)
    ax.legend(fontsize=8, loc="lower left")


# ---------------------------------------------------------------------------
# hessian_spectrum
# ---------------------------------------------------------------------------

NOTIONS = {
    "worst_direction": "worst direction",
    "ascent_direction": "ascent direction",
    "average_direction": "average direction",
}


def top_spectrum_panel(ax, topk: pd.DataFrame, methods) -> None:
    for method in methods:
        stats = topk[topk.method == method].groupby("rank").eigenvalue.agg(["mean", "sem"])
        color = PALETTE[method]
        ax.plot(stats.index, stats["mean"], "o-", ms=3, color=color, label=get(method).label)
        ax.fill_between(
            stats.index, stats["mean"] - stats["sem"], stats["mean"] + stats["sem"], color=color, alpha=0.25, lw=0
        )
    log_axes(ax, x=False)  # linear without a positive value (a diverged run: NaN)
    ax.set_xlabel("rank i")
    ax.set_ylabel("eigenvalue lambda_i")
    ax.set_title("top of the spectrum (Lanczos), mean ± s.e.", fontsize=9)
    ax.legend(fontsize=8)


def density_panel(ax, density: pd.DataFrame, methods) -> None:
    for method in methods:
        stats = density[density.method == method].groupby("eigenvalue").density.mean()
        ax.plot(stats.index, stats.to_numpy(), color=PALETTE[method], label=get(method).label)
    log_axes(ax, x=False)  # linear without a positive value (a diverged run: NaN)
    peak = density.groupby(["method", "eigenvalue"]).density.mean().max()
    if np.isfinite(peak) and peak > 0:
        ax.set_ylim(peak * 1e-7, peak * 3)
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density (smoothed)")
    ax.set_title("spectral density (SLQ), mean over seeds", fontsize=9)
    ax.legend(fontsize=8)


def method_bars(ax, sharp: pd.DataFrame, column: str, methods, ylabel: str, title: str) -> None:
    wide = sharp.pivot(index="seed", columns="method", values=column)
    ci_bars(ax, wide, method_colors(methods), [get(m).label for m in methods], line_alpha=0.6)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)


def notions_panel(ax, sharp: pd.DataFrame, methods) -> None:
    """Worst-, ascent- and average-direction sharpness per method, mean with 95% CI (floored for the log axis)."""
    width = 0.8 / len(methods)
    for j, method in enumerate(methods):
        sub = sharp[sharp.method == method]
        for i, notion in enumerate(NOTIONS):
            mean, _, low, high = mean_ci(sub[notion])
            x = i + (j - (len(methods) - 1) / 2) * width
            label = get(method).label if i == 0 else None
            ax.bar(x, mean, width=width, color=PALETTE[method], alpha=0.75, label=label)
            ax.errorbar(x, mean, yerr=[[mean - max(low, mean * 1e-3)], [high - mean]], color="k", capsize=3, lw=1)
    rho, rho_avg = sharp.rho.iloc[0], sharp.average_rho.iloc[0]
    ticks = [
        f"{NOTIONS['worst_direction']}\nmax over |e| <= {rho:g}",
        f"{NOTIONS['ascent_direction']}\ne = {rho:g} g / |g|",
        f"{NOTIONS['average_direction']}\ne ~ N(0, {rho_avg:g}^2 I / d)",
    ]
    ax.set_xticks(np.arange(len(NOTIONS)), ticks)
    log_axes(ax, x=False)  # linear without a positive value (a diverged run: NaN)
    ax.set_ylabel("L(theta + e) - L(theta)")
    ax.set_title("three sharpness notions (training loss), mean with 95% CI", fontsize=9)
    ax.legend(fontsize=8)


# ---------------------------------------------------------------------------
# bouncing
# ---------------------------------------------------------------------------

ZOOM = 30  # steps shown in the two-cycle panel
FLOOR = 1e-20  # log-axis floor; the decaying coordinates level off at ~1e-17, the rounding error of the rotation


def valley_styles() -> dict[str, tuple[str, str]]:
    """Label and colour of the valley table's algorithms: SAM and gradient descent (full-batch SGD)."""
    return {SAM.name: (SAM.label, PALETTE[SAM.name]), GD: ("GD (rho = 0)", PALETTE[SGD.name])}


def eigenplane_panel(ax, quad: pd.DataFrame, eig: pd.Series) -> None:
    """One SAM run in the plane of the top two eigenvectors over the quadratic's contours."""
    top, second = eig.index[0], eig.index[1]
    color = PALETTE[SAM.name]
    run = quad[quad.seed == 0].pivot(index="step", columns="eigen_index", values="projection")
    p1, p2 = run[top].to_numpy(), run[second].to_numpy()
    lim = 1.1 * max(np.abs(p1).max(), np.abs(p2).max())
    g1, g2 = np.meshgrid(np.linspace(-lim, lim, 200), np.linspace(-lim, lim, 200))
    ax.contour(g1, g2, 0.5 * (eig[top] * g1**2 + eig[second] * g2**2), levels=12, colors="0.75", linewidths=0.7)
    ax.plot(p1, p2, "-", color=color, lw=0.6, alpha=0.7)
    ax.plot(p1[:-ZOOM], p2[:-ZOOM], "o", color=color, ms=2.5, alpha=0.6)
    ax.plot(p1[-ZOOM:], p2[-ZOOM:], "o", color="k", ms=4, label="last steps: +-a v_1")
    ax.plot(p1[0], p2[0], "s", color="k", ms=6, mfc="white", label="start")
    ax.set_xlabel(f"<x, v_1>  (lambda_1 = {eig[top]:g})")
    ax.set_ylabel(f"<x, v_2>  (lambda_2 = {eig[second]:g})")
    ax.set_title("quadratic: one SAM run, top-2 eigenplane", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")


def two_cycle_panel(ax, quad: pd.DataFrame, eig: pd.Series, q: dict) -> None:
    """The last ZOOM steps along v_1 of every run against the closed-form amplitude +-a."""
    top = eig.index[0]
    last = quad[(quad.eigen_index == top) & (quad.step > quad.step.max() - ZOOM)]
    amplitude = quadratic_two_cycle_amplitude(eig[top], q["eta"], q["rho"])
    for _, group in last.groupby("seed"):
        ax.plot(group.step, group.projection, "-o", ms=3, lw=0.6, color=PALETTE[SAM.name], alpha=0.5)
    for sign in (1, -1):
        ax.axhline(sign * amplitude, color=PALETTE["theory"], ls="--", lw=1)
    ax.set_xlabel("step k")
    ax.set_ylabel("<x_k, v_1>")
    n_seeds = quad.seed.nunique()
    ax.set_title(f"two-cycle along v_1, all {n_seeds} runs; dashed: +-a = +-{amplitude:.3g} (closed form)", fontsize=9)


def eigen_decay_panel(ax, quad: pd.DataFrame, eig: pd.Series) -> None:
    """Every eigen-coordinate's magnitude: v_1 settles at a, the others decay geometrically."""
    for i, lam in eig.items():
        mag = quad[quad.eigen_index == i].assign(mag=lambda d: d.projection.abs().clip(lower=FLOOR))
        stats = mag.groupby("step").mag.agg(["min", "max", "median"])
        ax.plot(stats.index, stats["median"], label=f"lambda = {lam:g}")
        ax.fill_between(stats.index, stats["min"], stats["max"], alpha=0.2, lw=0)
    log_axes(ax, x=False)  # linear without a positive value (a diverged run: NaN)
    ax.set_ylim(FLOOR / 3, None)
    ax.set_xlabel("step k")
    ax.set_ylabel("|<x_k, v_i>| (median, min-max band)")
    ax.set_title("eigen-coordinates: only v_1 survives (floor: rounding)", fontsize=9)
    ax.legend(fontsize=7, title="eigenvector", title_fontsize=7)


def valley_panel(ax, valley: pd.DataFrame, v: dict) -> None:
    """The valley's contours with one SAM and one GD run."""
    landscape = Valley(v["a_max"], v["a_min"], v["width"], v["slope"])
    ys = np.linspace(valley.y.min() - 0.3, valley.y.max() + 0.3, 300)
    xlim = 1.1 * valley.x.abs().max()
    gy, gx = np.meshgrid(ys, np.linspace(-xlim, xlim, 200))
    f = landscape.loss(torch.tensor(np.stack([gx, gy], -1))).numpy()
    ax.contour(gy, gx, f, levels=20, colors="0.75", linewidths=0.7)
    for name, (label, color) in valley_styles().items():
        run = valley[(valley.seed == 0) & (valley.algorithm == name)]
        ax.plot(run.y, run.x, "o-", ms=2, lw=0.6, color=color, label=label)
    ax.set_xlabel("y (along the floor; curvature a(y) decreases to the right)")
    ax.set_ylabel("x (across the valley)")
    ax.set_title("valley: one run each (every {}th step)".format(v["record_every"]), fontsize=9)
    ax.legend(fontsize=7)


def valley_band_panel(ax, valley: pd.DataFrame, column: str, ylabel: str) -> None:
    """``column`` against the step, mean and min-max band over starts, per algorithm."""
    for name, (label, color) in valley_styles().items():
        stats = valley[valley.algorithm == name].groupby("step")[column].agg(["mean", "min", "max"])
        ax.plot(stats.index, stats["mean"], color=color, label=label)
        ax.fill_between(stats.index, stats["min"], stats["max"], color=color, alpha=0.25, lw=0)
    ax.set_xlabel("step k")
    ax.set_ylabel(ylabel)
    ax.set_title(f"mean and min-max band over {valley.seed.nunique()} starts", fontsize=9)
    ax.legend(fontsize=7)


# ---------------------------------------------------------------------------
# full_batch_sharpness
# ---------------------------------------------------------------------------


def checkpoint_panel(ax, checkpoints: pd.DataFrame, column: str, ylabel: str, title: str) -> None:
    """``column`` against the step per method (SAM, GD): every finite run thin, the mean over the finite runs
    thick; a run that turned non-finite is marked x at the top of the axis from its first non-finite checkpoint."""
    top = np.nanmax(checkpoints[column].to_numpy()) if checkpoints[column].notna().any() else 1.0
    for name, (label, color) in valley_styles().items():
        runs = checkpoints[checkpoints.method == name]
        wide = runs.pivot(index="step", columns="seed", values=column)
        ax.plot(wide.index, wide.to_numpy(), "-", color=color, lw=0.6, alpha=0.35)
        if wide.notna().any().any():
            ax.plot(wide.index, wide.mean(axis=1, skipna=True), "-o", color=color, lw=2, ms=4, label=label)
        bad = runs[~runs.finite].groupby("seed").step.min()
        if len(bad):
            ax.plot(bad.to_numpy(), np.full(len(bad), 1.05 * top), "x", color=color, ms=8,
                    label=f"{label}: {len(bad)} diverged")  # fmt: skip
    ax.set_xlabel("step k (full batch)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)


def final_lambda_panel(ax, final: pd.DataFrame) -> None:
    """Final lambda_max of GD and SAM, paired by seed (mean, 95% interval and each seed's line) over the seeds where
    both runs are finite; the number of diverged runs in the title."""
    styles = valley_styles()
    wide = final.pivot(index="seed", columns="method", values="lambda_max").dropna()
    diverged = int(final.diverged.sum())
    if len(wide) >= 2:
        ci_bars(ax, wide, {name: color for name, (_, color) in styles.items()}, [lab for lab, _ in styles.values()])
    else:  # too few finite pairs for an interval: the values that exist
        for i, name in enumerate(styles):
            values = final[(final.method == name) & ~final.diverged].lambda_max
            ax.plot(np.full(len(values), i), values, "o", color=styles[name][1])
        ax.set_xticks(range(len(styles)), [lab for lab, _ in styles.values()])
    ax.set_ylabel("lambda_max at the last step")
    ax.set_title(f"final lambda_max, {len(wide)} finite pairs ({diverged} runs diverged); 95% CI", fontsize=9)
