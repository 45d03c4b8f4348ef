"""The simulator's step: throughput of every runner (batched vs one path at a time), and its cost against d.

    python3 benchmarks/bench_simulate.py                   # both parts (~15 min on 2 cores)
    python3 benchmarks/bench_simulate.py --only simulate   # throughput (a few minutes) -> benchmark 'simulate'
    python3 benchmarks/bench_simulate.py --only scaling --cell-budget 400   # cost vs d (~10 min) -> 'scaling'

Common settings: isotropic noise sigma = 0.5, eta = rho = 0.05, float64, resolution 1 (one step = one optimizer
step or one Euler-Maruyama step, dt = eta), 2 torch threads.

**simulate** (throughput).  ``make_task('quadratic', dim=10, seed=0)`` and ``make_task('breast_cancer')`` (d = 257),
M = 1000 paths.  Runners: ``DiscreteRunner`` for every algorithm; ``SDERunner(SDEModel(...))`` with drift sgd,
usam, dnsam, sam in mode ``first_order`` and, on the quadratic only, ``exact``.  Timed: ``runner.advance(x, dW,
dt)`` (Brownian increments drawn before the clock starts), 2 untimed steps, then 5 blocks of 50 (quadratic) / 3
(breast_cancer) steps, interleaved across the runners of a task, the state advancing from block to block.  sgd,
usam (discrete) and the usam SDE also run as a Python loop over 50 paths, one path (M = 1) at a time on pre-sliced
increments (``loop_M1``).  Rows: ``seconds_per_step`` per block, ``path_steps_per_s`` (M x steps / median block),
``speedup_vs_loop`` (batched / loop path-steps per second; the loop's cost is linear in paths).

**scaling** (cost against d).  ``make_task('quadratic', dim=d, seed=0)``, d = 10 ... 5000, and
``make_task('breast_cancer', n_hidden=h)``, d = 32 h + 1 = 33 ... 5121.  Variants: ``sam_step``, ``sgd_step``
(``DiscreteRunner.advance``); ``usam_sde_first_order``, ``sam_sde_first_order`` (``SDEModel.em_step``, matrix-free;
SAM with its closed-form moments), ``sam_sde_first_order_mc`` (SAM with the inner Monte Carlo, 16 draws, the route
for a general Sigma); ``usam_sde_exact``, ``sam_sde_exact`` (dense (M, d, d) Hessian and eigendecomposition).
M = 8 paths; the exact variants run M_ex paths (``GRID``: 1 at large d), and ``sam_step`` is timed at M_ex too.
Each cell (task, d, variant, M) runs in a fresh child (``harness.in_child``; the task is built once in the parent
and loaded from a file).  In the child: increments drawn first, one warm-up step (more for fast cells, to size the
blocks), then 5 blocks of n steps (a block ~0.25 s; slow cells: as many repeats as fit in 30 s, at least 2).
``peak_step_memory_mib``: growth of the child's peak RSS over the warm-up and timed steps.  An exact cell whose
memory estimate exceeds --max-memory-gib, or whose d^3-extrapolated time exceeds the cell budget, is not run
(NaN row with the reason).  Derived rows: ``ratio_to_sam_step`` (medians over the repeats with foreign load < 0.2
cores; same d and M) and, for the exact variants, ``loglog_slope`` of seconds per path-step against d (d >= 300).
"""

from __future__ import annotations

import math
import os
import tempfile
import time

import numpy as np
import torch
from harness import QUIET, CpuMeter, PeakMemory, Rows, in_child, median, parser, time_interleaved

from samsde import ALGORITHMS, DiscreteRunner, SDEModel, SDERunner, make_generator, make_noise, make_task

