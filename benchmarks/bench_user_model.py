"""Bring your own model: the torch.func route (``samsde.from_module``) against the closed-form network kernel.

    python3 benchmarks/bench_user_model.py [--paths 500] [--repeats 15] [--skip-memory]   # ~1 min on 2 cores

The same function of the same flat x twice: the closed form ``BreastCancer(n_hidden=4, l2=1e-3, init_scale=0.5)``
(d = 129, N = 569) and ``from_module(nn.Sequential(nn.Linear(30, 4), nn.Sigmoid(), nn.Linear(4, 1)), inputs,
targets, "bce", l2=1e-3)`` (a ``ModuleTask``: vmap of functional_call), its Hessian-vector products in both
``hvp_mode``s (reverse, the default; forward).  Seeded float64 data at M = 500 paths: x = 0.5 randn(M, d), v =
randn(M, d), weights w = randn(M, N) / N, mini-batch indices (M, 32).  Operations (variant ``<op>:<route>``):
``grad`` = task.grad(x); ``lin+hvp`` = task.linearize(x).hvp(v); ``weighted_grad`` =
task.weighted_sample_grad(x, w); ``batch_lin+hvp`` = task.batch_linearize(x, idx).hvp(v); ``half_grad_sq_norms``
= task.half_grad_of_sample_sq_norms(x) (slow on the torch.func route: 3 of the 15 rounds).  15 interleaved rounds,
each job once untimed then once timed.  Rows: ``seconds`` per call; per torch.func job ``ratio_to_closed_form``
(medians), ``ratio_of_best`` (minimum times: on this VM the closed form's time switches between two levels ~2.4x
apart for seconds at a time, so the medians can understate the ratio), ``max_rel_err``; ``peak_memory_mib``: each
job in its own child, run once at M = 2, then the growth of the peak RSS over 3 calls at M.
"""

from __future__ import annotations

import math

import torch
from harness import PeakMemory, Rows, in_child, median, parser, time_interleaved
from torch import nn

from samsde import from_module, make_generator
from samsde.tasks.networks import BreastCancer

N_HIDDEN, L2, BATCH, SEED = 4, 1e-3, 32, 0
SLOW_OPS = ("half_grad_sq_norms",)


def build_tasks():
    """(closed form, torch.func in hvp_mode 'reverse', the same in 'forward')."""
    torch.manual_seed(SEED)  # the module's own initialisation (not used: every point is given)
    bc = BreastCancer(n_hidden=N_HIDDEN, l2=L2, init_scale=0.5)
    net = nn.Sequential(nn.Linear(30, N_HIDDEN), nn.Sigmoid(), nn.Linear(N_HIDDEN, 1))
    reverse, forward = (from_module(net, bc.inputs, bc.targets, "bce", l2=L2, name="breast_cancer_module")
                        for _ in range(2))  # fmt: skip
    reverse.hvp_mode, forward.hvp_mode = "reverse", "forward"
    return bc, reverse, forward


def build_jobs(tasks, m: int) -> dict:
    """(op, route) -> a callable returning the operation's result at seeded data of ``m`` paths."""
    bc, reverse, forward = tasks
    gen = make_generator(SEED, "bench_user_model", m)
    x = 0.5 * torch.randn(m, bc.dim, generator=gen, dtype=torch.float64)
    v = torch.randn(m, bc.dim, generator=gen, dtype=torch.float64)
    w = torch.randn(m, bc.n_data, generator=gen, dtype=torch.float64) / bc.n_data
    idx = torch.randint(0, bc.n_data, (m, BATCH), generator=gen)
    jobs = {}
    for route, t in (("closed_form", bc), ("torch_func", reverse)):
        jobs["grad", route] = lambda t=t: t.grad(x)
    for route, t in (("closed_form", bc), ("torch_func:reverse", reverse), ("torch_func:forward", forward)):
        jobs["lin+hvp", route] = lambda t=t: t.linearize(x).hvp(v)
    for route, t in (("closed_form", bc), ("torch_func", reverse)):
        jobs["weighted_grad", route] = lambda t=t: t.weighted_sample_grad(x, w)
    for route, t in (("closed_form", bc), ("torch_func:reverse", reverse), ("torch_func:forward", forward)):
        jobs["batch_lin+hvp", route] = lambda t=t: t.batch_linearize(x, idx).hvp(v)
    for route, t in (("closed_form", bc), ("torch_func", reverse)):
        jobs["half_grad_sq_norms", route] = lambda t=t: t.half_grad_of_sample_sq_norms(x)
    return jobs


def memory_cell(op: str, route: str, m: int) -> float:
    """In a child: the peak-RSS growth (MiB) over 3 calls of one job at ``m`` paths."""
    tasks = build_tasks()
    build_jobs(tasks, 2)[op, route]()  # code paths and lazy set-up, at a negligible size
    job = build_jobs(tasks, m)[op, route]
    mem = PeakMemory().start()
    for _ in range(3):
        job()
    return mem.mib()


def main() -> None:
    p = parser(__doc__, "user_model.csv")
    p.add_argument("--paths", type=int, help="paths M (default 500)")
    p.add_argument("--repeats", type=int, help="timed rounds (default 15)")
    p.add_argument("--skip-memory", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    m = args.paths or (4 if args.quick else 500)
    repeats = args.repeats or (2 if args.quick else 15)
    slow = min(repeats, 3)
    tasks = build_tasks()
    d = tasks[0].dim
    jobs = build_jobs(tasks, m)
    results = {key: fn() for key, fn in jobs.items()}
    slow_rounds = {round(i * repeats / slow) for i in range(slow)}
    times, loads, _ = time_interleaved(jobs, repeats, rounds={k: slow_rounds for k in jobs if k[0] in SLOW_OPS})
    rows = Rows("user_model")
    for (op, route), secs in times.items():
        ident = ("breast_cancer", d, m, f"{op}:{route}")
        rows.series(*ident, "seconds", "s", secs, "one call after an untimed one")
        rows.add(*ident, "foreign_load", "cores", loads[op, route])
        if route != "closed_form":
            ref, res = times[op, "closed_form"], results[op, "closed_form"]
            rows.add(*ident, "ratio_to_closed_form", "x", median(secs) / median(ref), note="medians")
            rows.add(*ident, "ratio_of_best", "x", min(secs) / min(ref), note="minimum times")
            err = torch.linalg.vector_norm(results[op, route] - res, dim=-1) / torch.linalg.vector_norm(res, dim=-1)
            rows.add(*ident, "max_rel_err", "-", err.max(), note="max over paths of |a - b| / |b|, b the closed form")
        if not args.skip_memory and (op == "grad" or not args.quick):
            mib = in_child(memory_cell, op, route, m, threads=args.threads)
            rows.add(*ident, "peak_memory_mib", "MiB", mib if isinstance(mib, float) else math.nan, 0, str(mib))
    rows.write(args.out)


if __name__ == "__main__":
    main()
