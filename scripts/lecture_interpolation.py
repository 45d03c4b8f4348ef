"""Losses along the line through the small- and large-batch solutions (Keskar et al.'s 1-D interpolation plot).

Per seed, theta(a) = (1 - a) theta_SB + a theta_LB on a grid of a; at each point the training and test loss and
accuracy.  The line's curvature at each end, v^T H v / ||v||^2 with v = theta_LB - theta_SB (training loss, one
Hessian-vector product), says which end sits in the narrower valley along the line.
"""

import pandas as pd
import torch

from samsde import sharpness as sh
from samsde.lecture import dataset_from_config, evaluate, line_curvature, mean_ci, mlp_from_config, train_loss_closure
from samsde.seeding import make_generator
from samsde_workflow.claims import Claim, claims_frame
from samsde_workflow.io import read_table, write_table
from samsde_workflow.logs import rule_logging

RULE = "lecture_interpolation"

with rule_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    section = snakemake.params.section
    seed, cfg = section["seed"], section["interpolation"]
    data = dataset_from_config(seed, section["data"], section["model"])
    # an untrained model of the right shape: only its layout is used, every point is set explicitly
    model = mlp_from_config(section["model"], data, make_generator(seed, "lecture", "interpolation", "layout"))
    dtype = next(model.parameters()).dtype
    params = read_table(snakemake.input.params).sort_values(["seed", "regime", "index"])
    alphas = torch.linspace(*cfg["alpha_range"], cfg["n_alphas"], dtype=dtype)
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
            rows.append({"seed": replicate, "alpha": a, "train_loss": train_loss, "train_accuracy": train_acc,
                         "test_loss": test_loss, "test_accuracy": test_acc})  # fmt: skip
        loss = train_loss_closure(model, data.x_train, data.y_train)
        ends = {r: line_curvature(loss, theta[r], lb - sb) for r in ("small_batch", "large_batch")}
        curvature.append({"seed": replicate, "distance": (lb - sb).norm().item(), **ends})
        log.info("seed %d: |theta_LB - theta_SB| = %.3f, curvature along the line SB %.4g, LB %.4g",
                 replicate, curvature[-1]["distance"], ends["small_batch"], ends["large_batch"])  # fmt: skip
    rows, curvature = pd.DataFrame(rows), pd.DataFrame(curvature)

    mean, _, low, high = mean_ci(curvature.large_batch - curvature.small_batch)
    claims = [
        Claim("lecture.interpolation.lb_end_sharper", "lecture", "interpolation",
              "Along the line through the two solutions, the large-batch end is sharper than the small-batch end",
              "v^T H v / |v|^2 at theta_LB minus at theta_SB, v = theta_LB - theta_SB (training loss)",
              mean, low, high, "> 0 (95% CI above 0)", bool(low > 0),
              f"{len(curvature)} seeds, paired; solutions of sharpness_sb_lb"),
    ]  # fmt: skip
    table = claims_frame(claims)
    log.info("claims:\n%s", table.to_string())
    write_table(rows, snakemake.output.table, section, seed, RULE)
    write_table(curvature, snakemake.output.curvature, section, seed, RULE)
    write_table(table, snakemake.output.claims, section, seed, RULE)
