"""One plotting style for every figure, and an atomic PNG + PDF writer."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
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
    """Log scales with major tick labels only (minor labels on a short log axis overlap)."""
    from matplotlib.ticker import NullFormatter

    if x:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
    if y:
        ax.set_yscale("log")


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
