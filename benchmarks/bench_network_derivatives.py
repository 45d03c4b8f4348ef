"""Closed-form vs autograd derivatives of the one-hidden-layer network tasks (iris, breast_cancer, teacher_student).

Run from the repository root:

    python3 benchmarks/bench_network_derivatives.py [--paths 1000] [--threads 1 2] [--repeats 7] [--quick]
        [--tasks breast_cancer] [--wait-idle 300] [--out benchmarks/out/network_derivatives.csv]

For each task at M paths (default 1000, random points of the task's init scale, one random direction v) and each
thread count it times, in interleaved rounds so that a burst of outside load hits all alike (in each round every
job runs once untimed, to warm caches and memory as in a simulation loop, then once timed):
- ``grad``:      autograd ``Task.grad`` (one backward pass)  vs  ``OneHiddenLayerNet.grad`` (closed form);
- ``lin+hvp``:   ``AutogradLinearization(task, x).hvp(v)`` (gradient with create_graph, then a double backward)
                 vs  ``task.linearize(x).hvp(v)`` (NetworkLinearization: forward + backprop, then one R-pass).
Reported: median wall time (and process CPU time) over the repeats, the speed-up autograd / manual, and the
achieved GFLOP/s of the manual version counting its big GEMMs only (``gemm_count``):

    flops per GEMM = 2 N (p + 1) M h      (X~ = [X, 1] is N x (p + 1): the first-layer bias rides in the GEMM)
    sigmoid / tanh (o = 1): grad 2 GEMMs (Z = X~ W~^T, P = X~^T (phi'(Z) E)), lin+hvp 4 (also R{Z}, X~^T B);
    iris, linear activation, collapsed network: GEMMs of width M instead of M h, 2 o for grad, 4 o for lin+hvp

as a fraction of a large float64 matmul (2000 x 2000 @ 2000 x 2000, 16 GFLOP) timed in the same run at the same
thread count.  ``gemm_floor_ms`` is the time of those GEMMs alone (unchunked, on whole (N, W) shapes), the floor the
closed form could reach if its elementwise passes were free.  The manual results are checked against autograd
(``max_rel_err``).  ``foreign_load`` is the CPU (in cores) other processes used during the timed blocks: numbers
taken above ~0.2 cores are slowed down by contention (the speed-ups are ratios of interleaved runs and suffer less).

Output: the table on stdout and a CSV (one row per task x threads x op).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from pathlib import Path

import pandas as pd
import torch
from _machine import machine_busy_seconds  # benchmarks/ is on sys.path when run as a script

from samsde import make_generator, make_task
from samsde.tasks import AutogradLinearization, OneHiddenLayerNet, Task

TASKS = ("iris", "breast_cancer", "teacher_student")
MATMUL_N = 2000
SEED = 0


class Timer:
    """Wall and process-CPU time of each call, plus the CPU other processes used meanwhile (``foreign`` cores)."""

    def __init__(self):
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self._foreign = 0.0

    def __call__(self, fn) -> None:
        busy0, cpu0, wall0 = machine_busy_seconds(), time.process_time(), time.perf_counter()
        fn()
        wall, cpu, busy = time.perf_counter() - wall0, time.process_time() - cpu0, machine_busy_seconds() - busy0
        self.wall.append(wall)
        self.cpu.append(cpu)
        self._foreign += busy - cpu

    @property
    def foreign(self) -> float:
        return max(self._foreign / sum(self.wall), 0.0) if self.wall else math.nan


def wait_until_idle(timeout: float, threshold: float = 0.15, window: float = 3.0) -> float:
    """Sleep until other processes use < ``threshold`` cores over a ``window``-second look, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        timer = Timer()
        timer(lambda: time.sleep(window))
        if timer.foreign < threshold or time.monotonic() >= deadline:
            return timer.foreign


def matmul_gflops(repeats: int = 3) -> float:
    a = torch.randn(MATMUL_N, MATMUL_N, dtype=torch.float64, generator=make_generator(SEED, "bench_matmul"))
    b = torch.randn_like(a)
    a @ b  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * MATMUL_N**3 / statistics.median(times) / 1e9


def gemm_count(task: OneHiddenLayerNet, op: str) -> tuple[int, int]:
    """(number of big GEMMs, width W of each): every one is X~ (N x p+1) times (p+1 x W), or X~^T (p+1 x N) times
    (N x W), so 2 N (p + 1) W flops.  See NetworkLinearization:
    - nonlinear activation, W = M h: the gradient takes 1 + o (Z, then P_c for each output), each H v 2 more;
    - linear activation (collapsed network), W = M: the gradient takes 2 o (U_c, R_c), each H v 2 o more."""
    o, h = task.layout.n_out, task.layout.n_hidden
    if task.activation.linear:
        return (2 * o if op == "grad" else 4 * o), 1
    return (1 + o if op == "grad" else 3 + o), h


def gemm_floor(task: OneHiddenLayerNet, n_paths: int, op: str, repeats: int) -> float:
    """Median seconds of the closed form's big GEMMs alone (alternately forward and backward shapes, all M at once)."""
    count, width = gemm_count(task, op)
    xa, xat = task.inputs_augmented, task.inputs_augmented_t
    w = torch.randn(n_paths * width, task.layout.n_in + 1, dtype=xa.dtype)
    z = torch.empty(task.n_data, w.shape[0], dtype=xa.dtype)

    def run():
        for i in range(count):
            torch.mm(xa, w.T, out=z) if i % 2 == 0 else torch.mm(xat, z)

    run()
    timer = Timer()
    for _ in range(repeats):
        timer(run)
    return statistics.median(timer.wall)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((torch.linalg.vector_norm(a - b, dim=-1) / torch.linalg.vector_norm(b, dim=-1)).max())


