"""samsde's Euler-Maruyama step against torchsde's Euler solver on the same SDE, the same paths and the same step.

Run from the repository root:

    python3 benchmarks/bench_torchsde.py [--quick] [--threads N] [--dims 10 100 300]
        [--out benchmarks/out/torchsde.csv]

The SDE is the USAM SDE, diffusion mode ``first_order``, on ``make_task('quadratic', dim=d, seed=0)`` with
isotropic noise sigma = 0.5, eta = rho = 0.05, float64:

    dX = -(g + rho H g) dt + sqrt(eta) (I + rho H) sigma dW,   g = H X,   X_0 = the task's seeded initial point,

on [0, T], T = n_steps * dt, dt = eta (T = 1 with the full run's 20 steps), for d = 10, 100, 300.
- samsde: ``SDERunner(SDEModel(task, noise, eta, rho, 'usam')).advance(x, increments, dt)``, i.e. n_steps calls of
  ``model.em_step`` (matrix-free: two Hessian-vector products per step, no d x d matrix).
- torchsde 0.2.6: ``sdeint(sde, x0, ts, bm=..., method='euler', dt=eta)`` on a ``torchsde.SDEIto`` with
  noise_type 'general' whose f(t, y) is samsde's drift ``model.drift(model.point(y))`` and whose g(t, y) is the
  (M, d, d) matrix sqrt(eta) sigma (I + rho H(y)), H from ``task.hessian(y)``: general noise makes torchsde
  materialize one d x d diffusion per path and multiply it by dW (``torch.bmm``).
- Same paths: the Brownian increments dW_k ~ N(0, dt I), shape (n_steps, M, d), are drawn once per d from a seeded
  generator; samsde gets them directly, torchsde through ``FixedIncrements`` (a ``torchsde.BaseBrownian`` that
  returns dW_k for the query (t_k, t_{k+1}) and refuses any other).  The end time is the float sum t_0 + dt + ... +
  dt that torchsde's stepping loop itself computes, so it takes exactly n_steps steps.  The two final states must
  then agree to rounding: ``max_abs_path_difference`` = max over paths and coordinates of |X_T(torchsde) -
  X_T(samsde)|.  Both also give a Monte Carlo estimate of E f(X_T) (f the quadratic loss) with its standard
  error std / sqrt(M) (identical on shared paths); as a genuine "same answer within MC error" check torchsde is
  run once more with its own independent noise (``torchsde.BrownianInterval`` with a fixed entropy) and the two
  means are compared in units of their combined SE.
- Timing: per d, ``repeats`` timed runs of the n_steps steps of each solver, interleaved (samsde, torchsde,
  samsde, ...) so a burst of outside load hits both alike, after one untimed run of each.  Only the stepping is
  timed, increments pre-drawn for both: for samsde the ``advance`` call; for torchsde the Euler solver's own
  stepping loop ``solver.integrate(x0, ts, ())``, built as ``sdeint`` builds it (``sdeint`` adds a one-off
  contract check that evaluates f and g once more, ~ one step; the untimed correctness run uses the public
  ``sdeint`` and must match ``integrate`` bit for bit).  Reported: seconds per step of each repeat (wall time /
  n_steps), the median, and the ratio torchsde / samsde of the medians.
- ``foreign_load``: CPU (in cores) that other processes used during each solver's timed runs (NaN if they total
  < 0.5 s); above ~0.2 cores the timings are disturbed (see benchmarks/README.md).

Output: a tidy long CSV with columns ``benchmark, task, dim, n_paths, variant, metric, unit, repeat, value, note``
(benchmark = 'torchsde', variant 'samsde_em' / 'torchsde_euler'; metrics seconds_per_step (one row per repeat),
mean_observable, se_observable, max_abs_path_difference, time_ratio, foreign_load, and for torchsde's
independent-noise run mean_observable_independent, se_observable_independent), and a summary on stdout.
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
import torchsde
from _machine import CpuMeter, use_threads  # benchmarks/ is on sys.path when run as a script

from samsde import SDEModel, SDERunner, make_generator, make_noise, make_task
from samsde.algorithms import USAM

ETA = 0.05
RHO = 0.05
SIGMA = 0.5
SEED = 0
THREADS = 2
DIMS = (10, 100, 300)
BENCHMARK = "torchsde"
TASK = "quadratic"


@dataclass(frozen=True)
class Sizes:
    n_paths: int
    n_steps: int
    repeats: int


FULL = Sizes(n_paths=1000, n_steps=20, repeats=5)
QUICK = Sizes(n_paths=200, n_steps=5, repeats=3)


class FixedIncrements(torchsde.BaseBrownian):
    """Pre-drawn Brownian increments on the grid t_k = t0 + k dt: the query (t_k, t_{k+1}) returns dW_k.

    Any other query (a point value W(t), a step that is not one grid cell, Levy areas) raises: the Euler solver
    on this grid needs none, and a silent mismatch would break the pathwise comparison.
    """

    def __init__(self, increments: torch.Tensor, dt: float, t0: float = 0.0):
        self.increments = increments  # (n_steps, M, m)
        self.dt, self.t0 = dt, t0
        self.calls = 0

    def __call__(self, ta, tb=None, return_U=False, return_A=False):
        if tb is None or return_U or return_A:
            raise ValueError("FixedIncrements only answers increment queries W(tb) - W(ta) without Levy areas")
        ta, tb = float(ta), float(tb)
        k = round((ta - self.t0) / self.dt)
        on_grid = abs(ta - (self.t0 + k * self.dt)) <= 1e-9 * self.dt and abs(tb - ta - self.dt) <= 1e-9 * self.dt
        if not (on_grid and 0 <= k < self.increments.shape[0]):
            raise ValueError(f"query ({ta!r}, {tb!r}) is not a cell of the grid t0 + k dt, dt = {self.dt}")
        self.calls += 1
        return self.increments[k]

    def __repr__(self):
        return f"{type(self).__name__}(n_steps={self.increments.shape[0]}, shape={tuple(self.shape)}, dt={self.dt})"

    @property
    def dtype(self):
        return self.increments.dtype

    @property
    def device(self):
        return self.increments.device

    @property
    def shape(self):
        return self.increments.shape[1:]

    @property
    def levy_area_approximation(self):
        return "none"


class USAMGeneralNoise(torchsde.SDEIto):
    """The USAM SDE (first-order diffusion) for torchsde: drift from samsde, general noise with a dense diffusion.

    g(t, y) = sqrt(eta) sigma (I + rho H(y)), one (M, d, d) matrix per call (torchsde then forms g dW by bmm).
    """

    def __init__(self, model: SDEModel):
        super().__init__(noise_type="general")
        self.model = model
        self.scale = math.sqrt(model.eta) * model.noise.isotropic_sigma

    def f(self, t, y):
        return self.model.drift(self.model.point(y))

    def g(self, t, y):
        b = self.model.task.hessian(y) * (self.scale * self.model.rho)  # a new (M, d, d) tensor
        b.diagonal(dim1=-2, dim2=-1).add_(self.scale)
        return b


def end_time(n_steps: int, dt: float) -> torch.Tensor:
    """t_0 + dt + ... + dt (n_steps terms) in float64, exactly as torchsde's fixed-step loop accumulates it."""
    t = torch.zeros((), dtype=torch.float64)
    for _ in range(n_steps):
        t = t + dt
    return t


