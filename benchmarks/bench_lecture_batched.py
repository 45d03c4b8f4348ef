"""The lecture's seeds as one batched model (samsde.lecture.batched) against the one-seed loop through torch.nn.

    python3 benchmarks/bench_lecture_batched.py [--epochs 2] [--repeats 5] [--skip-memory]   # ~1 min on 2 cores

The size of the lecture's ``sam_vs_sgd`` experiment (config.yaml lecture.*): ``shared_split("digits", 0.3, 2023)``
(1258 training samples), ``MLP(hidden=(32,), activation="relu")`` in float64 (d = 2410), SGD lr 0.05, momentum
0.9, batch size 32, 40 seeds per arm, arms sgd, sam (rho 0.2), usam (rho 1.0); 2 epochs instead of 60 (every
epoch costs the same: compared is the time per seed-epoch).  Seed i: init ``make_generator(1, "init", i)``, batch
order ``make_generator(1, "batches", i)``.  Jobs (variant ``<route>:<method>``): ``loop:<method>`` = ``fit_mlp``
for 3 seeds one after the other; ``batched:<method>`` = ``SeedStack.build`` + ``train_seeds`` with S = 40;
``batched:3-arm`` = the three arms as one stack of S = 120 (seed-major, method and rho per member).  5 interleaved
rounds, each job once untimed then once timed.  Rows: ``seconds`` per call, ``seconds_per_seed_epoch``;
``speedup_per_seed`` (loop / batched medians per seed-epoch; for 3-arm against the mean of the three loops),
``speedup_of_best`` (minimum times), ``max_abs_param_diff`` (final parameters of the loop's seeds against the same
members of the batched run); ``peak_memory_mib`` of batched:sam (S = 40), loop:sam (one seed) and batched:3-arm,
each in its own child (after one run with one seed for one epoch), over one run.
"""

from __future__ import annotations

import math
import statistics

import torch
from harness import PeakMemory, Rows, in_child, median, parser, time_interleaved

from samsde.lecture import MLP, fit_mlp, shared_split
from samsde.lecture.batched import SeedStack, train_seeds
from samsde.seeding import make_generator

TRAIN = dict(lr=0.05, momentum=0.9, weight_decay=0.0, batch_size=32)
RHO = {"sgd": 0.0, "sam": 0.2, "usam": 1.0}
N_SEEDS, SEED, STACK = 40, 1, "3-arm"


def load():
    return shared_split("digits", 0.3, 2023), MLP(hidden=(32,), activation="relu")


def members(method: str, n_seeds: int) -> list[tuple[str, float, int]]:
    """(method, rho, seed) of a job's members: one arm, or all arms seed-major."""
    if method == STACK:
        return [(m, rho, i) for i in range(n_seeds) for m, rho in RHO.items()]
    return [(method, RHO[method], i) for i in range(n_seeds)]


def job(route: str, method: str, n_seeds: int, epochs: int, data, mlp):
    """The job's callable, returning the final parameters (members, d)."""
    runs = members(method, n_seeds)
    if route == "loop":

        def run():
            out = []
            for m, rho, i in runs:
                model, _ = fit_mlp(data, mlp, init=make_generator(SEED, "init", i),
                                   batches=make_generator(SEED, "batches", i), method=m, rho=rho, max_epochs=epochs,
                                   **TRAIN)  # fmt: skip
                out.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
            return torch.stack(out)

        return run

    def run():
        stack = SeedStack.build(mlp, data, [make_generator(SEED, "init", i) for _, _, i in runs])
        train_seeds(stack, data, method=[m for m, _, _ in runs], rho=[r for _, r, _ in runs],
                    generators=[make_generator(SEED, "batches", i) for _, _, i in runs], max_epochs=epochs,
                    **TRAIN)  # fmt: skip
        return torch.cat([p.reshape(p.shape[0], -1) for p in stack.params], dim=1)

    return run


def memory_cell(route: str, method: str, n_seeds: int, epochs: int) -> float:
    data, mlp = load()
    job(route, method, 1, 1, data, mlp)()  # code paths and lazy set-up: one seed, one epoch
    run = job(route, method, n_seeds, epochs, data, mlp)
    mem = PeakMemory().start()
    run()
    return mem.mib()


def main() -> None:
    p = parser(__doc__, "lecture_batched.csv")
    p.add_argument("--epochs", type=int, help="epochs per run (default 2)")
    p.add_argument("--repeats", type=int, help="timed rounds (default 5)")
    p.add_argument("--skip-memory", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    epochs, repeats = args.epochs or (1 if args.quick else 2), args.repeats or (1 if args.quick else 5)
    n_seeds, loop_seeds = (2, 1) if args.quick else (N_SEEDS, 3)
    data, mlp = load()
    d = sum(p.numel() for p in mlp.build(data, make_generator(SEED, "init", 0)).parameters())
    jobs = {("loop", m): job("loop", m, loop_seeds, epochs, data, mlp) for m in RHO}
    jobs |= {("batched", m): job("batched", m, n_seeds, epochs, data, mlp) for m in (*RHO, STACK)}
    size = {key: len(members(key[1], loop_seeds if key[0] == "loop" else n_seeds)) for key in jobs}
    results = {key: fn() for key, fn in jobs.items()}
    times, loads, _ = time_interleaved(jobs, repeats)
    per = {key: [t / (size[key] * epochs) for t in secs] for key, secs in times.items()}
    rows = Rows("lecture_batched")
    for (route, method), secs in times.items():
        ident = ("digits", d, size[route, method], f"{route}:{method}")
        rows.series(*ident, "seconds", "s", secs, f"{epochs} epochs")
        rows.series(*ident, "seconds_per_seed_epoch", "s", per[route, method])
        rows.add(*ident, "foreign_load", "cores", loads[route, method])
        if route == "batched":
            arms = list(RHO) if method == STACK else [method]
            loop_med = statistics.mean(median(per["loop", m]) for m in arms)
            loop_best = statistics.mean(min(per["loop", m]) for m in arms)
            rows.add(*ident, "speedup_per_seed", "x", loop_med / median(per[route, method]), note="medians")
            rows.add(*ident, "speedup_of_best", "x", loop_best / min(per[route, method]), note="minimum times")
            loop = torch.stack([results["loop", m][i] for m, _, i in members(method, loop_seeds)])
            keep = [k for k, (_, _, i) in enumerate(members(method, n_seeds)) if i < loop_seeds]
            diff = (results[route, method][keep] - loop).abs().max()
            rows.add(*ident, "max_abs_param_diff", "-", diff, note=f"the loop's {loop_seeds} seeds")
    if not args.skip_memory:
        cells = (("batched", "sam", n_seeds), ("loop", "sam", 1), ("batched", STACK, n_seeds))
        for route, method, n in cells[:1] if args.quick else cells:
            mib = in_child(memory_cell, route, method, n, epochs, threads=args.threads)
            rows.add("digits", d, len(members(method, n)), f"{route}:{method}", "peak_memory_mib", "MiB",
                     mib if isinstance(mib, float) else math.nan, 0, str(mib))  # fmt: skip
    rows.write(args.out)


if __name__ == "__main__":
    main()
