"""samsde's Euler-Maruyama against torchsde's Euler solver: the same SDE, the same Brownian increments.

    python3 benchmarks/bench_torchsde.py [--dims 10 100 300]   # ~3 min on 2 cores

The USAM SDE, mode ``first_order``, on ``make_task('quadratic', dim=d, seed=0)``, isotropic sigma = 0.5, eta = rho
= 0.05, float64, M = 1000 paths, 20 steps of dt = eta, d = 10, 100, 300:
- samsde: ``SDERunner(SDEModel(task, noise, eta, rho, 'usam')).advance(x0, increments, dt)`` (matrix-free);
- torchsde: an ``SDEIto`` with noise_type 'general', f = samsde's drift, g = the (M, d, d) matrix
  sqrt(eta) sigma (I + rho H(y)); its Euler solver as ``sdeint`` builds it, stepping with ``solver.integrate``.
The increments dW_k ~ N(0, dt I) are drawn once per d; torchsde reads them through ``FixedIncrements``, which
answers only the grid queries (t_k, t_k + dt).  The final states must agree to rounding (``max_abs_path_difference``;
the untimed run uses the public ``sdeint`` and must match ``integrate`` bit for bit), and torchsde on its own noise
(``BrownianInterval``) must give E f(X_T) within Monte Carlo error (``independent_mean_z``, in combined SE).
Timed: 5 interleaved repeats of the 20 steps of each solver after one untimed run; rows ``seconds_per_step`` and
``time_ratio`` (torchsde / samsde, medians).
"""

from __future__ import annotations

import math

import torch
import torchsde
from harness import Rows, median, parser, time_interleaved
from torchsde._core.base_sde import ForwardSDE
from torchsde._core.methods import select

from samsde import SDEModel, SDERunner, make_generator, make_noise, make_task

ETA = RHO = 0.05
SIGMA, SEED = 0.5, 0


class FixedIncrements(torchsde.BaseBrownian):
    """Pre-drawn increments on the grid t0 + k dt: the query (t_k, t_k+1) returns dW_k; any other query raises."""

    def __init__(self, increments: torch.Tensor, dt: float):
        self.increments, self.dt, self.calls = increments, dt, 0

    def __call__(self, ta, tb=None, return_U=False, return_A=False):
        k = round(float(ta) / self.dt) if tb is not None else -1
        on_grid = (
            abs(float(ta) - k * self.dt) <= 1e-9 * self.dt and abs(float(tb) - float(ta) - self.dt) <= 1e-9 * self.dt
        )
        if return_U or return_A or not (on_grid and 0 <= k < len(self.increments)):
            raise ValueError(f"query ({ta!r}, {tb!r}) is not a cell of the grid k dt, dt = {self.dt}")
        self.calls += 1
        return self.increments[k]

    def __repr__(self):
        return f"FixedIncrements({tuple(self.increments.shape)}, dt={self.dt})"

    dtype = property(lambda self: self.increments.dtype)
    device = property(lambda self: self.increments.device)
    shape = property(lambda self: self.increments.shape[1:])
    levy_area_approximation = property(lambda self: "none")


class USAMGeneralNoise(torchsde.SDEIto):
    """The USAM SDE for torchsde: samsde's drift, general noise g = sqrt(eta) sigma (I + rho H(y)), (M, d, d)."""

    def __init__(self, model: SDEModel):
        super().__init__(noise_type="general")
        self.model, self.scale = model, math.sqrt(model.eta) * model.noise.isotropic_sigma

    def f(self, t, y):
        return self.model.drift(self.model.point(y))

    def g(self, t, y):
        b = self.model.task.hessian(y) * (self.scale * self.model.rho)
        b.diagonal(dim1=-2, dim2=-1).add_(self.scale)
        return b


