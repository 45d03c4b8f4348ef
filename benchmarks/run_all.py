"""Run every benchmark, then write one tidy table, the headline numbers and one figure.

    python3 benchmarks/run_all.py            # all benchmarks, full sizes (~32 min on 2 cores), then the summary
    python3 benchmarks/run_all.py --quick    # small sizes (a few minutes)
    python3 benchmarks/run_all.py --summary-only   # re-summarise the CSVs already in benchmarks/out/

The benchmarks run one after the other, each in its own process (they would disturb each other's timings).
Outputs in ``benchmarks/out/``:
- ``benchmarks.csv``: every measurement in one long table, columns
  ``benchmark, task, dim, n_paths, variant, metric, unit, repeat, value, note``.  bench_simulate.py and
  bench_network_derivatives.py record medians only: their rows have ``repeat = -1`` and say so in ``note``;
- ``headline.csv``: each target of the performance issue with the measured median, the target and whether it is met;
- ``benchmarks.png``: batched vs loop, FLOP-rate fraction, cost against d (first_order vs exact), samsde vs
  torchsde, and the SAM SDE's inner Monte Carlo (accuracy and cost against its size K).
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path("benchmarks/out")
COLUMNS = ["benchmark", "task", "dim", "n_paths", "variant", "metric", "unit", "repeat", "value", "note"]
# script, its CSV, extra arguments (full run)
BENCHMARKS = [
    ("bench_simulate.py", "simulate.csv", []),
    ("bench_network_derivatives.py", "network_derivatives.csv", ["--threads", "2"]),
    ("bench_scaling.py", "scaling.csv", ["--cell-budget", "400"]),  # room for the exact network step at d = 5121
    ("bench_torchsde.py", "torchsde.csv", []),
    ("bench_inner_mc.py", "inner_mc.csv", []),
    ("bench_minibatch.py", "minibatch.csv", []),
    ("bench_user_model.py", "user_model.csv", []),
    ("bench_lecture_batched.py", "lecture_batched.csv", []),
    ("bench_svag_convergence.py", "svag_convergence.csv", []),
]


def run_benchmarks(quick: bool) -> None:
    here = Path(__file__).resolve().parent
    for script, csv, extra in BENCHMARKS:
        cmd = [sys.executable, str(here / script), "--out", str(OUT / csv), *extra, *(["--quick"] if quick else [])]
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)


def _long_simulate(df: pd.DataFrame) -> pd.DataFrame:
    """bench_simulate.py's wide medians as long rows (path-steps per second; the loop extrapolated per path)."""
    df = df.assign(variant=lambda t: t.kind + ":" + t.runner + ":" + t["mode"] + ":" + t.batch)
    dims = {"quadratic": 10, "breast_cancer": 257}
    rows = [{"benchmark": "simulate", "task": r.task, "dim": dims.get(r.task, np.nan), "n_paths": r.n_paths,
             "variant": r.variant, "metric": "path_steps_per_s", "unit": "1/s", "repeat": -1,
             "value": r.path_steps_per_s, "note": f"median of {r.repeats} blocks; foreign load {r.foreign_load}"}
            for r in df.itertuples()]  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def _long_network(df: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in df.itertuples():
        note = f"median of {r.repeats} repeats, {r.threads} threads; matmul {r.matmul_gflops:.1f} GFLOP/s"
        floor = r.gemm_gflop / (r.gemm_floor_ms / 1e3) / r.matmul_gflops  # the GEMMs alone: the ceiling
        for metric, unit, value in (("fraction_of_matmul", "-", r.fraction_of_matmul),
                                    ("gemm_floor_fraction_of_matmul", "-", floor),
                                    ("speedup_over_autograd", "x", r.speedup),
                                    ("achieved_gflops", "GFLOP/s", r.manual_gflops)):  # fmt: skip
            rows.append({"benchmark": "network_derivatives", "task": r.task, "dim": r.d, "n_paths": r.n_paths,
                         "variant": f"{r.op}:threads={r.threads}", "metric": metric, "unit": unit, "repeat": -1,
                         "value": value, "note": note})  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def load_all() -> pd.DataFrame:
    parts = []
    for _, csv, _ in BENCHMARKS:
        path = OUT / csv
        if not path.exists():
            print(f"missing {path}: run its benchmark first", file=sys.stderr)
            continue
        df = pd.read_csv(path)
        if csv == "simulate.csv":
            df = _long_simulate(df)
        elif csv == "network_derivatives.csv":
            df = _long_network(df)
        parts.append(df[COLUMNS])
    return pd.concat(parts, ignore_index=True)


def medians(table: pd.DataFrame) -> pd.DataFrame:
    keys = ["benchmark", "task", "dim", "n_paths", "variant", "metric", "unit"]
    return table.groupby(keys, dropna=False)["value"].median().reset_index()


def _get(med: pd.DataFrame, **where) -> pd.DataFrame:
    mask = np.ones(len(med), dtype=bool)
    for k, v in where.items():
        mask &= med[k].to_numpy() == v
    return med[mask]


def _slope(x, y) -> float:
    x, y = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    ok = np.isfinite(x) & np.isfinite(y)
    return float(np.polyfit(x[ok], y[ok], 1)[0]) if ok.sum() >= 2 else math.nan


def headline(med: pd.DataFrame) -> pd.DataFrame:
    rows = []

    def add(claim: str, value: float, target: str, met: bool | None, detail: str = "") -> None:
        rows.append({"claim": claim, "value": value, "target": target, "met": met, "detail": detail})

    sim = _get(med, benchmark="simulate", metric="path_steps_per_s")
    for task in sim.task.unique():
        for variant in sim[(sim.task == task) & sim.variant.str.endswith(":loop_M1")].variant:
            loop = _get(sim, task=task, variant=variant).value.iloc[0]
            batched = _get(sim, task=task, variant=variant.replace(":loop_M1", ":batched"))
            speedup = batched.value.iloc[0] / loop
            target = ">= 50x at 1000 paths" if task == "quadratic" else "-"
            add(f"batched vs one-path loop, {task}, {variant.rsplit(':', 1)[0]}", speedup, target,
                bool(speedup >= 50) if task == "quadratic" else None,
                f"M = {int(batched.n_paths.iloc[0])}")  # fmt: skip
    net = _get(med, benchmark="network_derivatives", metric="fraction_of_matmul")
    floor = _get(med, benchmark="network_derivatives", metric="gemm_floor_fraction_of_matmul")
    for r in net.itertuples():
        ceiling = _get(floor, task=r.task, variant=r.variant).value
        detail = f"M = {r.n_paths}" + (f"; its GEMMs alone reach {ceiling.iloc[0]:.2f}" if len(ceiling) else "")
        add(f"network {r.task} (d = {r.dim}) {r.variant}: FLOP rate / float64 matmul rate", r.value, ">= 0.30",
            bool(r.value >= 0.30), detail)  # fmt: skip
    sc = _get(med, benchmark="scaling", metric="seconds_per_step")
    for task in sc.task.unique():
        t = sc[sc.task == task]
        sam = t[t.variant == "sam_step"].set_index(["dim", "n_paths"]).value
        # the pipeline's SDE steps carry the target; the SAM SDE with the inner Monte Carlo (the route for a
        # general Sigma) is listed for comparison
        for variant, target in (("usam_sde_first_order", True), ("sam_sde_first_order", True),
                                ("sam_sde_first_order_mc", False)):  # fmt: skip
            # the same d and the same number of paths M
            ratio = (t[t.variant == variant].set_index(["dim", "n_paths"]).value / sam).dropna()
            ratio = ratio.droplevel("n_paths")
            if len(ratio):
                add(f"{task}: {variant} / SAM step, worst over d = {int(ratio.index.min())}..{int(ratio.index.max())}",
                    float(ratio.max()), "<= ~3" if target else "-", bool(ratio.max() <= 3.5) if target else None,
                    "; ".join(f"d={int(d)}: {v:.2f}" for d, v in ratio.items()))  # fmt: skip
        for variant in ("usam_sde_exact", "sam_sde_exact"):
            ex = t[t.variant == variant].dropna(subset=["value"]).sort_values("dim")
            per_path = ex.value / ex.n_paths
            big = ex.dim >= 300
            if big.sum() >= 2:
                add(f"{task}: {variant} time per path-step vs d, log-log slope (d >= 300)",
                    _slope(ex.dim[big], per_path[big]), "~3 (d^3)", None,
                    "; ".join(f"d={int(d)}: {v:.3g} s" for d, v in zip(ex.dim, per_path, strict=True)))  # fmt: skip
    mb = _get(med, benchmark="minibatch", metric="ratio_to_discrete_sam")
    for r in mb[mb.variant.str.startswith("sde:")].itertuples():
        target = r.task == "iris" and r.variant.endswith(":K=16")
        add(f"mini-batch SDE step / discrete SAM step, {r.task}, {r.variant[4:]}", r.value,
            "<= 5 (iris, n_inner = 16)" if target else "-", bool(r.value <= 5) if target else None,
            f"M = {int(r.n_paths)}")  # fmt: skip
    for r in _get(med, benchmark="minibatch", metric="peak_rss_increase").itertuples():
        mnd = _get(med, benchmark="minibatch", metric="mnd_tensor", variant=r.variant).value.iloc[0]
        add(f"mini-batch SDE step, {r.task}, {r.variant[4:]}: peak memory increase (MB)", r.value,
            f"well below one (M, N, d) tensor ({mnd:.0f} MB)", bool(r.value < 0.25 * mnd), f"M = {int(r.n_paths)}")
    um = _get(med, benchmark="user_model", metric="ratio_to_closed_form")
    mem = _get(med, benchmark="user_model", metric="peak_memory_mib").set_index("variant").value
    best = _get(med, benchmark="user_model", metric="ratio_of_best").set_index("variant").value
    for r in um.itertuples():
        op, route = r.variant.split(":", 1)
        target = op in ("grad", "lin+hvp") and route != "torch_func:forward"  # the default hvp_mode carries it
        detail = f"M = {int(r.n_paths)}" + (f"; ratio of best times {best[r.variant]:.2f}" if r.variant in best else "")
        if r.variant in mem.index and f"{op}:closed_form" in mem.index:
            detail += f"; peak memory {mem[r.variant]:.0f} MiB vs {mem[f'{op}:closed_form']:.0f} MiB"
        add(f"user model (torch.func) / closed form, {r.task} (d = {int(r.dim)}), {r.variant}", r.value,
            "<= 3 (issue 14)" if target else "-", bool(r.value <= 3) if target else None, detail)  # fmt: skip
    lb = _get(med, benchmark="lecture_batched", metric="speedup_per_seed")
    lb_best = _get(med, benchmark="lecture_batched", metric="speedup_of_best").set_index("variant").value
    lb_mem = _get(med, benchmark="lecture_batched", metric="peak_memory_mib").set_index("variant").value
    for r in lb.itertuples():
        detail = f"S = {int(r.n_paths)}"
        if r.variant in lb_best.index:
            detail += f"; speed-up of the best times {lb_best[r.variant]:.1f}"
        if r.variant in lb_mem.index and "loop:sam" in lb_mem.index:
            detail += f"; peak memory {lb_mem[r.variant]:.0f} MiB vs {lb_mem['loop:sam']:.0f} MiB for one loop run"
        add(f"lecture batched seeds / one-seed loop, {r.task} (d = {int(r.dim)}), {r.variant}: speed-up per seed",
            r.value, ">= 5x (issue 15)", bool(r.value >= 5), detail)  # fmt: skip
    ts = _get(med, benchmark="torchsde", metric="seconds_per_step")
    for dim in sorted(ts.dim.unique()):
        own = _get(ts, dim=dim, variant="samsde_em").value.iloc[0]
        other = _get(ts, dim=dim, variant="torchsde_euler").value.iloc[0]
        diff = _get(med, benchmark="torchsde", dim=dim, metric="max_abs_path_difference").value
        add(f"torchsde Euler (general noise) / samsde EM time, d = {int(dim)}", other / own, "-", None,
            f"max |path difference| {diff.iloc[0]:.2g}" if len(diff) else "")
    im_all = _get(med, benchmark="inner_mc", metric="relative_drift_error")
    im = im_all[im_all.variant.str.startswith("K=")]
    for task in im.task.unique():
        t = im[im.task == task].assign(k=lambda f: f.variant.str.removeprefix("K=").astype(int)).sort_values("k")
        add(f"SAM SDE inner Monte Carlo, {task}: drift error vs K, log-log slope", _slope(t.k, t.value),
            "~ -0.5", None, "; ".join(f"K={k}: {v:.3g}" for k, v in zip(t.k, t.value, strict=True)))  # fmt: skip
    closed = im_all[im_all.variant == "closed_form"]
    for r in closed.itertuples():
        add(f"SAM SDE closed-form moments, {r.task}: drift difference to the K_ref Monte Carlo reference", r.value,
            "-", None, "the reference's own Monte Carlo error; RMS |b_closed - b_ref| / RMS |b_ref|")  # fmt: skip
    return pd.DataFrame(rows)


def figure(med: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid")
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    (a, b, c), (d, e, f) = axes

    sim = _get(med, benchmark="simulate", metric="path_steps_per_s").copy()
    if len(sim):
        sim["config"] = sim.task + "\n" + sim.variant.str.rsplit(":", n=1).str[0].str.replace(":-", "")
        sim["batch"] = sim.variant.str.rsplit(":", n=1).str[1]
        shown = sim[sim.config.isin(set(sim[sim.batch == "loop_M1"].config))]
        sns.barplot(data=shown, x="config", y="value", hue="batch", ax=a, errorbar=None)
        a.set_yscale("log")
        a.set(title="batched vs one path at a time (M = 1000)", xlabel="", ylabel="path-steps per second")
        a.tick_params(axis="x", rotation=20, labelsize=7)
    net = _get(med, benchmark="network_derivatives", metric="fraction_of_matmul")
    if len(net):
        sns.barplot(data=net, x="task", y="value", hue="variant", ax=b, errorbar=None)
        floor = _get(med, benchmark="network_derivatives", metric="gemm_floor_fraction_of_matmul")
        if len(floor):  # the same GEMMs with no elementwise work: the ceiling of the bars below them
            sns.stripplot(data=floor, x="task", y="value", hue="variant", dodge=True, marker="_", size=25,
                          linewidth=2, palette="dark", ax=b, legend=False)  # fmt: skip
            b.plot([], [], "k_", ms=12, mew=2, label="its GEMMs alone")
        b.axhline(0.30, color="k", ls="--", lw=1, label="target 0.30")
        b.set(title="network gradient / HVP: FLOP rate over float64 matmul", xlabel="", ylabel="fraction")
        b.legend(fontsize=7)
    sc = _get(med, benchmark="scaling", metric="seconds_per_step").dropna(subset=["value"])
    # one path count per (task, d, variant): the largest (sam_step is also timed at the exact cells' M = 1)
    sc = sc.sort_values("n_paths").drop_duplicates(["task", "dim", "variant"], keep="last")
    for ax, task in zip((c, d), ("quadratic", "breast_cancer"), strict=True):
        t = sc[sc.task == task].assign(per_path=lambda f: f.value / f.n_paths)
        if len(t):
            sns.lineplot(data=t, x="dim", y="per_path", hue="variant", marker="o", ax=ax)
            ax.set(xscale="log", yscale="log", title=f"{task}: cost per path-step vs dimension", xlabel="d",
                   ylabel="seconds per path-step")  # fmt: skip
            ax.legend(fontsize=7)
    ts = _get(med, benchmark="torchsde", metric="seconds_per_step")
    if len(ts):
        sns.lineplot(data=ts, x="dim", y="value", hue="variant", marker="o", ax=e)
        e.set(xscale="log", yscale="log", title="same SDE, same paths: samsde EM vs torchsde Euler", xlabel="d",
              ylabel="seconds per step (all paths)")  # fmt: skip
    im = _get(med, benchmark="inner_mc", metric="relative_drift_error")
    im = im[im.variant.str.startswith("K=")].copy()
    if len(im):
        im["K"] = im.variant.str.removeprefix("K=").astype(int)
        sns.lineplot(data=im, x="K", y="value", hue="task", marker="o", ax=f)
        f.set(xscale="log", yscale="log", title="SAM SDE inner Monte Carlo: drift error vs K", xlabel="K",
              ylabel="RMS |b_K - b_ref| / RMS |b_ref|")  # fmt: skip
        k = np.array(sorted(im.K.unique()), float)
        ref = im[im.K == k[0]].value.mean()
        f.plot(k, ref * np.sqrt(k[0] / k), "k--", lw=1, label="K^-1/2")
        f.legend(fontsize=7)
    fig.suptitle("samsde benchmarks (medians over repeats; 2-core CPU, float64)")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for every benchmark")
    parser.add_argument("--summary-only", action="store_true", help="summarise the CSVs already in benchmarks/out")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if not args.summary_only:
        run_benchmarks(args.quick)
    table = load_all()
    table.to_csv(OUT / "benchmarks.csv", index=False)
    med = medians(table)
    heads = headline(med)
    heads.to_csv(OUT / "headline.csv", index=False)
    figure(med, OUT / "benchmarks.png")
    with pd.option_context("display.max_colwidth", 120, "display.width", 250):
        print(heads.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"wrote {OUT / 'benchmarks.csv'}, {OUT / 'headline.csv'}, {OUT / 'benchmarks.png'}")


if __name__ == "__main__":
    main()