ETA = RHO = 0.05
SIGMA, SEED = 0.5, 0
FULL = dict(n_paths=1000, loop_paths=50, steps={"quadratic": 50, "breast_cancer": 3}, warmup=2, repeats=5)
QUICK = dict(n_paths=20, loop_paths=2, steps={"quadratic": 2, "breast_cancer": 1}, warmup=1, repeats=2)
LOOPED = {"discrete:sgd:-", "discrete:usam:-", "sde:usam:first_order"}
# scaling: per task (size, M_ex), size = dim (quadratic) or n_hidden (breast_cancer)
GRID = {"quadratic": [(10, 8), (100, 8), (300, 8), (1000, 8), (3000, 1), (5000, 1)],
        "breast_cancer": [(1, 8), (4, 8), (16, 8), (64, 1), (160, 1)]}  # fmt: skip
GRID_QUICK = {"quadratic": [(10, 8), (100, 2)], "breast_cancer": [(1, 8)]}
VARIANTS = ("sam_step", "sgd_step", "usam_sde_first_order", "sam_sde_first_order", "sam_sde_first_order_mc",
            "usam_sde_exact", "sam_sde_exact")  # fmt: skip
N_PATHS, POOL, SLOW_STEP, SLOW_CELL, MIN_REPEATS = 8, 4, 5.0, 30.0, 2


def runner_for(task, kind: str, alg: str, mode: str):
    noise = make_noise("isotropic", task, sigma=SIGMA)
    if kind == "discrete":
        return DiscreteRunner(task, noise, alg, ETA, RHO)
    gen = make_generator(SEED, "bench", task.name, alg, mode, "inner")
    return SDERunner(SDEModel(task, noise, ETA, RHO, alg, mode=mode, generator=gen))


def throughput(quick: bool, rows: Rows) -> None:
    s = QUICK if quick else FULL
    for name, kw in (("quadratic", {"dim": 10, "seed": 0}), ("breast_cancer", {})):
        task = make_task(name, **kw)
        x0 = task.initial_point(make_generator(SEED, "bench", name, "x0")).reshape(1, -1)
        steps, jobs, state = s["steps"][name], {}, {}
        configs = [("discrete", a, "-") for a in ALGORITHMS]
        for mode in ["first_order"] + (["exact"] if name == "quadratic" else []):
            configs += [("sde", a, mode) for a in ("sgd", "usam", "dnsam", "sam")]
        for kind, alg, mode in configs:
            run = runner_for(task, kind, alg, mode)
            gen = make_generator(SEED, "bench", f"{name}/{run.dim_w}", "brownian")
            incs = [math.sqrt(ETA) * torch.randn(1, s["n_paths"], run.dim_w, generator=gen, dtype=torch.float64)
                    for _ in range(steps)]  # fmt: skip
            key = f"{kind}:{alg}:{mode}"
            state[key] = x0.expand(s["n_paths"], -1).clone()

            def batched(key=key, run=run, incs=incs, state=state):
                for inc in incs:
                    state[key] = run.advance(state[key], inc, ETA)

            for k in range(s["warmup"]):
                state[key] = run.advance(state[key], incs[k % steps], ETA)
            jobs[key, "batched"] = batched
            if key in LOOPED:  # each path alone (M = 1), from x0, on pre-sliced increments
                per_path = [[inc[:, p : p + 1].contiguous() for inc in incs] for p in range(s["loop_paths"])]

                def loop(run=run, per_path=per_path, x0=x0):
                    for path in per_path:
                        x = x0
                        for inc in path:
                            x = run.advance(x, inc, ETA)

                for k in range(s["warmup"]):
                    run.advance(x0, per_path[0][k % steps], ETA)
                jobs[key, "loop_M1"] = loop
        times, loads, _ = time_interleaved(jobs, s["repeats"], warm=False)
        rate = {}
        for (key, batch), secs in times.items():
            m = s["n_paths"] if batch == "batched" else s["loop_paths"]
            ident = (name, task.dim, m, f"{key}:{batch}")
            rows.series(*ident, "seconds_per_step", "s", [t / steps for t in secs], f"blocks of {steps} steps")
            rate[key, batch] = m * steps / median(secs)
            rows.add(*ident, "path_steps_per_s", "1/s", rate[key, batch], note=f"median of {len(secs)} blocks")
            rows.add(*ident, "foreign_load", "cores", loads[key, batch])
            if batch == "loop_M1":
                speedup = rate[key, "batched"] / rate[key, batch]
                rows.add(name, task.dim, s["n_paths"], key, "speedup_vs_loop", "x", speedup,
                         note=f"batched M = {s['n_paths']} / loop over {m} paths, path-steps per second")  # fmt: skip
        print(f"  simulate {name}: done", flush=True)


