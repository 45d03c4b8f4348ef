# ruff: noqa: E741 (l is the SVAG amplification, the paper's symbol)
"""SVAG_l against Euler-Maruyama integration of SAM's own SDE: time and peak memory at equal measured accuracy.

Run from the repository root:

    python3 benchmarks/bench_svag_convergence.py [--quick] [--threads N] [--hidden 16 64 256 1024]
        [--out benchmarks/out/svag_convergence.csv] [--from-csv CSV]
    python3 benchmarks/bench_svag_convergence.py --scale [--cap-gib 20] [--hidden 16384]
        [--out benchmarks/out/svag_scale_cost.csv]

The full run (hidden widths 16, 64, 256: d = 113, 449, 1793) takes about 4 minutes on one thread, --quick (16, 64)
about 1; ``--hidden 1024`` (d = 7169) adds about 12 minutes.

Task: ``make_task('teacher_student', n_in=5, n_hidden=h, n_samples=200, l2=0.001, init_scale=2 / sqrt(h), seed=0)``,
d = 7 h + 1; isotropic noise with sigma = 2.7 / sqrt(d), so the noise's total scale sigma sqrt(d) is the same at every
d (2.7, that of sigma = 0.5 at d = 29, the pipeline's teacher_student); SAM with eta = 0.1, rho = 0.5 sqrt(eta);
horizon 0.4 (4 steps); M = 200 paths (--quick: 100); float64.  The initial scale 2 / sqrt(h) (0.5 at h = 16) keeps
the problem comparable across widths: the top Hessian eigenvalue at x0 is 3.3, 7.1, 7.9, 8.7, 9.4 at h = 16, 64,
256, 1024, 4096 (eta lambda < 1), where the fixed scale 0.5 of the runs before 2026-12-03 gave 3.3, 14, 46, 177
(eta lambda up to 18: both routes were unstable at d = 7169, and on the edge at d = 1793).

Accuracy (one coupled simulation per d, all runners on one Brownian path): SVAG_l for l in 1, 2, 4, 8 (one Brownian
increment per substep), Euler-Maruyama of the own SDE (closed-form SAM moments, first_order diffusion: one gradient
with its graph and three Hessian-vector products per step) at dt = eta / r for r in 1, 2, 4, 8, and the reference:
Euler-Maruyama at r = 16 and 32, Richardson 2 E_32 - E_16.  The accuracy of a run is its relative weak distance
max_k |mean(f(run) - f(reference))| / mean_k |mean f(run)| (``samsde.weak_error.paired_error``, paired by path),
with its paired standard error (the floor).  SVAG_l and EM_r with l = r take steps of the same size eta / l and
are both of order 1 in it: their measured distances agree (to 1-2% in the runs so far), so the summary compares
them pairwise at equal measured accuracy, one row per d and l = r.

Cost: every SVAG_l and EM_r is then run alone (``samsde.simulate`` with that one runner, the same paths and
steps) in a fresh child process (multiprocessing ``forkserver``): wall seconds of the simulation, and the growth of
the child's peak resident set during it (``/proc/self/clear_refs`` reset, then VmHWM; MiB).  One timed run per
cell after one untimed warm-up run on 8 paths.  ``foreign_load`` is the CPU that other processes used meanwhile
(cores): timings under a foreign load above ~0.2 cores are not meaningful on a 2-core machine.

What it shows and what it does not: the two routes approximate SDEs that agree to first order in rho (SVAG: the
step's exact mean and covariance; EM: the paper's SDE), so at small target accuracies the O(rho^2) gap between them
enters SVAG's distance.  SVAG needs no Hessian-vector product (no double backward) and no moments, which is what
makes it usable where EM is not (mini-batch SAM, models without second derivatives); on this task, where the SAM
SDE's coefficients have a closed form, the comparison is of two order-1 schemes at equal distance.

Scale (``--scale``): how far each route goes on this machine.  The cost of one step eta of SVAG_k and of EM_k
(k = 4, the pairing the accuracy runs show equal) on the same task at hidden widths 256, 1024, 4096, ... (d = 7 h +
1), M = 200 paths, each in a fresh child whose address space is capped (``--cap-gib``, default 20 of the machine's
24 GiB): wall seconds, peak-RSS growth, and whether it fit.  A route stops at the first width at which its run
does not run (an allocation fails under the cap; before 2026-12-03 also, for EM, the SAM SDE's closed-form moment
table, not finite above d ~ 63,500 until samsde.projected_normal took a quadrature there) or its previous peak
times 4 (cost is linear in h) exceeds twice the cap; ``--hidden`` measures the given widths only.  Accuracy is not
re-measured at these widths (the reference costs 48 EM substeps per step): the pairing l = r is the one measured by
the accuracy runs.

Output: a tidy long CSV (``benchmark, task, dim, n_paths, variant, metric, unit, repeat, value, note``: metrics
``distance``, ``floor`` [relative], ``seconds`` [s], ``peak_memory_mib`` [MiB], ``foreign_load`` [cores]), and the
summary on stdout.
"""

from __future__ import annotations

import argparse
import gc
import math
import multiprocessing as mp
import os
import sys
import time

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _machine import CpuMeter, status_kib, use_threads  # noqa: E402

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


