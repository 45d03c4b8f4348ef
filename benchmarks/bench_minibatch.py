"""The mini-batch SDEs (samsde.minibatch): one SDE step against one discrete step, and the peak memory of a step.

    python3 benchmarks/bench_minibatch.py [--threads 1]   # ~3 min on one thread

1. Cost.  ``make_task('iris')`` (d = 35, N = 150) and ``make_task('teacher_student')`` (d = 29, N = 200), batch
   size B = 10, eta = 0.05, rho = 0.5 sqrt(eta), float64, M = 1000 paths at the task's seeded initial point, one
   thread.  Jobs (one call each first, then 5 interleaved blocks of 5 calls; the state is not advanced):
   ``discrete:<alg>`` = ``DiscreteRunner.advance`` (one optimizer step on a fresh batch per path);
   ``sde:<alg>:<mode>:K=<n_inner>`` = ``euler_maruyama_step(model, x, dW, eta / 5)`` of the mini-batch SDE in modes
   first_order (K = 16) and sampled (K = 16, 4); ``sde:<alg>:linear`` (USAM, DNSAM: the noise-free linear root, no
   inner sample); ``sde:usam:additive`` (section 3's formula, the ablation).
   Rows: ``seconds_per_step`` per block, ``ratio_to_discrete_sam`` and, for ``sde:<alg>:...``,
   ``ratio_to_discrete_same`` (against ``discrete:<alg>``), ratios of medians.
2. Memory.  One first_order step at breast-cancer size (``make_task('breast_cancer')``, d = 257, N = 569, B = 32,
   n_inner = 16, M = 1000, usam and sam) in a fresh child: ``peak_rss_increase``, the growth of its peak RSS over
   the step (MB), against ``mnd_tensor``, the size of one (M, N, d) float64 tensor, which no step should form.
"""

from __future__ import annotations

import math

import torch
from harness import PeakMemory, Rows, in_child, median, parser, time_interleaved

from samsde import DiscreteRunner, SDEModel, make_generator, make_noise, make_task
from samsde.solvers import euler_maruyama_step

ETA, BATCH, SEED, R = 0.05, 10, 0, 5
RHO = 0.5 * math.sqrt(ETA)


def jobs_for(task, n_paths: int) -> dict:
    """name -> one step from the fixed state x."""
    noise = make_noise("minibatch", task, batch_size=BATCH)
    x = task.initial_point(make_generator(SEED, "x0", task.name)).expand(n_paths, -1).clone()
    dw = math.sqrt(ETA / R) * torch.randn(n_paths, task.n_data, generator=make_generator(SEED, "dw"), dtype=x.dtype)
    out = {}
    for alg in ("sgd", "usam", "dnsam", "sam"):
        rho = 0.0 if alg == "sgd" else RHO
        run = DiscreteRunner(task, noise, alg, ETA, rho, generator=make_generator(SEED, "batches", alg))
        out[f"discrete:{alg}"] = lambda run=run: run.advance(x, None, ETA)
        for mode, k in (("first_order", 16), ("sampled", 16), ("sampled", 4)):
            if alg != "sgd" or (mode, k) == ("first_order", 16):
                gen = make_generator(SEED, "inner", alg, mode, k)
                model = SDEModel(task, noise, ETA, rho, alg, mode=mode, inner_samples=k, generator=gen)
                out[f"sde:{alg}:{mode}:K={k}"] = lambda m=model: euler_maruyama_step(m, x, dw, ETA / R)
        if alg in ("usam", "dnsam"):
            model = SDEModel(task, noise, ETA, rho, alg, mode="linear")
            out[f"sde:{alg}:linear"] = lambda m=model: euler_maruyama_step(m, x, dw, ETA / R)
    additive = SDEModel(task, noise, ETA, RHO, "usam", minibatch_formula="additive")
    out["sde:usam:additive"] = lambda: euler_maruyama_step(additive, x, dw, ETA / R)
    return out


def step_memory(n_paths: int, alg: str) -> float:
    """In a child: the peak-RSS growth (MiB) over one first_order step at breast-cancer size."""
    task = make_task("breast_cancer")
    noise = make_noise("minibatch", task, batch_size=32)
    x = task.initial_point(make_generator(0, "x0")).expand(n_paths, -1).clone()
    dw = 0.1 * torch.randn(n_paths, task.n_data, dtype=x.dtype)
    model = SDEModel(task, noise, 0.05, 0.1, alg, mode="first_order", inner_samples=16, generator=make_generator(1))
    mem = PeakMemory().start()
    euler_maruyama_step(model, x, dw, 0.01)
    return mem.mib()


def main() -> None:
    args = parser(__doc__, "minibatch.csv", threads=1).parse_args()
    torch.set_num_threads(args.threads)
    n_paths, calls, repeats = (20, 1, 2) if args.quick else (1000, 5, 5)
    rows = Rows("minibatch")
    for name in ("iris", "teacher_student"):
        task = make_task(name)
        jobs = jobs_for(task, n_paths)
        for f in jobs.values():
            f()  # warm-up
        blocks = {key: lambda f=f: [f() for _ in range(calls)] for key, f in jobs.items()}
        times, loads, _ = time_interleaved(blocks, repeats, warm=False)
        base = median(times["discrete:sam"])
        for key, secs in times.items():
            rows.series(name, task.dim, n_paths, key, "seconds_per_step", "s", [t / calls for t in secs],
                        f"B = {BATCH}, dt = eta / {R}; blocks of {calls} calls")  # fmt: skip
            rows.add(name, task.dim, n_paths, key, "ratio_to_discrete_sam", "x", median(secs) / base)
            if key.startswith("sde:") and key.count(":") >= 2:
                same = median(times["discrete:" + key.split(":")[1]])
                rows.add(name, task.dim, n_paths, key, "ratio_to_discrete_same", "x", median(secs) / same)
            rows.add(name, task.dim, n_paths, key, "foreign_load", "cores", loads[key])
    bc = make_task("breast_cancer")
    m = 20 if args.quick else 1000
    for alg in ("usam", "sam"):
        mib = in_child(step_memory, m, alg, threads=1)
        ident = ("breast_cancer", bc.dim, m, f"sde:{alg}:first_order:K=16")
        rows.add(*ident, "peak_rss_increase", "MB", mib if isinstance(mib, float) else math.nan, note=str(mib))
        mnd = m * bc.n_data * bc.dim * 8 / 2**20
        rows.add(*ident, "mnd_tensor", "MB", mnd, note="the size an (M, N, d) float64 tensor would have")
        rows.add(*ident, "peak_over_mnd_tensor", "x", mib / mnd if isinstance(mib, float) else math.nan)
    rows.write(args.out)


if __name__ == "__main__":
    main()
