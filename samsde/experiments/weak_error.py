"""One weak-error cell: every model of one task at one eta, on one Brownian path (docs/concepts.md).

At a given (task, eta) all runners share the Brownian increments of the stream (task, eta):
- the discrete SGD and, for every algorithm A and rho scaling s (rho = c eta^alpha), the discrete A;
- the SGD SDE (it depends on neither A nor rho, so it is simulated once and compared with every discrete run);
- per (A, s) the own SDE (A's drift and diffusion) and, for the scalings listed in ``drift_ablation``, the
  drift-only SDE (A's drift, SGD's diffusion).
Every SDE is integrated twice, at r and 2r Euler-Maruyama steps per eta, on the same path (the 2r increments
sum pairwise to the r ones the discrete runs see).  The SDE's mean in the error is the Richardson value
2 E_2r - E_r; E_r - E_2r is reported as the solver's bias.  Each error point comes with its Monte Carlo floor,
and all points of the cell share their bootstrap weights, so ratios and shares of two models can be taken
replicate by replicate.  Under Gaussian noise every runner is on one set of paths and the errors are paired.
Under mini-batch noise the discrete runs draw their own batches and share no noise with the SDEs: they run on
paths of their own (``discrete_paths``, many: a discrete path is cheap), the SDE paths come in antithetic pairs
(``antithetic``), and a model error is a two-sample statistic (:class:`_Sample`); the SDEs still share one
Brownian path among themselves, so their gaps (``gap_to_own``) are paired, and ``gap_floor_unpaired`` says what
that pairing buys.

The comparison "SGD vs the SGD SDE" is the textbook control (order 1 by classical theory): its rows have
algorithm SGD and scaling "none".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from samsde.algorithms import get
from samsde.algorithms.sgd import SGD
from samsde.claims import Claim, in_range
from samsde.noise import MiniBatch, NoiseModel
from samsde.sde import SDEModel
from samsde.seeding import make_generator
from samsde.simulate import OBSERVABLES, DiscreteRunner, SDERunner, SimulationResult, simulate
from samsde.tasks import Task
from samsde.weak_error import (
    FLOOR_FACTOR,
    PairedError,
    bootstrap_weights,
    fit_loglog_slope,
    fit_two_term,
    order1_lower_bound_holds,
    pair_means,
    paired_error,
    path_summary,
    quantile_interval,
    richardson,
    screen_resolved,
    short_of_minimum,
    two_sample_error,
    unpaired_floor,
)

TEST_FUNCTIONS = ("grad_norm_plus_norm", "loss")
SDE_MODELS = ("own_sde", "sgd_sde", "drift_only", "additive_formula")
#: the ablation models: the setting key listing the scalings they run at, and how their SDE differs from the own
#: one (drift_only: SGD's diffusion; additive_formula: section 3's additive-noise formulas on mini-batch noise,
#: for the algorithms that have one, i.e. not SAM, with their deterministic root (I + rho H) S dW, Brownian
#: dimension N; under the stage's ``exact`` diffusion, the exact root of the formula's covariance, dimension d, as
#: the other SDEs of the cell: ``_ablation_options``)
ABLATIONS = {
    "drift_only": ("drift_ablation", {"diffusion": SGD.name}),
    "additive_formula": ("formula_ablation", {"minibatch_formula": "additive", "mode": "first_order"}),
}
CONTROL = (SGD.name, "none")  # (algorithm, scaling) of the control rows
#: the slope rows of the gap between the paper's mini-batch SDE and the additive-noise formula (its replicates too)
GAP_MODEL = "additive_formula.gap"
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
    minibatch = isinstance(noise, MiniBatch)
    roles: dict[str, Role] = {}
    runners = []

    def add(runner, role: Role) -> None:
        roles[runner.name] = role
        runners.append(runner)

    def sde(algorithm: str, scaling: str, model: str, diffusion: str | None = None, **options) -> None:
        rho = _rho(setting["scalings"], scaling, eta)
        for q in REFINEMENTS:
            # mini-batch inner samples: one stream for r and 2r, each batch held for q substeps (minibatch.BatchDraws)
            tail = () if minibatch else (q,)
            gen = make_generator(seed, *stream, "inner", algorithm, scaling, model, *tail)
            kwargs = dict(mode=setting["diffusion"], inner_samples=setting["inner_samples"], generator=gen,
                          sam_moments=setting["sam_moments"], inner_hold=q) | options  # fmt: skip
            m = SDEModel(task, noise, eta, rho, algorithm, diffusion, **kwargs)
            if getattr(m, "batch_draws", None) is not None:  # antithetic paths share their inner batches
                m.batch_draws.pairs = minibatch and setting.get("antithetic", False)
            add(SDERunner(m, f"r{len(runners)}", refinement=q), Role(algorithm, scaling, model, q))

    def discrete(algorithm: str, scaling: str) -> None:
        rho = _rho(setting["scalings"], scaling, eta)
        gen = make_generator(seed, *stream, "batches", algorithm, scaling)
        add(
            DiscreteRunner(task, noise, algorithm, eta, rho, f"r{len(runners)}", gen),
            Role(algorithm, scaling, "discrete"),
        )

    discrete(*CONTROL)
    sde(*CONTROL, "sgd_sde")
    for algorithm in setting["algorithms"]:
        for scaling in setting["scalings"]:
            discrete(algorithm, scaling)
            sde(algorithm, scaling, "own_sde")
            for model in _ablations(setting, algorithm, scaling):
                sde(algorithm, scaling, model, **_ablation_options(setting, model))
    return runners, roles


def _ablation_options(setting: dict, model: str) -> dict:
    """The SDE options of an ablation model.  The additive formula's first-order root (I + rho H) S has Brownian
    dimension N; under the stage's ``exact`` diffusion every other SDE of the cell is the symmetric root of its
    covariance in dimension d (the own SDE's Sigma + rho (K + K^T), without the rho^2 term of its first-order
    root), and so is the ablation (of Sigma + rho (H Sigma + Sigma H)): one Brownian path, and the two SDEs then
    differ only by the formula's terms, as under the first-order diffusion."""
    options = dict(ABLATIONS[model][1])
    if model == "additive_formula" and setting["diffusion"] == "exact":
        options["mode"] = "exact"
    return options