def bench_task(name: str, n_paths: int, threads: int, repeats: int, matmul: float) -> list[dict]:
    task = make_task(name)
    assert isinstance(task, OneHiddenLayerNet) and task.closed_form
    gen = make_generator(SEED, "bench_network_derivatives", name)
    x = task.init_scale * torch.randn(n_paths, task.dim, generator=gen, dtype=torch.float64)
    v = torch.randn(n_paths, task.dim, generator=gen, dtype=torch.float64)
    jobs = {
        ("grad", "autograd"): lambda: Task.grad(task, x),
        ("grad", "manual"): lambda: task.grad(x),
        ("lin+hvp", "autograd"): lambda: AutogradLinearization(task, x).hvp(v),
        ("lin+hvp", "manual"): lambda: task.linearize(x).hvp(v),
    }
    chunk_paths = task.linearize(x)._step  # paths per chunk of NetworkLinearization at this thread count
    errors = {
        "grad": rel_err(jobs["grad", "manual"](), jobs["grad", "autograd"]()),
        "lin+hvp": rel_err(jobs["lin+hvp", "manual"](), jobs["lin+hvp", "autograd"]()),
    }
    timers = {key: Timer() for key in jobs}
    for _ in range(repeats):  # interleaved rounds; in each, every job runs once untimed (warm-up), then timed
        for key, fn in jobs.items():
            fn()
            timers[key](fn)
    rows = []
    for op in ("grad", "lin+hvp"):
        ag, mn = timers[op, "autograd"], timers[op, "manual"]
        wall_ag, wall_mn = statistics.median(ag.wall), statistics.median(mn.wall)
        cpu_ag, cpu_mn = statistics.median(ag.cpu), statistics.median(mn.cpu)
        n_gemms, width = gemm_count(task, op)
        flops = n_gemms * 2.0 * task.n_data * (task.layout.n_in + 1) * n_paths * width
        gflops = flops / wall_mn / 1e9
        rows.append(
            {
                "task": name,
                "threads": threads,
                "op": op,
                "n_paths": n_paths,
                "N": task.n_data,
                "p": task.layout.n_in,
                "h": task.layout.n_hidden,
                "o": task.layout.n_out,
                "d": task.dim,
                "autograd_ms": 1e3 * wall_ag,
                "manual_ms": 1e3 * wall_mn,
                "speedup": wall_ag / wall_mn,
                "autograd_cpu_ms": 1e3 * cpu_ag,
                "manual_cpu_ms": 1e3 * cpu_mn,
                "cpu_speedup": cpu_ag / cpu_mn,
                "manual_min_ms": 1e3 * min(mn.wall),
                "manual_spread": (max(mn.wall) - min(mn.wall)) / wall_mn,
                "n_gemms": n_gemms,
                "gemm_gflop": flops / 1e9,
                "gemm_floor_ms": 1e3 * gemm_floor(task, n_paths, op, repeats),
                "manual_gflops": gflops,
                "matmul_gflops": matmul,
                "fraction_of_matmul": gflops / matmul,
                "max_rel_err": errors[op],
                "repeats": repeats,
                "chunk_paths": chunk_paths,
                "foreign_load": max(ag.foreign, mn.foreign),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paths", type=int, default=1000, help="number of paths M (default 1000)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts (default 1 2)")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per job (default 7)")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--quick", action="store_true", help="M=200, 3 repeats")
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each task, wait up to SECONDS for other processes to go quiet (< 0.15 cores)",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/network_derivatives.csv"))
    args = parser.parse_args()
    if args.quick:
        args.paths, args.repeats = 200, 3
    print(
        f"torch {torch.__version__}, float64, {os.cpu_count()} CPUs, M = {args.paths}, {args.repeats} repeats; "
        f"1-minute load average {os.getloadavg()[0]:.2f}"
    )
    previous = torch.get_num_threads()
    rows = []
    try:
        for threads in args.threads:
            torch.set_num_threads(threads)
            matmul = matmul_gflops()
            print(f"threads={threads}: {MATMUL_N}^3 float64 matmul {matmul:.1f} GFLOP/s", flush=True)
            for name in args.tasks:
                if args.wait_idle > 0:
                    foreign = wait_until_idle(args.wait_idle)
                    print(f"  {name}: other processes now use {foreign:.2f} cores", flush=True)
                rows.extend(bench_task(name, args.paths, threads, args.repeats, matmul))
                last = rows[-1]
                print(f"  {name}: lin+hvp {last['speedup']:.1f}x faster than autograd", flush=True)
    finally:
        torch.set_num_threads(previous)
    df = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    columns = {
        "task": "task",
        "threads": "thr",
        "op": "op",
        "autograd_ms": "autograd ms",
        "manual_ms": "manual ms",
        "speedup": "speed-up",
        "cpu_speedup": "cpu speed-up",
        "gemm_floor_ms": "GEMM floor ms",
        "manual_gflops": "GFLOP/s",
        "fraction_of_matmul": "of matmul",
        "max_rel_err": "rel err",
        "foreign_load": "foreign",
    }
    table = df[list(columns)].rename(columns=columns)
    print()
    print(
        table.to_string(
            index=False,
            float_format=lambda f: f"{f:.1e}" if 0 < abs(f) < 1e-3 else f"{f:.2f}" if abs(f) < 10 else f"{f:.1f}",
        )
    )
    print(f"\nwrote {args.out}; 1-minute load average at end {os.getloadavg()[0]:.2f}")
    if df["foreign_load"].max() > 0.2:
        print(
            f"WARNING: other processes used up to {df['foreign_load'].max():.2f} of the {os.cpu_count()} cores: "
            "absolute times are inflated; the speed-ups (interleaved) less so"
        )


if __name__ == "__main__":
    main()
