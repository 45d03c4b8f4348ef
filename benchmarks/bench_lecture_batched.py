"""The lecture's seeds as ONE batched model (samsde.lecture.batched) against the one-seed loop through torch.nn.

Run from the repository root:

    python3 benchmarks/bench_lecture_batched.py [--quick] [--epochs 2] [--repeats 5] [--loop-seeds 3] [--threads N]
        [--skip-memory] [--out benchmarks/out/lecture_batched.csv]

The whole run takes about a minute on a quiet 2-core machine (--quick: about half a minute).

Issue 15's target: at the size of the lecture's ``sam_vs_sgd`` experiment, batched training per seed at least 5x
faster than the one-seed loop.  The size (config.yaml, lecture.data / lecture.model / lecture.sam_vs_sgd):
``shared_split("digits", 0.3, 2023)`` (1258 training samples, 64 features, 10 classes), ``MLP(hidden=(32,),
activation="relu")`` in float64 (d = 2410 parameters), SGD with lr 0.05, momentum 0.9, weight decay 0, batch size
32 (39 updates per epoch), 40 seeds per arm, the arms sgd, sam (rho 0.2) and usam (rho 1.0).  The experiment trains
60 epochs; the benchmark trains ``epochs`` (2; --quick 1), since the cost is the same for every epoch: what is
compared is the time per seed-epoch.  Seed i's streams: init ``make_generator(1, "init", i)``, batch order
``make_generator(1, "batches", i)``, created afresh for every call (every repeat does the same work); the arms of a
seed share both, as in the experiment.
Jobs (``variant`` in the rows), each per method:
- ``loop:<method>``:    ``fit_mlp(data, mlp, init=..., batches=..., method=..., rho=..., ...)`` for ``loop_seeds``
  (3) seeds one after the other (torch.nn, samsde.optim's SAM / USAM around torch.optim.SGD);
- ``batched:<method>``: ``SeedStack.build(mlp, data, inits)`` + ``train_seeds(stack, data, ...)`` with S = 40;
- ``batched:3-arm``:    all three arms as one stack of S = 120 members (seed-major, as in the experiment), method and
  rho given per member as lists.
Both routes include building the models (a small share: one init per seed).

Protocol, as in bench_user_model.py: ``repeats`` (5; --quick 3) interleaved rounds, so that a burst of outside load
hits all jobs alike; in each round every job runs once untimed (warm-up), then once timed.  Reported per job: the
wall time of each timed call (``seconds``) and the same per seed-epoch (``seconds_per_seed_epoch`` = seconds /
(members x epochs)); per batched job the speed-up per seed, loop / batched (``speedup_per_seed``: the ratio of the
medians of seconds per seed-epoch, the number the target is read on; for the 3-arm stack the loop's cost is the
mean over the three methods, i.e. the loop over the same 120 runs), the ratio of the best (minimum) times
(``speedup_of_best``), and ``max_abs_param_diff``, the largest |difference| of the final parameters of the seeds the
loop trained to the same members of the batched run (the two routes agree to float64 rounding, see
tests/test_lecture_batched.py).  ``foreign_load``: the CPU (in cores) other processes used during the job's timed
calls (NaN if they total < 0.5 s, too short to tell), and during all timed calls together (variant ``all``); above
~0.2 cores the times are disturbed (see benchmarks/README.md).

Memory, as in bench_user_model.py (bench_scaling.py's ``PeakMemory``): ``batched:sam`` (S = 40), ``loop:sam`` for
ONE seed (n_paths = 1) and ``batched:3-arm`` (S = 120) each run in a fresh child process of its own (multiprocessing
``forkserver``, torch and samsde already imported), one after the other.  In the child torch's runtime is
initialised on a tiny problem, the data are loaded and the job runs once with one seed for 1 epoch (so one-time
set-up is not charged); then the kernel's peak-RSS mark is reset (``/proc/self/clear_refs``) and
``peak_memory_mib`` is the growth of VmHWM over one run of the job (where clear_refs is not available, ru_maxrss,
which then also counts the set-up).  Values of a few MiB are at the method's resolution.  For scale: the S = 40
stack's parameters are 0.7 MiB, one batch of inputs (S, 32, 64) 0.6 MiB.  The batched peak is set by the full-batch
evaluation at the end of each epoch (the shared training inputs expanded to (S, 1258, 64), then (S, 1258, 32)
activations: ~28 MiB at S = 40 for one ``stack.evaluate`` alone), not by the updates (~2 MiB).

Output: a tidy long CSV with columns ``benchmark, task, dim, n_paths, variant, metric, unit, repeat, value, note``
(benchmark = 'lecture_batched', task = 'digits', dim = the parameters per seed, n_paths = the members of the job),
and the table and the target on stdout.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import torch
from _machine import time_interleaved, use_threads  # benchmarks/ is on sys.path when run as a script
from bench_scaling import PeakMemory

from samsde.lecture import MLP, fit_mlp, shared_split
from samsde.lecture.batched import SeedStack, train_seeds
from samsde.seeding import make_generator

BENCHMARK = "lecture_batched"
COLUMNS = ["benchmark", "task", "dim", "n_paths", "variant", "metric", "unit", "repeat", "value", "note"]
DATASET, TEST_FRACTION, SPLIT_SEED = "digits", 0.3, 2023  # config.yaml lecture.data, seed
HIDDEN, ACTIVATION = (32,), "relu"  # lecture.model (float64)
TRAIN = dict(lr=0.05, momentum=0.9, weight_decay=0.0, batch_size=32)  # lecture.sam_vs_sgd
RHO = {"sgd": 0.0, "sam": 0.2, "usam": 1.0}  # the arms
N_SEEDS = 40  # lecture.sam_vs_sgd.n_seeds: members per arm
SEED, THREADS = 1, 2
TARGET = 5.0  # issue 15: batched training per seed >= 5x faster than the one-seed loop
STACK = "3-arm"
MEMORY_JOBS = (("batched", "sam", N_SEEDS), ("loop", "sam", 1), ("batched", STACK, N_SEEDS * len(RHO)))
QUIET = 0.2  # cores


def load():
    return shared_split(DATASET, TEST_FRACTION, SPLIT_SEED), MLP(hidden=HIDDEN, activation=ACTIVATION)


def members(method: str, n_seeds: int) -> list[tuple[str, float, int]]:
    """(method, rho, seed) of a job's members: one arm, or all arms seed-major (``method`` = STACK)."""
    if method == STACK:
        return [(m, rho, i) for i in range(n_seeds) for m, rho in RHO.items()]
    return [(method, RHO[method], i) for i in range(n_seeds)]