def _ablations(setting: dict, algorithm: str, scaling: str) -> list[str]:
    """The ablation models simulated for (algorithm, scaling): those whose setting key lists the scaling."""
    out = [m for m, (key, _) in ABLATIONS.items() if scaling in setting.get(key, [])]
    # SAM has no additive-noise formula on mini-batch noise (its moments need Gaussian noise)
    return [m for m in out if m != "additive_formula" or not get(algorithm).needs_inner_moments]


def _comparisons(setting: dict) -> Iterator[tuple[str, str, str]]:
    """(algorithm, scaling, model) of every error point: each discrete run against each SDE model, and the control."""
    yield (*CONTROL, "sgd_sde")
    for algorithm in setting["algorithms"]:
        for scaling in setting["scalings"]:
            for model in ("own_sde", "sgd_sde", *_ablations(setting, algorithm, scaling)):
                yield algorithm, scaling, model


def start_diagnostics(task: Task, noise: NoiseModel, x0: torch.Tensor, generator: torch.Generator,
                      n_noise: int = 64, n_power: int = 100) -> dict:  # fmt: skip
    """Where a task starts relative to the asymptotic regime of small eta, at the initial point x0: the noise's size
    sqrt(tr Sigma(x0)) (sigma sqrt(d) for isotropic noise; else from ``n_noise`` draws), |grad f(x0)|, and
    lambda_max(x0), the largest |eigenvalue| of the Hessian (power iteration on Hessian-vector products).  A noise
    much larger than the gradient, or eta lambda_max not small, puts the etas outside the regime where the O(eta)
    term dominates the weak error: these numbers explain a failing control."""
    x = x0.unsqueeze(0)
    if noise.isotropic_sigma is not None:
        noise_norm = noise.isotropic_sigma * noise.dim_w**0.5
    elif noise.is_zero:
        noise_norm = 0.0
    else:
        z = noise.sample(x, n_noise, generator).double()
        noise_norm = float(z.pow(2).sum(-1).mean().sqrt())
    v = torch.randn(task.dim, generator=generator, dtype=torch.float64).to(x0)
    lam = float("nan")
    for _ in range(n_power):
        w = task.hvp(x, (v / v.norm()).unsqueeze(0))[0]
        lam, v = float(w @ (v / v.norm())), w
    grad_norm = float(task.grad(x)[0].norm())
    return {"dim": task.dim, "noise_norm_x0": noise_norm, "grad_norm_x0": grad_norm, "lambda_max_x0": abs(lam)}


