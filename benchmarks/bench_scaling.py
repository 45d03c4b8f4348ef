"""How the cost of one SDE step grows with the dimension d: matrix-free (first_order) vs exact diffusion.

Run from the repository root:

    python3 benchmarks/bench_scaling.py [--quick] [--threads N] [--out benchmarks/out/scaling.csv]
        [--cell-budget SECONDS] [--max-memory-gib GIB] [--tasks quadratic breast_cancer] [--from-csv CSV]

The full run takes about 10 minutes on a quiet 2-core machine, --quick about 1.5 minutes; --from-csv only prints
the summary of an earlier CSV.

Tasks (isotropic noise sigma = 0.5, eta = rho = 0.05, float64, one step = one optimizer step or one
Euler-Maruyama step, dt = eta):
- ``make_task('quadratic', dim=d, seed=0)``, d in 10, 100, 300, 1000, 3000, 5000 (--quick: up to 1000);
- ``make_task('breast_cancer', n_hidden=h)``, d = 32 h + 1: h in 1, 4, 16, 64, 160, d = 33 ... 5121
  (--quick: h up to 16, d = 513).
Variants, each timed on its own at every (task, d):
- ``sam_step``, ``sgd_step``: ``DiscreteRunner(task, noise, 'sam' / 'sgd', eta, rho).advance(x, dw, dt)``;
  ``sam_step`` is the reference of the ratios;
- ``usam_sde_first_order``, ``sam_sde_first_order``: ``SDEModel(..., mode='first_order').em_step(x, dw, dt)``
  (matrix-free: a few Hessian-vector products per step; the SAM SDE with its closed-form moments, the pipeline's
  default under isotropic noise); ``sam_sde_first_order_mc``: the SAM SDE with the inner Monte Carlo instead
  (``sam_moments='monte_carlo'``, inner_samples = 16), as for a general Sigma;
- ``usam_sde_exact``, ``sam_sde_exact``: the same in mode ``exact`` (a dense (M, d, d) Hessian, B B^T and a batched
  eigendecomposition per step).
All variants use M = 8 paths, except the exact ones at large d, which run fewer paths (the schedule is in ``FULL``
and ``QUICK``; full: M = 1 from d = 2049 on); whenever they do, ``sam_step`` is also timed at that M, so that every
exact / sam_step ratio compares equal path counts.  Per-path cost: seconds_per_step / n_paths.

Protocol.  Every (task, d, variant, M) measurement is a *cell*, run in a fresh child process (multiprocessing
``forkserver``: a clean interpreter with torch already imported, which never ran a parallel op before forking).
The parent builds each task once and saves it (``torch.save``) for its cells to load: ``Quadratic.__init__`` runs
a dense eigendecomposition, 20-30 s at d = 5000, which is not part of a step.  In the child: the runtime is first
initialised on a tiny problem (thread pool, MKL), then the task, the runner and M copies of the task's initial point
are built, and a pool of Brownian increments dW ~ N(0, dt I) is drawn before any clock starts.  One untimed warm-up
step follows (a few more for fast cells, to size the blocks), then ``repeats`` timed blocks of n steps each,
n chosen so that a block lasts about ``target_block`` seconds (n = 1 for slow cells): seconds_per_step of a repeat
= block time / n.  Repeats: 5, or, for cells whose step takes more than 5 s, as many as fit in 30 s (and in the
cell budget), at least 2.  The state advances from step to step as in the simulation loop.

Memory: ``peak_step_memory_mib`` is the growth of the child's peak resident set over the warm-up and timed steps:
after setup the kernel's peak-RSS mark is reset (``echo 5 > /proc/self/clear_refs``) and VmHWM is read from
``/proc/self/status`` after the steps, minus the resident set at the reset.  (Where clear_refs is not available it
falls back to getrusage's ru_maxrss, whose peak then also includes setup.)  Memory the allocator already held from
setup is not counted again, so values of a few MiB and below are at the resolution of the method.  The note of each
memory row gives the analytic size of the step's largest tensor (for exact: M d^2 float64; for the network also the
cache of the at most ``Task.hessian_batch`` linearizations that ``Task.hessian`` holds at once).

Caps.  A cell whose step would not fit: exact cells whose analytic memory estimate exceeds ``--max-memory-gib``, or
whose time (extrapolated as d^3 from the previous d of the same variant) for a warm-up plus 2 repeats exceeds
``--cell-budget``, or whose warm-up step already shows it, are not timed: they get rows with value NaN and a note
saying why.  A child that fails or is killed is recorded the same way.

``foreign_load`` (one row per repeat) is the CPU, in cores, that *other* processes used during that timed block
((all CPU from /proc/stat - the child's own CPU) / wall time; NaN for blocks < 0.05 s, too short to tell, and
+-0.1 core of jitter on 0.1 s blocks).  With 2 threads on a 2-core machine any foreign load above ~0.2 cores slows
the step many-fold: the summary's medians leave out the repeats during which other processes used >= 0.2 cores
(unless no repeat of the cell was quieter), list them, and warn about cells that were loaded on average.

Output: a tidy long CSV, one row per measurement, columns ``benchmark, task, dim, n_paths, variant, metric, unit,
repeat, value, note`` (metric ``seconds_per_step`` [s], ``peak_step_memory_mib`` [MiB, repeat 0 only],
``foreign_load`` [cores]), and on stdout the medians per (task, d), the ratios first_order / sam_step and
exact / sam_step, the peak step memory, log-log slopes of time per path-step vs d over the 3 largest d (of each
variant), and the d at which usam_sde_first_order (and sam_sde_first_order) cost more than 3 sam steps.
"""