def cost(
    h: int,
    n_paths: int,
    variant: str,
    threads: int,
    n_steps: int | None = None,
    warmup_paths: int = 8,
    cap_gib: float | None = None,
) -> tuple[float, float, float]:
    """In a child: wall seconds, peak-RSS growth (MiB) and foreign load of one simulation with one runner, of
    ``n_steps`` steps (default: the horizon's).  With ``cap_gib`` the child's address space is capped first, so a run
    that does not fit raises (MemoryError, or RuntimeError from torch's allocator)."""
    if cap_gib is not None:
        import resource

        cap = int(cap_gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    torch.set_num_threads(threads)
    task, noise, x0 = build(h)
    n_steps = round(HORIZON / ETA) if n_steps is None else n_steps
    samsde.simulate(task, [runner(task, noise, variant)], x0, warmup_paths, n_steps, 1, 0)  # warm-up
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak-RSS mark to the current resident set
    base = status_kib("VmHWM")
    with CpuMeter() as meter:
        start = time.perf_counter()
        samsde.simulate(task, [runner(task, noise, variant)], x0, n_paths, n_steps, 1, 0)
        seconds = time.perf_counter() - start
    return seconds, (status_kib("VmHWM") - base) / 1024, meter.cores


SCALE_K, SCALE_PATHS = 4, 200


def scale(args) -> None:
    """Widths 256, 1024, ... until neither route fits under the cap: the --scale protocol of the docstring (with
    ``--hidden``, those widths only, from the first of them, under the same stopping rule)."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "samsde"])
    print(use_threads(args.threads), f"; M = {SCALE_PATHS}, k = {SCALE_K}, cap {args.cap_gib} GiB", flush=True)
    widths = iter(args.hidden) if args.hidden else (256 * 4**i for i in range(64))
    rows, last_peak, open_routes = [], {}, {"svag", "em"}
    while open_routes and (h := next(widths, None)) is not None:
        for kind in sorted(open_routes):
            variant = f"{kind}_{SCALE_K}"
            if 4 * last_peak.get(kind, 0.0) > 2 * args.cap_gib * 1024:
                print(f"  d = {7 * h + 1}: {variant} predicted {4 * last_peak[kind] / 1024:.0f} GiB: not run")
                open_routes.discard(kind)
                continue
            try:
                with ProcessPoolExecutor(1, mp_context=ctx) as pool:
                    job = pool.submit(cost, h, SCALE_PATHS, variant, args.threads, 1, 2, args.cap_gib)
                    seconds, mib, load = job.result()
                fits = True
            except (MemoryError, RuntimeError, BrokenProcessPool, FloatingPointError) as error:
                seconds = mib = load = math.nan
                fits = False
                print(f"  d = {7 * h + 1}: {variant} does not run: {type(error).__name__}: "
                      f"{str(error).splitlines()[0][:100]}")  # fmt: skip
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
    pd.DataFrame(rows).to_csv(args.out, index=False)
    print(f"wrote {args.out}")


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Per d and grid value k: SVAG_l (l = k) against EM_r (r = k), whose measured distances agree (both order 1
    with step eta / k), their wall seconds and peak-memory growth, and the ratios SVAG / EM."""
    wide = rows.pivot_table(index=["dim", "variant"], columns="metric", values="value").reset_index()
    wide["kind"], wide["k"] = wide.variant.str.split("_").str[0], wide.variant.str.split("_").str[1].astype(int)
    svag, em = (wide[wide.kind == kind].set_index(["dim", "k"]) for kind in ("svag", "em"))
    out = pd.DataFrame({"svag_distance": svag.distance, "em_distance": em.distance, "svag_s": svag.seconds,
                        "em_s": em.seconds, "time_ratio": svag.seconds / em.seconds, "svag_mib": svag.peak_memory_mib,
                        "em_mib": em.peak_memory_mib, "memory_ratio": svag.peak_memory_mib / em.peak_memory_mib,
                        "max_foreign_load": np.maximum(svag.foreign_load, em.foreign_load)})  # fmt: skip
    return out.reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
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
    hidden = args.hidden or ([16, 64] if args.quick else [16, 64, 256])
    n_paths = 100 if args.quick else 200
    print(use_threads(args.threads), f"; M = {n_paths}, eta = {ETA}, rho = {RHO:.4f}", flush=True)
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "samsde"])
    rows = []
    for h in hidden:
        t0 = time.perf_counter()
        dim, acc = accuracy(h, n_paths)
        print(f"d = {dim}: accuracy run {time.perf_counter() - t0:.0f} s", flush=True)
        ident = {"benchmark": "svag_convergence", "task": "teacher_student", "dim": dim, "n_paths": n_paths}
        measured = {}
        for variant, (distance, floor) in acc.items():
            with ctx.Pool(1) as pool:
                seconds, mib, load = pool.apply(cost, (h, n_paths, variant, args.threads))
            measured[variant] = (distance, floor, seconds, mib)
            for metric, unit, value in (("distance", "relative", distance), ("floor", "relative", floor),
                                        ("seconds", "s", seconds), ("peak_memory_mib", "MiB", mib),
                                        ("foreign_load", "cores", load)):  # fmt: skip
                rows.append({**ident, "variant": variant, "metric": metric, "unit": unit, "repeat": 0, "value": value,
                             "note": "reference: EM Richardson r = 16, 32; test function f"})  # fmt: skip
            print(f"  {variant:7s} distance {distance:.4f} (floor {floor:.1e})  {seconds:7.2f} s  {mib:8.1f} MiB  "
                  f"foreign load {load:.2f}", flush=True)  # fmt: skip
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    pd.DataFrame(rows).to_csv(args.out, index=False)
    print(summarise(pd.DataFrame(rows)).to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
