# ruff: noqa: E741 (l is the SVAG amplification, the paper's symbol)
"""Study: SVAG_l against Euler-Maruyama integration of SAM's own SDE, time and peak memory at equal measured accuracy.

Question: to simulate SAM's SDE, is SVAG (optimizer steps only) cheaper than Euler-Maruyama at the same weak
distance to a reference, and how far in d does each route go on this machine?

    python3 benchmarks/studies/svag_vs_em.py                  # d = 113, 449, 1793 (~4 min, one thread)
    python3 benchmarks/studies/svag_vs_em.py --hidden 16 64 256 1024   # + d = 7169 (~16 min)
    python3 benchmarks/studies/svag_vs_em.py --from-csv benchmarks/out/svag_convergence.csv   # the summary only
    python3 benchmarks/studies/svag_vs_em.py --scale          # cost per step up to the largest d that fits (~25 min)
    python3 benchmarks/studies/svag_vs_em.py --quick          # tiny sizes: checks that it runs

Quoted in: benchmarks/README.md (both svag tables) and the project README ("SVAG against Euler-Maruyama").  No
claim row: it is outside the default DAG.

Task: ``make_task('teacher_student', n_in=5, n_hidden=h, n_samples=200, l2=0.001, init_scale=2 / sqrt(h), seed=0)``,
d = 7 h + 1 (the initial scale keeps the top Hessian eigenvalue at x0 at 3.3-9.4 for h = 16 ... 4096, eta lambda
< 1); isotropic noise sigma = 2.7 / sqrt(d) (the same total scale at every d); SAM, eta = 0.1, rho = 0.5 sqrt(eta);
horizon 0.4 (4 steps); M = 200 paths; float64; one thread.

Accuracy: one coupled simulation per d, every runner on one Brownian path: SVAG_l (l = 1, 2, 4, 8), EM of the own
SDE (closed-form SAM moments, first_order) at dt = eta / r (r = 1, 2, 4, 8), reference EM at r = 16, 32
(Richardson).  Distance: ``samsde.weak_error.paired_error`` of the loss against the reference, with its paired
standard error (``floor``).  SVAG_l and EM_r with l = r take steps eta / l and their distances agree, so they are
compared pairwise at equal measured accuracy.  Cost: every runner alone (``samsde.simulate``, same paths and steps)
in a fresh child (``harness.in_child``): wall seconds and the growth of the peak RSS (after a warm-up on 8 paths).

Scale (``--scale``): one step eta of SVAG_4 and EM_4 at M = 200 for h = 256, 1024, 4096, ... (or ``--hidden``), each
in a child whose address space is capped at ``--cap-gib`` (20); a route stops when its run does not fit or its last
peak times 4 (linear in h) exceeds twice the cap.  Accuracy is not re-measured at these widths.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness import CpuMeter, PeakMemory, in_child, provenance  # noqa: E402

import samsde  # noqa: E402
from samsde.svag import SVAGRunner  # noqa: E402
from samsde.weak_error import bootstrap_weights, paired_error, richardson  # noqa: E402

ETA, HORIZON, NOISE_SCALE = 0.1, 0.4, 2.7
RHO = 0.5 * math.sqrt(ETA)
LS, RS, REFERENCE = (1, 2, 4, 8), (1, 2, 4, 8), (16, 32)


def build(h: int):
    init_scale = 2 / math.sqrt(h)  # the same curvature at every width (module docstring)
    task = samsde.make_task(
        "teacher_student", n_in=5, n_hidden=h, n_samples=200, l2=0.001, init_scale=init_scale, seed=0
    )
    noise = samsde.make_noise("isotropic", task, sigma=NOISE_SCALE / math.sqrt(task.dim))
    return task, noise, task.initial_point(samsde.make_generator(0, "bench_svag", "x0"))


def runner(task, noise, variant: str):
    """``svag_<l>`` or ``em_<r>``: the runner, with l (r) increments of the base grid (resolution 1) per step."""
    kind, value = variant.split("_")
    if kind == "svag":
        gen = samsde.make_generator(0, "bench_svag", "svag", int(value))
        return SVAGRunner(task, noise, "sam", ETA, RHO, int(value), variant, gen, refinement=int(value))
    return samsde.SDERunner(samsde.SDEModel(task, noise, ETA, RHO, "sam"), variant, refinement=int(value))


def accuracy(h: int, n_paths: int) -> tuple[int, dict]:
    task, noise, x0 = build(h)
    variants = [f"svag_{l}" for l in LS] + [f"em_{r}" for r in RS + REFERENCE]
    result = samsde.simulate(
        task, [runner(task, noise, v) for v in variants], x0, n_paths, round(HORIZON / ETA), 1, 0,
        observables={"loss": samsde.OBSERVABLES["loss"]},
    )  # fmt: skip
    ref = richardson(*(result.values[f"em_{r}"]["loss"] for r in REFERENCE))
    weights = bootstrap_weights(n_paths, 50, samsde.make_generator(0, "bench_svag", "bootstrap"))
    out = {}
    for v in variants[: len(LS) + len(RS)]:
        e = paired_error(result.values[v]["loss"], ref, weights)
        out[v] = (e.value, e.floor)
    return task.dim, out


def cost(h: int, n_paths: int, variant: str, n_steps: int | None = None, warmup_paths: int = 8):
    """In a child: wall seconds, peak-RSS growth (MiB) and foreign load of one simulation with one runner, of
    ``n_steps`` steps (default: the horizon's)."""
    task, noise, x0 = build(h)
    n_steps = round(HORIZON / ETA) if n_steps is None else n_steps
    samsde.simulate(task, [runner(task, noise, variant)], x0, warmup_paths, n_steps, 1, 0)  # warm-up
    mem = PeakMemory().start()
    with CpuMeter() as meter:
        start = time.perf_counter()
        samsde.simulate(task, [runner(task, noise, variant)], x0, n_paths, n_steps, 1, 0)
        seconds = time.perf_counter() - start
    return seconds, mem.mib(), meter.cores


SCALE_K, SCALE_PATHS = 4, 200


def scale(args) -> None:
    """Widths 256, 1024, ... until neither route fits under the cap: the --scale protocol of the docstring (with
    ``--hidden``, those widths only, from the first of them, under the same stopping rule)."""
    print(f"M = {SCALE_PATHS}, k = {SCALE_K}, cap {args.cap_gib} GiB", flush=True)
    widths = iter(args.hidden) if args.hidden else (256 * 4**i for i in range(64))
    rows, last_peak, open_routes = [], {}, {"svag", "em"}
    while open_routes and (h := next(widths, None)) is not None:
        for kind in sorted(open_routes):
            variant = f"{kind}_{SCALE_K}"
            if 4 * last_peak.get(kind, 0.0) > 2 * args.cap_gib * 1024:
                print(f"  d = {7 * h + 1}: {variant} predicted {4 * last_peak[kind] / 1024:.0f} GiB: not run")
                open_routes.discard(kind)
                continue
            result = in_child(cost, h, SCALE_PATHS, variant, 1, 2, threads=args.threads, cap_gib=args.cap_gib)
            fits = not isinstance(result, dict)
            seconds, mib, load = result if fits else (math.nan,) * 3
            if not fits:
                print(f"  d = {7 * h + 1}: {variant} does not run: {result['error'][:100]}")
                open_routes.discard(kind)
            last_peak[kind] = mib
            ident = {"benchmark": "svag_scale_cost", "task": "teacher_student", "dim": 7 * h + 1,
                     "n_paths": SCALE_PATHS, "variant": variant, "repeat": 0}  # fmt: skip
            for metric, unit, value in (("seconds_per_step", "s", seconds), ("peak_memory_mib", "MiB", mib),
                                        ("foreign_load", "cores", load), ("fits", "bool", float(fits))):  # fmt: skip
                rows.append({**ident, "metric": metric, "unit": unit, "value": value,
                             "note": f"one step eta, address space capped at {args.cap_gib} GiB"})  # fmt: skip
            if fits:
                print(f"  d = {7 * h + 1}: {variant} {seconds:8.2f} s/step {mib:9.1f} MiB  foreign load {load:.2f}",
                      flush=True)  # fmt: skip
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    pd.DataFrame(rows).assign(**provenance()).to_csv(args.out, index=False)
    print(f"wrote {args.out}")


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Per d and grid value k: SVAG_l (l = k) against EM_r (r = k), whose measured distances agree (both order 1
    with step eta / k), their wall seconds and peak-memory growth, and the ratios SVAG / EM."""
    wide = rows.pivot_table(index=["dim", "variant"], columns="metric", values="value", dropna=False).reset_index()
    wide["kind"], wide["k"] = wide.variant.str.split("_").str[0], wide.variant.str.split("_").str[1].astype(int)
    svag, em = (wide[wide.kind == kind].set_index(["dim", "k"]) for kind in ("svag", "em"))
    out = pd.DataFrame({"svag_distance": svag.distance, "em_distance": em.distance, "svag_s": svag.seconds,
                        "em_s": em.seconds, "time_ratio": svag.seconds / em.seconds, "svag_mib": svag.peak_memory_mib,
                        "em_mib": em.peak_memory_mib, "memory_ratio": svag.peak_memory_mib / em.peak_memory_mib,
                        "max_foreign_load": np.maximum(svag.foreign_load, em.foreign_load)})  # fmt: skip
    return out.reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a check that it runs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--from-csv", help="only print the summary of an earlier run's CSV")
    parser.add_argument("--hidden", type=int, nargs="+")
    parser.add_argument("--out")
    parser.add_argument("--scale", action="store_true", help="cost per step up to the largest d that fits")
    parser.add_argument("--cap-gib", type=float, default=20.0)
    args = parser.parse_args()
    if args.scale:
        args.out = args.out or "benchmarks/out/svag_scale_cost.csv"
        scale(args)
        return
    args.out = args.out or "benchmarks/out/svag_convergence.csv"
    if args.from_csv:
        print(summarise(pd.read_csv(args.from_csv)).to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        return
    hidden = args.hidden or ([2] if args.quick else [16, 64, 256])
    n_paths = 8 if args.quick else 200
    torch.set_num_threads(args.threads)
    print(f"M = {n_paths}, eta = {ETA}, rho = {RHO:.4f}", flush=True)
    rows = []
    for h in hidden:
        t0 = time.perf_counter()
        dim, acc = accuracy(h, n_paths)
        print(f"d = {dim}: accuracy run {time.perf_counter() - t0:.0f} s", flush=True)
        ident = {"benchmark": "svag_convergence", "task": "teacher_student", "dim": dim, "n_paths": n_paths}
        measured = {}
        for variant, (distance, floor) in acc.items():
            seconds, mib, load = in_child(cost, h, n_paths, variant, threads=args.threads)
            measured[variant] = (distance, floor, seconds, mib)
            for metric, unit, value in (("distance", "relative", distance), ("floor", "relative", floor),
                                        ("seconds", "s", seconds), ("peak_memory_mib", "MiB", mib),
                                        ("foreign_load", "cores", load)):  # fmt: skip
                rows.append({**ident, "variant": variant, "metric": metric, "unit": unit, "repeat": 0, "value": value,
                             "note": "reference: EM Richardson r = 16, 32; test function f"})  # fmt: skip
            print(f"  {variant:7s} distance {distance:.4f} (floor {floor:.1e})  {seconds:7.2f} s  {mib:8.1f} MiB  "
                  f"foreign load {load:.2f}", flush=True)  # fmt: skip
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    pd.DataFrame(rows).assign(**provenance()).to_csv(args.out, index=False)
    print(summarise(pd.DataFrame(rows)).to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
