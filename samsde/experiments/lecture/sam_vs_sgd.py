"""Test error of SGD, SAM and USAM (samsde.optim around SGD with momentum) over seeds: a small CIFAR-table analogue.

1. rho sweep: per method with a perturbation and rho of the settings' grid, train on a validation split of the
   training set for sweep_seeds seeds; the chosen rho has the lowest mean validation error (ties: lowest
   validation loss).  The method without a perturbation (SGD) has rho = 0.
2. Every method, with its chosen rho, from the same init and the same batch order per seed (paired comparison),
   trained on the whole training set and evaluated on the test set.
3. The same, steps 1 and 2, with a share of the training labels replaced at random (``label_noise``; Foret et
   al. 2021 report robustness to noisy labels as SAM's strongest case): rho is chosen on a validation split of the
   noisy training set (the labels a user has), the test set keeps its true labels.
All runs of a step (methods x seeds, or methods x rhos x seeds) train as one batched model
(:mod:`samsde.lecture.batched`), each equal to its one-seed run to rounding.
Claims: per-seed paired difference of test error, method - SGD, with a 95% t-interval, per label-noise share.
"""

from __future__ import annotations

import pandas as pd
import torch

from samsde import sharpness as sh
from samsde.algorithms import get
from samsde.algorithms.sam import SAM
from samsde.claims import Claim
from samsde.experiments.lecture.common import baseline, logger
from samsde.lecture import MLP, Dataset, mean_ci, solution_metrics, split_validation
from samsde.lecture.batched import SeedStack, train_seeds
from samsde.seeding import make_generator

EXPERIMENT = "sam_vs_sgd"


def train_members(data: Dataset, mlp: MLP, settings: dict, seed: int, members: list[tuple[str, float, int]], purpose):
    """Every run of ``members`` (method, rho, replicate) as one batched model (samsde.lecture.batched); a run's init
    and batch order depend on the seed, purpose and replicate only, so methods (and label-noise levels) are paired.
    Each run equals the one-seed ``fit_mlp`` run with the same streams to rounding."""
    inits = [make_generator(seed, "lecture", EXPERIMENT, purpose, "init", r) for _, _, r in members]
    stack = SeedStack.build(mlp, data, inits)
    results = train_seeds(
        stack,
        data,
        method=[m for m, _, _ in members],
        rho=[r for _, r, _ in members],
        generators=[make_generator(seed, "lecture", EXPERIMENT, purpose, "batches", r) for _, _, r in members],
        lr=settings["lr"],
        momentum=settings["momentum"],
        weight_decay=settings["weight_decay"],
        batch_size=settings["batch_size"],
        max_epochs=settings["epochs"],
    )
    return stack, results


def with_label_noise(data: Dataset, share: float, generator: torch.Generator) -> Dataset:
    """``data`` with round(share * n) training labels, chosen at random, replaced by a different class drawn
    uniformly (so exactly that share is wrong); the test set keeps its true labels."""
    n, k = data.y_train.shape[0], data.n_classes
    flipped = torch.randperm(n, generator=generator)[: round(share * n)]
    y = data.y_train.clone()
    y[flipped] = (y[flipped] + torch.randint(1, k, (flipped.numel(),), generator=generator)) % k
    return data._replace(y_train=y)


def choose_rho(settings: dict, seed: int, data: Dataset, mlp: MLP, log) -> tuple[pd.DataFrame, dict[str, float]]:
    """The validation sweep (one row per method, rho and seed) and the chosen rho per method."""
    validation = split_validation(
        data, settings["validation_fraction"], make_generator(seed, "lecture", EXPERIMENT, "val")
    )
    members = [
        (method, rho, replicate)
        for method in settings["methods"]
        for rho in (settings["rho_grid"].get(method, []) if get(method).perturbs else [])
        for replicate in range(settings["sweep_seeds"])
    ]
    sweep = []
    if members:
        stack, _ = train_members(validation, mlp, settings, seed, members, "sweep")
        val_loss, val_acc = stack.evaluate(validation.x_test, validation.y_test)
        for i, (method, rho, replicate) in enumerate(members):
            sweep.append({"method": method, "rho": rho, "seed": replicate, "val_loss": val_loss[i].item(),
                          "val_error_pct": 100 * (1 - val_acc[i].item())})  # fmt: skip
    sweep = pd.DataFrame(sweep, columns=["method", "rho", "seed", "val_loss", "val_error_pct"])
    means = sweep.groupby(["method", "rho"], as_index=False)[["val_error_pct", "val_loss"]].mean()
    log.info("sweep (validation error, mean over seeds):\n%s", means.to_string())
    chosen = {m: 0.0 for m in settings["methods"] if not get(m).perturbs}
    for method, group in means.groupby("method"):
        chosen[method] = float(group.sort_values(["val_error_pct", "val_loss"]).rho.iloc[0])
    missing = [m for m in settings["methods"] if m not in chosen]
    if missing:
        raise ValueError(f"lecture.sam_vs_sgd.rho_grid has no values for {missing}")
    log.info("chosen rho: %s", chosen)
    sweep["chosen"] = [chosen[m] == r for m, r in zip(sweep.method, sweep.rho, strict=True)]
    return sweep, chosen