class _Sample:
    """How a cell's paths are resampled and compared.

    Gaussian noise: every runner is on the same M paths (coupled), one set of bootstrap weights, paired errors.
    Mini-batch noise: the discrete runs draw their own batches and share no noise with the SDEs, so they run on
    ``discrete_paths`` paths of their own (a discrete path costs a small fraction of an SDE path); the SDE paths come
    in antithetic pairs when ``antithetic`` (the pair means are the SDEs' independent units); a model error is
    a two-sample statistic whose bootstrap resamples discrete paths and SDE units apart, with the same two sets of
    weights for every error of the cell (so own/SGD ratios stay paired where the SDEs share the path).  Comparisons
    among the SDEs (solver bias, gaps) are paired over SDE units."""

    def __init__(self, setting: dict, minibatch: bool, eta: float, seed: int):
        self.two_sample = minibatch
        self.antithetic = minibatch and setting.get("antithetic", False)
        self.sde_paths = setting["n_paths"]
        self.discrete_paths = setting.get("discrete_paths", self.sde_paths) if minibatch else self.sde_paths
        n_boot, stream = setting["n_boot"], (seed, setting["task"], eta, "bootstrap")
        self.w_discrete = bootstrap_weights(self.discrete_paths, n_boot, make_generator(*stream))
        units = self.sde_paths // 2 if self.antithetic else self.sde_paths
        self.w_sde = bootstrap_weights(units, n_boot, make_generator(*stream, "sde")) if minibatch else self.w_discrete

    def units(self, values: torch.Tensor) -> torch.Tensor:
        """An SDE's (n_steps, M) values as its independent units (antithetic pair means)."""
        return pair_means(values) if self.antithetic else values

    def model_error(self, a: torch.Tensor, b: torch.Tensor) -> PairedError:
        """Discrete values a against SDE values b."""
        if self.two_sample:
            return two_sample_error(a, self.units(b), self.w_discrete, self.w_sde)
        return paired_error(a, b, self.w_discrete)

    def sde_gap(self, b1: torch.Tensor, b2: torch.Tensor, a: torch.Tensor) -> PairedError:
        """SDE values b1 against b2 on the same path, normalised by the discrete run a."""
        return paired_error(self.units(b1), self.units(b2), self.w_sde, scale=a, scale_weights=self.w_discrete)

    def simulate(self, task, runners, roles, x0, setting, eta, seed, **kwargs) -> SimulationResult:
        """One simulation of every runner (coupled), or under mini-batch noise the discrete runs and the SDEs apart."""
        n_steps = round(setting["horizon"] / eta)
        args = (n_steps, setting["resolution"], seed, (setting["task"], eta))
        if not self.two_sample:
            return simulate(task, runners, x0, self.sde_paths, *args, **kwargs)
        discrete = [r for r in runners if roles[r.name].model == "discrete"]
        sdes = [r for r in runners if roles[r.name].model != "discrete"]
        d = simulate(task, discrete, x0, self.discrete_paths, *args, **kwargs)
        s = simulate(task, sdes, x0, self.sde_paths, *args, antithetic=self.antithetic, **kwargs)
        return SimulationResult(d.steps, d.times, d.values | s.values, d.diverged_step | s.diverged_step,
                                d.final | s.final)  # fmt: skip


def run_cell(
    task: Task, noise: NoiseModel, x0: torch.Tensor, setting: dict, eta: float, seed: int, progress: bool = False
) -> dict[str, pd.DataFrame]:
    """Simulate the cell and return its tables: ``errors`` (one row per comparison and test function),
    ``replicates`` (the bootstrap replicates of every error, shared weights) and ``trajectories``."""
    runners, roles = cell_runners(task, noise, setting, eta, seed)
    sample = _Sample(setting, isinstance(noise, MiniBatch), eta, seed)
    result = sample.simulate(
        task, runners, roles, x0, setting, eta, seed, observables={g: OBSERVABLES[g] for g in TEST_FUNCTIONS},
        record_every=setting["record_every"], progress=progress,
    )  # fmt: skip
    by_role = {role: name for name, role in roles.items()}
    diagnostics = start_diagnostics(task, noise, x0, make_generator(seed, setting["task"], "start_diagnostics"))
    errors, replicates = [], []
    for algorithm, scaling, model in _comparisons(setting):
        discrete = by_role[Role(algorithm, scaling, "discrete")]
        sde_scaling = CONTROL[1] if model == "sgd_sde" else scaling
        sde_algorithm = CONTROL[0] if model == "sgd_sde" else algorithm
        coarse, fine = (by_role[Role(sde_algorithm, sde_scaling, model, q)] for q in REFINEMENTS)
        ident = _ident(setting, eta, algorithm, scaling, model) | {
            "discrete_paths": sample.discrete_paths, "antithetic": sample.antithetic}  # fmt: skip
        ident.update(_divergence(result, discrete, (coarse, fine)))
        for statistic in TEST_FUNCTIONS:
            a = result.values[discrete][statistic]
            b_r, b_2r = result.values[coarse][statistic], result.values[fine][statistic]
            est = sample.model_error(a, richardson(b_r, b_2r))
            plain_r, plain_2r = sample.model_error(a, b_r), sample.model_error(a, b_2r)
            solver = sample.sde_gap(b_r, b_2r, a)
            gap, unpaired = _gap_to_own(result, by_role, sample, algorithm, scaling, model, statistic, a)
            errors.append({
                **ident, "statistic": statistic, "rel_error": est.value, "ci_low": est.low, "ci_high": est.high,
                "floor": est.floor, "resolved": est.resolved, "rel_error_r": plain_r.value,
                "rel_error_2r": plain_2r.value, "solver_error": solver.value, "solver_floor": solver.floor,
                "gap_to_own": gap.value, "gap_floor": gap.floor, "gap_floor_unpaired": unpaired, **diagnostics,
            })  # fmt: skip
            keys = {k: ident[k] for k in ("task", "algorithm", "scaling", "model", "eta")} | {"statistic": statistic}
            replicates.append(pd.DataFrame({**keys, "replicate": range(len(est.replicates)),
                                            "rel_error": est.replicates.numpy()}))  # fmt: skip
            if model == "additive_formula":  # the gap's replicates, for its slope (gap_slopes)
                replicates.append(pd.DataFrame({**keys, "model": GAP_MODEL, "replicate": range(len(gap.replicates)),
                                                "rel_error": gap.replicates.numpy()}))  # fmt: skip
    return {
        "errors": pd.DataFrame(errors),
        "replicates": pd.concat(replicates, ignore_index=True),
        "trajectories": _trajectories(result, by_role, setting, eta, sample),
    }


