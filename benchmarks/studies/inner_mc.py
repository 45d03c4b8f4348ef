"""Study: the SAM SDE's inner Monte Carlo, accuracy and cost against its inner sample size K (``inner_samples``).

Question: how far are the SAM SDE's coefficients from their K-draw estimate, does the error fall like K^-1/2, what
does K change in E g(X_T), what does a step cost against K, and how close are the closed-form moments?

    python3 benchmarks/studies/inner_mc.py [--skip-weak] [--threads 2]   # ~5 min -> benchmarks/out/inner_mc.csv
    python3 benchmarks/studies/inner_mc.py --quick                       # tiny sizes: checks that it runs

Quoted in: the project README (Performance table: "SAM SDE inner Monte Carlo", "closed-form SAM moments", "SAM SDE
step cost vs K"; the closed-form moments paragraph).  No claim row: it is outside the default DAG.

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
   Also ``ratio_to_usam_sde``.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from dataclasses import dataclass

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from harness import Rows, median, parser, time_interleaved  # noqa: E402

from samsde import OBSERVABLES, SDEModel, SDERunner, make_generator, make_noise, make_task, simulate  # noqa: E402

SAM, USAM = "sam", "usam"

ETA = 0.05
RHO = 0.5 * math.sqrt(ETA)
SIGMA = 0.5
SEED = 0
THREADS = 2
KS = (2, 4, 8, 16, 32, 64, 128, 256)
BENCHMARK = "inner_mc"
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
    accuracy_points={"quadratic": 20, "breast_cancer": 4},
    k_ref=256,
    weak_paths=20,
    weak_steps=2,
    cost_paths={"quadratic": 10, "breast_cancer": 4},
    cost_steps={"quadratic": 2, "breast_cancer": 1},
    repeats=2,
)


def sam_model(task, noise, k: int | None, *keys) -> SDEModel:
    """The SAM SDE with an inner Monte Carlo of K = k draws, or (k None) with its closed-form moments."""
    if k is None:
        return SDEModel(task, noise, ETA, RHO, SAM, mode="first_order", sam_moments="closed_form")
    gen = make_generator(SEED, "bench_inner_mc", task.name, *keys, k, "inner")
    return SDEModel(
        task, noise, ETA, RHO, SAM, mode="first_order", inner_samples=k, generator=gen, sam_moments="monte_carlo"
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


def accuracy(task_name: str, sizes: Sizes, rows: list[dict]) -> None:
    task = make_task(task_name, **TASKS[task_name])
    noise = make_noise("isotropic", task, sigma=SIGMA)
    m, d = sizes.accuracy_points[task_name], task.dim
    gen = make_generator(SEED, "bench_inner_mc", task_name, "points")
    x0 = task.initial_point(make_generator(SEED, "bench_inner_mc", task_name, "x0"))
    x = x0 + SPREAD[task_name] * torch.randn(m, d, generator=gen, dtype=torch.float64)
    dw = math.sqrt(ETA) * torch.randn(m, d, generator=gen, dtype=torch.float64)
    b_ref, bdw_ref = reference(task, noise, x, dw, sizes.k_ref)
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
    for e in ERRORS:
        note = f"least-squares slope of log error vs log K over K = {KS[0]}..{KS[-1]} (expected -0.5)"
        slope = loglog_slope(KS, [found[f"K={k}"][e] for k in KS])
        rows.append({**base, "variant": "fit", "metric": f"{e.removeprefix('relative_')}_loglog_slope",
                     "value": slope, "note": note})  # fmt: skip


def weak_effect(sizes: Sizes, rows: list[dict]) -> None:
    task = make_task("quadratic", **TASKS["quadratic"])
    noise = make_noise("isotropic", task, sigma=SIGMA)
    x0 = task.initial_point(make_generator(SEED, "bench_inner_mc", "quadratic", "x0"))
    runners = [SDERunner(sam_model(task, noise, k, "weak"), name=f"K={k}") for k in KS]
    runners.append(SDERunner(sam_model(task, noise, None), name=CLOSED))
    m, n = sizes.weak_paths, sizes.weak_steps
    res = simulate(task, runners, x0, m, n, 1, SEED, stream=("bench_inner_mc", "weak"),
                   observables={"g": OBSERVABLES["grad_norm_plus_norm"]})  # fmt: skip
    final = {r.name: res.values[r.name]["g"][-1] for r in runners}
    top = final[f"K={KS[-1]}"]
    base = {"benchmark": BENCHMARK, "task": "quadratic", "dim": task.dim, "n_paths": m, "unit": "-", "repeat": 0}
    what = f"g(X_T) = |grad f| + |x| at T = {n * ETA:g} ({n} EM steps of dt = eta, shared Brownian paths)"
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


def cost(task_name: str, sizes: Sizes, rows: list[dict]) -> None:
    task = make_task(task_name, **TASKS[task_name])
    noise = make_noise("isotropic", task, sigma=SIGMA)
    m, n, d = sizes.cost_paths[task_name], sizes.cost_steps[task_name], task.dim
    x0 = task.initial_point(make_generator(SEED, "bench_inner_mc", task_name, "x0")).expand(m, d).clone()
    gen = make_generator(SEED, "bench_inner_mc", task_name, "cost", "brownian")
    increments = math.sqrt(ETA) * torch.randn(n, m, d, generator=gen, dtype=torch.float64)
    models = {USAM: SDEModel(task, noise, ETA, RHO, USAM, mode="first_order")}
    models |= {f"K={k}": sam_model(task, noise, k, "cost") for k in KS} | {CLOSED: sam_model(task, noise, None)}
    runners = {variant: SDERunner(model) for variant, model in models.items()}
    for run in runners.values():  # warm-up: one step each
        run.advance(x0, increments[:1], ETA)
    jobs = {variant: lambda run=run: run.advance(x0, increments, ETA) for variant, run in runners.items()}
    times, loads, _ = time_interleaved(jobs, sizes.repeats, warm=False)
    base = {"benchmark": BENCHMARK, "task": task_name, "dim": d, "n_paths": m}
    for variant, secs in times.items():
        note = f"wall time of {n} EM steps / {n}, restarted from x0"
        rows += [{**base, "variant": variant, "metric": "seconds_per_step", "unit": "s", "repeat": r, "value": t / n,
                  "note": note} for r, t in enumerate(secs)]  # fmt: skip
        rows.append({**base, "variant": variant, "metric": "foreign_load", "unit": "cores", "repeat": 0,
                     "value": loads[variant], "note": ""})  # fmt: skip
        if variant != USAM:
            rows.append({**base, "variant": variant, "metric": "ratio_to_usam_sde", "unit": "x", "repeat": -1,
                         "value": median(secs) / median(times[USAM]), "note": "medians"})  # fmt: skip


def main() -> None:
    p = parser(__doc__, "inner_mc.csv")
    p.add_argument("--skip-weak", action="store_true", help="omit the weak-effect simulation")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    sizes = QUICK if args.quick else FULL
    wall = time.perf_counter()
    rows: list[dict] = []
    for task_name in TASKS:
        accuracy(task_name, sizes, rows)
        print(f"  accuracy {task_name}: done ({time.perf_counter() - wall:.0f} s)", flush=True)
    if not args.skip_weak:
        weak_effect(sizes, rows)
        print(f"  weak effect: done ({time.perf_counter() - wall:.0f} s)", flush=True)
    for task_name in TASKS:
        cost(task_name, sizes, rows)
        print(f"  cost {task_name}: done ({time.perf_counter() - wall:.0f} s)", flush=True)
    out = Rows(BENCHMARK)
    out.rows = rows
    out.write(args.out)


if __name__ == "__main__":
    main()