from __future__ import annotations

import argparse
import gc
import math
import multiprocessing as mp
import os
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _machine import machine_busy_seconds, status_kib  # benchmarks/ is on sys.path when run as a script

from samsde import DiscreteRunner, SDEModel, make_generator, make_noise, make_task
from samsde.algorithms import SAM, SGD
from samsde.tasks import Task

ETA = 0.05
RHO = 0.05
DT = ETA  # resolution 1: one step is one optimizer step or one Euler-Maruyama step
SIGMA = 0.5
INNER_SAMPLES = 16
SEED = 0
THREADS = 2
N_PATHS = 8
POOL = 4  # pre-drawn Brownian increments, cycled through
SLOW_STEP = 5.0  # seconds: a cell with a slower step gets fewer repeats ...
SLOW_CELL = 30.0  # ... as many as fit in this many seconds, at least MIN_REPEATS (and within the cell budget)
MIN_REPEATS = 2
SLOPE_POINTS = 3  # the log-log slopes are fitted over this many largest d
MIB = 1 << 20
QUIET = 0.2  # cores: a repeat during which other processes used more is left out of the summary's medians

VARIANTS = (
    "sam_step",
    "sgd_step",
    "usam_sde_first_order",
    "sam_sde_first_order",
    "sam_sde_first_order_mc",
    "usam_sde_exact",
    "sam_sde_exact",
)
EXACT = ("usam_sde_exact", "sam_sde_exact")
FIRST_ORDER = ("usam_sde_first_order", "sam_sde_first_order", "sam_sde_first_order_mc")


@dataclass(frozen=True)
class Sizes:
    # per task: (size parameter, paths of the exact variants); size = dim (quadratic) or n_hidden (breast_cancer)
    grid: dict[str, list[tuple[int, int]]]
    repeats: int
    target_block: float  # seconds per timed block of a fast cell
    cell_budget: float  # seconds per cell (warm-up + repeats), default of --cell-budget


FULL = Sizes(
    grid={
        "quadratic": [(10, 8), (100, 8), (300, 8), (1000, 8), (3000, 1), (5000, 1)],
        "breast_cancer": [(1, 8), (4, 8), (16, 8), (64, 1), (160, 1)],
    },
    repeats=5,
    target_block=0.25,
    cell_budget=240.0,
)
QUICK = Sizes(
    grid={
        "quadratic": [(10, 8), (100, 8), (300, 8), (1000, 2)],
        "breast_cancer": [(1, 8), (4, 8), (16, 2)],
    },
    repeats=5,
    target_block=0.1,
    cell_budget=30.0,
)


@dataclass(frozen=True)
class Cell:
    task: str
    dim: int
    variant: str
    n_paths: int