def loop_job(data, mlp: MLP, method: str, n_seeds: int, epochs: int) -> Callable[[], torch.Tensor]:
    """The one-seed loop over ``n_seeds`` seeds; returns the final parameters (seeds, d)."""

    def run() -> torch.Tensor:
        out = []
        for i in range(n_seeds):
            init, batches = make_generator(SEED, "init", i), make_generator(SEED, "batches", i)
            model, _ = fit_mlp(data, mlp, init=init, batches=batches, method=method, rho=RHO[method],
                               max_epochs=epochs, **TRAIN)  # fmt: skip
            out.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
        return torch.stack(out)

    return run


def batched_job(data, mlp: MLP, method: str, n_seeds: int, epochs: int) -> Callable[[], torch.Tensor]:
    """One batched model of ``members(method, n_seeds)``; returns the final parameters (members, d)."""
    runs = members(method, n_seeds)

    def run() -> torch.Tensor:
        stack = SeedStack.build(mlp, data, [make_generator(SEED, "init", i) for _, _, i in runs])
        train_seeds(stack, data, method=[m for m, _, _ in runs], rho=[r for _, r, _ in runs],
                    generators=[make_generator(SEED, "batches", i) for _, _, i in runs], max_epochs=epochs,
                    **TRAIN)  # fmt: skip
        return torch.cat([p.reshape(p.shape[0], -1) for p in stack.params], dim=1)

    return run


def build_jobs(data, mlp: MLP, loop_seeds: int, epochs: int) -> dict[tuple[str, str], tuple[Callable, int]]:
    """(route, method) -> (the job, its number of members)."""
    jobs = {}
    for method in RHO:
        jobs["loop", method] = loop_job(data, mlp, method, loop_seeds, epochs), loop_seeds
        jobs["batched", method] = batched_job(data, mlp, method, N_SEEDS, epochs), N_SEEDS
    jobs["batched", STACK] = batched_job(data, mlp, STACK, N_SEEDS, epochs), N_SEEDS * len(RHO)
    return jobs


def _init_runtime() -> None:
    """One-time set-up (OpenMP pool, BLAS) on a tiny problem, so that it is not charged to a job."""
    a = torch.randn(256, 256, dtype=torch.float64).exp_()
    a @ a.T