def run_dim(d: int, m: int, n: int, repeats: int, rows: Rows) -> None:
    task = make_task("quadratic", dim=d, seed=0)
    model = SDEModel(task, make_noise("isotropic", task, sigma=SIGMA), ETA, RHO, "usam", mode="first_order")
    runner = SDERunner(model)
    x0 = task.initial_point(make_generator(SEED, "bench_torchsde", d, "x0")).expand(m, d).clone()
    gen = make_generator(SEED, "bench_torchsde", d, m, "brownian")
    increments = math.sqrt(ETA) * torch.randn(n, m, d, generator=gen, dtype=torch.float64)
    t_end = torch.zeros((), dtype=torch.float64)
    for _ in range(n):  # t0 + dt + ... + dt, as torchsde's fixed-step loop accumulates it
        t_end = t_end + ETA
    ts = torch.stack([torch.zeros((), dtype=torch.float64), t_end])
    sde, bm = USAMGeneralNoise(model), FixedIncrements(increments, ETA)
    x_samsde = runner.advance(x0, increments, ETA)
    x_torchsde = torchsde.sdeint(sde, x0, ts, bm=bm, method="euler", dt=ETA)[-1]
    solver = select(method="euler", sde_type="ito")(sde=ForwardSDE(sde), bm=bm, dt=ETA, adaptive=False, rtol=1e-5,
                                                     atol=1e-4, dt_min=1e-5, options={})  # fmt: skip
    bm.calls = 0
    if not torch.equal(solver.integrate(x0, ts, ())[0][-1], x_torchsde) or bm.calls != n:
        raise RuntimeError("torchsde's solver.integrate does not reproduce sdeint: the timed loop would be wrong")
    own = torchsde.BrownianInterval(t0=ts[0], t1=ts[-1], size=(m, d), dtype=torch.float64, entropy=SEED + 1000 + d,
                                    levy_area_approximation="none")  # fmt: skip
    x_own = torchsde.sdeint(sde, x0, ts, bm=own, method="euler", dt=ETA)[-1]
    jobs = {"samsde_em": lambda: runner.advance(x0, increments, ETA),
            "torchsde_euler": lambda: solver.integrate(x0, ts, ())[0][-1]}  # fmt: skip
    times, loads, _ = time_interleaved(jobs, repeats, warm=False)
    for variant, secs in times.items():
        rows.series("quadratic", d, m, variant, "seconds_per_step", "s", [t / n for t in secs], f"{n} steps / {n}")
        rows.add("quadratic", d, m, variant, "foreign_load", "cores", loads[variant])
    ratio = median(times["torchsde_euler"]) / median(times["samsde_em"])
    rows.add("quadratic", d, m, "torchsde_euler", "time_ratio", "x", ratio, note="median torchsde / median samsde")
    diff = float((x_torchsde - x_samsde).abs().max())
    rows.add("quadratic", d, m, "torchsde_euler", "max_abs_path_difference", "-", diff,
             note=f"shared increments; max |X_T| = {float(x_samsde.abs().max()):.3g}")  # fmt: skip
    (mean_s, se_s), (mean_o, se_o) = ((float(f.mean()), float(f.std() / math.sqrt(m))) for f in
                                      (task.loss(x_samsde), task.loss(x_own)))  # fmt: skip
    rows.add("quadratic", d, m, "samsde_em", "mean_observable", "-", mean_s, note=f"E f(X_T) +- {se_s:.2g}")
    z = (mean_o - mean_s) / math.hypot(se_s, se_o)
    rows.add("quadratic", d, m, "torchsde_euler", "independent_mean_z", "SE", z,
             note="torchsde on its own noise vs samsde, E f(X_T), in combined standard errors")  # fmt: skip


def main() -> None:
    p = parser(__doc__, "torchsde.csv")
    p.add_argument("--dims", type=int, nargs="+", default=[10, 100, 300], help="dimensions d (default 10 100 300)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    m, n, repeats = (20, 2, 2) if args.quick else (1000, 20, 5)
    rows = Rows("torchsde")
    for d in [10] if args.quick else args.dims:
        run_dim(d, m, n, repeats, rows)
    rows.write(args.out)


if __name__ == "__main__":
    main()
