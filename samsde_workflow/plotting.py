"""One plotting style for every figure, an atomic PNG + PDF writer, and the marks of what a panel cannot draw.

A figure draws what exists and marks the rest in its panel: ``mark_diverged`` puts a red "x" at the x position of
each diverged run (at the bottom of the panel, so it shows whatever the y scale) with a legend entry, and
``mark_panel`` writes a short text ("diverged at eta = 0.1", "no data").  Every mark is also returned, so the rule
logs it (``log_marks``: one line per panel, ``marked <panel>: <text>``) and a test can check it.
"""

from __future__ import annotations

import math
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from samsde.algorithms import ALGORITHMS  # noqa: E402
from samsde_workflow.io import atomic_path  # noqa: E402

#: one colour per model and per algorithm (the registry's), used by every figure
PALETTE = {
    "discrete": "#222222",
    "own_sde": "#d95f02",
    "sgd_sde": "#1b9e77",
    "drift_only": "#7570b3",
    "additive_formula": "#e6ab02",
    **{name: algorithm.color for name, algorithm in ALGORITHMS.items()},
    "theory": "#666666",
}


def set_style() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 150, "savefig.bbox": "tight", "pdf.fonttype": 42})


def log_axes(ax, x: bool = True, y: bool = True) -> None:
    """Log scales with major tick labels only (minor labels on a short log axis overlap).  An axis without a positive
    finite data value (an empty or all-diverged panel) stays linear: a log axis cannot place ticks there."""
    from matplotlib.ticker import NullFormatter

    if x and math.isfinite(ax.dataLim.minposx):
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
    if y and math.isfinite(ax.dataLim.minposy):
        ax.set_yscale("log")


def first(values, default=None):
    """The first of ``values`` (a Series), or ``default`` when there is none (an empty selection)."""
    return values.iloc[0] if len(values) else default


def finite(values):
    """Where ``values`` (a Series, any dtype: an empty table read back has object columns) are finite numbers."""
    return np.isfinite(pd.to_numeric(values, errors="coerce").astype(float))


def slope_text(fits) -> str:
    """``slope 1.02 [0.95, 1.09]`` from the first row of ``fits`` (slope, ci_low, ci_high), or ``slope n/a`` when
    there is no row or no finite slope (too few usable points, every run diverged)."""
    fit = fits.iloc[0] if len(fits) else None
    if fit is None or not np.isfinite(fit.slope):
        return "slope n/a"
    return f"slope {fit.slope:.2f} [{fit.ci_low:.2f}, {fit.ci_high:.2f}]"


def numbers(values, fmt: str = "g") -> str:
    """Sorted distinct numbers as text: ``0.05, 0.1``."""
    return ", ".join(format(v, fmt) for v in sorted(set(values)))


def mark_diverged(ax, xs, label: str = "x: diverged") -> None:
    """A red "x" at each x position of ``xs`` (data coordinates) near the bottom of the panel, drawn above a legend
    there, and in the legend."""
    xs = sorted(set(xs))
    if xs:
        style = dict(color="red", ms=7, mew=1.5, zorder=6, clip_on=False)  # above a legend in the corner
        ax.plot(xs, [0.05] * len(xs), "x", label=label, transform=ax.get_xaxis_transform(), **style)


def mark_panel(ax, marks) -> list[str]:
    """Write ``marks`` (what the panel could not draw) in red at its top left; returns them."""
    marks = [m for m in marks if m]
    if marks:
        ax.text(
            0.03, 0.97, "\n".join(marks), transform=ax.transAxes, ha="left", va="top", fontsize=6, color="red",
            bbox={"facecolor": "white", "alpha": 0.8, "lw": 0, "pad": 1},
        )  # fmt: skip
    return marks


def diverged_note(table, by=("algorithm",), name=None) -> str:
    """``diverged paths: <group> <n>, ...`` for the groups (columns ``by``) of ``table`` with diverged paths (the
    largest ``n_diverged`` of a group; ``name`` turns a group key into text), or "" when none diverged."""
    if "n_diverged" not in table or table.empty:
        return ""
    counts = table.groupby(list(by)).n_diverged.max()
    counts = counts[counts > 0]
    text = ", ".join(f"{name(k) if name else k} {int(n)}" for k, n in counts.items())
    return f"diverged paths: {text}" if text else ""


def mark_table(ax, table, by=("algorithm",), name=None) -> list[str]:
    """Mark in the panel the diverged paths of its rows ``table`` (``diverged_note``), or "no data" without rows."""
    return mark_panel(ax, [diverged_note(table, by, name), "" if len(table) else "no data"])


def legend(ax, **kwargs) -> None:
    """The panel's legend, if anything in it has a label (an empty panel gets none, and no warning)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)


def log_marks(log, marks: dict) -> None:
    """One log line per marked panel, ``marked <panel>: <mark>; <mark>``, and a count of the figure's marks."""
    marked = {panel: m for panel, m in marks.items() if m}
    for panel, m in marked.items():
        log.info("marked %s: %s", panel, "; ".join(m))
    log.info("%d of %d panels marked", len(marked), len(marks))


def finish(fig: plt.Figure, title: str) -> None:
    """Suptitle above the panels (tight_layout leaves room for it)."""
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97 if len(fig.axes) > 6 else 0.94))


def save_figure(fig: plt.Figure, png: str | os.PathLike, pdf: str | os.PathLike | None = None) -> None:
    """Save ``fig`` atomically as PNG (and PDF) and close it.  PDF metadata dates are dropped for reproducibility."""
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    if pdf is not None:
        with atomic_path(pdf) as tmp:
            fig.savefig(tmp, format="pdf", metadata={"CreationDate": None, "ModDate": None, "Producer": None})
    plt.close(fig)
