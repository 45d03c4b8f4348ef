"""The SAM SDE's inner Monte Carlo: accuracy and cost against its inner sample size K (``inner_samples``).

Run from the repository root:

    python3 benchmarks/bench_inner_mc.py [--quick] [--threads N] [--skip-weak] [--out benchmarks/out/inner_mc.csv]

The SAM SDE (``SDEModel(task, noise, eta, rho, 'sam', mode='first_order', inner_samples=K,
sam_moments='monte_carlo')``) needs E[u] and C = Cov(Z, u), u = (g + Z)/|g + Z|, Z ~ N(0, sigma^2 I), which it
estimates at every point and step from K fresh draws Z_k.  With isotropic noise the pipeline uses the closed form
instead (``sam_moments='closed_form'``, samsde.projected_normal), benchmarked here as the variant ``closed_form``:
its error against the K_ref reference below is the reference's own Monte Carlo error, ~ (K=16 error) sqrt(16/K_ref).
Settings: isotropic noise sigma = 0.5, eta = 0.05, rho = 0.5 sqrt(eta)
(the weak-error claims' sqrt scaling), float64; tasks ``make_task('quadratic', dim=10, seed=0)`` and
``make_task('breast_cancer')`` (d = 257).  K in {2, 4, ..., 256}.

1. Accuracy of the coefficients at fixed points.  M points x_i = x_0 + s xi_i, xi_i ~ N(0, I) seeded, x_0 the task's
   seeded initial point (quadratic: M = 2000, s = 0.5; breast_cancer: M = 200, s = 0.1), and one fixed
   dW ~ N(0, eta I) per point.  For each K: b_K = ``model.drift(model.point(x))`` and B_K dW =
   ``model.diffuse(point, dW)`` (one fresh inner sample per K).  The reference uses K_ref = 8192 draws (in chunks,
   accumulating sum u, sum Z, sum Z (u . H dW), sum u (Z . dW)), written out independently of samsde's code:
       b_ref = -(g + rho H ubar),   B_ref dW = sigma dW + rho (C H dW + H C^T dW) / (2 sigma),
       C v = [sum_k Z_k (u_k . v) - K Zbar (ubar . v)] / (K - 1).
   Reported (RMS over the M points, RMS|a| = sqrt(mean_i |a_i|^2)):
       relative_drift_error                = RMS|b_K - b_ref| / RMS|b_ref|
       relative_drift_correction_error     = RMS|b_K - b_ref| / RMS|b_ref + g|     (vs the SAM term rho H E u)
       relative_diffusion_error            = RMS|B_K dW - B_ref dW| / RMS|B_ref dW|
       relative_diffusion_correction_error = RMS|B_K dW - B_ref dW| / RMS|B_ref dW - sigma dW|
   Both estimators are unbiased, so the error should fall as K^(-1/2): the log-log least-squares slope over K is
   reported (variant 'fit').  The reference's own error adds sqrt(1 + K/K_ref) - 1 <= 1.6% at K = 256.
2. Weak effect (quadratic only; --skip-weak to omit): ``samsde.simulate`` of the SAM SDEs with every K on the same
   Brownian paths (coupled), M = 4000, T = 1 (20 steps of dt = eta, r = 1), from x_0; observable
   g(x) = |grad f(x)| + |x| at T.  Reported per K: the mean of g(X_T) and its SE, and the paired difference to
   K = 256 with its SE (std of the per-path differences / sqrt(M)).
3. Cost: median wall time per Euler-Maruyama step (``SDERunner.advance`` on pre-drawn increments, restarted from x_0
   each block) of the SAM SDE for each K and of the USAM SDE (no inner Monte Carlo) as the K-free reference;
   quadratic M = 1000, 20 steps per block; breast_cancer M = 1000, 1 step per block; one warm-up step, then
   ``repeats`` (5) blocks interleaved across the configurations so a burst of outside load hits them alike.
   ``foreign_load``: CPU (in cores) used by other processes during each configuration's timed blocks (NaN if they
   total < 0.5 s); above ~0.2 cores the timings are disturbed (see benchmarks/README.md).

Output: a tidy long CSV with columns ``benchmark, task, dim, n_paths, variant, metric, unit, repeat, value, note``
(benchmark = 'inner_mc', variant 'K=16' etc., 'usam' for the K-free reference, 'fit' for slopes; metrics
seconds_per_step (one row per repeat), relative_drift_error, relative_drift_correction_error,
relative_diffusion_error, relative_diffusion_correction_error, *_loglog_slope, weak_mean_observable,
weak_se_observable, weak_difference_vs_K256, weak_difference_se, foreign_load) and a summary on stdout.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from _machine import CpuMeter, use_threads  # benchmarks/ is on sys.path when run as a script

from samsde import SDEModel, SDERunner, make_generator, make_noise, make_task, simulate
from samsde.algorithms import SAM, USAM
from samsde.simulate import OBSERVABLES

ETA = 0.05
RHO = 0.5 * math.sqrt(ETA)
SIGMA = 0.5
SEED = 0
THREADS = 2
KS = (2, 4, 8, 16, 32, 64, 128, 256)
BENCHMARK = "inner_mc"
COLUMNS = ["benchmark", "task", "dim", "n_paths", "variant", "metric", "unit", "repeat", "value", "note"]
TASKS: dict[str, dict] = {"quadratic": {"dim": 10, "seed": 0}, "breast_cancer": {}}
SPREAD = {"quadratic": 0.5, "breast_cancer": 0.1}  # s in x_i = x_0 + s xi_i
ERRORS = (
    "relative_drift_error",
    "relative_drift_correction_error",
    "relative_diffusion_error",
    "relative_diffusion_correction_error",
)


@dataclass(frozen=True)
class Sizes:
    accuracy_points: dict[str, int]
    k_ref: int
    weak_paths: int
    weak_steps: int
    cost_paths: dict[str, int]
    cost_steps: dict[str, int]
    repeats: int


FULL = Sizes(
    accuracy_points={"quadratic": 2000, "breast_cancer": 200},
    k_ref=8192,
    weak_paths=4000,
    weak_steps=20,
    cost_paths={"quadratic": 1000, "breast_cancer": 1000},
    cost_steps={"quadratic": 20, "breast_cancer": 1},
    repeats=5,
)
QUICK = Sizes(
    accuracy_points={"quadratic": 500, "breast_cancer": 50},
    k_ref=2048,
    weak_paths=1000,
    weak_steps=5,
    cost_paths={"quadratic": 200, "breast_cancer": 100},
    cost_steps={"quadratic": 5, "breast_cancer": 1},
    repeats=3,
)


def sam_model(task, noise, k: int | None, *keys) -> SDEModel:
    """The SAM SDE with an inner Monte Carlo of K = k draws, or (k None) with its closed-form moments."""
    if k is None:
        return SDEModel(task, noise, ETA, RHO, SAM.name, mode="first_order", sam_moments="closed_form")
    gen = make_generator(SEED, "bench_inner_mc", task.name, *keys, k, "inner")
    return SDEModel(
        task, noise, ETA, RHO, SAM.name, mode="first_order", inner_samples=k, generator=gen, sam_moments="monte_carlo"
    )


CLOSED = "closed_form"  # variant name of the closed-form moments (samsde.projected_normal)


def rms(a: torch.Tensor) -> float:
    """sqrt(mean over points of |a_i|^2) for a of shape (M, d)."""
    return float(a.pow(2).sum(-1).mean().sqrt())


def reference(task, noise, x: torch.Tensor, dw: torch.Tensor, k_ref: int) -> tuple[torch.Tensor, torch.Tensor]:
    """b_ref and B_ref dW from k_ref inner draws, in chunks of <= ~4M numbers (see the module docstring)."""
    lin = task.linearize(x)
    g = lin.grad
    m, d = x.shape
    hdw = lin.hvp(dw)
    gen = make_generator(SEED, "bench_inner_mc", task.name, "reference")
    chunk = max(1, min(k_ref, (1 << 22) // (m * d)))
    sum_u, sum_z, s_zu, s_uz = (torch.zeros_like(x) for _ in range(4))
    done = 0
    while done < k_ref:
        c = min(chunk, k_ref - done)
        z = noise.sample(x, c, gen)  # (c, M, d)
        v = g + z
        u = v / torch.linalg.vector_norm(v, dim=-1, keepdim=True)
        sum_u += u.sum(0)
        sum_z += z.sum(0)
        s_zu += (z * (u * hdw).sum(-1, keepdim=True)).sum(0)
        s_uz += (u * (z * dw).sum(-1, keepdim=True)).sum(0)
        done += c
    ubar, zbar = sum_u / k_ref, sum_z / k_ref
    c_hdw = (s_zu - k_ref * zbar * (ubar * hdw).sum(-1, keepdim=True)) / (k_ref - 1)  # C (H dW)
    ct_dw = (s_uz - k_ref * ubar * (zbar * dw).sum(-1, keepdim=True)) / (k_ref - 1)  # C^T dW
    drift = -(g + RHO * lin.hvp(ubar))
    diffusion = SIGMA * dw + RHO * (c_hdw + lin.hvp(ct_dw)) / (2 * SIGMA)
    return drift, diffusion


def loglog_slope(ks, errs) -> float:
    lx = [math.log(k) for k in ks]
    ly = [math.log(e) for e in errs]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sum((a - mx) ** 2 for a in lx)


def accuracy(task_name: str, sizes: Sizes, rows: list[dict]) -> dict:
    task = make_task(task_name, **TASKS[task_name])
    noise = make_noise("isotropic", task, sigma=SIGMA)
    m, d = sizes.accuracy_points[task_name], task.dim
    gen = make_generator(SEED, "bench_inner_mc", task_name, "points")
    x0 = task.initial_point(make_generator(SEED, "bench_inner_mc", task_name, "x0"))
    x = x0 + SPREAD[task_name] * torch.randn(m, d, generator=gen, dtype=torch.float64)
    dw = math.sqrt(ETA) * torch.randn(m, d, generator=gen, dtype=torch.float64)
    start = time.perf_counter()
    b_ref, bdw_ref = reference(task, noise, x, dw, sizes.k_ref)
    ref_seconds = time.perf_counter() - start
    g = task.grad(x)
    scales = {
        "relative_drift_error": rms(b_ref),
        "relative_drift_correction_error": rms(b_ref + g),
        "relative_diffusion_error": rms(bdw_ref),
        "relative_diffusion_correction_error": rms(bdw_ref - SIGMA * dw),
    }
    base = {"benchmark": BENCHMARK, "task": task_name, "dim": d, "n_paths": m, "unit": "-", "repeat": 0}
    denominators = {
        "relative_drift_error": "RMS|b_ref|",
        "relative_drift_correction_error": "RMS|b_ref + g|",
        "relative_diffusion_error": "RMS|B_ref dW|",
        "relative_diffusion_correction_error": "RMS|B_ref dW - sigma dW|",
    }
    found: dict[str, dict[str, float]] = {}  # variant -> error name -> value
    for k in (*KS, None):
        variant, sub = (CLOSED, "closed") if k is None else (f"K={k}", "K")
        model = sam_model(task, noise, k, "accuracy")
        p = model.point(x)
        diff_b = rms(model.drift(p) - b_ref)
        diff_bdw = rms(model.diffuse(p, dw) - bdw_ref)
        for e in ERRORS:
            value = found.setdefault(variant, {})[e] = (diff_b if "drift" in e else diff_bdw) / scales[e]
            what = f"b_{sub} - b_ref" if "drift" in e else f"B_{sub} dW - B_ref dW"
            note = f"RMS over points of |{what}| / {denominators[e]}; K_ref = {sizes.k_ref}, spread {SPREAD[task_name]}"
            rows.append({**base, "variant": variant, "metric": e, "value": value, "note": note})
    errs = {e: [found[f"K={k}"][e] for k in KS] for e in ERRORS}
    closed = found[CLOSED]
    slopes = {}
    for e in ERRORS:
        slopes[e] = loglog_slope(KS, errs[e])
        note = f"least-squares slope of log error vs log K over K = {KS[0]}..{KS[-1]} (expected -0.5)"
        rows.append(
            {
                **base,
                "variant": "fit",
                "metric": f"{e.removeprefix('relative_')}_loglog_slope",
                "value": slopes[e],
                "note": note,
            }
        )
    return {
        "task": task_name,
        "dim": d,
        "points": m,
        "errs": errs,
        "slopes": slopes,
        "closed": closed,
        "scales": scales,
        "ref_seconds": ref_seconds,
    }


def weak_effect(sizes: Sizes, rows: list[dict]) -> dict:
    task = make_task("quadratic", **TASKS["quadratic"])
    noise = make_noise("isotropic", task, sigma=SIGMA)
    x0 = task.initial_point(make_generator(SEED, "bench_inner_mc", "quadratic", "x0"))
    runners = [SDERunner(sam_model(task, noise, k, "weak"), name=f"K={k}") for k in KS]
    runners.append(SDERunner(sam_model(task, noise, None), name=CLOSED))
    m, n = sizes.weak_paths, sizes.weak_steps
    start = time.perf_counter()
    res = simulate(
        task,
        runners,
        x0,
        m,
        n,
        1,
        SEED,
        stream=("bench_inner_mc", "weak"),
        observables={"g": OBSERVABLES["grad_norm_plus_norm"]},
    )
    seconds = time.perf_counter() - start
    final = {r.name: res.values[r.name]["g"][-1] for r in runners}
    top = final[f"K={KS[-1]}"]
    base = {"benchmark": BENCHMARK, "task": "quadratic", "dim": task.dim, "n_paths": m, "unit": "-", "repeat": 0}
    what = f"g(X_T) = |grad f| + |x| at T = {n * ETA:g} ({n} EM steps of dt = eta, shared Brownian paths)"
    out = {"paths": m, "steps": n, "seconds": seconds, "mean": {}, "se": {}, "diff": {}, "diff_se": {}}
    for k in (*KS, CLOSED):
        name = k if k == CLOSED else f"K={k}"
        v = final[name]
        diff = v - top
        vals = {
            "weak_mean_observable": (float(v.mean()), f"mean of {what}"),
            "weak_se_observable": (float(v.std() / math.sqrt(m)), "std / sqrt(M)"),
            "weak_difference_vs_K256": (float(diff.mean()), f"mean over paths of g_K - g_{KS[-1]}, same paths"),
            "weak_difference_se": (float(diff.std() / math.sqrt(m)), "std of the paired differences / sqrt(M)"),
        }
        for metric, (value, note) in vals.items():
            rows.append({**base, "variant": name, "metric": metric, "value": value, "note": note})
        out["mean"][k], out["se"][k] = vals["weak_mean_observable"][0], vals["weak_se_observable"][0]
        out["diff"][k], out["diff_se"][k] = vals["weak_difference_vs_K256"][0], vals["weak_difference_se"][0]
    return out


class CostJob:
    def __init__(self, variant: str, model: SDEModel, x0: torch.Tensor, increments: torch.Tensor):
        self.variant, self.runner, self.x0, self.increments = variant, SDERunner(model), x0, increments
        self.seconds: list[float] = []
        self.meter = CpuMeter()

    def block(self) -> None:
        with self.meter:
            start = time.perf_counter()
            x = self.runner.advance(self.x0, self.increments, ETA)
            self.seconds.append((time.perf_counter() - start) / self.increments.shape[0])
        if not torch.isfinite(x).all():
            raise RuntimeError(f"{self.variant}: non-finite state")


def cost(task_name: str, sizes: Sizes, rows: list[dict]) -> dict:
    task = make_task(task_name, **TASKS[task_name])
    noise = make_noise("isotropic", task, sigma=SIGMA)
    m, n, d = sizes.cost_paths[task_name], sizes.cost_steps[task_name], task.dim
    x0 = task.initial_point(make_generator(SEED, "bench_inner_mc", task_name, "x0")).expand(m, d).clone()
    gen = make_generator(SEED, "bench_inner_mc", task_name, "cost", "brownian")
    increments = math.sqrt(ETA) * torch.randn(n, m, d, generator=gen, dtype=torch.float64)
    jobs = [CostJob(USAM.name, SDEModel(task, noise, ETA, RHO, USAM.name, mode="first_order"), x0, increments)]
    jobs += [CostJob(f"K={k}", sam_model(task, noise, k, "cost"), x0, increments) for k in KS]
    jobs.append(CostJob(CLOSED, sam_model(task, noise, None), x0, increments))
    for job in jobs:  # warm-up: one step each
        job.runner.advance(job.x0, increments[:1], ETA)
    start = time.perf_counter()
    for _ in range(sizes.repeats):
        for job in jobs:
            job.block()
    seconds = time.perf_counter() - start
    base = {"benchmark": BENCHMARK, "task": task_name, "dim": d, "n_paths": m}
    out = {"task": task_name, "paths": m, "steps": n, "median": {}, "load": {}, "seconds": seconds}
    threads = torch.get_num_threads()
    for job in jobs:
        what = {USAM.name: "USAM SDE (no inner Monte Carlo)", CLOSED: "SAM SDE, closed-form moments"}.get(
            job.variant, f"SAM SDE, inner_samples {job.variant}"
        )
        for r, s in enumerate(job.seconds):
            rows.append(
                {
                    **base,
                    "variant": job.variant,
                    "metric": "seconds_per_step",
                    "unit": "s",
                    "repeat": r,
                    "value": s,
                    "note": f"{what}, first_order; wall time of {n} EM steps / {n}; torch threads = {threads}",
                }
            )
        load = job.meter.cores if job.meter.wall >= 0.5 else math.nan
        rows.append(
            {
                **base,
                "variant": job.variant,
                "metric": "foreign_load",
                "unit": "cores",
                "repeat": 0,
                "value": load,
                "note": f"CPU of other processes over {job.meter.wall:.1f} s timed",
            }
        )
        out["median"][job.variant] = statistics.median(job.seconds)
        out["load"][job.variant] = load
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, whole run well under a minute")
    parser.add_argument("--threads", type=int, default=THREADS, help="torch.set_num_threads (default 2)")
    parser.add_argument("--skip-weak", action="store_true", help="omit the weak-effect simulation")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/inner_mc.csv"), help="CSV to write")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    print(use_threads(args.threads))
    print(f"SAM SDE (first_order), isotropic sigma = {SIGMA}, eta = {ETA}, rho = 0.5 sqrt(eta) = {RHO:.4f}; K in {KS}")
    wall = time.perf_counter()
    rows: list[dict] = []
    acc = []
    for task_name in TASKS:
        acc.append(accuracy(task_name, sizes, rows))
        print(f"  accuracy {task_name}: done ({time.perf_counter() - wall:.0f} s)", flush=True)
    weak = None
    if not args.skip_weak:
        weak = weak_effect(sizes, rows)
        print(f"  weak effect: done ({time.perf_counter() - wall:.0f} s)", flush=True)
    costs = []
    for task_name in TASKS:
        costs.append(cost(task_name, sizes, rows))
        print(f"  cost {task_name}: done ({time.perf_counter() - wall:.0f} s)", flush=True)
    elapsed = time.perf_counter() - wall

    args.out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=COLUMNS).to_csv(args.out, index=False)

    for a, c in zip(acc, costs, strict=True):
        print(
            f"\n{a['task']} (d = {a['dim']}): accuracy at {a['points']} points (K_ref = {sizes.k_ref}, "
            f"{a['ref_seconds']:.1f} s); cost at M = {c['paths']} paths, {c['steps']} steps per block"
        )
        table = pd.DataFrame(
            {
                "K": KS,
                "drift err": [f"{v:.2e}" for v in a["errs"]["relative_drift_error"]],
                "drift corr err": [f"{v:.2e}" for v in a["errs"]["relative_drift_correction_error"]],
                "diff err": [f"{v:.2e}" for v in a["errs"]["relative_diffusion_error"]],
                "diff corr err": [f"{v:.2e}" for v in a["errs"]["relative_diffusion_correction_error"]],
                "s/step": [f"{c['median'][f'K={k}']:.3g}" for k in KS],
                "x usam": [f"{c['median'][f'K={k}'] / c['median'][USAM.name]:.1f}" for k in KS],
                "load": [f"{c['load'][f'K={k}']:.2f}" for k in KS],
            }
        )
        print(table.to_string(index=False))
        print(
            "  log-log slopes: "
            + ", ".join(f"{e.removeprefix('relative_')} {s:+.3f}" for e, s in a["slopes"].items())
            + f"; USAM SDE {c['median'][USAM.name]:.3g} s/step (load {c['load'][USAM.name]:.2f})"
        )
        print(
            "  closed form vs the K_ref reference (the reference's own Monte Carlo error): "
            + ", ".join(f"{e.removeprefix('relative_')} {v:.2e}" for e, v in a["closed"].items())
            + f"; {c['median'][CLOSED]:.3g} s/step = {c['median'][CLOSED] / c['median'][USAM.name]:.2f} x usam"
        )
    if weak is not None:
        print(
            f"\nweak effect (quadratic, M = {weak['paths']}, {weak['steps']} steps, {weak['seconds']:.0f} s): "
            f"E g(X_T) and the paired difference to K = {KS[-1]} on the same Brownian paths"
        )
        for k in (*KS, CLOSED):
            d, se = weak["diff"][k], weak["diff_se"][k]
            z = d / se if se > 0 else 0.0
            label = f"K = {k:>3}" if k != CLOSED else "closed"
            print(f"  {label}: {weak['mean'][k]:.4f} +- {weak['se'][k]:.4f};  diff {d:+.2e} +- {se:.1e} ({z:+.1f} SE)")
    loads = [v for c in costs for v in c["load"].values() if not math.isnan(v)]
    if loads and max(loads) > 0.2:
        print(f"\nWARNING: other processes used up to {max(loads):.2f} cores during timing; the times are disturbed")
    print(f"\nwrote {args.out}; wall time {elapsed:.0f} s")


if __name__ == "__main__":
    main()
