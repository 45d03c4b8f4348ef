"""Small-batch vs large-batch SGD solutions (Keskar et al.'s protocol), their sharpness and generalization.

Per seed, both regimes start from the same init and run plain SGD with the same lr for the same number of epochs
(so the large batch takes k = B_large / B_small times fewer updates).  At each solution, on the training loss:
    Keskar sharpness  100 * (max_{||e|| <= r} L(theta + e) - L(theta)) / (1 + L(theta)),  r = eps0 || |theta| + 1 ||
    lambda_max        largest Hessian eigenvalue (Lanczos)
plus training and test loss and accuracy.  Claims use per-seed paired differences LB - SB (95% t-intervals).
"""

from __future__ import annotations

import pandas as pd

from samsde import sharpness as sh
from samsde.algorithms.sgd import SGD
from samsde.claims import Claim
from samsde.experiments.lecture.common import logger
from samsde.lecture import MLP, Dataset, keskar_radius, mean_ci, solution_metrics, train_loss_closure
from samsde.lecture.batched import SeedStack, train_seeds
from samsde.seeding import make_generator

#: stream key shared with lr_scaling, which retrains the large batch from the same inits
EXPERIMENT = "large_batch"
REGIMES = ("small_batch", "large_batch")


def stream(seed: int, *keys):
    return make_generator(seed, "lecture", EXPERIMENT, *keys)


def run(settings: dict, seed: int, data: Dataset, mlp: MLP, log=None) -> dict[str, pd.DataFrame]:
    """Tables ``runs`` (one row per seed and regime), ``keskar`` (per eps0) and ``params`` (the solutions)."""
    log = logger(log)
    batches = {regime: settings[regime] for regime in REGIMES}
    if not settings["small_batch"] < settings["large_batch"] <= data.x_train.shape[0]:
        raise ValueError(f"need small_batch < large_batch <= {data.x_train.shape[0]} training samples, got {batches}")
    runs, keskar, params = [], [], []
    # every seed of a regime trains as one batched model (samsde.lecture.batched), each equal to its one-seed run
    trained = {}
    for regime, batch_size in batches.items():
        seeds = range(settings["n_seeds"])
        stack = SeedStack.build(mlp, data, [stream(seed, "init", r) for r in seeds])
        results = train_seeds(stack, data, method=SGD.name, lr=settings["lr"], batch_size=batch_size,
                              generators=[stream(seed, "batches", regime, r) for r in seeds],
                              max_epochs=settings["epochs"])  # fmt: skip
        trained[regime] = list(zip(stack.models(mlp, data), results, strict=True))
    for replicate in range(settings["n_seeds"]):
        for regime, batch_size in batches.items():
            model, result = trained[regime][replicate]
            theta = sh.get_flat_params(model)
            loss = train_loss_closure(model, data.x_train, data.y_train)
            lanczos = stream(seed, "lanczos", regime, replicate)
            lam = sh.lambda_max(loss, theta, iters=settings["lanczos_iters"], generator=lanczos)
            metrics = solution_metrics(model, data)
            runs.append(
                {
                    "seed": replicate,
                    "regime": regime,
                    "batch_size": batch_size,
                    "lr": settings["lr"],
                    "steps": result.steps,
                    "epochs": result.epochs,
                    **metrics,
                    "lambda_max": lam.value,
                }
            )
            for eps0 in settings["keskar_eps0"]:
                radius = keskar_radius(theta, eps0)
                value = sh.keskar_sharpness(loss, theta, eps0=radius, steps=settings["keskar_steps"], percent=True)
                keskar.append(
                    {"seed": replicate, "regime": regime, "eps0": eps0, "radius": radius, "keskar_pct": value}
                )
            params.append(
                pd.DataFrame(
                    {"seed": replicate, "regime": regime, "index": range(theta.numel()), "value": theta.numpy()}
                )
            )
            log.info(
                "seed %d %s: %d updates, train loss %.3g, test error %.2f%%, lambda_max %.4g, keskar %.4g%%",
                replicate,
                regime,
                result.steps,
                metrics["train_loss"],
                metrics["test_error_pct"],
                lam.value,
                keskar[-len(settings["keskar_eps0"])]["keskar_pct"],
            )
    return {"runs": pd.DataFrame(runs), "keskar": pd.DataFrame(keskar), "params": pd.concat(params)}


def _paired(table: pd.DataFrame, column: str) -> tuple[float, float, float]:
    """Mean and 95% t-interval of the per-seed difference LB - SB of ``column``."""
    wide = table.pivot(index="seed", columns="regime", values=column)
    mean, _, low, high = mean_ci(wide.large_batch - wide.small_batch)
    return mean, low, high


def claims(tables: dict[str, pd.DataFrame], settings: dict) -> list[Claim]:
    """LB is sharper (Keskar at the first eps0, lambda_max) and generalizes worse than SB: 95% CI above 0."""
    runs, keskar = tables["runs"], tables["keskar"]
    eps0 = settings["keskar_eps0"][0]
    setting = (
        f"digits MLP, SGD lr {settings['lr']}, B {settings['small_batch']} vs {settings['large_batch']}, "
        f"{settings['epochs']} epochs, {settings['n_seeds']} seeds; paired LB - SB"
    )
    checks = [
        (
            "lb_sharper_keskar",
            keskar[keskar.eps0 == eps0],
            "keskar_pct",
            "lecture (Keskar et al.): large-batch SGD converges to sharper minima; the large-batch solution has a "
            "larger Keskar sharpness than the small-batch one",
            f"Keskar sharpness LB - SB (%, eps0 = {eps0:g}, L2-ball version)",
        ),
        (
            "lb_sharper_lambda_max",
            runs,
            "lambda_max",
            "lecture (Keskar et al.): large-batch SGD converges to sharper minima; the large-batch solution has a "
            "larger lambda_max than the small-batch one",
            "lambda_max(H) LB - SB (training loss)",
        ),
        (
            "lb_generalizes_worse",
            runs,
            "test_error_pct",
            "lecture (Keskar et al.): large-batch SGD generalizes worse; the large-batch solution has a higher test "
            "error than the small-batch one",
            "test error LB - SB (percentage points)",
        ),
    ]
    out = []
    for name, table, column, claim, quantity in checks:
        mean, low, high = _paired(table, column)
        out.append(
            Claim(
                claim_id=f"lecture.sb_lb.{name}",
                source="lecture",
                figure="sharpness_sb_lb",
                claim=claim,
                quantity=quantity,
                value=mean,
                ci_low=low,
                ci_high=high,
                expected="> 0 (95% CI above 0)",
                passed=bool(low > 0),
                note=setting,
            )
        )
    return out