def memory_cell(route: str, method: str, n_members: int, epochs: int, threads: int) -> tuple[float, str]:
    """In a fresh child: the peak-RSS growth (MiB) over one run of a job, and the method."""
    torch.set_num_threads(threads)
    _init_runtime()
    data, mlp = load()
    make = loop_job if route == "loop" else batched_job
    make(data, mlp, method, 1, 1)()  # code paths and lazy set-up: one seed, one epoch
    job = make(data, mlp, method, n_members // len(members(method, 1)), epochs)  # n_members // arms seeds
    mem = PeakMemory()
    mem.start()
    job()
    return mem.growth_mib(), mem.method


def peak_memory(epochs: int, threads: int) -> dict[tuple[str, str], tuple[int, float, str]]:
    """Each of MEMORY_JOBS in its own child process, one after the other: (members, MiB, method)."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["__main__", "torch", "samsde", "samsde.lecture", "sklearn.datasets", "_machine"])
    out = {}
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx, max_tasks_per_child=1) as pool:
        for route, method, n in MEMORY_JOBS:
            try:
                out[route, method] = n, *pool.submit(memory_cell, route, method, n, epochs, threads).result()
            except Exception as err:  # reported as NaN, the run goes on
                out[route, method] = n, math.nan, f"child failed: {type(err).__name__}: {err}"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run (default 2; --quick 1)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per job (default 5; --quick 3)")
    parser.add_argument("--loop-seeds", type=int, default=3, help="seeds the one-seed loop trains per method")
    parser.add_argument("--threads", type=int, default=THREADS, help="torch.set_num_threads (default 2)")
    parser.add_argument("--quick", action="store_true", help="1 epoch, 3 repeats")
    parser.add_argument("--skip-memory", action="store_true", help="do not measure peak memory")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/lecture_batched.csv"), help="CSV to write")
    args = parser.parse_args()
    epochs = args.epochs or (1 if args.quick else 2)
    repeats = args.repeats or (3 if args.quick else 5)
    loop_seeds = min(args.loop_seeds, N_SEEDS)

    print(use_threads(args.threads))
    wall = time.perf_counter()
    data, mlp = load()
    dim = sum(p.numel() for p in mlp.build(data, make_generator(SEED, "init", 0)).parameters())
    n_train = data.x_train.shape[0]
    print(
        f"{DATASET} ({n_train} training samples, {data.x_train.shape[1]} features), MLP {HIDDEN} {ACTIVATION} float64 "
        f"(d = {dim}), lr {TRAIN['lr']}, momentum {TRAIN['momentum']}, B = {TRAIN['batch_size']} "
        f"({n_train // TRAIN['batch_size']} updates / epoch), rho {RHO}; {epochs} epochs per run, {repeats} repeats; "
        f"loop: {loop_seeds} seeds per method, batched: S = {N_SEEDS} per method and S = {N_SEEDS * len(RHO)} "
        f"({STACK} stack)"
    )
    jobs = build_jobs(data, mlp, loop_seeds, epochs)
    results = {key: fn() for key, (fn, _) in jobs.items()}
    diffs = {}
    for (route, method), res in results.items():
        if route == "batched":
            rows = [i for i, (_, _, s) in enumerate(members(method, N_SEEDS)) if s < loop_seeds]
            loop = torch.cat([results["loop", m] for m in RHO]) if method == STACK else results["loop", method]
            if method == STACK:  # seed-major members: reorder the loop's method-major rows
                loop = loop.view(len(RHO), loop_seeds, -1).transpose(0, 1).reshape(len(rows), -1)
            diffs[route, method] = (res[rows] - loop).abs().max().item()
    times, loads, load_all = time_interleaved({key: fn for key, (fn, _) in jobs.items()}, repeats)
    print(f"  timing: done ({time.perf_counter() - wall:.0f} s); other processes used {load_all:.2f} cores", flush=True)
    memory = {}
    if not args.skip_memory:
        memory = peak_memory(epochs, args.threads)
        print(f"  memory: done ({time.perf_counter() - wall:.0f} s)", flush=True)

    per = {key: [t / (jobs[key][1] * epochs) for t in ts] for key, ts in times.items()}  # seconds per seed-epoch
    med = {key: statistics.median(v) for key, v in per.items()}
    best = {key: min(v) for key, v in per.items()}
    loop_med = {m: med["loop", m] for m in RHO} | {STACK: statistics.mean(med["loop", m] for m in RHO)}
    loop_best = {m: best["loop", m] for m in RHO} | {STACK: statistics.mean(best["loop", m] for m in RHO)}
    speedup = {m: loop_med[m] / med["batched", m] for m in (*RHO, STACK)}
    speedup_best = {m: loop_best[m] / best["batched", m] for m in (*RHO, STACK)}

    rows = []
    threads = torch.get_num_threads()
    for (route, method), values in times.items():
        n = jobs[route, method][1]
        common = dict(benchmark=BENCHMARK, task=DATASET, dim=dim, n_paths=n, variant=f"{route}:{method}")
        note = f"wall time of one call after an untimed one, {epochs} epochs; torch threads = {threads}"
        rows += [dict(common, metric="seconds", unit="s", repeat=i, value=t, note=note) for i, t in enumerate(values)]
        rows += [dict(common, metric="seconds_per_seed_epoch", unit="s", repeat=i, value=t,
                      note=f"seconds / ({n} members x {epochs} epochs)")
                 for i, t in enumerate(per[route, method])]  # fmt: skip
        if route == "batched":
            ref = "mean over the methods of loop:<method>" if method == STACK else f"loop:{method}"
            rows.append(dict(common, metric="speedup_per_seed", unit="x", repeat=-1, value=speedup[method],
                             note=f"median per seed-epoch of {ref} / this job's; target >= {TARGET:g}"))  # fmt: skip
            rows.append(dict(common, metric="speedup_of_best", unit="x", repeat=-1, value=speedup_best[method],
                             note=f"min per seed-epoch of {ref} / this job's"))  # fmt: skip
            rows.append(dict(common, metric="max_abs_param_diff", unit="-", repeat=-1, value=diffs[route, method],
                             note=f"max |final parameter difference| to the loop, its {loop_seeds} seeds"))  # fmt: skip
        rows.append(dict(common, metric="foreign_load", unit="cores", repeat=-1, value=loads[route, method],
                         note="CPU of other processes over the timed calls; NaN if they total < 0.5 s"))  # fmt: skip
    for (route, method), (n, mib, how) in memory.items():
        rows.append(dict(benchmark=BENCHMARK, task=DATASET, dim=dim, n_paths=n, variant=f"{route}:{method}",
                         metric="peak_memory_mib", unit="MiB", repeat=0, value=mib,
                         note=f"{how} growth over one run ({n} members, {epochs} epochs), child process"))  # fmt: skip
    rows.append(dict(benchmark=BENCHMARK, task=DATASET, dim=dim, n_paths=math.nan, variant="all",
                     metric="foreign_load", unit="cores", repeat=-1, value=load_all,
                     note="CPU of other processes over all timed calls"))  # fmt: skip
    table = pd.DataFrame(rows, columns=COLUMNS)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)

    summary = pd.DataFrame(
        [
            {
                "job": f"{route}:{method}",
                "members": jobs[route, method][1],
                "median s": statistics.median(times[route, method]),
                "ms / seed-epoch": 1e3 * med[route, method],
                "min ms / seed-epoch": 1e3 * best[route, method],
                "spread": (max(per[route, method]) - min(per[route, method])) / med[route, method],
                "speed-up": speedup[method] if route == "batched" else math.nan,
                "speed-up (best)": speedup_best[method] if route == "batched" else math.nan,
                "max |dparam|": diffs.get((route, method), math.nan),
                "foreign": loads[route, method],
            }
            for route, method in times
        ]
    )
    print()
    print(summary.to_string(index=False, float_format=lambda f: f"{f:.1e}" if 0 < abs(f) < 1e-3 else f"{f:.2f}"))
    if memory:
        print("\npeak memory (growth over one run, child process):")
        for (route, method), (n, mib, how) in memory.items():
            print(f"  {route + ':' + method:14s} S = {n:3d}  {mib:7.1f} MiB  ({how})")
    print(f"\ntarget (issue 15): batched training per seed >= {TARGET:g}x faster than the one-seed loop "
          f"(S = {N_SEEDS} per arm)")  # fmt: skip
    for method in (*RHO, STACK):
        s, n = speedup[method], jobs["batched", method][1]
        verdict = "met" if s >= TARGET else "NOT MET"
        print(f"  {method:6s} S = {n:3d}  {s:6.1f}x (medians)  {verdict};  {speedup_best[method]:6.1f}x (best times)")
    worst = max((v for v in (*loads.values(), load_all) if not math.isnan(v)), default=math.nan)
    if worst > QUIET:
        print(f"\nWARNING: other processes used up to {worst:.2f} cores during timing; the times are disturbed")
    print(f"\nwrote {args.out}; wall time {time.perf_counter() - wall:.0f} s")


if __name__ == "__main__":
    main()