def stepper(variant: str, task):
    """x -> x+ given dW for one scaling variant, and whether its increments are shaped (1, M, d)."""
    noise = make_noise("isotropic", task, sigma=SIGMA)
    if variant.endswith("_step"):
        run = DiscreteRunner(task, noise, variant.removesuffix("_step"), ETA, RHO)
        return (lambda x, dw: run.advance(x, dw, ETA)), True
    drift, mode = variant.split("_sde_")
    model = SDEModel(task, noise, ETA, RHO, drift, mode=mode.removesuffix("_mc"), inner_samples=16,
                     generator=make_generator(SEED, "inner"),
                     sam_moments="monte_carlo" if mode.endswith("_mc") else "closed_form")  # fmt: skip
    return (lambda x, dw: model.em_step(x, dw, ETA)), False


def cell(task_file: str, variant: str, m: int, repeats: int, target_block: float, budget: float) -> dict:
    """In a child: the scaling protocol for one cell (module docstring)."""
    task = torch.load(task_file, weights_only=False)
    step, discrete = stepper(variant, task)
    x = task.initial_point(make_generator(SEED, "bench_scaling", "x0")).expand(m, -1).clone()
    gen = make_generator(SEED, "bench_scaling", "brownian")
    shape = (1, m, task.dim) if discrete else (m, task.dim)
    incs = [math.sqrt(ETA) * torch.randn(shape, generator=gen, dtype=torch.float64) for _ in range(POOL)]
    mem = PeakMemory().start()
    start = time.perf_counter()
    x = step(x, incs[0])
    per_step = time.perf_counter() - start
    if per_step * (1 + MIN_REPEATS) > budget:
        return {"error": f"not timed: the warm-up step took {per_step:.3g} s, over the {budget:.0f} s cell budget",
                "mib": mem.mib()}  # fmt: skip
    if per_step < target_block:  # a few more warm-up steps, to size the blocks
        k = max(1, min(20, int(target_block / max(per_step, 1e-6))))
        t0 = time.perf_counter()
        for i in range(k):
            x = step(x, incs[(i + 1) % POOL])
        per_step = (time.perf_counter() - t0) / k
    n = max(1, min(10_000, round(target_block / max(per_step, 1e-9))))
    if per_step > SLOW_STEP:
        left = budget - (time.perf_counter() - start)
        repeats = max(MIN_REPEATS, min(repeats, int(SLOW_CELL / per_step), int(left / per_step)))
    seconds, loads = [], []
    for _ in range(repeats):
        with CpuMeter(min_wall=0.05) as meter:
            t0 = time.perf_counter()
            for i in range(n):
                x = step(x, incs[i % POOL])
            seconds.append((time.perf_counter() - t0) / n)
        loads.append(meter.cores)
    return {"seconds": seconds, "loads": loads, "n": n, "mib": mem.mib(), "finite": bool(torch.isfinite(x).all())}


