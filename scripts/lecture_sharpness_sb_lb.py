"""Small-batch vs large-batch SGD solutions (Keskar et al.'s protocol), their sharpness and generalization.

Per seed, both regimes start from the same init and run plain SGD with the same lr for the same number of epochs
(so the large batch takes k = B_large / B_small times fewer updates).  At each solution, on the training loss:
    Keskar sharpness  100 * (max_{||e|| <= r} L(theta + e) - L(theta)) / (1 + L(theta)),  r = eps0 || |theta| + 1 ||
    lambda_max        largest Hessian eigenvalue (Lanczos)
plus training and test loss and accuracy.  Claims use per-seed paired differences LB - SB (95% t-intervals).
"""

import pandas as pd
import torch

from samsde import make_generator
from samsde import sharpness as sh
from samsde.lecture import dataset_from_config, fit_mlp, keskar_radius, mean_ci, solution_metrics, train_loss_closure
from samsde_workflow.claims import Claim, claims_frame
from samsde_workflow.io import write_table
from samsde_workflow.logs import rule_logging

EXPERIMENT = "large_batch"  # stream key shared with lecture_lr_scaling, which retrains from the same inits
RULE = "lecture_sharpness_sb_lb"


def paired_claim(runs, column, claim_id, claim, quantity, note):
    wide = runs.pivot(index="seed", columns="regime", values=column)
    mean, _, low, high = mean_ci(wide.large_batch - wide.small_batch)
    return Claim(claim_id, "lecture", "sharpness_sb_lb", claim, quantity, mean, low, high, "> 0 (95% CI above 0)",
                 bool(low > 0), note)  # fmt: skip


with rule_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    section = snakemake.params.section
    seed, cfg = section["seed"], section["large_batch"]
    data = dataset_from_config(seed, section["data"], section["model"])
    batches = {"small_batch": cfg["small_batch"], "large_batch": cfg["large_batch"]}
    if not cfg["small_batch"] < cfg["large_batch"] <= data.x_train.shape[0]:
        raise ValueError(f"need small_batch < large_batch <= {data.x_train.shape[0]} training samples, got {batches}")

    runs, keskar, params = [], [], []
    for replicate in range(cfg["n_seeds"]):
        for regime, batch_size in batches.items():
            model, result = fit_mlp(
                data, section["model"],
                init=make_generator(seed, "lecture", EXPERIMENT, "init", replicate),
                batches=make_generator(seed, "lecture", EXPERIMENT, "batches", regime, replicate),
                method="sgd", lr=cfg["lr"], batch_size=batch_size, max_epochs=cfg["epochs"],
            )  # fmt: skip
            theta = sh.get_flat_params(model)
            loss = train_loss_closure(model, data.x_train, data.y_train)
            lanczos = make_generator(seed, "lecture", EXPERIMENT, "lanczos", regime, replicate)
            lam = sh.lambda_max(loss, theta, iters=cfg["lanczos_iters"], generator=lanczos)
            metrics = solution_metrics(model, data)
            runs.append({"seed": replicate, "regime": regime, "batch_size": batch_size, "lr": cfg["lr"],
                         "steps": result.steps, "epochs": result.epochs, **metrics,
                         "lambda_max": lam.value})  # fmt: skip
            for eps0 in cfg["keskar_eps0"]:
                radius = keskar_radius(theta, eps0)
                value = sh.keskar_sharpness(loss, theta, eps0=radius, steps=cfg["keskar_steps"], percent=True)
                keskar.append({"seed": replicate, "regime": regime, "eps0": eps0, "radius": radius,
                               "keskar_pct": value})  # fmt: skip
            params.append(pd.DataFrame({"seed": replicate, "regime": regime, "index": range(theta.numel()),
                                        "value": theta.numpy()}))  # fmt: skip
            log.info("seed %d %s: %d updates, train loss %.3g, test error %.2f%%, lambda_max %.4g, keskar %.4g%%",
                     replicate, regime, result.steps, metrics["train_loss"], metrics["test_error_pct"], lam.value,
                     keskar[-len(cfg["keskar_eps0"])]["keskar_pct"])  # fmt: skip
    runs, keskar = pd.DataFrame(runs), pd.DataFrame(keskar)

    eps0 = cfg["keskar_eps0"][0]
    setting = (f"digits MLP, SGD lr {cfg['lr']}, B {cfg['small_batch']} vs {cfg['large_batch']}, "
               f"{cfg['epochs']} epochs, {cfg['n_seeds']} seeds; paired LB - SB")  # fmt: skip
    claims = [
        paired_claim(keskar[keskar.eps0 == eps0], "keskar_pct", "lecture.sb_lb.lb_sharper_keskar",
                     "The large-batch SGD solution is sharper than the small-batch one (Keskar sharpness)",
                     f"Keskar sharpness LB - SB (%, eps0 = {eps0:g}, L2-ball version)", setting),
        paired_claim(runs, "lambda_max", "lecture.sb_lb.lb_sharper_lambda_max",
                     "The large-batch SGD solution is sharper than the small-batch one (lambda_max)",
                     "lambda_max(H) LB - SB (training loss)", setting),
        paired_claim(runs, "test_error_pct", "lecture.sb_lb.lb_generalizes_worse",
                     "The large-batch SGD solution generalizes worse than the small-batch one",
                     "test error LB - SB (percentage points)", setting),
    ]  # fmt: skip
    table = claims_frame(claims)
    log.info("claims:\n%s", table.to_string())
    write_table(runs, snakemake.output.runs, section, seed, RULE)
    write_table(keskar, snakemake.output.keskar, section, seed, RULE)
    write_table(pd.concat(params), snakemake.output.params, section, seed, RULE)
    write_table(table, snakemake.output.claims, section, seed, RULE)