def _gap_to_own(result, by_role, sample, algorithm, scaling, model, statistic, a) -> tuple[PairedError, float]:
    """How far another SDE of the cell is from the own SDE (an ablation, or the SGD SDE of an algorithm's rows):
    max_k |mean(own - other)| / N (Richardson means), paired over the SDE units (the SDEs share the Brownian path;
    how much that buys is the floor they would have unpaired, the second value); NaN for the own SDE and the
    control.  A gap below the discrete comparison's floor cannot be told apart here."""
    if model not in (*ABLATIONS, "sgd_sde") or (algorithm, scaling) == CONTROL:
        nan = float("nan")
        return PairedError(nan, nan, nan, nan, torch.empty(0)), nan

    def mean_of(alg, sc, m):
        coarse, fine = (result.values[by_role[Role(alg, sc, m, q)]][statistic] for q in REFINEMENTS)
        return richardson(coarse, fine)

    own = mean_of(algorithm, scaling, "own_sde")
    other = mean_of(*CONTROL, model) if model == "sgd_sde" else mean_of(algorithm, scaling, model)
    return sample.sde_gap(own, other, a), unpaired_floor(sample.units(own), sample.units(other), a)


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


def _trajectories(result: SimulationResult, by_role: dict[Role, str], setting: dict, eta: float,
                  sample: _Sample) -> pd.DataFrame:  # fmt: skip
    """Path mean and s.e. of each test function over time: every discrete run, and every SDE's Richardson value
    (mean and s.e. over its units: antithetic pair means; ``n_paths`` counts the finite units)."""
    frames = []
    for role, name in by_role.items():
        if role.refinement == REFINEMENTS[1]:
            continue  # folded into its coarse twin's Richardson value
        values = result.values[name]
        if role.model != "discrete":
            fine = result.values[by_role[Role(role.algorithm, role.scaling, role.model, REFINEMENTS[1])]]
            values = {g: sample.units(richardson(values[g], fine[g])) for g in TEST_FUNCTIONS}
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
    """Log-log slope of the relative error against eta per (task, algorithm, scaling, model, test function), and the
    two-term fit a eta + b eta^(3/2) on the same points (samsde.weak_error.fit_two_term).

    A point enters the fits when it is not diverged and the error the other etas predict for it is above
    ``FLOOR_FACTOR`` times its own floor (``in_fit``, samsde.weak_error.screen_resolved): the choice does not use the
    point's own paths, so it does not favour points whose noise happened to push them up.  ``n_points`` says how
    many entered; a fit on fewer than ``MIN_FIT_POINTS`` is not usable (``usable``).  ``max_solver_share`` is the
    largest solver bias |E_r - E_2r| relative to the model error among those points whose solver estimate is itself
    resolved (above ``FLOOR_FACTOR`` times its floor; NaN when none is), ``solver_bound`` the largest
    ``FLOOR_FACTOR`` x solver floor / model error among the others (what an unresolved bias can be at most)."""
    rows = []
    for key, grp in errors.groupby(GROUP, sort=True):
        grp = grp.sort_values("eta")
        used = grp[grp.in_fit]
        point = ["task", "algorithm", "scaling", "model", "statistic", "eta"]
        reps = replicates.merge(used[point], on=point).pivot(index="eta", columns="replicate", values="rel_error")
        reps = reps.loc[used.eta].to_numpy() if len(used) else None
        if len(used) >= 2:
            fit = fit_loglog_slope(used.eta, used.rel_error, reps, level=level)
            slope, low, high, intercept = fit.slope, fit.low, fit.high, fit.intercept
        else:
            slope = low = high = intercept = float("nan")
        two = fit_two_term(used.eta, used.rel_error, reps, level=level)
        solver_ok = used.solver_error > FLOOR_FACTOR * used.solver_floor
        share = (used.solver_error / used.rel_error)[solver_ok]
        bound = (FLOOR_FACTOR * used.solver_floor / used.rel_error)[~solver_ok]
        rows.append({
            **dict(zip(GROUP, key, strict=True)), "slope": slope, "ci_low": low, "ci_high": high,
            "intercept": intercept, "a": two.a, "a_low": two.a_low, "a_high": two.a_high, "b": two.b,
            "b_low": two.b_low, "b_high": two.b_high, "eta_min_fit": float(used.eta.min()) if len(used) else np.nan,
            "n_etas": len(grp), "n_points": len(used), "usable": len(used) >= MIN_FIT_POINTS and bool(pd.notna(slope)),
            "max_solver_share": float(share.max()) if len(share) else float("nan"),
            "solver_bound": float(bound.max()) if len(bound) else float("nan"),
            "any_diverged": bool(grp.diverged.any()),
        })  # fmt: skip
    return pd.DataFrame(rows)


def replicate_table(replicates: pd.DataFrame, task: str, algorithm: str, scaling: str, statistic: str, eta: float):
    """The bootstrap replicates of every model at one point, one column per model, rows aligned by replicate
    (the weights are shared within a cell, so a row is one re-weighting of the same paths)."""
    sel = replicates[(replicates.task == task) & (replicates.algorithm == algorithm) & (replicates.scaling == scaling)
                     & (replicates.statistic == statistic) & (replicates.eta == eta)]  # fmt: skip
    return sel.pivot(index="replicate", columns="model", values="rel_error")


