"""One weak-error cell: every model of one task at one eta, on one Brownian path (paper notes, sections 4 and 9).

At a given (task, eta) all runners share the Brownian increments of the stream (task, eta):
- the discrete SGD and, for every algorithm A and rho scaling s (rho = c eta^alpha), the discrete A;
- the SGD SDE (it depends on neither A nor rho, so it is simulated once and compared with every discrete run);
- per (A, s) the own SDE (A's drift and diffusion) and, for the scalings listed in ``drift_ablation``, the
  drift-only SDE (A's drift, SGD's diffusion).
Every SDE is integrated twice, at r and 2r Euler-Maruyama steps per eta, on the same path (the 2r increments
sum pairwise to the r ones the discrete runs see).  The SDE's mean in the error is the Richardson value
2 E_2r - E_r; E_r - E_2r is reported as the solver's bias.  Each error point comes with its Monte Carlo floor
(paired standard error), and all points of the cell share one set of bootstrap weights over paths, so ratios
and shares of two models can be taken replicate by replicate.

The comparison "SGD vs the SGD SDE" is the textbook control (order 1 by classical theory): its rows have
algorithm SGD and scaling "none".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
import torch

from samsde.algorithms.sgd import SGD
from samsde.noise import NoiseModel
from samsde.sde import SDEModel
from samsde.seeding import make_generator
from samsde.simulate import OBSERVABLES, DiscreteRunner, SDERunner, SimulationResult, simulate
from samsde.tasks import Task
from samsde.weak_error import bootstrap_weights, paired_error, path_summary, richardson

TEST_FUNCTIONS = ("grad_norm_plus_norm", "loss")
SDE_MODELS = ("own_sde", "sgd_sde", "drift_only")
CONTROL = (SGD.name, "none")  # (algorithm, scaling) of the control rows
REFINEMENTS = (1, 2)  # r and 2r


@dataclass(frozen=True)
class Role:
    """What one runner of the cell is: a discrete optimizer (model "discrete", refinement 0) or an SDE model
    at r (refinement 1) or 2r (refinement 2), for one (algorithm, scaling)."""

    algorithm: str
    scaling: str
    model: str
    refinement: int = 0


def _rho(scalings: dict, scaling: str, eta: float) -> float:
    if scaling == CONTROL[1]:
        return 0.0
    s = scalings[scaling]
    return s["c"] * eta ** s["alpha"]


def cell_runners(task: Task, noise: NoiseModel, setting: dict, eta: float, seed: int) -> tuple[list, dict[str, Role]]:
    """The cell's runners and what each is (runner names are opaque keys; the Role says what a runner is)."""
    stream = (setting["task"], eta)
    roles: dict[str, Role] = {}
    runners = []

    def add(runner, role: Role) -> None:
        roles[runner.name] = role
        runners.append(runner)

    def sde(algorithm: str, scaling: str, model: str, drift: str, diffusion: str) -> None:
        rho = _rho(setting["scalings"], scaling, eta)
        for q in REFINEMENTS:
            gen = make_generator(seed, *stream, "inner", algorithm, scaling, model, q)
            m = SDEModel(task, noise, eta, rho, drift, diffusion, setting["diffusion"], setting["inner_samples"],
                         generator=gen, sam_moments=setting["sam_moments"])  # fmt: skip
            add(SDERunner(m, f"r{len(runners)}", refinement=q), Role(algorithm, scaling, model, q))

    def discrete(algorithm: str, scaling: str) -> None:
        rho = _rho(setting["scalings"], scaling, eta)
        gen = make_generator(seed, *stream, "batches", algorithm, scaling)
        add(
            DiscreteRunner(task, noise, algorithm, eta, rho, f"r{len(runners)}", gen),
            Role(algorithm, scaling, "discrete"),
        )

    discrete(*CONTROL)
    sde(*CONTROL, "sgd_sde", SGD.name, SGD.name)
    for algorithm in setting["algorithms"]:
        for scaling in setting["scalings"]:
            discrete(algorithm, scaling)
            sde(algorithm, scaling, "own_sde", algorithm, algorithm)
            if scaling in setting["drift_ablation"]:
                sde(algorithm, scaling, "drift_only", algorithm, SGD.name)
    return runners, roles


