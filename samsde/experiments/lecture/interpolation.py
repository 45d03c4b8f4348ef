"""Losses along the line through the small- and large-batch solutions (Keskar et al.'s 1-D interpolation plot).

Per seed, theta(a) = (1 - a) theta_SB + a theta_LB on a grid of a; at each point the training and test loss and
accuracy.  The line's curvature at each end, v^T H v / ||v||^2 with v = theta_LB - theta_SB (training loss, one
Hessian-vector product), says which end sits in the narrower valley along the line.
"""

from __future__ import annotations

import pandas as pd
import torch

from samsde import sharpness as sh
from samsde.claims import Claim
from samsde.experiments.lecture.common import logger
from samsde.lecture import MLP, Dataset, evaluate, line_curvature, mean_ci, train_loss_closure
from samsde.seeding import make_generator


def run(settings: dict, seed: int, data: Dataset, mlp: MLP, params: pd.DataFrame, log=None) -> dict[str, pd.DataFrame]:
    """Tables ``table`` (losses and accuracies per seed and a) and ``curvature`` (per seed, at both ends).

    ``params`` holds the solutions of :mod:`.sharpness_sb_lb` (seed, regime, index, value).
    """
    log = logger(log)
    # an untrained model of the right shape: only its layout is used, every point is set explicitly
    model = mlp.build(data, make_generator(seed, "lecture", "interpolation", "layout"))
    dtype = next(model.parameters()).dtype
    params = params.sort_values(["seed", "regime", "index"])
    alphas = torch.linspace(*settings["alpha_range"], settings["n_alphas"], dtype=dtype)
    # the grid must contain both solutions exactly, so the curves pass through them
    alphas = torch.unique(torch.cat([alphas, torch.tensor([0.0, 1.0], dtype=dtype)]))

    rows, curvature = [], []
    for replicate, per_seed in params.groupby("seed"):
        theta = {r: torch.tensor(g.value.to_numpy(), dtype=dtype) for r, g in per_seed.groupby("regime")}
        sb, lb = theta["small_batch"], theta["large_batch"]
        for a in alphas.tolist():
            sh.set_flat_params(model, (1 - a) * sb + a * lb)
            train_loss, train_acc = evaluate(model, data.x_train, data.y_train)
            test_loss, test_acc = evaluate(model, data.x_test, data.y_test)
            rows.append(
                {
                    "seed": replicate,
                    "alpha": a,
                    "train_loss": train_loss,
                    "train_accuracy": train_acc,
                    "test_loss": test_loss,
                    "test_accuracy": test_acc,
                }
            )
        loss = train_loss_closure(model, data.x_train, data.y_train)
        ends = {r: line_curvature(loss, theta[r], lb - sb) for r in ("small_batch", "large_batch")}
        curvature.append({"seed": replicate, "distance": (lb - sb).norm().item(), **ends})
        log.info(
            "seed %d: |theta_LB - theta_SB| = %.3f, curvature along the line SB %.4g, LB %.4g",
            replicate,
            curvature[-1]["distance"],
            ends["small_batch"],
            ends["large_batch"],
        )
    return {"table": pd.DataFrame(rows), "curvature": pd.DataFrame(curvature)}


def claims(tables: dict[str, pd.DataFrame], settings: dict) -> list[Claim]:
    """The LB end is sharper along the line: paired curvature difference LB - SB, 95% CI above 0."""
    curvature = tables["curvature"]
    mean, _, low, high = mean_ci(curvature.large_batch - curvature.small_batch)
    return [
        Claim(
            claim_id="lecture.interpolation.lb_end_sharper",
            source="lecture",
            figure="interpolation",
            claim="lecture (Keskar et al.'s interpolation plot): the large-batch minimum is sharper; along the line "
            "through the two solutions the curvature at the large-batch end is larger than at the small-batch end",
            quantity="v^T H v / |v|^2 at theta_LB minus at theta_SB, v = theta_LB - theta_SB (training loss)",
            value=mean,
            ci_low=low,
            ci_high=high,
            expected="> 0 (95% CI above 0)",
            passed=bool(low > 0),
            note=f"{len(curvature)} seeds, paired; solutions of sharpness_sb_lb",
        )
    ]