# ---- claims ----------------------------------------------------------------------------------------------------

CLAIM_LABELS = {"grad_norm_plus_norm": ("", "g = |grad f| + |x|"), "loss": (".loss", "g = f")}
SOLVER_SHARE_MAX = 0.1
_OUTSIDE = "control fails: outside the asymptotic regime, not evidence either way"
_ABLATION = "the paper's exact statement about this ablation is not known; the expectation is the project's"


def _notes(*parts) -> str:
    return "; ".join(p for p in parts if p)


@dataclass
class _Evidence:
    """The aggregated tables and the thresholds the weak-error claims are judged by."""

    errors: pd.DataFrame
    replicates: pd.DataFrame
    fits: pd.DataFrame  # slopes indexed by (task, algorithm, scaling, model, statistic)
    own_min: float  # order 1: the lower end of the own SDE's slope interval is at least this
    control_range: tuple[float, float]  # the SGD control's slope window
    sgd_max: float
    level: float
    prefix: str = ""  # of every claim id ("minibatch." in the mini-batch stage)
    figure: str = "weak_error"
    additive_max: float = 0.75  # the additive-noise formula is not order 1: its gap's slope interval is below this

    def slope_claim(self, claim_id, source, claim, fit, expected, passed, note=""):
        """A claim on a fitted slope; a fit on fewer than 3 resolved points is never a pass.  The note gives the
        two-term fit a eta + b eta^(3/2) on the same points, so a reader sees which term dominates."""
        used = (f"fit on {fit.n_points} of {fit.n_etas} etas (points whose error the other etas predict above "
                f"{FLOOR_FACTOR:g}x their noise floor)")  # fmt: skip
        if not fit.usable:
            used, passed = f"{used}: fewer than 3 resolved points, not a pass", False
        return Claim(
            claim_id=self.prefix + claim_id, source=source, figure=self.figure, claim=claim,
            quantity="log-log slope of the relative weak error", value=fit.slope, ci_low=fit.ci_low,
            ci_high=fit.ci_high, expected=expected, passed=bool(passed),
            note=_notes(used, two_term_note(fit), "diverged runs present" if fit.any_diverged else "", note),
        )  # fmt: skip

    def precision(self, fit) -> str:
        """For an order-1 row whose point estimate clears the minimum but whose interval does not."""
        return short_of_minimum(fit.slope, fit.ci_low, fit.ci_high, self.own_min, "paths and etas")

    def cell_claims(self, task, algorithm, scaling, alpha, statistic, control_ok, regime):
        """The claims of one (task, algorithm, scaling, test function); ``regime``: why the control fails ("" if
        it passes)."""
        suffix, label = CLAIM_LABELS[statistic]
        tag, where = f"{task}.{algorithm}.{scaling}{suffix}", f"({task}, rho = c eta^{alpha:g}, {label})"
        own, sgd = (self.fits.loc[(task, algorithm, scaling, m, statistic)] for m in ("own_sde", "sgd_sde"))
        name = get(algorithm).label
        yield self.slope_claim(
            f"order1_own_sde.{tag}", "paper",
            f"{name}'s own SDE is an order-1 weak approximation, its error decaying at least linearly in eta {where}",
            own, f"lower end of the slope's 95% interval >= {self.own_min} (order 1 is an upper bound, O(eta))",
            control_ok and order1_lower_bound_holds(own.ci_low, self.own_min), _notes(regime, self.precision(own)),
        )  # fmt: skip
        if np.isclose(alpha, 0.5):
            yield self.slope_claim(
                f"sgd_sde_not_order1.{tag}", "paper",
                f"the SGD SDE is not an order-1 model of {name} when rho = c sqrt(eta) {where}", sgd,
                f"slope < {self.sgd_max}", control_ok and np.isfinite(sgd.slope) and sgd.slope < self.sgd_max, regime,
            )  # fmt: skip
        # the smallest eta, where the comparison is most asymptotic; intervals from the cell's shared bootstrap weights
        errors = self.errors
        eta = errors[(errors.task == task) & (errors.algorithm == algorithm)].eta.min()
        sel = (errors.task == task) & (errors.algorithm == algorithm) & (errors.scaling == scaling)
        at = errors[sel & (errors.eta == eta) & (errors.statistic == statistic)]
        e, bad = at.set_index("model").rel_error, sorted(at[at.diverged].model)
        diverged = f"diverged runs at eta = {eta:g} ({', '.join(bad)}): their errors are not measured" if bad else ""
        reps = replicate_table(self.replicates, task, algorithm, scaling, statistic, eta)
        low, high = quantile_interval(reps["own_sde"] / reps["sgd_sde"], self.level)
        yield Claim(
            claim_id=f"{self.prefix}own_beats_sgd_sde.{tag}", source="paper", figure=self.figure,
            claim=f"{name}'s own SDE is closer to it than the SGD SDE {where}",
            quantity=f"error ratio own/SGD SDE at the smallest eta ({eta:g}; paired bootstrap interval)",
            value=e["own_sde"] / e["sgd_sde"], ci_low=low, ci_high=high, expected="ratio < 1 (interval below 1)",
            passed=bool(control_ok and high < 1), note=_notes(diverged, regime),
        )  # fmt: skip
        if "additive_formula" in e:
            at_eta = sel & (errors.eta == eta)
            yield self.formula_claim(tag, where, name, eta, e, reps, regime, at_eta, statistic, diverged)
            yield from self.formula_order_claims(task, algorithm, scaling, statistic, tag, where, name, e)
        if np.isclose(alpha, 0.5) and "drift_only" in e:
            # share of the own SDE's gain over the SGD SDE that the drift alone achieves (1: all of it)
            def share(t):
                return (t["sgd_sde"] - t["drift_only"]) / (t["sgd_sde"] - t["own_sde"])

            low, high = quantile_interval(share(reps), self.level)
            yield Claim(
                claim_id=f"drift_ablation.{tag}", source="reconstructed", figure="drift_ablation",
                claim=f"the drift of {name}'s SDE (its implicit regularizer) carries most of its gain over "
                f"the SGD SDE {where}",
                quantity=f"(err SGD SDE - err drift-only) / (err SGD SDE - err own SDE) at the smallest eta ({eta:g}; "
                "paired bootstrap interval)",
                value=share(e), ci_low=low, ci_high=high, expected="share >= 0.5",
                passed=bool(control_ok and share(e) >= 0.5), note=_notes(_ABLATION, diverged, regime),
            )  # fmt: skip

    def formula_order_claims(self, task, algorithm, scaling, statistic, tag, where, name, e):
        """The additive-noise formula is not order 1: it drops (rho/2) grad tr Sigma, an O(sqrt(eta)) drift term, so
        its gap to the paper's SDE is O(sqrt(eta)) (the gap's slope, paired over the SDEs' common path).  Its own
        error is about A eta + G sqrt(eta), the paper SDE's error plus that gap, whose local slope
        1/2 + (1/2) A eta / (A eta + G sqrt(eta)) is at most 3/4 exactly where the gap is at least the paper SDE's
        error.  That ratio grows as eta falls, so the formula's slope is claimed only where the gap exceeds the own
        SDE's error at the largest eta of its fit (the whole fitted range is then in that regime), and reported in
        the note elsewhere."""
        key = (task, algorithm, scaling)
        gap, own_fit = self.fits.loc[(*key, GAP_MODEL, statistic)], self.fits.loc[(*key, "additive_formula", statistic)]
        expected = f"upper end of the slope's 95% interval <= {self.additive_max}"
        curve = self.errors[(self.errors.task == task) & (self.errors.algorithm == algorithm)
                            & (self.errors.scaling == scaling) & (self.errors.statistic == statistic)]  # fmt: skip
        rows = curve[curve.model == "additive_formula"]
        fitted = rows[rows.in_fit] if rows.in_fit.any() else rows
        eta = float(fitted.eta.max())
        at = fitted[fitted.eta == eta].iloc[0]
        own = curve[(curve.model == "own_sde") & (curve.eta == eta)].rel_error.iloc[0]
        dominates = bool(at.gap_to_own > own)
        slope = (f"the formula's own error: slope {own_fit.slope:.2f} [{own_fit.ci_low:.2f}, {own_fit.ci_high:.2f}]; "
                 f"at eta = {eta:g}, the largest of its fit, its gap to the paper's SDE is {at.gap_to_own:.3g} against "
                 f"the paper SDE's error {own:.3g}")  # fmt: skip
        if not dominates:
            slope += ": the O(eta) model error is not below the gap over the fitted range, its slope is not claimed"
        passed = np.isfinite(gap.ci_high) and gap.ci_high <= self.additive_max
        yield self.slope_claim(
            f"additive_formula_gap_order_half.{tag}", "own",
            f"the additive-noise formula departs from {name}'s mini-batch SDE at order sqrt(eta), not eta: it drops "
            f"the drift term (rho/2) grad tr Sigma {where}", gap, expected, passed, _notes(_ABLATION, slope),
        )  # fmt: skip
        if dominates:
            yield self.slope_claim(
                f"additive_formula_not_order1.{tag}", "own",
                f"the additive-noise formula is not an order-1 model of {name} on mini-batch noise {where}", own_fit,
                expected, np.isfinite(own_fit.ci_high) and own_fit.ci_high <= self.additive_max, _ABLATION,
            )  # fmt: skip

    def formula_claim(self, tag, where, name, eta, e, reps, regime, at_eta, statistic, diverged=""):
        """The paper's mini-batch SDE against section 3's additive-noise formula on the same noise (the ablation):
        the own SDE's error is below the ablation's (the paired interval of the ratio below 1).  The note says how far
        apart the two SDEs are (coupled: the gap is measured far more precisely than either error); a gap within
        3x its floor means the dropped terms are negligible at this precision."""
        row = self.errors[at_eta & (self.errors.statistic == statistic) & (self.errors.model == "additive_formula")]
        gap, gap_floor = float(row.gap_to_own.iloc[0]), float(row.gap_floor.iloc[0])
        low, high = quantile_interval(reps["own_sde"] / reps["additive_formula"], self.level)
        unpaired = float(row.gap_floor_unpaired.iloc[0]) if "gap_floor_unpaired" in row else float("nan")
        note = f"the two SDEs differ by {gap:.3g} (paired floor {gap_floor:.3g}; unpaired it would be {unpaired:.3g})"
        if not gap > FLOOR_FACTOR * gap_floor:
            note += f": within {FLOOR_FACTOR:g}x, the dropped terms are negligible at this precision"
        return Claim(
            claim_id=f"{self.prefix}additive_formula_worse.{tag}", source="reconstructed", figure=self.figure,
            claim=f"{name}'s mini-batch SDE is closer to it than the additive-noise formula on the same noise, which "
            f"drops rho grad tr Sigma / 2 and the randomness of the batch Hessian {where}",
            quantity=f"error ratio own SDE / additive-formula SDE at the smallest eta ({eta:g}; paired bootstrap "
            "interval)", value=e["own_sde"] / e["additive_formula"], ci_low=low, ci_high=high,
            expected="ratio < 1 (interval below 1)", passed=bool(regime == "" and high < 1),
            note=_notes(note, diverged, regime),
        )  # fmt: skip