def _comparisons(setting: dict) -> Iterator[tuple[str, str, str]]:
    """(algorithm, scaling, model) of every error point: each discrete run against each SDE model, and the control."""
    yield (*CONTROL, "sgd_sde")
    for algorithm in setting["algorithms"]:
        for scaling in setting["scalings"]:
            for model in SDE_MODELS:
                if model != "drift_only" or scaling in setting["drift_ablation"]:
                    yield algorithm, scaling, model


def run_cell(
    task: Task, noise: NoiseModel, x0: torch.Tensor, setting: dict, eta: float, seed: int, progress: bool = False
) -> dict[str, pd.DataFrame]:
    """Simulate the cell and return its tables: ``errors`` (one row per comparison and test function),
    ``replicates`` (the bootstrap replicates of every error, shared weights) and ``trajectories``."""
    runners, roles = cell_runners(task, noise, setting, eta, seed)
    n_steps = round(setting["horizon"] / eta)
    result = simulate(
        task, runners, x0, setting["n_paths"], n_steps, setting["resolution"], seed, (setting["task"], eta),
        observables={g: OBSERVABLES[g] for g in TEST_FUNCTIONS}, record_every=setting["record_every"],
        progress=progress,
    )  # fmt: skip
    by_role = {role: name for name, role in roles.items()}
    weights = bootstrap_weights(
        setting["n_paths"], setting["n_boot"], make_generator(seed, setting["task"], eta, "bootstrap")
    )
    errors, replicates = [], []
    for algorithm, scaling, model in _comparisons(setting):
        discrete = by_role[Role(algorithm, scaling, "discrete")]
        sde_scaling = CONTROL[1] if model == "sgd_sde" else scaling
        sde_algorithm = CONTROL[0] if model == "sgd_sde" else algorithm
        coarse, fine = (by_role[Role(sde_algorithm, sde_scaling, model, q)] for q in REFINEMENTS)
        ident = _ident(setting, eta, algorithm, scaling, model)
        ident.update(_divergence(result, discrete, (coarse, fine)))
        for statistic in TEST_FUNCTIONS:
            a = result.values[discrete][statistic]
            b_r, b_2r = result.values[coarse][statistic], result.values[fine][statistic]
            est = paired_error(a, richardson(b_r, b_2r), weights)
            plain_r, plain_2r = paired_error(a, b_r, weights), paired_error(a, b_2r, weights)
            solver = paired_error(b_r, b_2r, weights, scale=a)
            errors.append({
                **ident, "statistic": statistic, "rel_error": est.value, "ci_low": est.low, "ci_high": est.high,
                "floor": est.floor, "resolved": est.resolved, "rel_error_r": plain_r.value,
                "rel_error_2r": plain_2r.value, "solver_error": solver.value, "solver_floor": solver.floor,
            })  # fmt: skip
            replicates.append(pd.DataFrame({
                **{k: ident[k] for k in ("task", "algorithm", "scaling", "model", "eta")}, "statistic": statistic,
                "replicate": range(len(est.replicates)), "rel_error": est.replicates.numpy(),
            }))  # fmt: skip
    return {
        "errors": pd.DataFrame(errors),
        "replicates": pd.concat(replicates, ignore_index=True),
        "trajectories": _trajectories(result, by_role, setting, eta),
    }


def _ident(setting: dict, eta: float, algorithm: str, scaling: str, model: str) -> dict:
    s = setting["scalings"].get(scaling, {"alpha": 0.0, "c": 0.0})
    return {"task": setting["task"], "algorithm": algorithm, "scaling": scaling, "alpha": s["alpha"], "c": s["c"],
            "eta": eta, "rho": _rho(setting["scalings"], scaling, eta), "model": model,
            "n_paths": setting["n_paths"], "resolution": setting["resolution"]}  # fmt: skip


