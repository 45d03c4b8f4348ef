"""Test error of SGD, SAM and USAM (samsde.optim around SGD with momentum) over seeds: a small CIFAR-table analogue.

1. rho sweep: per method with a perturbation and rho of the settings' grid, train on a validation split of the
   training set for sweep_seeds seeds; the chosen rho has the lowest mean validation error (ties: lowest
   validation loss).  The method without a perturbation (SGD) has rho = 0.
2. Every method, with its chosen rho, from the same init and the same batch order per seed (paired comparison),
   trained on the whole training set and evaluated on the test set.
Claims: per-seed paired difference of test error, method - SGD, with a 95% t-interval.
"""

from __future__ import annotations

import pandas as pd

from samsde import sharpness as sh
from samsde.algorithms import get
from samsde.claims import Claim
from samsde.experiments.lecture.common import baseline, logger
from samsde.lecture import MLP, Dataset, evaluate, fit_mlp, mean_ci, solution_metrics, split_validation
from samsde.seeding import make_generator

EXPERIMENT = "sam_vs_sgd"


def fit(data: Dataset, mlp: MLP, settings: dict, seed: int, method: str, rho: float, replicate: int, purpose: str):
    """One run; init and batch order depend on the seed and purpose only, so methods are paired."""
    return fit_mlp(
        data,
        mlp,
        init=make_generator(seed, "lecture", EXPERIMENT, purpose, "init", replicate),
        batches=make_generator(seed, "lecture", EXPERIMENT, purpose, "batches", replicate),
        method=method,
        rho=rho,
        lr=settings["lr"],
        momentum=settings["momentum"],
        weight_decay=settings["weight_decay"],
        batch_size=settings["batch_size"],
        max_epochs=settings["epochs"],
    )


def choose_rho(settings: dict, seed: int, data: Dataset, mlp: MLP, log) -> tuple[pd.DataFrame, dict[str, float]]:
    """The validation sweep (one row per method, rho and seed) and the chosen rho per method."""
    validation = split_validation(
        data, settings["validation_fraction"], make_generator(seed, "lecture", EXPERIMENT, "val")
    )
    sweep = []
    for method in settings["methods"]:
        for rho in settings["rho_grid"].get(method, []) if get(method).perturbs else []:
            for replicate in range(settings["sweep_seeds"]):
                model, _ = fit(validation, mlp, settings, seed, method, rho, replicate, "sweep")
                val_loss, val_acc = evaluate(model, validation.x_test, validation.y_test)
                sweep.append(
                    {
                        "method": method,
                        "rho": rho,
                        "seed": replicate,
                        "val_loss": val_loss,
                        "val_error_pct": 100 * (1 - val_acc),
                    }
                )
            errors = [r["val_error_pct"] for r in sweep[-settings["sweep_seeds"] :]]
            log.info("sweep %s rho=%g: validation error %s", method, rho, errors)
    sweep = pd.DataFrame(sweep, columns=["method", "rho", "seed", "val_loss", "val_error_pct"])
    means = sweep.groupby(["method", "rho"], as_index=False)[["val_error_pct", "val_loss"]].mean()
    chosen = {m: 0.0 for m in settings["methods"] if not get(m).perturbs}
    for method, group in means.groupby("method"):
        chosen[method] = float(group.sort_values(["val_error_pct", "val_loss"]).rho.iloc[0])
    missing = [m for m in settings["methods"] if m not in chosen]
    if missing:
        raise ValueError(f"lecture.sam_vs_sgd.rho_grid has no values for {missing}")
    log.info("chosen rho: %s", chosen)
    sweep["chosen"] = [chosen[m] == r for m, r in zip(sweep.method, sweep.rho, strict=True)]
    return sweep, chosen


def run(settings: dict, seed: int, data: Dataset, mlp: MLP, log=None) -> dict[str, pd.DataFrame]:
    """Tables ``sweep`` (validation), ``runs`` (one row per seed and method) and ``params`` (the solutions)."""
    log = logger(log)
    sweep, chosen = choose_rho(settings, seed, data, mlp, log)
    runs, params = [], []
    for replicate in range(settings["n_seeds"]):
        for method in settings["methods"]:
            model, result = fit(data, mlp, settings, seed, method, chosen[method], replicate, "test")
            metrics = solution_metrics(model, data)
            runs.append({"seed": replicate, "method": method, "rho": chosen[method], "steps": result.steps, **metrics})
            theta = sh.get_flat_params(model)
            params.append(
                pd.DataFrame(
                    {"seed": replicate, "method": method, "index": range(theta.numel()), "value": theta.numpy()}
                )
            )
            log.info(
                "seed %d %s (rho %g): train loss %.3g, test error %.2f%%",
                replicate,
                method,
                chosen[method],
                metrics["train_loss"],
                metrics["test_error_pct"],
            )
    return {"sweep": sweep, "runs": pd.DataFrame(runs), "params": pd.concat(params)}


def claims(tables: dict[str, pd.DataFrame], settings: dict) -> list[Claim]:
    """Each method with a perturbation has a lower test error than SGD: paired difference, 95% CI below 0."""
    runs = tables["runs"]
    err = runs.pivot(index="seed", columns="method", values="test_error_pct")
    rho = runs.groupby("method").rho.first()
    base = baseline(settings["methods"])
    setting = (
        f"digits MLP, base SGD lr {settings['lr']} momentum {settings['momentum']}, B {settings['batch_size']}, "
        f"{settings['epochs']} epochs, {settings['n_seeds']} seeds, rho by validation sweep"
    )
    out = []
    for method in [m for m in settings["methods"] if get(m).perturbs]:
        label, base_label = get(method).label, get(base).label
        mean, _, low, high = mean_ci(err[method] - err[base])
        verdict = (
            "significantly lower" if high < 0 else ("significantly higher" if low > 0 else "no significant difference")
        )
        out.append(
            Claim(
                claim_id=f"lecture.sam_vs_sgd.{method}_beats_{base}",
                source="lecture",
                figure="sam_vs_sgd",
                claim=f"{label} (rho = {rho[method]:g}) reaches a lower test error than {base_label}",
                quantity=f"test error {label} - {base_label} (percentage points)",
                value=mean,
                ci_low=low,
                ci_high=high,
                expected="< 0 (95% CI below 0)",
                passed=bool(high < 0),
                note=f"{setting}; {verdict}; {base_label} {err[base].mean():.2f}%, {label} {err[method].mean():.2f}%",
            )
        )
    return out
