"""Hessian spectrum and three sharpness notions at the SGD, SAM and USAM solutions of :mod:`.sam_vs_sgd`.

On the training loss L at each solution theta (H its Hessian, d parameters; all matrix-free, samsde.sharpness):
    lambda_max            Lanczos                                      (~ worst direction)
    top-k spectrum        Lanczos, k largest Ritz values
    spectral density      stochastic Lanczos quadrature, Gaussian-smoothed, on a grid shared by all solutions
    trace                 Hutchinson, Rademacher probes, with its Monte Carlo standard error  (~ average direction)
    worst-direction       max_{|e| <= rho} L(theta + e) - L(theta)        (projected ascent)
    ascent-direction      L(theta + rho g / |g|) - L(theta)               (SAM's own perturbation)
    average-direction     E_{e ~ N(0, rho_avg^2 I / d)} L(theta + e) - L(theta) ~ rho_avg^2 tr(H) / (2 d)
Claims: per-seed paired differences method - SGD of lambda_max and of the trace (95% t-intervals).  The solutions
are of *stochastic* (mini-batch) SAM and USAM, for which the lecture (after Wen et al.) states a smaller trace for
SAM; its lambda_max statement is for *full-batch* SAM (:mod:`.full_batch_sharpness`), so the lambda_max rows and
USAM's trace row are the project's own checks (source "own").
"""

from __future__ import annotations

import pandas as pd
import torch

from samsde import sharpness as sh
from samsde.algorithms import get
from samsde.algorithms.sam import SAM
from samsde.claims import Claim
from samsde.experiments.lecture.common import baseline, logger
from samsde.lecture import MLP, Dataset, mean_ci, train_loss_closure
from samsde.seeding import make_generator


def stream(seed: int, *keys):
    return make_generator(seed, "lecture", "hessian_spectrum", *keys)


def measure(settings: dict, seed: int, loss, theta, method: str, replicate: int) -> tuple[dict, list[dict]]:
    """The ``sharpness`` row and the ``topk`` rows of one solution."""
    keys = (method, replicate)
    lam = sh.lambda_max(loss, theta, iters=settings["lanczos_iters"], generator=stream(seed, "lanczos", *keys))
    top = sh.top_k_spectrum(
        loss, theta, settings["top_k"], iters=settings["topk_iters"], generator=stream(seed, "topk", *keys)
    )
    trace = sh.hutchinson_trace(loss, theta, settings["hutchinson_samples"], generator=stream(seed, "trace", *keys))
    rho, rho_avg = settings["sharpness_rho"], settings["average_rho"]
    average = sh.average_direction_sharpness(
        loss, theta, rho_avg, n_samples=settings["average_samples"], generator=stream(seed, "average", *keys)
    )
    worst = sh.worst_direction_sharpness(
        loss, theta, rho, steps=settings["worst_steps"], generator=stream(seed, "worst", *keys)
    )
    row = {
        "seed": replicate,
        "method": method,
        "train_loss": loss(theta).item(),
        "lambda_max": lam.value,
        "trace": trace.mean,
        "trace_se": trace.stderr,
        "rho": rho,
        "average_rho": rho_avg,
        "worst_direction": worst,
        "ascent_direction": sh.ascent_direction_sharpness(loss, theta, rho),
        "average_direction": average.mean,
        "average_direction_se": average.stderr,
    }
    return row, [
        {"seed": replicate, "method": method, "rank": i + 1, "eigenvalue": v} for i, v in enumerate(top.tolist())
    ]