def run(
    settings: dict, seed: int, data: Dataset, mlp: MLP, log=None, label_noise: float = 0.0
) -> dict[str, pd.DataFrame]:
    """Tables ``sweep`` (validation), ``runs`` (one row per seed and method) and ``params`` (the solutions), on
    the true labels (``label_noise = 0``) or with that share of the training labels replaced at random: the rho
    sweep on a validation split of the (noisy) training set, then every method and seed as one batched model.
    The measurements at a solution (train loss, test error, ...) use the true labels."""
    log = logger(log)
    share = label_noise
    if share:
        noisy = with_label_noise(data, share, make_generator(seed, "lecture", EXPERIMENT, "label_noise", share))
    else:
        noisy = data
    sweep, chosen = choose_rho(settings, seed, noisy, mlp, log)
    members = [(m, chosen[m], r) for r in range(settings["n_seeds"]) for m in settings["methods"]]
    stack, results = train_members(noisy, mlp, settings, seed, members, "test")
    runs, params = [], []
    for (method, rho, replicate), model, result in zip(members, stack.models(mlp, noisy), results, strict=True):
        metrics = solution_metrics(model, data)
        runs.append({"label_noise": share, "seed": replicate, "method": method, "rho": rho, "steps": result.steps,
                     **metrics})  # fmt: skip
        theta = sh.get_flat_params(model)
        params.append(pd.DataFrame({"seed": replicate, "method": method, "index": range(theta.numel()),
                                    "value": theta.numpy()}))  # fmt: skip
    runs = pd.DataFrame(runs)
    log.info("label noise %g: mean test error %%\n%s", share, runs.groupby("method").test_error_pct.mean().to_string())
    return {"sweep": sweep.assign(label_noise=share), "runs": runs, "params": pd.concat(params)}


def statement(method: str, share: float) -> tuple[str, str, str]:
    """(source, the lecture statement the row tests as a claim prefix, why a row is the project's own): the lecture
    states SAM's lower test error (Foret et al.'s CIFAR table, SAM against SGD on the true labels) and nothing else
    that these rows test."""
    if method == SAM.name and not share:
        return "lecture", "lecture (Foret et al.'s CIFAR table): SAM generalizes better than SGD; ", ""
    if share:
        why = "robustness to label noise is reported by Foret et al. 2021, not stated by the lecture"
    else:
        why = "the lecture's table compares SAM with SGD; USAM is not in it"
    return "own", "", f"; the project's own check: {why}"


def claims(tables: dict[str, pd.DataFrame], settings: dict) -> list[Claim]:
    """Each method with a perturbation has a lower test error than SGD: paired difference, 95% CI below 0; on the
    true labels (ids ``lecture.sam_vs_sgd.<method>_beats_sgd``) and per label-noise share (ids
    ``lecture.sam_vs_sgd.label_noise_<percent>.<method>_beats_sgd``)."""
    runs = tables["runs"]
    base = baseline(settings["methods"])
    out = []
    for share, group in runs.groupby("label_noise", sort=True):
        err = group.pivot(index="seed", columns="method", values="test_error_pct")
        rho = group.groupby("method").rho.first()
        noise = f", {100 * share:g}% of training labels replaced at random" if share else ""
        setting = (
            f"digits MLP, base SGD lr {settings['lr']} momentum {settings['momentum']}, B {settings['batch_size']}, "
            f"{settings['epochs']} epochs, {settings['n_seeds']} seeds, rho by validation sweep{noise}"
        )
        prefix = f"lecture.sam_vs_sgd.label_noise_{round(100 * share)}." if share else "lecture.sam_vs_sgd."
        for method in [m for m in settings["methods"] if get(m).perturbs]:
            label, base_label = get(method).label, get(base).label
            mean, _, low, high = mean_ci(err[method] - err[base])
            verdict = "significantly lower" if high < 0 else "significantly higher" if low > 0 else "not significant"
            source, stated, own = statement(method, share)
            out.append(
                Claim(
                    claim_id=f"{prefix}{method}_beats_{base}",
                    source=source,
                    figure="sam_vs_sgd",
                    claim=f"{stated}{label} (rho = {rho[method]:g}) reaches a lower test error than "
                    f"{base_label}{noise}",
                    quantity=f"test error {label} - {base_label} (percentage points)",
                    value=mean,
                    ci_low=low,
                    ci_high=high,
                    expected="< 0 (95% CI below 0)",
                    passed=bool(high < 0),
                    note=f"{setting}; {verdict}; {base_label} {err[base].mean():.2f}%, "
                    f"{label} {err[method].mean():.2f}%{own}",
                )
            )
    return out
