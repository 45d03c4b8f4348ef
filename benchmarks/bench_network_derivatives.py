"""Closed-form vs autograd derivatives of the one-hidden-layer networks, and their FLOP rate against a matmul.

    python3 benchmarks/bench_network_derivatives.py [--threads 2] [--paths 1000] [--repeats 7]   # ~2 min

Tasks ``make_task(name)`` for iris, breast_cancer (d = 257), teacher_student; M = 1000 points x = init_scale
randn(M, d) and one direction v = randn(M, d), seeded, float64.  Jobs, timed in 7 interleaved rounds (each job once
untimed, then once timed, per round):
- ``grad``:    autograd ``Task.grad(task, x)`` (``grad:autograd``) vs the closed form ``task.grad(x)``
  (``grad:manual``);
- ``lin+hvp``: ``AutogradLinearization(task, x).hvp(v)`` vs ``task.linearize(x).hvp(v)`` (forward + backprop, then
  one R-pass).
Derived rows (variant = op): ``speedup_over_autograd`` (ratio of medians); ``achieved_gflops`` of the closed form
counting its big GEMMs only, 2 N (p + 1) W flops each (``gemm_count``); ``fraction_of_matmul``: that rate over
the rate of a 2000 x 2000 float64 matmul timed in the same run at the same thread count;
``gemm_floor_fraction_of_matmul``: the same GEMMs alone, unchunked, with no elementwise work (the ceiling);
``max_rel_err`` of the closed form against autograd.
"""

from __future__ import annotations

import time

import torch
from harness import Rows, median, parser, time_interleaved

from samsde import make_generator, make_task
from samsde.tasks import AutogradLinearization, OneHiddenLayerNet, Task

TASKS, MATMUL_N, SEED = ("iris", "breast_cancer", "teacher_student"), 2000, 0


def matmul_gflops(n: int, repeats: int = 3) -> float:
    a = torch.randn(n, n, dtype=torch.float64, generator=make_generator(SEED, "bench_matmul"))
    b = torch.randn_like(a)
    a @ b  # warm-up
    times, _, _ = time_interleaved({"mm": lambda: a @ b}, repeats, warm=False)
    return 2 * n**3 / median(times["mm"]) / 1e9


def gemm_count(task: OneHiddenLayerNet, op: str) -> tuple[int, int]:
    """(number of big GEMMs, width W of each), every one 2 N (p + 1) W flops.  Nonlinear activation, W = M h: the
    gradient takes 1 + o, each H v 2 more; linear (collapsed network), W = M: the gradient 2 o, each H v 2 o more."""
    o, h = task.layout.n_out, task.layout.n_hidden
    if task.activation.linear:
        return (2 * o if op == "grad" else 4 * o), 1
    return (1 + o if op == "grad" else 3 + o), h


def gemm_floor(task: OneHiddenLayerNet, n_paths: int, op: str, repeats: int) -> float:
    """Median seconds of the closed form's big GEMMs alone (alternately forward and backward shapes)."""
    count, width = gemm_count(task, op)
    xa, xat = task.inputs_augmented, task.inputs_augmented_t
    w = torch.randn(n_paths * width, task.layout.n_in + 1, dtype=xa.dtype)
    z = torch.empty(task.n_data, w.shape[0], dtype=xa.dtype)

    def run():
        for i in range(count):
            torch.mm(xa, w.T, out=z) if i % 2 == 0 else torch.mm(xat, z)

    run()  # warm-up
    times, _, _ = time_interleaved({"floor": run}, repeats, warm=False)
    return median(times["floor"])


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((torch.linalg.vector_norm(a - b, dim=-1) / torch.linalg.vector_norm(b, dim=-1)).max())


def bench_task(name: str, m: int, repeats: int, matmul: float, rows: Rows) -> None:
    task = make_task(name)
    assert isinstance(task, OneHiddenLayerNet) and task.closed_form
    gen = make_generator(SEED, "bench_network_derivatives", name)
    x = task.init_scale * torch.randn(m, task.dim, generator=gen, dtype=torch.float64)
    v = torch.randn(m, task.dim, generator=gen, dtype=torch.float64)
    jobs = {
        ("grad", "autograd"): lambda: Task.grad(task, x),
        ("grad", "manual"): lambda: task.grad(x),
        ("lin+hvp", "autograd"): lambda: AutogradLinearization(task, x).hvp(v),
        ("lin+hvp", "manual"): lambda: task.linearize(x).hvp(v),
    }
    times, loads, _ = time_interleaved(jobs, repeats)
    for (op, route), secs in times.items():
        rows.series(name, task.dim, m, f"{op}:{route}", "seconds", "s", secs)
        rows.add(name, task.dim, m, f"{op}:{route}", "foreign_load", "cores", loads[op, route])
    for op in ("grad", "lin+hvp"):
        manual = median(times[op, "manual"])
        n_gemms, width = gemm_count(task, op)
        flops = n_gemms * 2.0 * task.n_data * (task.layout.n_in + 1) * m * width
        floor = gemm_floor(task, m, op, repeats)
        note = f"matmul {matmul:.1f} GFLOP/s; {n_gemms} GEMMs of {flops / n_gemms / 1e9:.3g} GFLOP"
        for metric, unit, value in (
            ("speedup_over_autograd", "x", median(times[op, "autograd"]) / manual),
            ("achieved_gflops", "GFLOP/s", flops / manual / 1e9),
            ("fraction_of_matmul", "-", flops / manual / 1e9 / matmul),
            ("gemm_floor_fraction_of_matmul", "-", flops / floor / 1e9 / matmul),
            ("max_rel_err", "-", rel_err(jobs[op, "manual"](), jobs[op, "autograd"]())),
        ):
            rows.add(name, task.dim, m, op, metric, unit, value, note=note)


def main() -> None:
    p = parser(__doc__, "network_derivatives.csv")
    p.add_argument("--paths", type=int, default=1000, help="paths M (default 1000)")
    p.add_argument("--repeats", type=int, default=7, help="timed rounds (default 7)")
    args = p.parse_args()
    if args.quick:
        args.paths, args.repeats = 20, 2
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    matmul = matmul_gflops(200 if args.quick else MATMUL_N)
    rows = Rows("network_derivatives")
    for name in TASKS:
        bench_task(name, args.paths, args.repeats, matmul, rows)
    print(f"matmul {matmul:.1f} GFLOP/s; {time.perf_counter() - start:.0f} s")
    rows.write(args.out)


if __name__ == "__main__":
    main()