def run(settings: dict, seed: int, data: Dataset, mlp: MLP, params: pd.DataFrame, log=None) -> dict[str, pd.DataFrame]:
    """Tables ``sharpness`` (one row per solution), ``topk`` and ``density`` at the first ``n_seeds`` solutions of
    ``params`` (seed, method, index, value: the ``params`` table of :mod:`.sam_vs_sgd`)."""
    log = logger(log)
    model = mlp.build(data, stream(seed, "layout"))  # layout only; parameters are set
    dtype = next(model.parameters()).dtype
    params = params[params.seed < settings["n_seeds"]].sort_values(["seed", "method", "index"])
    solutions = {key: torch.tensor(g.value.to_numpy(), dtype=dtype) for key, g in params.groupby(["seed", "method"])}
    loss = train_loss_closure(model, data.x_train, data.y_train)  # the closure never writes to the model

    sharp, topk = [], []
    for (replicate, method), theta in solutions.items():
        row, top = measure(settings, seed, loss, theta, method, replicate)
        sharp.append(row)
        topk += top
        log.info(
            "seed %d %s: lambda_max %.4g, trace %.4g +- %.2g, worst %.3g, ascent %.3g, average %.3g",
            replicate,
            method,
            row["lambda_max"],
            row["trace"],
            row["trace_se"],
            row["worst_direction"],
            row["ascent_direction"],
            row["average_direction"],
        )
    sharp, topk = pd.DataFrame(sharp), pd.DataFrame(topk)

    # one grid for every solution, so densities can be averaged over seeds and compared across methods
    top_all = float(sharp.lambda_max.max())
    grid = torch.linspace(-0.2 * top_all, 1.1 * top_all, settings["density_grid"], dtype=torch.float64)
    density = []
    for (replicate, method), theta in solutions.items():
        slq = sh.spectral_density(
            loss,
            theta,
            n_lanczos=settings["slq_lanczos"],
            n_probes=settings["slq_probes"],
            grid=grid,
            bandwidth=settings["density_bandwidth"] * top_all,
            generator=stream(seed, "slq", method, replicate),
        )
        density.append(
            pd.DataFrame(
                {
                    "seed": replicate,
                    "method": method,
                    "eigenvalue": grid.numpy(),
                    "density": slq.density.double().numpy(),
                }
            )
        )
    return {"sharpness": sharp, "topk": topk, "density": pd.concat(density, ignore_index=True)}


def statement(method: str, column: str) -> tuple[str, str, str]:
    """(source, the lecture statement the row tests as a claim prefix, why a row is the project's own)."""
    if column == "trace" and method == SAM.name:
        return "lecture", "lecture (Wen et al.): stochastic SAM minimizes the trace of the Hessian; ", ""
    if column == "trace":
        why = (
            "the lecture's (Wen et al.) trace statement is for SAM; the paper's mini-batch USAM drift penalizes "
            "tr Sigma, the gradient noise covariance, not tr H"
        )
    else:
        why = (
            "the lecture (Wen et al.) predicts a smaller lambda_max only for full-batch SAM (rows "
            "lecture.full_batch_sharpness.*); for stochastic SAM it predicts a smaller trace"
        )
    return "own", "", f"; the project's own check: {why}"


def claims(tables: dict[str, pd.DataFrame], settings: dict) -> list[Claim]:
    """Each method with a perturbation has a smaller lambda_max and trace than SGD: paired, 95% CI below 0 (the
    sources: :func:`statement`)."""
    sharp = tables["sharpness"]
    n = sharp.seed.nunique()
    out = []
    for column, what in (("lambda_max", "lambda_max"), ("trace", "trace (Hutchinson)")):
        wide = sharp.pivot(index="seed", columns="method", values=column)
        base = baseline(wide.columns)
        base_label = get(base).label
        for method in [m for m in wide.columns if get(m).perturbs]:
            label = get(method).label
            mean, _, low, high = mean_ci(wide[method] - wide[base])
            note = (
                f"{n} seeds, paired; training-loss Hessian at the sam_vs_sgd solutions; {base_label} mean "
                f"{wide[base].mean():.4g}, {label} mean {wide[method].mean():.4g}"
            )
            if column == "trace":
                note += f"; mean Hutchinson s.e. per solution {sharp.trace_se.mean():.2g}"
            source, stated, own = statement(method, column)
            out.append(
                Claim(
                    claim_id=f"lecture.hessian_spectrum.{method}_smaller_{column}",
                    source=source,
                    figure="hessian_spectrum",
                    claim=f"{stated}{label}'s solution has a smaller {what} than {base_label}'s",
                    quantity=f"{what} {label} - {base_label}",
                    value=mean,
                    ci_low=low,
                    ci_high=high,
                    expected="< 0 (95% CI below 0)",
                    passed=bool(high < 0),
                    note=note + own,
                )
            )
    return out
