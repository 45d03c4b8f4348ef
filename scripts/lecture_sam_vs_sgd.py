"""Test error of SGD, SAM and USAM (samsde.optim around SGD with momentum) over seeds: a small CIFAR-table analogue.

1. rho sweep: per method and rho of the config's grid, train on a validation split of the training set for
   sweep_seeds seeds; the chosen rho has the lowest mean validation error (ties: lowest validation loss).
2. Every method, with its chosen rho, from the same init and the same batch order per seed (paired comparison),
   trained on the whole training set and evaluated on the test set.
Claims: per-seed paired difference of test error, method - SGD, with a 95% t-interval.
"""

import pandas as pd
import torch

from samsde import make_generator
from samsde import sharpness as sh
from samsde.lecture import dataset_from_config, evaluate, fit_mlp, mean_ci, solution_metrics, split_validation
from samsde_workflow.claims import Claim, claims_frame
from samsde_workflow.io import write_table
from samsde_workflow.logs import rule_logging

EXPERIMENT = "sam_vs_sgd"
RULE = "lecture_sam_vs_sgd"


def fit(data, section, cfg, method, rho, replicate, purpose):
    """One run; init and batch order depend on the seed and purpose only, so methods are paired."""
    seed = section["seed"]
    return fit_mlp(
        data, section["model"],
        init=make_generator(seed, "lecture", EXPERIMENT, purpose, "init", replicate),
        batches=make_generator(seed, "lecture", EXPERIMENT, purpose, "batches", replicate),
        method=method, rho=rho, lr=cfg["lr"], momentum=cfg["momentum"], weight_decay=cfg["weight_decay"],
        batch_size=cfg["batch_size"], max_epochs=cfg["epochs"],
    )  # fmt: skip


with rule_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    section = snakemake.params.section
    seed, cfg = section["seed"], section["sam_vs_sgd"]
    data = dataset_from_config(seed, section["data"], section["model"])
    validation = split_validation(data, cfg["validation_fraction"], make_generator(seed, "lecture", EXPERIMENT, "val"))

    sweep = []
    for method in cfg["methods"]:
        for rho in cfg["rho_grid"].get(method, []) if method != "sgd" else []:
            for replicate in range(cfg["sweep_seeds"]):
                model, _ = fit(validation, section, cfg, method, rho, replicate, "sweep")
                val_loss, val_acc = evaluate(model, validation.x_test, validation.y_test)
                sweep.append({"method": method, "rho": rho, "seed": replicate, "val_loss": val_loss,
                              "val_error_pct": 100 * (1 - val_acc)})  # fmt: skip
            errors = [r["val_error_pct"] for r in sweep[-cfg["sweep_seeds"] :]]
            log.info("sweep %s rho=%g: validation error %s", method, rho, errors)
    sweep = pd.DataFrame(sweep, columns=["method", "rho", "seed", "val_loss", "val_error_pct"])
    means = sweep.groupby(["method", "rho"], as_index=False)[["val_error_pct", "val_loss"]].mean()
    chosen = {"sgd": 0.0}
    for method, group in means.groupby("method"):
        chosen[method] = float(group.sort_values(["val_error_pct", "val_loss"]).rho.iloc[0])
    missing = [m for m in cfg["methods"] if m not in chosen]
    if missing:
        raise ValueError(f"lecture.sam_vs_sgd.rho_grid has no values for {missing}")
    log.info("chosen rho: %s", chosen)
    sweep["chosen"] = [chosen[m] == r for m, r in zip(sweep.method, sweep.rho, strict=True)]

    runs, params = [], []
    for replicate in range(cfg["n_seeds"]):
        for method in cfg["methods"]:
            model, result = fit(data, section, cfg, method, chosen[method], replicate, "test")
            metrics = solution_metrics(model, data)
            runs.append({"seed": replicate, "method": method, "rho": chosen[method], "steps": result.steps, **metrics})
            theta = sh.get_flat_params(model)
            params.append(pd.DataFrame({"seed": replicate, "method": method, "index": range(theta.numel()),
                                        "value": theta.numpy()}))  # fmt: skip
            log.info("seed %d %s (rho %g): train loss %.3g, test error %.2f%%", replicate, method, chosen[method],
                     metrics["train_loss"], metrics["test_error_pct"])  # fmt: skip
    runs = pd.DataFrame(runs)

    err = runs.pivot(index="seed", columns="method", values="test_error_pct")
    setting = (f"digits MLP, base SGD lr {cfg['lr']} momentum {cfg['momentum']}, B {cfg['batch_size']}, "
               f"{cfg['epochs']} epochs, {cfg['n_seeds']} seeds, rho by validation sweep")  # fmt: skip
    claims = []
    for method in [m for m in cfg["methods"] if m != "sgd"]:
        mean, _, low, high = mean_ci(err[method] - err.sgd)
        verdict = (
            "significantly lower" if high < 0 else ("significantly higher" if low > 0 else "no significant difference")
        )
        claims.append(Claim(
            f"lecture.sam_vs_sgd.{method}_beats_sgd", "lecture", "sam_vs_sgd",
            f"{method.upper()} (rho = {chosen[method]:g}) reaches a lower test error than SGD",
            f"test error {method.upper()} - SGD (percentage points)", mean, low, high, "< 0 (95% CI below 0)",
            bool(high < 0), f"{setting}; {verdict}; SGD {err.sgd.mean():.2f}%, {method.upper()} "
            f"{err[method].mean():.2f}%",
        ))  # fmt: skip
    table = claims_frame(claims)
    log.info("claims:\n%s", table.to_string())
    write_table(sweep, snakemake.output.sweep, section, seed, RULE)
    write_table(runs, snakemake.output.runs, section, seed, RULE)
    write_table(pd.concat(params), snakemake.output.params, section, seed, RULE)
    write_table(table, snakemake.output.claims, section, seed, RULE)