#: the weak-error stages: the prefix of their claim ids and their figure
STAGES = {None: ("", "weak_error"), "minibatch": ("minibatch.", "weak_error_minibatch")}


def claims(
    errors: pd.DataFrame,
    slopes: pd.DataFrame,
    replicates: pd.DataFrame,
    settings: dict,
    thresholds: dict,
    level: float = 0.95,
    stage: str | None = None,
) -> list:
    """The weak-error claims of every task, on both test functions: per task the SGD control (``control.*``), then
    for each algorithm and scaling the own SDE's order 1, the SGD SDE's failure to be order 1 under
    rho = c sqrt(eta), own vs SGD SDE, the drift ablation, and last the solver's share (``solver_error.*``).
    ``settings`` is the stage's config section, ``thresholds`` the ``claims`` one; ``stage="minibatch"`` prefixes
    the ids with "minibatch." and adds, per algorithm with an additive-noise formula, its ablation claim."""
    prefix, figure = STAGES[stage]
    fits = slopes.set_index(["task", "algorithm", "scaling", "model", "statistic"])
    ev = _Evidence(errors, replicates, fits, thresholds["own_slope_min"], tuple(thresholds["control_slope_range"]),
                   thresholds["sgd_slope_max"], level, prefix, figure, thresholds["additive_slope_max"])  # fmt: skip
    lo, hi = ev.control_range
    out = []
    for task in settings["tasks"]:
        rows = errors[errors.task == task]
        for statistic, (suffix, label) in CLAIM_LABELS.items():
            control = ev.fits.loc[(task, *CONTROL, "sgd_sde", statistic)]
            control_ok = bool(control.usable and in_range(control.slope, lo, hi))
            why = "" if control_ok else regime_note(control, rows, stage)
            regime = "" if control_ok else _notes(_OUTSIDE, why)
            out.append(ev.slope_claim(
                f"control.{task}{suffix}", "control",
                f"textbook control: the SGD SDE is an order-1 weak approximation of SGD, and the etas are in the "
                f"asymptotic regime ({task}, {label})", control,
                f"slope in [{lo}, {hi}]", control_ok, why,
            ))  # fmt: skip
            for algorithm in settings["algorithms"]:
                for scaling, sc in settings["scalings"].items():
                    out += ev.cell_claims(task, algorithm, scaling, sc["alpha"], statistic, control_ok, regime)
        out.append(solver_claim(slopes[slopes.task == task], task, prefix, figure))
    return out


