"""Figure code on tables with diverged rows (NaN errors, ``diverged`` flags), unresolved points, missing or NaN fits
and empty selections: every figure is drawn, never raises, and marks what it could not draw in the affected panels
(the marks are what its rule logs, ``marked <panel>: ...``).  The scripts run as Snakemake would run them, with a
stand-in for the ``snakemake`` object."""

from __future__ import annotations

import math
import re
import runpy
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import numpy as np
import pandas as pd
import pytest

from samsde_workflow.insight_figures import flat_minima_figure, saddle_figure
from samsde_workflow.plotting import log_axes, save_figure
from samsde_workflow.weak_error_figures import draw_trajectories, draw_weak_error

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ETAS = [0.1, 0.05, 0.025]
MARK = re.compile(r"marked (.+?): (.*)$")


class Named(dict):
    """Snakemake's named lists: ``input.errors`` and ``input["errors"]``."""

    __getattr__ = dict.__getitem__


def run_figure(name: str, tmp_path: Path, tables: dict, **params) -> dict[str, str]:
    """Run scripts/figure_<name>.py on ``tables`` (name -> frame or list of frames); its marks, panel -> text."""
    inputs = {}
    for key, value in tables.items():
        frames = value if isinstance(value, list) else [value]
        paths = [str(tmp_path / f"{key}_{i}.csv") for i in range(len(frames))]
        for frame, path in zip(frames, paths, strict=True):
            frame.to_csv(path, index=False)
        inputs[key] = paths if isinstance(value, list) else paths[0]
    out = Named(png=str(tmp_path / f"{name}.png"), pdf=str(tmp_path / f"{name}.pdf"))
    log = tmp_path / f"{name}.log"
    snakemake = SimpleNamespace(
        input=Named(inputs), output=out, params=SimpleNamespace(**params), log=[str(log)], rule=name, threads=None
    )
    runpy.run_path(str(ROOT / "scripts" / f"figure_{name}.py"), init_globals={"snakemake": snakemake})
    assert Path(out.png).stat().st_size > 1000 and Path(out.pdf).read_bytes()[:5] == b"%PDF-"
    return dict(m.groups() for m in map(MARK.search, log.read_text().splitlines()) if m)


def errors_table(models=("own_sde", "sgd_sde", "drift_only")) -> pd.DataFrame:
    """USAM: every run diverged (NaN errors); SAM: diverged at eta = 0.1, unresolved at 0.025; the SGD control fine;
    DNSAM: no rows at all."""
    rows = []
    for algorithm, scaling in (("usam", "sqrt"), ("sam", "sqrt"), ("sgd", "none")):
        for model in ("sgd_sde",) if algorithm == "sgd" else models:
            for statistic in ("grad_norm_plus_norm", "loss"):
                for eta in ETAS:
                    diverged = algorithm == "usam" or (algorithm == "sam" and eta == 0.1)
                    error = math.nan if diverged else 2.0 * eta
                    rows.append(dict(
                        task="quadratic", algorithm=algorithm, scaling=scaling, alpha=0.5 if scaling == "sqrt" else 0,
                        c=0.5 if scaling == "sqrt" else 0, eta=eta, model=model, statistic=statistic,
                        rel_error=error, ci_low=0.8 * error, ci_high=1.2 * error, floor=0.01,
                        resolved=not diverged and eta != 0.025, solver_error=0.1 * error, diverged=diverged,
                    ))  # fmt: skip
    return pd.DataFrame(rows)


def slopes_table(errors: pd.DataFrame) -> pd.DataFrame:
    keys = errors[["task", "algorithm", "scaling", "model", "statistic"]].drop_duplicates()
    slopes = keys.assign(slope=np.where(keys.algorithm == "sam", np.nan, 1.0), usable=keys.algorithm == "sgd")
    return slopes[slopes.algorithm != "usam"]  # USAM: no fit row at all


LAYOUT = dict(tasks=["quadratic"], algorithms=["usam", "dnsam", "sam"], scalings=["sqrt"], drift_ablation=["sqrt"])