def _divergence(result: SimulationResult, discrete: str, sdes: tuple[str, ...]) -> dict:
    firsts = [k for k in (result.first_divergence(n) for n in (discrete, *sdes)) if k is not None]
    return {
        "n_diverged_discrete": result.n_diverged(discrete),
        "n_diverged_model": max(result.n_diverged(n) for n in sdes),
        "diverged_step": min(firsts, default=-1),
    }


def _trajectories(result: SimulationResult, by_role: dict[Role, str], setting: dict, eta: float) -> pd.DataFrame:
    """Path mean and s.e. of each test function over time: every discrete run, and every SDE's Richardson value."""
    frames = []
    for role, name in by_role.items():
        if role.refinement == REFINEMENTS[1]:
            continue  # folded into its coarse twin's Richardson value
        values = result.values[name]
        if role.model != "discrete":
            fine = result.values[by_role[Role(role.algorithm, role.scaling, role.model, REFINEMENTS[1])]]
            values = {g: richardson(values[g], fine[g]) for g in TEST_FUNCTIONS}
        ident = _ident(setting, eta, role.algorithm, role.scaling, role.model)
        ident = {k: v for k, v in ident.items() if k not in ("n_paths", "resolution")}
        for statistic in TEST_FUNCTIONS:
            mean, sem = path_summary(values[statistic])
            frames.append(pd.DataFrame({
                **ident, "step": result.steps.numpy(), "time": result.times.numpy(), "statistic": statistic,
                "mean": mean.numpy(), "sem": sem.numpy(), "n_paths": torch.isfinite(values[statistic]).sum(1).numpy(),
            }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


# ---- aggregation over etas: slope fits on the resolved points ------------------------------------------------

GROUP = ["task", "algorithm", "scaling", "alpha", "c", "model", "statistic"]
MIN_FIT_POINTS = 3


def fit_slopes(errors: pd.DataFrame, replicates: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Log-log slope of the relative error against eta per (task, algorithm, scaling, model, test function).

    Only points that are resolved (above ``FLOOR_FACTOR`` times their noise floor) and not diverged enter a fit;
    ``n_points`` says how many did, and a fit on fewer than ``MIN_FIT_POINTS`` is not usable (``usable``).
    ``max_solver_share`` is the largest solver bias |E_r - E_2r| relative to the model error among those points."""
    from samsde.weak_error import fit_loglog_slope

    rows = []
    for key, grp in errors.groupby(GROUP, sort=True):
        grp = grp.sort_values("eta")
        used = grp[grp.resolved & ~grp.diverged]
        point = ["task", "algorithm", "scaling", "model", "statistic", "eta"]
        reps = replicates.merge(used[point], on=point).pivot(index="eta", columns="replicate", values="rel_error")
        if len(used) >= 2:
            fit = fit_loglog_slope(used.eta, used.rel_error, reps.loc[used.eta].to_numpy(), level=level)
            slope, low, high, intercept = fit.slope, fit.low, fit.high, fit.intercept
        else:
            slope = low = high = intercept = float("nan")
        rows.append({
            **dict(zip(GROUP, key, strict=True)), "slope": slope, "ci_low": low, "ci_high": high,
            "intercept": intercept, "n_etas": len(grp), "n_points": len(used),
            "usable": len(used) >= MIN_FIT_POINTS and bool(pd.notna(slope)),
            "max_solver_share": float((used.solver_error / used.rel_error).max()) if len(used) else float("nan"),
            "any_diverged": bool(grp.diverged.any()),
        })  # fmt: skip
    return pd.DataFrame(rows)


def replicate_table(replicates: pd.DataFrame, task: str, algorithm: str, scaling: str, statistic: str, eta: float):
    """The bootstrap replicates of every model at one point, one column per model, rows aligned by replicate
    (the weights are shared within a cell, so a row is one re-weighting of the same paths)."""
    sel = replicates[(replicates.task == task) & (replicates.algorithm == algorithm) & (replicates.scaling == scaling)
                     & (replicates.statistic == statistic) & (replicates.eta == eta)]  # fmt: skip
    return sel.pivot(index="replicate", columns="model", values="rel_error")