@dataclass(frozen=True)
class Job:
    """What a child needs to measure one cell."""

    cell: Cell
    task_file: str
    threads: int
    repeats: int
    target_block: float
    budget: float


def build_task(name: str, size: int) -> Task:
    if name == "quadratic":
        return make_task("quadratic", dim=size, seed=SEED)
    return make_task("breast_cancer", n_hidden=size)


def build_stepper(variant: str, task: Task) -> tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], bool]:
    """The step x -> x+ given dW, and whether it takes increments shaped (1, M, d) (a discrete runner's advance)."""
    noise = make_noise("isotropic", task, sigma=SIGMA)
    if variant in ("sam_step", "sgd_step"):
        runner = DiscreteRunner(task, noise, variant.removesuffix("_step"), ETA, RHO)
        return (lambda x, inc: runner.advance(x, inc, DT)), True
    drift, mode = variant.split("_sde_")
    moments = "monte_carlo" if mode.endswith("_mc") else "closed_form"  # (the USAM SDE has no SAM moments)
    gen = make_generator(SEED, "inner")
    model = SDEModel(
        task,
        noise,
        ETA,
        RHO,
        drift,
        mode=mode.removesuffix("_mc"),
        inner_samples=INNER_SAMPLES,
        generator=gen,
        sam_moments=moments,
    )
    return (lambda x, dw: model.em_step(x, dw, DT)), False


def analytic_memory(task: Task, variant: str, n_paths: int) -> tuple[float, str]:
    """(bytes, description) of the largest tensor one step of ``variant`` holds (float64)."""
    m, d = n_paths, task.dim
    if variant in EXACT:
        dense = m * d * d * 8
        if task.name == "quadratic":
            return dense, f"(M,d,d) = {dense / MIB:.4g} MiB"
        n, p1, h = task.n_data, task.layout.n_in + 1, task.layout.n_hidden
        paths = min(m * d, max(task.hessian_batch, m))  # Task.hessian batches at most this many HVP paths
        cache = paths * (3 * n * h + 2 * n + p1 * h) * 8  # NetworkLinearization's cache per HVP path
        return dense + cache, f"(M,d,d) = {dense / MIB:.4g} MiB + {paths} linearization caches = {cache / MIB:.4g} MiB"
    if variant == "sam_sde_first_order_mc":
        size = INNER_SAMPLES * m * d * 8
        return size, f"(K,M,d) inner draws = {size / MIB:.4g} MiB (x2: Z and u)"
    size = m * d * 8
    return size, f"(M,d) = {size / MIB:.4g} MiB"


def exact_memory_estimate(task: Task, n_paths: int) -> float:
    """Bytes an exact step may need: ~12 (M, d, d) matrices (measured peak: ~10 at d = 1000), the Hessian's build."""
    size, _ = analytic_memory(task, "sam_sde_exact", n_paths)
    return size + 11 * n_paths * task.dim**2 * 8


# ----------------------------------------------------------------------------------------------------------------
# child process: one cell
# ----------------------------------------------------------------------------------------------------------------


class PeakMemory:
    """Growth of this process's peak resident set from ``start()`` on, in MiB (see the module docstring)."""

    def start(self) -> None:
        gc.collect()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset the peak-RSS mark (VmHWM) to the current RSS
            self.method = "VmHWM"
            self.base = status_kib("VmHWM")
        except OSError:
            self.method = "ru_maxrss"
            self.base = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux

    def growth_mib(self) -> float:
        if self.method == "VmHWM":
            peak = status_kib("VmHWM")
        else:
            peak = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        return max(peak - self.base, 0.0) / 1024


def _init_runtime() -> None:
    """One-time setup (OpenMP pool, MKL BLAS and LAPACK) on a tiny problem, so it is not charged to the step."""
    a = torch.randn(256, 256, dtype=torch.float64).exp_()  # large enough for ATen's parallel_for
    torch.linalg.eigh(a @ a.T)


