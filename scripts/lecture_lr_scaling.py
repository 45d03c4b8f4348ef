"""Hoffer et al.'s fix of the large-batch gap: lr * sqrt(k) and the small batch's number of updates.

The small-batch (SB) and plain large-batch (LB) runs are those of sharpness_sb_lb (same epochs, same lr).  Here,
from the same inits, the large batch is trained again with lr * sqrt(k), k = B_large / B_small, for as many
updates as the small batch took ("regime adaptation").  The claim is the share of the test-error gap it closes,
    (err_LB - err_LB_scaled) / (err_LB - err_SB),
with a percentile bootstrap over seeds (paired).
"""

import math

import pandas as pd
import torch

from samsde import make_generator
from samsde import sharpness as sh
from samsde.lecture import (
    bootstrap_gap_closed,
    dataset_from_config,
    fit_mlp,
    mean_ci,
    solution_metrics,
    train_loss_closure,
)
from samsde_workflow.claims import Claim, claims_frame
from samsde_workflow.io import read_table, write_table
from samsde_workflow.logs import rule_logging

EXPERIMENT = "large_batch"  # the stream keys of lecture_sharpness_sb_lb: same inits
RULE = "lecture_lr_scaling"
SCALED = "large_batch_sqrt_k"

with rule_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    section = snakemake.params.section
    seed, cfg, fix = section["seed"], section["large_batch"], section["lr_scaling"]
    data = dataset_from_config(seed, section["data"], section["model"])
    base = read_table(snakemake.input.runs)
    k = cfg["large_batch"] / cfg["small_batch"]
    lr = cfg["lr"] * math.sqrt(k)

    rows = []
    for replicate, sb_steps in base[base.regime == "small_batch"].set_index("seed").steps.items():
        model, result = fit_mlp(
            data, section["model"],
            init=make_generator(seed, "lecture", EXPERIMENT, "init", replicate),
            batches=make_generator(seed, "lecture", EXPERIMENT, "batches", SCALED, replicate),
            method="sgd", lr=lr, batch_size=cfg["large_batch"], max_epochs=10**9, max_steps=int(sb_steps),
        )  # fmt: skip
        theta = sh.get_flat_params(model)
        lanczos = make_generator(seed, "lecture", EXPERIMENT, "lanczos", SCALED, replicate)
        loss = train_loss_closure(model, data.x_train, data.y_train)
        lam = sh.lambda_max(loss, theta, iters=cfg["lanczos_iters"], generator=lanczos)
        metrics = solution_metrics(model, data)
        rows.append({"seed": replicate, "regime": SCALED, "batch_size": cfg["large_batch"], "lr": lr,
                     "steps": result.steps, "epochs": result.epochs, **metrics, "lambda_max": lam.value})  # fmt: skip
        log.info("seed %d %s: lr %.3g, %d updates (%d epochs), train loss %.3g, test error %.2f%%", replicate,
                 SCALED, lr, result.steps, result.epochs, metrics["train_loss"], metrics["test_error_pct"])  # fmt: skip
    table = pd.concat([base, pd.DataFrame(rows)], ignore_index=True)[list(base.columns)]

    err = table.pivot(index="seed", columns="regime", values="test_error_pct")
    share, low, high = bootstrap_gap_closed(
        torch.tensor(err.small_batch.to_numpy()), torch.tensor(err.large_batch.to_numpy()),
        torch.tensor(err[SCALED].to_numpy()), fix["n_boot"], make_generator(seed, "lecture", "lr_scaling", "bootstrap"),
    )  # fmt: skip
    gap, _, gap_low, _ = mean_ci(err.large_batch - err.small_batch)
    diff, _, diff_low, diff_high = mean_ci(err[SCALED] - err.large_batch)
    setting = (f"digits MLP, B {cfg['small_batch']} vs {cfg['large_batch']} (k = {k:.3g}), lr {cfg['lr']} vs "
               f"{lr:.3g}, {len(err)} seeds")  # fmt: skip
    gap_note = f"gap err_LB - err_SB = {gap:.3g} pp" + ("" if gap_low > 0 else " (not significant: CI includes 0)")
    claims = [
        Claim("lecture.lr_scaling.sqrt_k_closes_gap", "lecture", "lr_scaling",
              "Large batch with lr * sqrt(k) and the small batch's number of updates closes (most of) the gap",
              "share of the test-error gap closed, (err_LB - err_scaled) / (err_LB - err_SB); 95% bootstrap CI",
              share, low, high, f">= {fix['min_gap_closed']:g}",
              bool(gap_low > 0 and share >= fix["min_gap_closed"]), f"{setting}; {gap_note}"),
        Claim("lecture.lr_scaling.sqrt_k_beats_plain_lb", "lecture", "lr_scaling",
              "The adapted large-batch run has a lower test error than the plain large-batch run",
              "test error scaled LB - plain LB (percentage points)", diff, diff_low, diff_high,
              "< 0 (95% CI below 0)", bool(diff_high < 0), setting),
    ]  # fmt: skip
    claims_table = claims_frame(claims)
    log.info("claims:\n%s", claims_table.to_string())
    write_table(table, snakemake.output.table, section, seed, RULE)
    write_table(claims_table, snakemake.output.claims, section, seed, RULE)
