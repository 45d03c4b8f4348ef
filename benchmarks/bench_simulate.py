"""Throughput of samsde's batched simulator: path-steps per second of every runner's ``advance``.

Run from the repository root:

    python3 benchmarks/bench_simulate.py [--quick] [--out benchmarks/out/simulate.csv] [--profile]
        [--wait-idle SECONDS] [--threads N] [--tasks quadratic breast_cancer]

For each task (quadratic d=10 and breast_cancer d=257, isotropic noise sigma=0.5, eta=rho=0.05) it times
``runner.advance(x, increments, dt)`` directly (no recording, no divergence checks, no noise drawing: the Brownian
increments are drawn before the clock starts) for
- the discrete optimizers sgd, usam, sam, dnsam (``DiscreteRunner``);
- the SDEs with drift sgd, usam, dnsam, sam (``SDERunner(SDEModel(...))``) in mode ``first_order`` and, on the
  quadratic only, mode ``exact`` (a dense d x d eigendecomposition per path is out of reach at d=257).
The resolution is r=1, so one ``advance`` is one optimizer step or one Euler-Maruyama step.

Each configuration runs ``warmup`` untimed steps, then ``repeats`` timed blocks of ``steps`` steps each; the
reported time is the median block.  path_steps_per_s = n_paths * steps / median block seconds.

A subset (sgd and usam discrete, usam SDE first_order) is also timed as a plain Python loop over paths, the same
runner advancing one path (M=1) at a time, on ``loop_paths`` paths only; its cost per path-step is extrapolated
to M paths to give the speed-up of the batched simulator.  The loop gets pre-sliced increments, so it pays
nothing for noise bookkeeping: the speed-up is if anything understated.

On a shared machine other processes wreck the timings (torch's OpenMP threads wait for each other whenever one is
descheduled, so even a tiny matmul can take milliseconds): the column foreign_load records the CPU they used
during each job, and --wait-idle holds timed blocks until they are quiet (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import cProfile
import math
import os
import pstats
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from _machine import CpuMeter, use_threads  # benchmarks/ is on sys.path as a script

from samsde import DiscreteRunner, SDEModel, SDERunner, make_generator, make_noise, make_task
from samsde.algorithms import ALGORITHMS, DNSAM, SAM, SGD, USAM
from samsde.tasks import Task

ETA = 0.05
RHO = 0.05
SIGMA = 0.5
RESOLUTION = 1
SEED = 0
THREADS = 2
TASKS: dict[str, dict] = {"quadratic": {"dim": 10, "seed": 0}, "breast_cancer": {}}
DISCRETE = tuple(ALGORITHMS)
SDE_DRIFTS = (SGD.name, USAM.name, DNSAM.name, SAM.name)
EXACT_TASKS = ("quadratic",)
# (kind, runner, mode) timed both batched and as a one-path-at-a-time loop
LOOP_SUBSET = (("discrete", SGD.name, "-"), ("discrete", USAM.name, "-"), ("sde", USAM.name, "first_order"))


@dataclass(frozen=True)
class Sizes:
    n_paths: int
    loop_paths: int
    steps: dict[str, int]  # timed steps per repeat, per task
    warmup: int
    repeats: int


FULL = Sizes(n_paths=1000, loop_paths=50, steps={"quadratic": 50, "breast_cancer": 3}, warmup=2, repeats=5)
QUICK = Sizes(n_paths=200, loop_paths=10, steps={"quadratic": 10, "breast_cancer": 1}, warmup=1, repeats=5)


@dataclass
class Config:
    task: str
    kind: str  # discrete / sde
    runner: str
    mode: str  # "-" for discrete runners, first_order / exact for SDEs


def configs(task_name: str) -> list[Config]:
    out = [Config(task_name, "discrete", a, "-") for a in DISCRETE]
    modes = ["first_order"] + (["exact"] if task_name in EXACT_TASKS else [])
    out += [Config(task_name, "sde", a, mode) for mode in modes for a in SDE_DRIFTS]
    return out


def build_runner(cfg: Config, task: Task):
    noise = make_noise("isotropic", task, sigma=SIGMA)
    if cfg.kind == "discrete":
        return DiscreteRunner(task, noise, cfg.runner, ETA, RHO)
    gen = make_generator(SEED, "bench", cfg.task, cfg.runner, cfg.mode, "inner")
    return SDERunner(SDEModel(task, noise, ETA, RHO, cfg.runner, mode=cfg.mode, generator=gen))


def draw_increments(n: int, n_paths: int, dim_w: int, key: str) -> list[torch.Tensor]:
    """``n`` blocks of Brownian increments (r, M, dim_w), dW ~ N(0, dt I), as the simulation loop draws them."""
    dt = ETA / RESOLUTION
    gen = make_generator(SEED, "bench", key, "brownian")
    return [
        math.sqrt(dt) * torch.randn(RESOLUTION, n_paths, dim_w, generator=gen, dtype=torch.float64) for _ in range(n)
    ]


class QuietGate:
    """With a positive ``budget`` (seconds), hold each timed block until other processes are quiet.

    Before a block it watches a ``window`` of sleep until other processes use < ``threshold`` cores; a block long
    enough to judge (>= ``MIN_JUDGED`` s) during which they used more is discarded and rerun (at most
    ``MAX_RETRIES`` times).  Failed windows count against the budget; once it is spent the gate stays open.
    """

    MIN_JUDGED = 0.2
    MAX_RETRIES = 3

    def __init__(self, budget: float, threshold: float = 0.2, window: float = 0.25):
        self.budget, self.threshold, self.window = budget, threshold, window
        self.waited = 0.0
        self.retries = 0

    @property
    def active(self) -> bool:
        return self.waited < self.budget

    def wait(self) -> None:
        while self.active:
            meter = CpuMeter()
            with meter:
                time.sleep(self.window)
            if meter.cores < self.threshold:
                return
            self.waited += meter.wall

    def disturbed(self, seconds: float, meter: CpuMeter) -> bool:
        return self.active and seconds >= self.MIN_JUDGED and meter.cores >= self.threshold


class Job:
    """One timed configuration: ``block()`` advances its state by one block of steps and returns the seconds."""

    def __init__(self, cfg: Config, batch: str, n_paths: int, runner, x0: torch.Tensor, increments: list):
        self.cfg, self.batch, self.n_paths, self.runner = cfg, batch, n_paths, runner
        self.steps = len(increments)
        self.dt = ETA / RESOLUTION
        self.x0 = x0.clone()
        self.x = self.x0
        if batch == "batched":
            self.increments = increments
        else:  # pre-sliced (1 path each), so the loop pays nothing for noise bookkeeping
            self.per_path = [[inc[:, p : p + 1].contiguous() for inc in increments] for p in range(n_paths)]
        self.blocks: list[float] = []
        self.meter = CpuMeter()

    def warm_up(self, n: int) -> None:
        incs = self.increments if self.batch == "batched" else self.per_path[0]
        for k in range(n):
            self.x = self.runner.advance(self.x, incs[k % len(incs)], self.dt)

    def block(self, gate: QuietGate) -> float:
        for attempt in range(gate.MAX_RETRIES + 1):
            gate.wait()
            meter = CpuMeter()
            with meter:
                seconds = self._block()
            if attempt == gate.MAX_RETRIES or not gate.disturbed(seconds, meter):
                break
            gate.retries += 1
        self.meter.foreign += meter.foreign
        self.meter.wall += meter.wall
        self.blocks.append(seconds)
        return seconds

    def _block(self) -> float:
        advance, dt = self.runner.advance, self.dt
        if self.batch == "batched":
            x = self.x
            start = time.perf_counter()
            for inc in self.increments:
                x = advance(x, inc, dt)
            seconds = time.perf_counter() - start
        else:  # each path alone (M=1), path after path, each from the initial point
            start = time.perf_counter()
            for incs in self.per_path:
                x = self.x0
                for inc in incs:
                    x = advance(x, inc, dt)
            seconds = time.perf_counter() - start
        self.x = x
        return seconds

    def row(self) -> dict:
        median, best = statistics.median(self.blocks), min(self.blocks)
        return {
            "task": self.cfg.task,
            "runner": self.cfg.runner,
            "kind": self.cfg.kind,
            "mode": self.cfg.mode,
            "batch": self.batch,
            "n_paths": self.n_paths,
            "path_steps_per_s": self.n_paths * self.steps / median,
            "seconds_per_step": median / self.steps,
            "repeats": len(self.blocks),
            "steps_per_repeat": self.steps,
            "best_path_steps_per_s": self.n_paths * self.steps / best,
            "spread": (max(self.blocks) - best) / median,  # (max - min) / median over the repeats
            # cores used by other processes during this job's timed blocks (NaN: too short to tell, < 0.5 s)
            "foreign_load": self.meter.cores if self.meter.wall >= 0.5 else math.nan,
            "finite": bool(torch.isfinite(self.x).all()),
        }


def profile_runner(runner, x0: torch.Tensor, increments: list[torch.Tensor], top: int = 6) -> str:
    """Where one block of steps spends its time: samsde functions by cumulative share, aten ops by self share."""
    dt = ETA / RESOLUTION
    prof = cProfile.Profile()
    x = x0.clone()
    prof.enable()
    for inc in increments:
        x = runner.advance(x, inc, dt)
    prof.disable()
    stats = pstats.Stats(prof).stats  # {(file, line, func): (cc, nc, tottime, cumtime, callers)}
    total = max(v[3] for v in stats.values())
    own = sorted(
        ((v[3], f"{Path(k[0]).stem}.{k[2]}") for k, v in stats.items() if f"samsde{os.sep}" in k[0]),
        reverse=True,
    )
    lines = ["    samsde functions (cumulative share): " + ", ".join(f"{n} {t / total:.0%}" for t, n in own[:top])]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as tprof:
        for inc in increments:
            x = runner.advance(x, inc, dt)
    events = [e for e in tprof.key_averages() if e.key.startswith("aten::")]
    self_total = sum(e.self_cpu_time_total for e in tprof.key_averages())
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    lines.append(
        "    aten ops (self CPU share): "
        + ", ".join(f"{e.key[6:]} {e.self_cpu_time_total / self_total:.0%}" for e in events[:top])
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (M=200), whole run well under a minute")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/simulate.csv"), help="CSV to write")
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=list(TASKS), help="tasks to run")
    parser.add_argument(
        "--profile", action="store_true", help="also print a cProfile/torch.profiler breakdown per batched runner"
    )
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="spend up to SECONDS in total waiting for other processes to go quiet before timed blocks, "
        "and rerun blocks they disturbed (default 0: no waiting)",
    )
    parser.add_argument("--threads", type=int, default=THREADS, help="torch.set_num_threads (default 2)")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL

    print(use_threads(args.threads))
    print(
        f"M = {sizes.n_paths} paths, eta = rho = {ETA}, isotropic sigma = {SIGMA}, r = {RESOLUTION}, "
        f"float64; warm-up {sizes.warmup} steps, median of {sizes.repeats} repeats of "
        + ", ".join(f"{s} steps ({t})" for t, s in sizes.steps.items())
    )
    print(
        f"load from other processes: 1-minute load average {os.getloadavg()[0]:.2f}; "
        "per-job CPU use of other processes (in cores) is the column foreign_load"
    )

    gate = QuietGate(args.wait_idle)
    rows = []
    profiles: list[str] = []
    wall = time.perf_counter()
    for task_name in args.tasks:
        task = make_task(task_name, **TASKS[task_name])
        x0_row = task.initial_point(make_generator(SEED, "bench", task_name, "x0")).reshape(1, -1)
        x0 = x0_row.expand(sizes.n_paths, -1).clone()
        steps = sizes.steps[task_name]
        jobs = []
        for cfg in configs(task_name):
            runner = build_runner(cfg, task)
            increments = draw_increments(steps, sizes.n_paths, runner.dim_w, f"{task_name}/{runner.dim_w}")
            jobs.append(Job(cfg, "batched", sizes.n_paths, runner, x0, increments))
            if (cfg.kind, cfg.runner, cfg.mode) in LOOP_SUBSET:
                loop_incs = [inc[:, : sizes.loop_paths] for inc in increments]
                jobs.append(Job(cfg, "loop_M1", sizes.loop_paths, runner, x0_row, loop_incs))
        for job in jobs:
            job.warm_up(sizes.warmup)
        # repeats interleaved across configurations, so a burst of load from elsewhere hits them all alike
        for rep in range(sizes.repeats):
            t0 = time.perf_counter()
            for job in jobs:
                job.block(gate)
            print(
                f"  {task_name}: repeat {rep + 1}/{sizes.repeats} of {len(jobs)} jobs took "
                f"{time.perf_counter() - t0:.1f} s",
                flush=True,
            )
        rows += [job.row() for job in jobs]
        if args.profile:
            for job in jobs:
                if job.batch == "batched":
                    head = f"  {task_name} {job.cfg.kind} {job.cfg.runner} {job.cfg.mode}:\n"
                    profiles.append(head + profile_runner(job.runner, x0, job.increments))
    elapsed = time.perf_counter() - wall

    df = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)

    pd.set_option("display.width", 200)
    table = df.drop(columns=["finite"]).copy()
    for col in ("path_steps_per_s", "best_path_steps_per_s"):
        table[col] = table[col].map(lambda v: f"{v:,.0f}")
    table["seconds_per_step"] = table["seconds_per_step"].map(lambda v: f"{v:.3g}")
    table["spread"] = table["spread"].map(lambda v: f"{v:.0%}")
    table["foreign_load"] = table["foreign_load"].map(lambda v: "n/a" if math.isnan(v) else f"{v:.2f}")
    print()
    print(table.to_string(index=False))

    keys = ["task", "kind", "runner", "mode"]
    batched = df[df["batch"] == "batched"].set_index(keys)["path_steps_per_s"]
    loop = df[df["batch"] == "loop_M1"].set_index(keys)["path_steps_per_s"]
    speed = pd.DataFrame({"batched_path_steps_per_s": batched.loc[loop.index], "loop_path_steps_per_s": loop})
    speed["speedup"] = speed["batched_path_steps_per_s"] / speed["loop_path_steps_per_s"]
    speed = speed.reset_index()
    print()
    print(
        f"Speed-up of the batched simulator (M = {sizes.n_paths}) over a Python loop of M=1 advances: the loop was "
        f"timed on {sizes.loop_paths} paths only and is extrapolated per path-step (its cost is linear in paths)."
    )
    for col in ("batched_path_steps_per_s", "loop_path_steps_per_s"):
        speed[col] = speed[col].map(lambda v: f"{v:,.0f}")
    speed["speedup"] = speed["speedup"].map(lambda v: f"{v:,.1f}x")
    print(speed.to_string(index=False))
    if not df["finite"].all():
        print("\nWARNING: non-finite iterates in", df.loc[~df["finite"], keys + ["batch"]].to_dict("records"))
    if df["foreign_load"].max() > 0.2:
        print(
            f"\nWARNING: other processes used up to {df['foreign_load'].max():.2f} of the {os.cpu_count()} cores "
            "during timing; with OpenMP threads = cores such contention slows batched ops many-fold. "
            "Rerun on a quiet machine (or with --wait-idle) before trusting these numbers."
        )
    if gate.budget > 0:
        print(
            f"\nquiet gate: waited {gate.waited:.0f} s of the {gate.budget:.0f} s budget for other processes; "
            f"reran {gate.retries} disturbed blocks"
        )
    if profiles:
        print("\nProfiles (one block of timed steps each, batched):")
        print("\n".join(profiles))
    print(
        f"\nwrote {args.out}; benchmark wall time {elapsed:.0f} s; "
        f"1-minute load average at end {os.getloadavg()[0]:.2f} (includes this process)"
    )


if __name__ == "__main__":
    main()