def _measure(job: Job) -> dict:
    torch.set_num_threads(job.threads)
    _init_runtime()
    cell = job.cell
    task = torch.load(job.task_file, weights_only=False)
    step, discrete = build_stepper(cell.variant, task)
    x = task.initial_point(make_generator(SEED, "bench_scaling", "x0")).expand(cell.n_paths, -1).clone()
    gen = make_generator(SEED, "bench_scaling", "brownian")
    shape = (1, cell.n_paths, task.dim) if discrete else (cell.n_paths, task.dim)
    incs = [math.sqrt(DT) * torch.randn(shape, generator=gen, dtype=torch.float64) for _ in range(POOL)]

    mem = PeakMemory()
    mem.start()
    start = time.perf_counter()
    x = step(x, incs[0])
    warm = time.perf_counter() - start
    if warm * (1 + MIN_REPEATS) > job.budget:
        return {
            "skip": f"not timed: the warm-up step took {warm:.3g} s, {MIN_REPEATS} repeats more would exceed "
            f"the {job.budget:.0f} s cell budget",
            "mem_mib": mem.growth_mib(),
        }
    per_step = warm
    if warm < job.target_block:  # a few more warm-up steps, to size the blocks
        k = max(1, min(20, int(job.target_block / max(warm, 1e-6))))
        t0 = time.perf_counter()
        for i in range(k):
            x = step(x, incs[(i + 1) % POOL])
        per_step = (time.perf_counter() - t0) / k
    n = max(1, min(10_000, round(job.target_block / max(per_step, 1e-9))))
    repeats = job.repeats
    if per_step > SLOW_STEP:
        left = job.budget - (time.perf_counter() - start)
        repeats = max(MIN_REPEATS, min(job.repeats, int(SLOW_CELL / per_step), int(left / per_step)))

    seconds, foreign = [], []
    for _ in range(repeats):
        busy0, own0, t0 = machine_busy_seconds(), time.process_time(), time.perf_counter()
        for i in range(n):
            x = step(x, incs[i % POOL])
        busy1, own1, t1 = machine_busy_seconds(), time.process_time(), time.perf_counter()
        wall = t1 - t0
        seconds.append(wall / n)
        foreign.append(max(((busy1 - busy0) - (own1 - own0)) / wall, 0.0) if wall >= 0.05 else math.nan)
    return {
        "seconds": seconds,
        "foreign": foreign,
        "steps_per_repeat": n,
        "mem_mib": mem.growth_mib(),
        "mem_method": mem.method,
        "finite": bool(torch.isfinite(x).all()),
    }


def run_cell(job: Job, conn: Connection) -> None:
    """Child entry point: measure one cell and send the result (or the error) back."""
    try:
        result = _measure(job)
    except Exception as err:  # reported as a NaN row, the run goes on
        result = {"error": f"{type(err).__name__}: {err}"}
    conn.send(result)
    conn.close()


# ----------------------------------------------------------------------------------------------------------------
# parent: schedule, caps, rows, summary
# ----------------------------------------------------------------------------------------------------------------


def rows_for(cell: Cell, result: dict, mem_note: str) -> list[dict]:
    base = {
        "benchmark": "scaling",
        "task": cell.task,
        "dim": cell.dim,
        "n_paths": cell.n_paths,
        "variant": cell.variant,
    }

    def metric(name: str, unit: str, rep: int, value: float, note: str = "") -> dict:
        return {**base, "metric": name, "unit": unit, "repeat": rep, "value": value, "note": note}

    if "seconds" not in result:
        note = result.get("skip") or f"failed: {result.get('error', 'no result')}"
        mem = result.get("mem_mib", math.nan)  # a warm-up that was measured still tells its memory
        mem_note = f"{note}; {mem_note}" if not math.isnan(mem) else note
        return [
            metric("seconds_per_step", "s", 0, math.nan, note),
            metric("peak_step_memory_mib", "MiB", 0, mem, mem_note),
            metric("foreign_load", "cores", 0, math.nan, note),
        ]
    n = result["steps_per_repeat"]
    note = f"{n} step{'s' if n > 1 else ''} per repeat" + ("" if result["finite"] else "; NON-FINITE iterate")
    rows = [metric("seconds_per_step", "s", r, v, note) for r, v in enumerate(result["seconds"])]
    rows.append(
        metric("peak_step_memory_mib", "MiB", 0, result["mem_mib"], f"{result['mem_method']}; analytic {mem_note}")
    )
    rows += [metric("foreign_load", "cores", r, v) for r, v in enumerate(result["foreign"])]
    return rows


