"""The mini-batch SDEs (samsde.minibatch): cost of one SDE step against one discrete step, and peak memory.

Run from the repository root:

    python3 benchmarks/bench_minibatch.py [--quick] [--threads N] [--out benchmarks/out/minibatch.csv]

1. Cost (issue 13's target: one mini-batch SDE step with n_inner = 16 on iris at M = 1000 within 5x of one discrete
   SAM step on the same paths).  Task ``make_task('iris')`` (d = 35, N = 150) and ``make_task('teacher_student')``
   (d = 29, N = 200), batch size B = 10, eta = 0.05, rho = 0.5 sqrt(eta), float64, M = 1000 paths at the task's seeded
   initial point.  Timed, each as the median over ``repeats`` blocks of ``steps`` calls, interleaved across the
   configurations so that outside load hits them alike (one warm-up call first):
   - ``discrete:<alg>``: ``DiscreteRunner.advance`` (one optimizer step on a fresh batch per path);
   - ``sde:<alg>:<mode>:K=<n_inner>``: one Euler-Maruyama step ``euler_maruyama_step(model, x, dW, eta / r)`` of the
     paper's mini-batch SDE, for modes first_order, sampled (n_inner = 16 and 4) and, for USAM,
     ``additive`` (section 3's formula on the same noise, the ablation).
   Reported: ``seconds_per_step`` per block and the ratio of medians to the discrete SAM step
   (``ratio_to_discrete_sam``).
2. Peak memory of one first_order SDE step at breast_cancer size (``make_task('breast_cancer')``, d = 257, N = 569,
   B = 32, n_inner = 16, M = 1000): the step runs in a child process and ``ru_maxrss`` after it minus before it is
   reported (``peak_rss_increase``), with the size an (M, N, d) tensor would have (``mnd_tensor``, 1.17 GB) and the
   (n_inner, M, d) inner-sample tensors the step does hold (33 MB each).
Output: a tidy long CSV with columns ``benchmark, task, dim, n_paths, variant, metric, unit, repeat, value, note``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from _machine import CpuMeter, use_threads  # benchmarks/ is on sys.path when run as a script

from samsde import SDEModel, make_generator, make_noise, make_task
from samsde.simulate import DiscreteRunner
from samsde.solvers import euler_maruyama_step

BENCHMARK = "minibatch"
COLUMNS = ["benchmark", "task", "dim", "n_paths", "variant", "metric", "unit", "repeat", "value", "note"]
ETA, BATCH, SEED = 0.05, 10, 0
RHO = 0.5 * math.sqrt(ETA)
R = 5  # the SDE step is dt = eta / r
ALGORITHMS = ("sgd", "usam", "dnsam", "sam")


def configurations(task, noise, n_paths):
    """name -> a callable taking one step from the fixed state x (the state is not advanced)."""
    x = task.initial_point(make_generator(SEED, "x0", task.name)).expand(n_paths, -1).clone()
    dw = math.sqrt(ETA / R) * torch.randn(n_paths, task.n_data, generator=make_generator(SEED, "dw"), dtype=x.dtype)
    out = {}
    for alg in ALGORITHMS:
        rho = 0.0 if alg == "sgd" else RHO
        runner = DiscreteRunner(task, noise, alg, ETA, rho, generator=make_generator(SEED, "batches", alg))
        out[f"discrete:{alg}"] = lambda runner=runner: runner.advance(x, None, ETA)
        for mode, k in (("first_order", 16), ("sampled", 16), ("sampled", 4)):
            if alg == "sgd" and (mode, k) != ("first_order", 16):
                continue
            gen = make_generator(SEED, "inner", alg, mode, k)
            model = SDEModel(task, noise, ETA, rho, alg, mode=mode, inner_samples=k, generator=gen)
            out[f"sde:{alg}:{mode}:K={k}"] = lambda m=model: euler_maruyama_step(m, x, dw, ETA / R)
    additive = SDEModel(task, noise, ETA, RHO, "usam", minibatch_formula="additive")
    out["sde:usam:additive"] = lambda: euler_maruyama_step(additive, x, dw, ETA / R)
    return out


def time_steps(task_name: str, n_paths: int, steps: int, repeats: int) -> list[dict]:
    task = make_task(task_name)
    noise = make_noise("minibatch", task, batch_size=BATCH)
    confs = configurations(task, noise, n_paths)
    for f in confs.values():
        f()  # warm-up
    times = {name: [] for name in confs}
    foreign = {name: 0.0 for name in confs}
    for _ in range(repeats):
        for name, f in confs.items():
            with CpuMeter() as meter:
                start = time.perf_counter()
                for _ in range(steps):
                    f()
                times[name].append((time.perf_counter() - start) / steps)
            foreign[name] += meter.foreign
    rows = []
    base = statistics.median(times["discrete:sam"])
    for name, values in times.items():
        note = f"B = {BATCH}, eta = {ETA}, rho = {RHO:.4g}, dt = eta/{R}; foreign load {foreign[name] / repeats:.2f}"
        common = dict(benchmark=BENCHMARK, task=task_name, dim=task.dim, n_paths=n_paths, variant=name, note=note)
        rows += [dict(common, metric="seconds_per_step", unit="s", repeat=i, value=v) for i, v in enumerate(values)]
        rows.append(dict(common, metric="ratio_to_discrete_sam", unit="1", repeat=-1,
                         value=statistics.median(values) / base))  # fmt: skip
    return rows


MEMORY_CHILD = """
import resource, sys, torch
from samsde import SDEModel, make_generator, make_noise, make_task
from samsde.solvers import euler_maruyama_step
torch.set_num_threads(1)
task = make_task("breast_cancer"); noise = make_noise("minibatch", task, batch_size=32)
m = int(sys.argv[1]); alg = sys.argv[2]
x = task.initial_point(make_generator(0, "x0")).expand(m, -1).clone()
dw = 0.1 * torch.randn(m, task.n_data, dtype=x.dtype)
model = SDEModel(task, noise, 0.05, 0.1, alg, mode="first_order", inner_samples=16, generator=make_generator(1))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
euler_maruyama_step(model, x, dw, 0.01)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def peak_memory(n_paths: int) -> list[dict]:
    task = make_task("breast_cancer")
    rows = []
    for alg in ("usam", "sam"):
        out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(n_paths), alg], capture_output=True, text=True)
        kib = float(out.stdout.strip().splitlines()[-1])
        common = dict(benchmark=BENCHMARK, task="breast_cancer", dim=task.dim, n_paths=n_paths, repeat=-1,
                      variant=f"sde:{alg}:first_order:K=16")  # fmt: skip
        rows.append(dict(common, metric="peak_rss_increase", unit="MB", value=kib / 1024,
                         note="ru_maxrss after one step minus before it, child process, B = 32"))  # fmt: skip
        rows.append(dict(common, metric="mnd_tensor", unit="MB", value=n_paths * task.n_data * task.dim * 8 / 2**20,
                         note="the size an (M, N, d) float64 tensor would have"))  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/out/minibatch.csv")
    args = ap.parse_args()
    print(use_threads(args.threads))
    n_paths, steps, repeats = (200, 2, 3) if args.quick else (1000, 5, 5)
    rows = []
    for task in ("iris", "teacher_student"):
        rows += time_steps(task, n_paths, steps, repeats)
    rows += peak_memory(200 if args.quick else 1000)
    table = pd.DataFrame(rows, columns=COLUMNS)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    med = table[table.metric != "seconds_per_step"].pivot_table(
        index=["task", "variant"], columns="metric", values="value", aggfunc="first"
    )
    sec = table[table.metric == "seconds_per_step"].groupby(["task", "variant"]).value.median() * 1000
    print(pd.concat([sec.rename("ms_per_step"), med], axis=1).to_string(float_format=lambda v: f"{v:.3g}"))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