def solver_claim(fits: pd.DataFrame, task: str, prefix: str, figure: str) -> Claim:
    """Euler-Maruyama's bias |E_r - E_2r| against the model error, over the points of the own-SDE, SGD-SDE and
    control fits whose solver estimate is resolved; where none is, the claim rests on the bound FLOOR_FACTOR x floor."""
    used = fits[fits.model.isin(["own_sde", "sgd_sde"])]
    share, bound = float(used.max_solver_share.max()), float(used.solver_bound.max())
    resolved = bool(np.isfinite(share))
    note = "the error statistic uses the Richardson mean 2 E_2r - E_r; this bounds the plain 2r solution's bias; "
    note += f"share over the solver estimates above {FLOOR_FACTOR:g}x their floor"
    if np.isfinite(bound):
        note += f"; the unresolved ones are at most {bound:.3g} of the model error ({FLOOR_FACTOR:g}x their floor)"
    if not resolved and np.isfinite(bound):
        note += ": no solver estimate resolved, the claim rests on that bound"
        note += "" if bound < SOLVER_SHARE_MAX else f", which is not below {SOLVER_SHARE_MAX}: not a pass"
    elif not resolved:
        note += "; no fit has a point (diverged or unresolved runs): not a pass"
    return Claim(
        claim_id=f"{prefix}solver_error.{task}", source="control", figure=figure,
        claim=f"Euler-Maruyama's own bias is small against the model error ({task}, both test functions)",
        quantity="largest resolved |E_r - E_2r| / model error over the points of the own-SDE, SGD-SDE and control fits",
        value=share, ci_low=float("nan"), ci_high=float("nan"), expected=f"< {SOLVER_SHARE_MAX}",
        passed=bool(share < SOLVER_SHARE_MAX if resolved else bound < SOLVER_SHARE_MAX), note=note,
    )  # fmt: skip


