"""Hoffer et al.'s fix of the large-batch gap: lr * sqrt(k) and the small batch's number of updates.

The small-batch (SB) and plain large-batch (LB) runs are those of :mod:`.sharpness_sb_lb` (same epochs, same lr).
Here, from the same inits, the large batch is trained again with lr * sqrt(k), k = B_large / B_small, for as many
updates as the small batch took ("regime adaptation").  The claim is the share of the test-error gap it closes,
    (err_LB - err_LB_scaled) / (err_LB - err_SB),
with a percentile bootstrap over seeds (paired).
"""

from __future__ import annotations

import math

import pandas as pd
import torch

from samsde import sharpness as sh
from samsde.algorithms.sgd import SGD
from samsde.claims import Claim
from samsde.experiments.lecture.common import logger
from samsde.experiments.lecture.sharpness_sb_lb import stream
from samsde.lecture import MLP, Dataset, bootstrap_gap_closed, mean_ci, solution_metrics, train_loss_closure
from samsde.lecture.batched import SeedStack, train_seeds
from samsde.seeding import make_generator

SCALED = "large_batch_sqrt_k"


def scaled_lr(large_batch: dict) -> tuple[float, float]:
    """``k = B_large / B_small`` and the scaled learning rate ``lr * sqrt(k)``."""
    k = large_batch["large_batch"] / large_batch["small_batch"]
    return k, large_batch["lr"] * math.sqrt(k)


def run(
    settings: dict, seed: int, data: Dataset, mlp: MLP, runs: pd.DataFrame, large_batch: dict, log=None
) -> dict[str, pd.DataFrame]:
    """Table ``table``: the SB and LB ``runs`` of :mod:`.sharpness_sb_lb` (with its settings ``large_batch``) and
    one scaled run per seed, from the same init (the streams of ``sharpness_sb_lb``)."""
    log = logger(log)
    _, lr = scaled_lr(large_batch)
    rows = []
    sb_steps = runs[runs.regime == "small_batch"].set_index("seed").steps
    if sb_steps.nunique() != 1:  # SB takes epochs x floor(n / B) updates: the same for every seed
        raise ValueError(f"the small-batch runs took different numbers of updates: {sorted(set(sb_steps))}")
    seeds = list(sb_steps.index)
    stack = SeedStack.build(mlp, data, [stream(seed, "init", r) for r in seeds])  # all seeds: one batched model
    results = train_seeds(stack, data, method=SGD.name, lr=lr, batch_size=large_batch["large_batch"],
                          generators=[stream(seed, "batches", SCALED, r) for r in seeds], max_epochs=10**9,
                          max_steps=int(sb_steps.iloc[0]))  # fmt: skip
    for replicate, model, result in zip(seeds, stack.models(mlp, data), results, strict=True):
        theta = sh.get_flat_params(model)
        loss = train_loss_closure(model, data.x_train, data.y_train)
        lam = sh.lambda_max(
            loss, theta, iters=large_batch["lanczos_iters"], generator=stream(seed, "lanczos", SCALED, replicate)
        )
        metrics = solution_metrics(model, data)
        rows.append(
            {
                "seed": replicate,
                "regime": SCALED,
                "batch_size": large_batch["large_batch"],
                "lr": lr,
                "steps": result.steps,
                "epochs": result.epochs,
                **metrics,
                "lambda_max": lam.value,
            }
        )
        log.info(
            "seed %d %s: lr %.3g, %d updates (%d epochs), train loss %.3g, test error %.2f%%",
            replicate,
            SCALED,
            lr,
            result.steps,
            result.epochs,
            metrics["train_loss"],
            metrics["test_error_pct"],
        )
    return {"table": pd.concat([runs, pd.DataFrame(rows)], ignore_index=True)[list(runs.columns)]}


def claims(tables: dict[str, pd.DataFrame], settings: dict, *, seed: int, large_batch: dict) -> list[Claim]:
    """The scaled run closes at least ``min_gap_closed`` of a significant gap (bootstrap stream
    ``(seed, "lecture", "lr_scaling", "bootstrap")``) and beats the plain LB run (95% t-interval below 0)."""
    k, lr = scaled_lr(large_batch)
    err = tables["table"].pivot(index="seed", columns="regime", values="test_error_pct")
    share, low, high = bootstrap_gap_closed(
        torch.tensor(err.small_batch.to_numpy()),
        torch.tensor(err.large_batch.to_numpy()),
        torch.tensor(err[SCALED].to_numpy()),
        settings["n_boot"],
        make_generator(seed, "lecture", "lr_scaling", "bootstrap"),
    )
    gap, _, gap_low, _ = mean_ci(err.large_batch - err.small_batch)
    diff, _, diff_low, diff_high = mean_ci(err[SCALED] - err.large_batch)
    setting = (
        f"digits MLP, B {large_batch['small_batch']} vs {large_batch['large_batch']} (k = {k:.3g}), "
        f"lr {large_batch['lr']} vs {lr:.3g}, {len(err)} seeds"
    )
    gap_note = f"gap err_LB - err_SB = {gap:.3g} pp" + ("" if gap_low > 0 else " (not significant: CI includes 0)")
    return [
        Claim(
            claim_id="lecture.lr_scaling.sqrt_k_closes_gap",
            source="lecture",
            figure="lr_scaling",
            claim="lecture (Hoffer et al.): a large batch with lr * sqrt(k) and the small batch's number of updates "
            "closes (most of) the generalization gap",
            quantity="share of the test-error gap closed, (err_LB - err_scaled) / (err_LB - err_SB); 95% bootstrap CI",
            value=share,
            ci_low=low,
            ci_high=high,
            expected=f">= {settings['min_gap_closed']:g}",
            passed=bool(gap_low > 0 and share >= settings["min_gap_closed"]),
            note=f"{setting}; {gap_note}",
        ),
        Claim(
            claim_id="lecture.lr_scaling.sqrt_k_beats_plain_lb",
            source="lecture",
            figure="lr_scaling",
            claim="lecture (Hoffer et al.): the adapted large-batch run has a lower test error than the plain "
            "large-batch run",
            quantity="test error scaled LB - plain LB (percentage points)",
            value=diff,
            ci_low=diff_low,
            ci_high=diff_high,
            expected="< 0 (95% CI below 0)",
            passed=bool(diff_high < 0),
            note=setting,
        ),
    ]