def scaling(quick: bool, threads: int, budget: float | None, max_gib: float, rows: Rows) -> None:
    grid, repeats, block = (GRID_QUICK, 2, 0.02) if quick else (GRID, 5, 0.25)
    budget = budget or (30.0 if quick else 240.0)
    with tempfile.TemporaryDirectory(prefix="bench_scaling_") as tmp:
        for name, sizes in grid.items():
            history = {}  # exact variant -> (d, seconds per path-step) of the largest d timed
            for size, m_ex in sizes:
                task = make_task(name, dim=size, seed=SEED) if name == "quadratic" else make_task(name, n_hidden=size)
                d, task_file = task.dim, os.path.join(tmp, f"{name}_{size}.pt")
                torch.save(task, task_file)
                cells = [(v, m_ex if "exact" in v else N_PATHS) for v in VARIANTS]
                cells += [("sam_step", m_ex)] if m_ex != N_PATHS else []
                med = {}
                for variant, m in cells:
                    res = None
                    if "exact" in variant:
                        need = 12 * m * d * d * 8 / 2**30  # ~12 (M, d, d) float64 matrices (measured: ~10)
                        d0, t0 = history.get(variant, (d, math.nan))
                        guess = t0 * (d / d0) ** 3 * m
                        if need > max_gib:
                            res = {"error": f"not run: memory estimate {need:.1f} GiB > --max-memory-gib {max_gib:g}"}
                        elif guess * (1 + MIN_REPEATS) > budget:
                            res = {"error": f"not run: predicted {guess:.3g} s per step (d^3), over the cell budget"}
                    if res is None:
                        res = in_child(cell, task_file, variant, m, repeats, block, budget, threads=threads,
                                       timeout=2 * budget + 120)  # fmt: skip
                    ident = (name, d, m, variant)
                    if "seconds" not in res:
                        rows.add(*ident, "seconds_per_step", "s", math.nan, note=res["error"])
                        rows.add(*ident, "peak_step_memory_mib", "MiB", res.get("mib", math.nan), note=res["error"])
                        continue
                    note = f"{res['n']} steps per block" + ("" if res["finite"] else "; NON-FINITE iterate")
                    rows.series(*ident, "seconds_per_step", "s", res["seconds"], note)
                    rows.series(*ident, "foreign_load", "cores", res["loads"])
                    rows.add(*ident, "peak_step_memory_mib", "MiB", res["mib"], repeat=0)
                    quiet = [t for t, load in zip(res["seconds"], res["loads"], strict=True) if not load >= QUIET]
                    med[variant, m] = median(quiet or res["seconds"])
                    if "exact" in variant:
                        history[variant] = (d, med[variant, m] / m)
                for (variant, m), value in med.items():
                    if variant != "sam_step" and ("sam_step", m) in med:
                        rows.add(name, d, m, variant, "ratio_to_sam_step", "x", value / med["sam_step", m],
                                 note="medians over the quiet repeats, same d and M")  # fmt: skip
                print(f"  scaling {name} d = {d}: done", flush=True)
    df = rows.frame()
    per_path = df[(df.metric == "seconds_per_step") & df.variant.str.endswith("exact") & (df.dim >= 300)]
    for (name, variant), g in per_path.groupby(["task", "variant"]):
        m = g.groupby("dim").value.median() / g.groupby("dim").n_paths.first()
        m = m.dropna()
        if len(m) >= 2:
            slope = np.polyfit(np.log(m.index.to_numpy(float)), np.log(m.to_numpy()), 1)[0]
            rows.add(name, math.nan, math.nan, variant, "loglog_slope", "-", slope,
                     note=f"seconds per path-step vs d over d = {', '.join(map(str, m.index))}")  # fmt: skip


def main() -> None:
    p = parser(__doc__, "simulate.csv")
    p.add_argument("--only", choices=("simulate", "scaling"), help="run one part only")
    p.add_argument("--cell-budget", type=float, help="scaling: seconds per cell (default 240; --quick 30)")
    p.add_argument("--max-memory-gib", type=float, default=4.0, help="scaling: skip exact cells above (default 4)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = Rows("simulate")
    if args.only != "scaling":
        throughput(args.quick, rows)
    if args.only != "simulate":
        scale = Rows("scaling")
        scaling(args.quick, args.threads, args.cell_budget, args.max_memory_gib, scale)
        rows.rows += scale.rows
    rows.write(args.out)


if __name__ == "__main__":
    main()