def two_term_note(fit) -> str:
    """The two-term fit of a slope row in words: a (with its interval), b, and which term dominates at the smallest
    eta of the fit (b sqrt(eta) / a: below 1 the eta term)."""
    if not np.isfinite(fit.a):
        return ""
    ratio = fit.b * np.sqrt(fit.eta_min_fit) / fit.a if fit.a != 0 else float("inf")
    return (f"two-term fit a eta + b eta^1.5: a = {fit.a:.3g} [{fit.a_low:.3g}, {fit.a_high:.3g}], b = {fit.b:.3g} "
            f"(b sqrt(eta) / a = {ratio:.2g} at eta = {fit.eta_min_fit:g})")  # fmt: skip


def regime_note(control, rows: pd.DataFrame, stage: str | None) -> str:
    """Why a task may be outside the asymptotic regime, in numbers, and what setting would bring it in: the noise's
    size against the gradient at the start, eta lambda_max at the largest eta, the control's slope (for a failing
    control; empty when the diagnostics are missing)."""
    if not len(rows) or "grad_norm_x0" not in rows:
        return ""
    first, eta = rows.iloc[0], float(rows.eta.max())
    noise, grad, lam = first.noise_norm_x0, first.grad_norm_x0, first.lambda_max_x0
    text = (f"control slope {control.slope:.2f} [{control.ci_low:.2f}, {control.ci_high:.2f}] on {control.n_points} "
            f"points; at x0: noise sqrt(tr Sigma) = {noise:.3g} against |grad f| = {grad:.3g} (ratio "
            f"{noise / grad:.2g}), eta lambda_max = {eta * lam:.2g} at the largest eta {eta:g}")  # fmt: skip
    advice = []
    if noise > grad:
        dim = first.dim
        if stage == "minibatch":
            advice.append("a larger batch (noise near |grad f(x0)|) keeps the gradient dominant at the start")
        else:
            sigma = grad / np.sqrt(dim)
            advice.append(f"a smaller noise scale (noise near |grad f(x0)|: isotropic sigma ~ {sigma:.2g}) keeps "
                          "the gradient dominant at the start")  # fmt: skip
    if eta * lam > 0.5:
        advice.append(f"etas below {0.5 / lam:.2g} keep eta lambda_max below 0.5")
    if not advice:
        advice.append("a smaller eta or more paths (the O(eta^2) terms or the noise floor dominate at these etas)")
    return text + "; to bring the task into the regime try " + " and ".join(advice)


def _screened(errors: pd.DataFrame, value: str = "rel_error", floor: str = "floor") -> pd.Series:
    """The fit screen (see :func:`fit_slopes`) of every curve of ``value`` against eta, with its ``floor``."""
    out = pd.Series(False, index=errors.index)
    for _, grp in errors.groupby(GROUP, sort=False):
        out[grp.index] = screen_resolved(grp.eta, grp[value], grp[floor], usable=~grp.diverged)
    return out


def gap_slopes(errors: pd.DataFrame, replicates: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Slope rows (model ``GAP_MODEL``) of the gap between the paper's mini-batch SDE and the additive-noise formula
    against eta, on the points where the gap is resolved against its paired floor: the formula drops the drift term
    (rho/2) grad tr Sigma, O(sqrt(eta)) under rho = c sqrt(eta), so the gap is O(sqrt(eta)), not O(eta)."""
    rows = errors[errors.model == "additive_formula"]
    if not len(rows):
        return pd.DataFrame()
    gap = rows.assign(model=GAP_MODEL, rel_error=rows.gap_to_own, floor=rows.gap_floor, solver_error=np.nan,
                      solver_floor=np.nan)  # fmt: skip
    gap["in_fit"] = _screened(gap)
    return fit_slopes(gap, replicates, level)


def aggregate(errors: pd.DataFrame, replicates: pd.DataFrame, level: float = 0.95):
    """The cells' error rows as one sorted table with a ``diverged`` flag and the fit screen ``in_fit`` (see
    :func:`fit_slopes`), and their slope fits (with the additive-formula gap's, :func:`gap_slopes`)."""
    errors = errors.copy()
    errors["diverged"] = (errors.n_diverged_discrete > 0) | (errors.n_diverged_model > 0)
    errors = errors.sort_values(["task", "algorithm", "scaling", "model", "statistic", "eta"], ignore_index=True)
    errors["in_fit"] = _screened(errors)
    slopes = fit_slopes(errors, replicates, level)
    gaps = gap_slopes(errors, replicates, level)
    return errors, pd.concat([slopes, gaps], ignore_index=True) if len(gaps) else slopes
