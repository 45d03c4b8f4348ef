"""Full-batch SAM against full-batch gradient descent (GD) on the lecture's digits MLP: lambda_max and alignment.

The lecture (after Wen et al.) separates two regimes: *full-batch* SAM minimizes lambda_max, its ascent direction
aligning with the top Hessian eigenvector (the iterate bounces across the sharpest direction), while *stochastic*
SAM minimizes the trace (:mod:`.hessian_spectrum`).  This module tests the full-batch statement on a network.

Objective L(w) = mean cross-entropy on the whole training set + (l2 / 2) |w|^2.  The L2 term gives L minimizers at
finite weights with a curvature that does not vanish (without it the cross-entropy on separable digits goes to 0
and its Hessian with it), and it is inside the loss, so SAM's ascent direction is grad L (as for
:func:`samsde.algorithms.discrete_step` on a task with L2).  Per seed, GD and SAM start from the same init, take the
same lr and the same number of steps; every seed and both methods advance as one batched model
(:func:`samsde.lecture.batched.full_batch_steps`).  At each checkpoint, per run: L, the cross-entropy, |grad L|,
lambda_max of the Hessian of L and its eigenvector v_1 (Lanczos), and the alignment |cos(grad L, v_1)|
(:func:`samsde.sharpness.ascent_alignment`).  A run whose objective turns non-finite is recorded as diverged (its
measurements NaN); the claims use the seeds where both runs are finite.
Claims: SAM - GD of the final lambda_max, paired over seeds, 95% CI below 0; SAM's alignment over the last
``compare`` checkpoints minus over the first ``compare``, paired over seeds, 95% CI above 0.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from samsde import sharpness as sh
from samsde.claims import Claim
from samsde.experiments.lecture.common import logger
from samsde.lecture import MLP, Dataset, mean_ci, solution_metrics, train_loss_closure
from samsde.lecture.batched import SeedStack, full_batch_steps, objective
from samsde.seeding import make_generator

GD, SAM = "gd", "sam"  #: the tables' method names (full-batch SGD is gradient descent)
METHODS = (GD, SAM)


def stream(seed: int, *keys):
    return make_generator(seed, "lecture", "full_batch_sharpness", *keys)


def objective_closure(model, data: Dataset, l2: float):
    """``theta -> L(theta)``, the training objective (cross-entropy + L2) over the flat parameters of ``model``."""
    cross_entropy = train_loss_closure(model, data.x_train, data.y_train)
    return lambda theta: cross_entropy(theta) + 0.5 * l2 * torch.dot(theta, theta)


def check_checkpoints(settings: dict) -> list[int]:
    points, n_steps = list(settings["checkpoints"]), settings["n_steps"]
    if points != sorted(set(points)) or points[0] < 0 or points[-1] != n_steps:
        raise ValueError(f"checkpoints {points}: strictly increasing steps >= 0 ending at n_steps {n_steps}")
    if 2 * settings["compare"] > len(points):
        raise ValueError(f"compare {settings['compare']}: the first and the last compare of {len(points)} checkpoints")
    return points


def measure(stack: SeedStack, mlp: MLP, data: Dataset, settings: dict, seed: int, step: int, members) -> list[dict]:
    """One row per run at ``step``: the objective, cross-entropy, |grad L|, lambda_max and alignment (NaN when the
    run is not finite)."""
    l2 = settings["l2"]
    with torch.no_grad():
        values = objective(stack, data.x_train, data.y_train, l2)
        cross_entropy = stack.losses(data.x_train, data.y_train)
    rows = []
    models = stack.models(mlp, data)
    for (method, replicate), model, value, ce in zip(members, models, values, cross_entropy, strict=True):
        row = {"seed": replicate, "method": method, "step": step, "objective": value.item(), "cross_entropy": ce.item()}
        row |= {"grad_norm": math.nan, "lambda_max": math.nan, "alignment": math.nan, "finite": False}
        theta = sh.get_flat_params(model)
        if math.isfinite(row["objective"]) and bool(torch.isfinite(theta).all()):
            loss = objective_closure(model, data, l2)
            top = sh.lambda_max(
                loss, theta, iters=settings["lanczos_iters"], generator=stream(seed, "lanczos", method, replicate, step)
            )
            theta_grad = theta.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(loss(theta_grad), theta_grad)
            row |= {
                "grad_norm": torch.linalg.vector_norm(grad).item(),
                "lambda_max": top.value,
                "alignment": sh.ascent_alignment(loss, theta, top.vector),
                "finite": True,
            }
        rows.append(row)
    return rows


def run(settings: dict, seed: int, data: Dataset, mlp: MLP, log=None) -> dict[str, pd.DataFrame]:
    """Tables ``checkpoints`` (one row per run and checkpoint) and ``final`` (one row per run: the last
    checkpoint's measurements, train accuracy and test error, ``diverged``)."""
    log = logger(log)
    points = check_checkpoints(settings)
    members = [(method, r) for method in METHODS for r in range(settings["n_seeds"])]
    # the same init per seed for both methods: the comparison is paired
    stack = SeedStack.build(mlp, data, [stream(seed, "init", r) for _, r in members])
    rho = [settings["rho"] if method == SAM else 0.0 for method, _ in members]
    rows, done = [], 0
    for step in points:
        full_batch_steps(
            stack, data.x_train, data.y_train, lr=settings["lr"], rho=rho, l2=settings["l2"], n_steps=step - done
        )
        done = step
        rows += measure(stack, mlp, data, settings, seed, step, members)
        now = pd.DataFrame(rows[-len(members) :])
        log.info(
            "step %d: mean over seeds %s",
            step,
            now.groupby("method")[["objective", "lambda_max", "alignment"]].mean().to_dict("index"),
        )
    checkpoints = pd.DataFrame(rows)
    last = checkpoints[checkpoints.step == points[-1]].reset_index(drop=True)
    final = []
    for (method, replicate), model, row in zip(members, stack.models(mlp, data), last.itertuples(), strict=True):
        missing = {"train_accuracy": math.nan, "test_error_pct": math.nan}
        metrics = solution_metrics(model, data) if row.finite else missing
        final.append(
            {
                "seed": replicate,
                "method": method,
                "steps": points[-1],
                "objective": row.objective,
                "cross_entropy": row.cross_entropy,
                "lambda_max": row.lambda_max,
                "alignment": row.alignment,
                "train_accuracy": metrics["train_accuracy"],
                "test_error_pct": metrics["test_error_pct"],
                "diverged": not row.finite,
            }
        )
    return {"checkpoints": checkpoints, "final": pd.DataFrame(final)}


def _interval(values) -> tuple[float, float, float]:
    """Mean and 95% t-interval, NaN when fewer than two values exist (the claim then fails)."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return math.nan, math.nan, math.nan
    mean, _, low, high = mean_ci(values)
    return mean, low, high


def claims(tables: dict[str, pd.DataFrame], settings: dict) -> list[Claim]:
    """The two full-batch statements of the lecture (Wen et al.), on the seeds where both runs stayed finite."""
    final, checkpoints = tables["final"], tables["checkpoints"]
    wide = final.pivot(index="seed", columns="method", values="lambda_max").dropna()
    n_all, n = final.seed.nunique(), len(wide)
    setting = (
        f"digits MLP, full batch, objective cross-entropy + {settings['l2']:g}/2 |w|^2, lr {settings['lr']:g}, "
        f"rho {settings['rho']:g}, {settings['n_steps']} steps from the same init; {n} of {n_all} seeds finite"
    )
    mean, low, high = _interval(wide[SAM] - wide[GD])
    sam = checkpoints[checkpoints.method == SAM].pivot(index="seed", columns="step", values="alignment")
    k = settings["compare"]
    first, last = sam.iloc[:, :k].mean(axis=1), sam.iloc[:, -k:].mean(axis=1)
    growth = (last - first).dropna()
    grow_mean, grow_low, grow_high = _interval(growth)
    gd_end = final[final.method == GD].alignment
    ends = final.groupby("method")[["objective", "cross_entropy"]].mean()
    unmeasured = "; fewer than two seeds with both runs finite: not measured, not a pass"
    return [
        Claim(
            claim_id="lecture.full_batch_sharpness.sam_smaller_lambda_max",
            source="lecture",
            figure="full_batch_sharpness",
            claim="lecture (Wen et al.): full-batch SAM minimizes lambda_max; after the same number of full-batch "
            "steps from the same init, SAM's lambda_max is smaller than gradient descent's",
            quantity="lambda_max of the training-objective Hessian, SAM - GD, at the last step",
            value=mean,
            ci_low=low,
            ci_high=high,
            expected="< 0 (95% CI below 0)",
            passed=bool(high < 0),
            note=f"{setting}; paired over seeds; GD mean {wide[GD].mean():.4g}, SAM mean {wide[SAM].mean():.4g}; "
            f"objective (cross-entropy) GD {ends.objective[GD]:.4g} ({ends.cross_entropy[GD]:.4g}), "
            f"SAM {ends.objective[SAM]:.4g} ({ends.cross_entropy[SAM]:.4g})" + (unmeasured if n < 2 else ""),
        ),
        Claim(
            claim_id="lecture.full_batch_sharpness.ascent_aligns_top_eigenvector",
            source="lecture",
            figure="full_batch_sharpness",
            claim="lecture (Wen et al.): full-batch SAM's ascent direction grad L / |grad L| aligns with the top "
            "Hessian eigenvector; its |cos| with v_1 grows during training",
            quantity=f"SAM's mean |cos(grad L, v_1)| over the last {k} checkpoints - over the first {k}",
            value=grow_mean,
            ci_low=grow_low,
            ci_high=grow_high,
            expected="> 0 (95% CI above 0)",
            passed=bool(grow_low > 0),
            note=f"{setting}; checkpoints {list(settings['checkpoints'])}, paired over {len(growth)} seeds; SAM first "
            f"{first.mean():.3g}, last {last.mean():.3g}; GD at the last step {gd_end.mean():.3g} (reference)"
            + (unmeasured if len(growth) < 2 else ""),
        ),
    ]