def test_weak_error_figures_mark_diverged_and_empty_panels(tmp_path):
    errors = errors_table()
    tables = {"errors": errors, "slopes": slopes_table(errors)}
    marks = run_figure("weak_error", tmp_path, tables, **LAYOUT)
    assert "diverged at eta = 0.025, 0.05, 0.1" in marks["quadratic, usam, sqrt"]
    assert "no finite error" in marks["quadratic, usam, sqrt"]
    assert marks["quadratic, sam, sqrt"] == "diverged at eta = 0.1"
    assert marks["quadratic, dnsam, sqrt"] == "no data"
    assert "quadratic, sgd, none" not in marks  # nothing to mark
    marks = run_figure("drift_ablation", tmp_path, {"errors": errors}, **LAYOUT)
    assert marks == {
        "quadratic, usam, sqrt": "diverged at eta = 0.025, 0.05, 0.1; no finite error",
        "quadratic, dnsam, sqrt": "no data",
        "quadratic, sam, sqrt": "diverged at eta = 0.1",
    }


def exact_table(diverged_etas=(0.1,)) -> pd.DataFrame:
    """The exact anchor's table (samsde.experiments.minibatch_exact): its three SDEs, diverged at ``diverged_etas``."""
    rows = [
        dict(task="finite_sum_quadratic", n_data=6, dim=3, batch_size=2, c=0.5, horizon=1.0, eta=eta, rho=eta**0.5 / 2,
             n_steps=round(1 / eta), model=model, rel_error=math.nan if eta in diverged_etas else eta**power,
             diverged=eta in diverged_etas, loss_final=1.0, local_slope=math.nan if eta == 0.1 else power)
        for model, power in (("own_sde", 1.0), ("sgd_sde", 0.5), ("additive_formula", 0.5)) for eta in ETAS
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_minibatch_figure_marks_diverged_and_empty_panels(tmp_path):
    errors = errors_table(("own_sde", "sgd_sde", "additive_formula"))
    layout = {**LAYOUT, "batch_sizes": {"quadratic": 2}}
    tables = {"errors": errors, "exact": exact_table(), "slopes": slopes_table(errors)}
    marks = run_figure("weak_error_minibatch", tmp_path, tables, **layout)
    for g in ("grad_norm_plus_norm", "loss"):
        assert marks[f"quadratic, usam, sqrt, {g}"].startswith("diverged at eta = 0.025, 0.05, 0.1")
        assert marks[f"quadratic, sam, sqrt, {g}"] == "diverged at eta = 0.1"
        assert marks[f"quadratic, dnsam, sqrt, {g}"] == "no data"
    assert marks["exact anchor"] == "diverged at eta = 0.1"
    tables["exact"] = exact_table(()).iloc[:0]
    assert run_figure("weak_error_minibatch", tmp_path, tables, **layout)["exact anchor"] == "no data"


def test_weak_error_figures_on_empty_tables(tmp_path):
    errors = errors_table().iloc[:0]
    marks = run_figure("weak_error", tmp_path, {"errors": errors, "slopes": slopes_table(errors)}, **LAYOUT)
    assert set(marks.values()) == {"no data"} and len(marks) == 4
    marks = run_figure("drift_ablation", tmp_path, {"errors": errors}, **LAYOUT)
    assert set(marks.values()) == {"no data"} and len(marks) == 3


def trajectories_table() -> pd.DataFrame:
    """USAM's own SDE loses its paths from t = 0.2 on (NaN means after the last one), the rest keep all 10."""
    rows = []
    for algorithm, scaling, model in (
        ("usam", "sqrt", "discrete"),
        ("usam", "sqrt", "own_sde"),
        ("sgd", "none", "sgd_sde"),
    ):
        for step in range(5):
            lost = algorithm == "usam" and model == "own_sde" and step >= 2
            n = 10 - 5 * (step - 1) if lost else 10
            rows += [dict(
                task="quadratic", algorithm=algorithm, scaling=scaling, alpha=0.5 if scaling == "sqrt" else 0,
                c=0.5, eta=0.1, rho=0.15, model=model, step=step, time=0.1 * step, statistic=g,
                mean=math.nan if n <= 0 else 1.0 + step, sem=0.1, n_paths=max(n, 0),
            ) for g in ("grad_norm_plus_norm", "loss")]  # fmt: skip
    return pd.DataFrame(rows)


def test_trajectories_mark_diverged_paths_and_empty_panels(tmp_path):
    params = dict(tasks=["quadratic"], algorithms=["usam", "dnsam"])
    marks = run_figure("trajectories", tmp_path, {"trajectories": [trajectories_table()]}, **params)
    for g in ("grad_norm_plus_norm", "loss"):
        assert marks[f"quadratic, usam, {g}"] == "own SDE: paths diverge from t = 0.2 (0 of 10 left)"
        # DNSAM: only the shared SGD SDE's rows (no discrete or own SDE run): drawn, nothing diverged
        assert f"quadratic, dnsam, {g}" not in marks


def test_draw_weak_error_without_fits_or_rows():
    fig, (a, b) = plt.subplots(1, 2)
    errors = errors_table()
    sam = errors[errors.algorithm == "sam"]
    no_fits = slopes_table(errors).iloc[:0].set_index(["task", "algorithm", "scaling", "model", "statistic"])
    assert draw_weak_error(a, sam, no_fits, ("quadratic", "sam", "sqrt"), {"own_sde": "own"}) == [
        "diverged at eta = 0.1"
    ]
    labels = a.get_legend_handles_labels()[1]
    assert "x: diverged" in labels and "own, g (slope n/a)" in labels and any("not in the fit" in x for x in labels)
    assert draw_weak_error(b, sam.iloc[:0], no_fits, ("quadratic", "sam", "sqrt"), {"own_sde": "own"}) == ["no data"]
    for ax in (a, b):
        log_axes(ax)
    assert a.get_yscale() == "log" and b.get_yscale() == "linear"  # an empty panel cannot take log ticks
    fig.tight_layout()
    plt.close(fig)


def test_draw_trajectories_with_every_path_diverged():
    fig, ax = plt.subplots()
    traj = trajectories_table()
    sub = traj[(traj.algorithm == "usam") & (traj.statistic == "loss")]
    assert draw_trajectories(ax, sub, {"own_sde": "own SDE"}) == ["own SDE: paths diverge from t = 0.2 (0 of 10 left)"]
    assert draw_trajectories(ax, sub.iloc[:0], {"own_sde": "own SDE"}) == ["no data"]
    # the trajectories table writes a mean of 0 where no path is left: the curve must end there, not drop to 0
    draw_trajectories(ax, sub.assign(mean=sub["mean"].fillna(0.0)), {"own_sde": "own SDE"})
    curve = [line for line in ax.lines if line.get_label() == "own SDE"][-1]
    assert np.isnan(np.asarray(curve.get_ydata(), float)[-1]) and np.isfinite(np.asarray(curve.get_ydata(), float)[0])
    plt.close(fig)


def test_hessian_trace_and_quadratic_stationary_with_diverged_algorithms(tmp_path):
    rows = []
    for algorithm, n_diverged in (("sgd", 0), ("sam", 4)):  # SAM: every path diverged, its means are NaN
        for statistic in ("hessian_trace", "loss", "recovery_error"):
            rows += [dict(
                algorithm=algorithm, model="discrete", rho=0.1 * (algorithm == "sam"), eta=0.05, sigma=0.1, step=k,
                time=0.05 * k, statistic=statistic, mean=math.nan if n_diverged else 1.0 / (k + 1), sem=0.01,
                n_diverged=n_diverged,
            ) for k in range(4)]  # fmt: skip
    marks = run_figure("hessian_trace", tmp_path, {"table": pd.DataFrame(rows)})
    assert marks == {s: "diverged paths: SAM 4" for s in ("hessian_trace", "loss", "recovery_error")}

    rows = [dict(
        algorithm=a, model=m, diffusion="first_order", scale=scale, rho=rho, eta=0.05, sigma=0.5, n_diverged=n,
        statistic="stationary_loss", mean=math.nan if n else 0.1 + rho, sem=0.01, n_paths=50 - n,
    ) for scale in (0.5, 2.0) for a, rho, n in (("sgd", 0.0, 0), ("dnsam", 0.2, 50 if scale == 2.0 else 0))
        for m in ("discrete", "own_sde")]  # fmt: skip
    marks = run_figure("quadratic_stationary", tmp_path, {"table": pd.DataFrame(rows)})
    assert marks == {"Hessian scale 2": "diverged paths: DNSAM discrete 50, DNSAM own_sde 50"}


def test_saddle_figure_with_diverged_and_empty_tables(tmp_path):
    grid = pd.DataFrame([
        dict(algorithm=a, model="discrete", statistic="stay_fraction", rho=rho, mean=0.5, n_diverged=3 * (a == "usam"),
             **{"lambda": lam}) for a in ("sgd", "usam", "sam") for rho in (0.1, 0.5) for lam in (-1.0, -4.0)
    ])  # fmt: skip
    traj = pd.DataFrame(
        [
            dict(
                algorithm=a,
                model="discrete",
                rho=0.5,
                time=0.1 * k,
                median=math.nan,
                q25=math.nan,
                q75=math.nan,
                n_diverged=20,
                **{"lambda": -1.0},
            )
            for a in ("sgd", "usam", "sam")
            for k in range(3)
        ]
    )  # fmt: skip  (every path diverged: no finite distance to draw)
    sweep = pd.DataFrame(columns=["algorithm", "factor", "mean", "ci_low", "ci_high", "n_diverged"])
    fig, marks = saddle_figure(grid, traj, sweep)
    assert marks["distance"] == ["diverged paths: SAM 20, SGD 20, USAM 20"]
    assert marks["radius"] == ["no data"] and marks["stay map usam"] == ["diverged paths: USAM 3"]
    save_figure(fig, tmp_path / "figure.png")
    fig, marks = saddle_figure(grid.iloc[:0], traj.iloc[:0], sweep)  # nothing at all
    assert marks["distance"] == ["no data"]
    plt.close(fig)


@pytest.mark.parametrize("empty", [False, True])
def test_flat_minima_figure_with_diverged_paths(empty, tmp_path):
    settings = dict(params=dict(dim=2, center=1.0, sharp_width=0.25, flat_width=0.75), init_box=1.5, eta=0.1,
                    sigma=1.0, horizon=2.0)  # fmt: skip
    table = pd.DataFrame([
        dict(algorithm=a, model=m, rho=rho, statistic="flat_share", mean=0.4, ci_low=0.3, ci_high=0.5,
             n_diverged=7 if a == "sam" and m == "discrete" else 0)
        for a, rho in (("sgd", 0.0), ("sam", 0.3)) for m in ("discrete", "own_sde")
    ])  # fmt: skip
    paths = pd.DataFrame(
        dict(algorithm="sgd", model="discrete", rho=0.0, x0_1=[0.1, -0.2], x0_2=[0.3, 0.1], flat=[1, 0])
    )
    if empty:
        table, paths = table.iloc[:0], paths.iloc[:0]
    fig, marks = flat_minima_figure(table, paths, settings)
    assert marks["flat-basin share"] == (["no data"] if empty else ["diverged paths: SAM discrete rho=0.3 7"])
    save_figure(fig, tmp_path / "figure.png")


def test_svag_figures_without_fits_and_with_nan_errors(tmp_path):
    """SAM's errors all NaN (diverged) and no slope rows: the panels draw, the legend says "slope n/a"."""
    rows = [dict(
        reference="richardson", task="quadratic", statistic=g, algorithm="sam", l=amp, rho=0.15, eta=0.1,
        distance=math.nan, ci_low=math.nan, ci_high=math.nan, floor=math.nan,
    ) for g in ("loss", "grad_norm_plus_norm") for amp in (1, 2, 4)]  # fmt: skip
    slopes = pd.DataFrame(columns=["reference", "task", "statistic", "algorithm", "slope", "ci_low", "ci_high"])
    gap = pd.DataFrame(columns=["task", "algorithm", "statistic", "rho", "gap", "floor", "resolved"])
    gap_slopes = pd.DataFrame(columns=["task", "algorithm", "statistic", "slope", "ci_low", "ci_high"])
    tables = {"errors": pd.DataFrame(rows), "slopes": slopes, "gap": gap, "gap_slopes": gap_slopes}
    run_figure("svag_convergence", tmp_path, tables)
    rows = [dict(
        task="teacher_student", dim=100, l=4, statistic=g, algorithm="sam", comparison=c, eta=eta, error=math.nan,
        ci_low=math.nan, ci_high=math.nan, floor=math.nan,
    ) for g in ("loss", "grad_norm_plus_norm") for c in ("model", "svag_residual") for eta in (0.1, 0.05)]  # fmt: skip
    run_figure("svag_scale", tmp_path, {"errors": pd.DataFrame(rows), "slopes": slopes.drop(columns="reference")})


def test_lecture_log_panels_with_nan_values(tmp_path):
    from samsde_workflow.lecture_figures import density_panel, top_spectrum_panel

    fig, (a, b) = plt.subplots(1, 2)
    topk = pd.DataFrame(dict(method="sgd", rank=[1, 2, 1, 2], eigenvalue=math.nan, seed=[0, 0, 1, 1]))
    top_spectrum_panel(a, topk, ["sgd"])
    density_panel(b, pd.DataFrame(dict(method="sgd", eigenvalue=[0.0, 1.0], density=math.nan)), ["sgd"])
    save_figure(fig, tmp_path / "lecture.png")