def run_child(ctx, job: Job, timeout: float) -> dict:
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=run_cell, args=(job, send), daemon=True)
    proc.start()
    send.close()
    try:
        if recv.poll(timeout):
            result = recv.recv()
        else:
            result = {"error": f"no result within {timeout:.0f} s, child killed"}
    except EOFError:
        result = {}
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join()
    if not result:
        result = {"error": f"child exited with code {proc.exitcode} (killed, e.g. out of memory?)"}
    return result


def predicted_exact_seconds(history: list[tuple[int, float]], dim: int, n_paths: int) -> float:
    """One step at (dim, n_paths), extrapolated as d^3 from the largest d timed so far (per-path seconds)."""
    if not history:
        return math.nan
    d0, t0 = max(history)
    return t0 * (dim / d0) ** 3 * n_paths


def loglog_slope(dims: list[float], times: list[float]) -> float:
    pts = [(d, t) for d, t in zip(dims, times, strict=True) if t > 0 and math.isfinite(t)]
    if len(pts) < 2:
        return math.nan
    return float(np.polyfit(np.log([p[0] for p in pts]), np.log([p[1] for p in pts]), 1)[0])


def quiet_medians(df: pd.DataFrame) -> tuple[dict, dict]:
    """Per cell: the median seconds per step over its quiet repeats (foreign load < QUIET cores, or unknown), or
    over all repeats if none was quiet; and the number of repeats left out."""
    keys = ["task", "dim", "variant", "n_paths"]
    times = df[df["metric"] == "seconds_per_step"].set_index([*keys, "repeat"])["value"]
    loads = df[df["metric"] == "foreign_load"].set_index([*keys, "repeat"])["value"].reindex(times.index)
    quiet = ~(loads >= QUIET)  # NaN (too short to tell) counts as quiet
    med, dropped = {}, {}
    for cell, group in times.groupby(level=keys):
        kept = group[quiet.loc[group.index] & group.notna()]
        use = kept if len(kept) else group
        med[cell] = use.median()
        dropped[cell] = len(group) - len(use)
    return med, dropped