def euler_solver(sde, bm, dt: float):
    """torchsde's Euler solver as ``sdeint`` builds it (its private constructor: no contract check, no f/g calls)."""
    from torchsde._core.base_sde import ForwardSDE
    from torchsde._core.methods import select

    return select(method="euler", sde_type="ito")(
        sde=ForwardSDE(sde), bm=bm, dt=dt, adaptive=False, rtol=1e-5, atol=1e-4, dt_min=1e-5, options={}
    )


def timed(fn, meter: CpuMeter):
    with meter:
        start = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - start
    return out, seconds


def observable(task, x: torch.Tensor) -> tuple[float, float]:
    """Monte Carlo mean of f(X_T) over the paths and its standard error std / sqrt(M)."""
    v = task.loss(x)
    return float(v.mean()), float(v.std() / math.sqrt(v.numel()))


def run_dim(d: int, sizes: Sizes) -> tuple[list[dict], dict]:
    task = make_task(TASK, dim=d, seed=0)
    noise = make_noise("isotropic", task, sigma=SIGMA)
    model = SDEModel(task, noise, ETA, RHO, USAM.name, mode="first_order")
    runner = SDERunner(model)
    m, n, dt = sizes.n_paths, sizes.n_steps, ETA
    x0 = task.initial_point(make_generator(SEED, "bench_torchsde", d, "x0")).expand(m, d).clone()
    gen = make_generator(SEED, "bench_torchsde", d, m, "brownian")
    increments = math.sqrt(dt) * torch.randn(n, m, d, generator=gen, dtype=torch.float64)
    ts = torch.stack([torch.zeros((), dtype=torch.float64), end_time(n, dt)])
    sde = USAMGeneralNoise(model)
    bm = FixedIncrements(increments, dt)

    # untimed: correctness on shared paths through the public sdeint, and the warm-up of both solvers
    x_samsde = runner.advance(x0, increments, dt)
    x_torchsde = torchsde.sdeint(sde, x0, ts, bm=bm, method="euler", dt=dt)[-1]
    if bm.calls != n:
        raise RuntimeError(f"torchsde took {bm.calls} steps, expected {n}")
    solver = euler_solver(sde, bm, dt)
    bm.calls = 0
    x_integrate = solver.integrate(x0, ts, ())[0][-1]
    if bm.calls != n or not torch.equal(x_integrate, x_torchsde):
        raise RuntimeError("torchsde's solver.integrate does not reproduce sdeint: the timed loop would be wrong")
    path_diff = float((x_torchsde - x_samsde).abs().max())
    scale = float(x_samsde.abs().max())

    # torchsde with its own independent noise: the same law, so E f(X_T) must agree within Monte Carlo error
    own_bm = torchsde.BrownianInterval(
        t0=ts[0], t1=ts[-1], size=(m, d), dtype=torch.float64, entropy=SEED + 1000 + d, levy_area_approximation="none"
    )
    x_independent = torchsde.sdeint(sde, x0, ts, bm=own_bm, method="euler", dt=dt)[-1]

    meters = {"samsde_em": CpuMeter(), "torchsde_euler": CpuMeter()}
    seconds: dict[str, list[float]] = {"samsde_em": [], "torchsde_euler": []}
    for _ in range(sizes.repeats):
        x_s, t_s = timed(lambda: runner.advance(x0, increments, dt), meters["samsde_em"])
        x_t, t_t = timed(lambda: solver.integrate(x0, ts, ())[0][-1], meters["torchsde_euler"])
        seconds["samsde_em"].append(t_s / n)
        seconds["torchsde_euler"].append(t_t / n)
        if not (torch.equal(x_s, x_samsde) and torch.equal(x_t, x_torchsde)):
            raise RuntimeError("a timed run did not reproduce the untimed run")

    base = {"benchmark": BENCHMARK, "task": TASK, "dim": d, "n_paths": m}
    rows = []

    def row(variant, metric, unit, value, repeat=0, note=""):
        rows.append(
            {**base, "variant": variant, "metric": metric, "unit": unit, "repeat": repeat, "value": value, "note": note}
        )

    obs_note = f"f(X_T) = quadratic loss x^T H x / 2 at T = {float(ts[-1]):g}, {n} steps of dt = eta"
    finals = {"samsde_em": x_samsde, "torchsde_euler": x_torchsde}
    summary = {"dim": d, "n_paths": m, "n_steps": n}
    for variant in ("samsde_em", "torchsde_euler"):
        note = f"wall time of {n} steps / {n}, increments pre-drawn; torch threads = {torch.get_num_threads()}"
        for r, s in enumerate(seconds[variant]):
            row(variant, "seconds_per_step", "s", s, repeat=r, note=note)
        mean, se = observable(task, finals[variant])
        row(variant, "mean_observable", "-", mean, note=obs_note + " (shared Brownian paths)")
        row(variant, "se_observable", "-", se, note="std / sqrt(M) over the paths")
        meter = meters[variant]
        load = meter.cores if meter.wall >= 0.5 else math.nan
        row(variant, "foreign_load", "cores", load, note=f"CPU of other processes over {meter.wall:.1f} s timed")
        summary[f"{variant}_s"] = statistics.median(seconds[variant])
        summary[f"{variant}_mean"], summary[f"{variant}_se"] = mean, se
        summary[f"{variant}_load"] = load
    ratio = summary["torchsde_euler_s"] / summary["samsde_em_s"]
    summary["ratio"] = ratio
    row("torchsde_euler", "time_ratio", "x", ratio, note="median seconds_per_step torchsde / samsde")
    row(
        "torchsde_euler",
        "max_abs_path_difference",
        "-",
        path_diff,
        note=f"max over paths and coordinates of |X_T torchsde - X_T samsde| on shared increments; max |X_T| = "
        f"{scale:.3g}",
    )
    mean_i, se_i = observable(task, x_independent)
    row("torchsde_euler", "mean_observable_independent", "-", mean_i, note=obs_note + " (torchsde's own noise)")
    row("torchsde_euler", "se_observable_independent", "-", se_i, note="std / sqrt(M), independent of samsde's paths")
    summary["path_diff"], summary["x_scale"] = path_diff, scale
    summary["independent_mean"], summary["independent_se"] = mean_i, se_i
    summary["independent_z"] = (mean_i - summary["samsde_em_mean"]) / math.hypot(se_i, summary["samsde_em_se"])
    return rows, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="M = 200 paths, 5 steps, 3 repeats: well under a minute")
    parser.add_argument("--threads", type=int, default=THREADS, help="torch.set_num_threads (default 2)")
    parser.add_argument("--dims", type=int, nargs="+", default=list(DIMS), help="dimensions d (default 10 100 300)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/torchsde.csv"), help="CSV to write")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    print(use_threads(args.threads, f"torchsde {torchsde.__version__}"))
    print(
        f"USAM SDE (first_order) on quadratic d in {args.dims}, isotropic sigma = {SIGMA}, eta = rho = {ETA}; "
        f"M = {sizes.n_paths} paths, {sizes.n_steps} steps of dt = eta, median of {sizes.repeats} repeats"
    )
    wall = time.perf_counter()
    rows, summaries = [], []
    for d in args.dims:
        t0 = time.perf_counter()
        r, s = run_dim(d, sizes)
        rows += r
        summaries.append(s)
        print(f"  d = {d}: {time.perf_counter() - t0:.1f} s", flush=True)
    elapsed = time.perf_counter() - wall

    args.out.parent.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(
        rows, columns=["benchmark", "task", "dim", "n_paths", "variant", "metric", "unit", "repeat", "value", "note"]
    )
    df.to_csv(args.out, index=False)

    table = pd.DataFrame(
        {
            "d": [s["dim"] for s in summaries],
            "samsde s/step": [f"{s['samsde_em_s']:.3g}" for s in summaries],
            "torchsde s/step": [f"{s['torchsde_euler_s']:.3g}" for s in summaries],
            "ratio": [f"{s['ratio']:.1f}x" for s in summaries],
            "max|dX_T|": [f"{s['path_diff']:.1e}" for s in summaries],
            "max|X_T|": [f"{s['x_scale']:.2g}" for s in summaries],
            "E f samsde": [f"{s['samsde_em_mean']:.4f} +- {s['samsde_em_se']:.4f}" for s in summaries],
            "E f torchsde": [f"{s['torchsde_euler_mean']:.4f} +- {s['torchsde_euler_se']:.4f}" for s in summaries],
            "E f torchsde own noise": [
                f"{s['independent_mean']:.4f} +- {s['independent_se']:.4f} ({s['independent_z']:+.1f} SE)"
                for s in summaries
            ],
            "load s/t": [f"{s['samsde_em_load']:.2f}/{s['torchsde_euler_load']:.2f}" for s in summaries],
        }
    )
    print()
    print(table.to_string(index=False))
    print(
        "\nratio = median torchsde / median samsde seconds per step; max|dX_T| on shared increments; "
        "'own noise': torchsde with an independent BrownianInterval, difference to samsde in combined SE; "
        "load = CPU cores used by other processes while timing (samsde/torchsde)"
    )
    loads = [s[k] for s in summaries for k in ("samsde_em_load", "torchsde_euler_load") if not math.isnan(s[k])]
    worst = max(loads, default=0.0)
    if worst > 0.2:
        print(f"WARNING: other processes used up to {worst:.2f} cores during timing; the times are disturbed")
    bad = [s["dim"] for s in summaries if abs(s["independent_z"]) > 3]
    if bad:
        print(f"WARNING: independent-noise means differ by more than 3 SE at d = {bad}")
    print(f"\nwrote {args.out}; wall time {elapsed:.0f} s")


if __name__ == "__main__":
    main()