def summarize(df: pd.DataFrame, n_paths: int) -> dict[str, list[str]]:
    """Print the medians, ratios, memory and slopes per task; return, per first-order variant, the d where it costs
    more than 3 sam steps."""
    keys = ["task", "dim", "variant", "n_paths"]
    by_metric = {name: group.groupby(keys)["value"] for name, group in df.groupby("metric")}
    med, dropped = quiet_medians(df)
    load = by_metric["foreign_load"].mean().to_dict() if "foreign_load" in by_metric else {}
    mem = by_metric["peak_step_memory_mib"].first().to_dict() if "peak_step_memory_mib" in by_metric else {}
    short = {
        "sam_step": SAM.name,
        "sgd_step": SGD.name,
        "usam_sde_first_order": "usam_fo",
        "sam_sde_first_order": "sam_fo",
        "sam_sde_first_order_mc": "sam_fo_mc",
        "usam_sde_exact": "usam_ex",
        "sam_sde_exact": "sam_ex",
    }
    flags: dict[str, list[str]] = {v: [] for v in FIRST_ORDER}
    for task in df["task"].unique():
        sub = df[df["task"] == task]
        times, mems = [], []
        for dim in sorted(sub["dim"].unique()):
            m_ex = int(sub.loc[(sub["dim"] == dim) & sub["variant"].isin(EXACT), "n_paths"].iloc[0])
            paths = {v: m_ex if v in EXACT else n_paths for v in VARIANTS}
            row: dict = {"d": dim, "M_ex": m_ex}
            row.update({short[v]: med.get((task, dim, v, paths[v]), math.nan) for v in VARIANTS})
            sam, sam_ref = row[SAM.name], med.get((task, dim, "sam_step", m_ex), math.nan)
            for v in FIRST_ORDER:
                row[f"{short[v]}/sam"] = row[short[v]] / sam
            for v in EXACT:
                row[f"{short[v]}/sam"] = row[short[v]] / sam_ref
            row["sam_ex/path"] = row["sam_ex"] / m_ex
            cell_loads = [v for k, v in load.items() if k[0] == task and k[1] == dim and math.isfinite(v)]
            row["max_load"] = max(cell_loads, default=math.nan)
            times.append(row)
            mems.append({"d": dim, "M_ex": m_ex, **{short[v]: mem.get((task, dim, v, paths[v])) for v in VARIANTS}})
            for v in FIRST_ORDER:
                if row[f"{short[v]}/sam"] > 3:
                    flags[v].append(f"{task} d={dim} ({row[f'{short[v]}/sam']:.2f})")
        print(
            f"\n{task}: median seconds per step over the repeats with foreign load < {QUIET} cores (all if none), "
            f"M = {n_paths} paths except the exact variants (M_ex paths; their ratio is against sam_step at M_ex "
            "too); sam_ex/path = sam_ex / M_ex; max_load = the largest mean foreign load of the (task, d) cells, cores"
        )
        table = pd.DataFrame(times)
        fmt = {c: "{:.3g}".format for c in table.columns if c not in ("d", "M_ex")}
        print(table.to_string(index=False, formatters=fmt, na_rep="n/a"))
        print(f"{task}: peak step memory, MiB (growth of the peak resident set over the steps)")
        table = pd.DataFrame(mems)
        fmt = {c: "{:.4g}".format for c in table.columns if c not in ("d", "M_ex")}
        print(table.to_string(index=False, formatters=fmt, na_rep="n/a"))
        slopes = []
        for v in VARIANTS:
            pts = [(r["d"], r[short[v]] / (r["M_ex"] if v in EXACT else n_paths)) for r in times]
            pts = [p for p in pts if math.isfinite(p[1])][-SLOPE_POINTS:]
            slope = loglog_slope([p[0] for p in pts], [p[1] for p in pts])
            text = f"{slope:.2f}" if math.isfinite(slope) else "n/a"
            slopes.append(f"{short[v]} {text} (d = {', '.join(str(p[0]) for p in pts)})")
        print(f"{task}: log-log slope of seconds per path-step vs d, {SLOPE_POINTS} largest d: " + "; ".join(slopes))
    left_out = [f"{t} d={d} {v} M={m}: {n}" for (t, d, v, m), n in dropped.items() if n]
    if left_out:
        print(f"repeats left out of the medians (foreign load >= {QUIET} cores): " + "; ".join(left_out))
    return flags


def report(df: pd.DataFrame) -> None:
    """The summary on stdout: tables, slopes, the ratio flags, the cells not timed, the foreign-load warning."""
    flags = summarize(df, N_PATHS)
    for v, where in flags.items():
        print(f"\n{v} / sam_step > 3 at: " + ("; ".join(where) if where else "no d (<= 3 everywhere)"))
    skipped = df[(df["metric"] == "seconds_per_step") & df["value"].isna()]
    for _, r in skipped.iterrows():
        print(f"not timed: {r['task']} d={r['dim']} {r['variant']} M={r['n_paths']}: {r['note']}")
    loads = df[df["metric"] == "foreign_load"].groupby(["task", "dim", "variant", "n_paths"])["value"].mean()
    loaded = loads[loads > QUIET]
    if len(loaded):
        where = loaded.reset_index().groupby("task")["dim"].unique()
        print(
            f"\nWARNING: other processes used > {QUIET} cores (mean over the repeats) during {len(loaded)} of "
            f"{int(loads.notna().sum())} timed cells, up to {loaded.max():.2f} cores; their times are inflated. At: "
            + "; ".join(f"{t} d = {', '.join(map(str, sorted(ds)))}" for t, ds in where.items())
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="d up to ~1000, short blocks: about 2 minutes")
    parser.add_argument("--threads", type=int, default=THREADS, help="torch.set_num_threads in every cell (default 2)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/scaling.csv"), help="CSV to write")
    parser.add_argument("--tasks", nargs="+", choices=sorted(FULL.grid), default=list(FULL.grid), help="tasks to run")
    parser.add_argument(
        "--cell-budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"time cap of one cell (default {FULL.cell_budget:.0f} s, --quick {QUICK.cell_budget:.0f} s)",
    )
    parser.add_argument(
        "--max-memory-gib",
        type=float,
        default=4.0,
        metavar="GIB",
        help="skip exact cells whose analytic memory estimate exceeds this (default 4)",
    )
    parser.add_argument(
        "--from-csv", type=Path, default=None, metavar="CSV", help="measure nothing: print the summary of this CSV"
    )
    args = parser.parse_args()
    if args.from_csv is not None:
        report(pd.read_csv(args.from_csv, keep_default_na=False, na_values=[""]))
        return
    sizes = QUICK if args.quick else FULL
    budget = sizes.cell_budget if args.cell_budget is None else args.cell_budget

    torch.set_num_threads(args.threads)  # for building the tasks here; each cell sets its own
    print(
        f"torch {torch.__version__} on {platform.machine()} ({os.cpu_count()} cores visible); threads = "
        f"{args.threads}; M = {N_PATHS} paths (exact: see M_ex); eta = rho = {ETA}, isotropic sigma = {SIGMA}, "
        f"SAM SDE inner_samples = {INNER_SAMPLES}, float64; cell budget {budget:.0f} s, exact memory cap "
        f"{args.max_memory_gib:g} GiB; 1-minute load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["__main__", "torch", "samsde", "_machine"])

    rows: list[dict] = []
    wall0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_scaling_") as tmp:
        for task_name in args.tasks:
            exact_history: dict[str, list[tuple[int, float]]] = {v: [] for v in EXACT}
            for size, m_exact in sizes.grid[task_name]:
                t0 = time.perf_counter()
                task = build_task(task_name, size)
                task_file = os.path.join(tmp, f"{task_name}_{size}.pt")
                torch.save(task, task_file)
                build_s = time.perf_counter() - t0
                dim = task.dim
                cells = [Cell(task_name, dim, v, m_exact if v in EXACT else N_PATHS) for v in VARIANTS]
                if m_exact != N_PATHS:
                    cells.insert(1, Cell(task_name, dim, "sam_step", m_exact))  # the like-for-like exact reference
                t_cells = time.perf_counter()
                for cell in cells:
                    _, mem_note = analytic_memory(task, cell.variant, cell.n_paths)
                    result = None
                    if cell.variant in EXACT:
                        need = exact_memory_estimate(task, cell.n_paths)
                        guess = predicted_exact_seconds(exact_history[cell.variant], dim, cell.n_paths)
                        if need > args.max_memory_gib * (1 << 30):
                            result = {
                                "skip": f"not run: analytic memory estimate {need / (1 << 30):.1f} GiB > "
                                f"--max-memory-gib {args.max_memory_gib:g}"
                            }
                        elif guess * (1 + MIN_REPEATS) > budget:
                            result = {
                                "skip": f"not run: predicted {guess:.3g} s per step (d^3 from the last d), "
                                f"warm-up + {MIN_REPEATS} repeats > the {budget:.0f} s cell budget"
                            }
                    if result is None:
                        job = Job(cell, task_file, args.threads, sizes.repeats, sizes.target_block, budget)
                        result = run_child(ctx, job, timeout=2 * budget + 120)
                    if cell.variant in EXACT and "seconds" in result:
                        exact_history[cell.variant].append((dim, statistics.median(result["seconds"]) / cell.n_paths))
                    rows += rows_for(cell, result, mem_note)
                print(
                    f"  {task_name} d={dim}: task built and saved in {build_s:.1f} s, {len(cells)} cells in "
                    f"{time.perf_counter() - t_cells:.1f} s",
                    flush=True,
                )
                os.remove(task_file)
                del task
    elapsed = time.perf_counter() - wall0

    df = pd.DataFrame(
        rows, columns=["benchmark", "task", "dim", "n_paths", "variant", "metric", "unit", "repeat", "value", "note"]
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)

    report(df)
    print(
        f"\nwrote {args.out} ({len(df)} rows); benchmark wall time {elapsed:.0f} s; "
        f"1-minute load average at end {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
