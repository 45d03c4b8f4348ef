"""Hessian spectrum and three sharpness notions at the SGD, SAM and USAM solutions of sam_vs_sgd.

On the training loss L at each solution theta (H its Hessian, d parameters; all matrix-free, samsde.sharpness):
    lambda_max            Lanczos                                      (~ worst direction)
    top-k spectrum        Lanczos, k largest Ritz values
    spectral density      stochastic Lanczos quadrature, Gaussian-smoothed, on a grid shared by all solutions
    trace                 Hutchinson, Rademacher probes, with its Monte Carlo standard error  (~ average direction)
    worst-direction       max_{|e| <= rho} L(theta + e) - L(theta)        (projected ascent)
    ascent-direction      L(theta + rho g / |g|) - L(theta)               (SAM's own perturbation)
    average-direction     E_{e ~ N(0, rho_avg^2 I / d)} L(theta + e) - L(theta) ~ rho_avg^2 tr(H) / (2 d)
Claims: per-seed paired differences method - SGD of lambda_max and of the trace (95% t-intervals).
"""

import pandas as pd
import torch

from samsde import make_generator
from samsde import sharpness as sh
from samsde.lecture import dataset_from_config, mean_ci, mlp_from_config, train_loss_closure
from samsde_workflow.claims import Claim, claims_frame
from samsde_workflow.io import read_table, write_table
from samsde_workflow.logs import rule_logging

RULE = "lecture_hessian_spectrum"


def stream(seed, *keys):
    return make_generator(seed, "lecture", "hessian_spectrum", *keys)


with rule_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    section = snakemake.params.section
    seed, cfg = section["seed"], section["hessian_spectrum"]
    data = dataset_from_config(seed, section["data"], section["model"])
    model = mlp_from_config(section["model"], data, stream(seed, "layout"))  # layout only; parameters are set
    dtype = next(model.parameters()).dtype
    params = read_table(snakemake.input.params)
    params = params[params.seed < cfg["n_seeds"]].sort_values(["seed", "method", "index"])
    solutions = {key: torch.tensor(g.value.to_numpy(), dtype=dtype) for key, g in params.groupby(["seed", "method"])}
    loss = train_loss_closure(model, data.x_train, data.y_train)  # the closure never writes to the model

    sharp, topk = [], []
    for (replicate, method), theta in solutions.items():
        keys = (method, replicate)
        lam = sh.lambda_max(loss, theta, iters=cfg["lanczos_iters"], generator=stream(seed, "lanczos", *keys))
        top = sh.top_k_spectrum(
            loss, theta, cfg["top_k"], iters=cfg["topk_iters"], generator=stream(seed, "topk", *keys)
        )
        trace = sh.hutchinson_trace(loss, theta, cfg["hutchinson_samples"], generator=stream(seed, "trace", *keys))
        rho, rho_avg = cfg["sharpness_rho"], cfg["average_rho"]
        average = sh.average_direction_sharpness(loss, theta, rho_avg, n_samples=cfg["average_samples"],
                                                 generator=stream(seed, "average", *keys))  # fmt: skip
        sharp.append({
            "seed": replicate, "method": method, "train_loss": loss(theta).item(), "lambda_max": lam.value,
            "trace": trace.mean, "trace_se": trace.stderr, "rho": rho, "average_rho": rho_avg,
            "worst_direction": sh.worst_direction_sharpness(loss, theta, rho, steps=cfg["worst_steps"],
                                                            generator=stream(seed, "worst", *keys)),
            "ascent_direction": sh.ascent_direction_sharpness(loss, theta, rho),
            "average_direction": average.mean, "average_direction_se": average.stderr,
        })  # fmt: skip
        topk += [
            {"seed": replicate, "method": method, "rank": i + 1, "eigenvalue": v} for i, v in enumerate(top.tolist())
        ]
        log.info("seed %d %s: lambda_max %.4g, trace %.4g +- %.2g, worst %.3g, ascent %.3g, average %.3g",
                 replicate, method, lam.value, trace.mean, trace.stderr, sharp[-1]["worst_direction"],
                 sharp[-1]["ascent_direction"], average.mean)  # fmt: skip
    sharp, topk = pd.DataFrame(sharp), pd.DataFrame(topk)

    # one grid for every solution, so densities can be averaged over seeds and compared across methods
    top_all = float(sharp.lambda_max.max())
    grid = torch.linspace(-0.2 * top_all, 1.1 * top_all, cfg["density_grid"], dtype=torch.float64)
    density = []
    for (replicate, method), theta in solutions.items():
        slq = sh.spectral_density(loss, theta, n_lanczos=cfg["slq_lanczos"], n_probes=cfg["slq_probes"], grid=grid,
                                  bandwidth=cfg["density_bandwidth"] * top_all,
                                  generator=stream(seed, "slq", method, replicate))  # fmt: skip
        density.append(pd.DataFrame({"seed": replicate, "method": method, "eigenvalue": grid.numpy(),
                                     "density": slq.density.double().numpy()}))  # fmt: skip
    density = pd.concat(density, ignore_index=True)

    claims = []
    n = sharp.seed.nunique()
    for column, label in (("lambda_max", "lambda_max"), ("trace", "trace (Hutchinson)")):
        wide = sharp.pivot(index="seed", columns="method", values=column)
        for method in [m for m in wide.columns if m != "sgd"]:
            mean, _, low, high = mean_ci(wide[method] - wide.sgd)
            note = (f"{n} seeds, paired; training-loss Hessian at the sam_vs_sgd solutions; SGD mean "
                    f"{wide.sgd.mean():.4g}, {method.upper()} mean {wide[method].mean():.4g}")  # fmt: skip
            if column == "trace":
                note += f"; mean Hutchinson s.e. per solution {sharp.trace_se.mean():.2g}"
            claims.append(Claim(
                f"lecture.hessian_spectrum.{method}_smaller_{column}", "lecture", "hessian_spectrum",
                f"{method.upper()}'s solution has a smaller {label} than SGD's",
                f"{label} {method.upper()} - SGD", mean, low, high, "< 0 (95% CI below 0)", bool(high < 0), note,
            ))  # fmt: skip
    table = claims_frame(claims)
    log.info("claims:\n%s", table.to_string())
    write_table(sharp, snakemake.output.sharpness, section, seed, RULE)
    write_table(topk, snakemake.output.topk, section, seed, RULE)
    write_table(density, snakemake.output.density, section, seed, RULE)
    write_table(table, snakemake.output.claims, section, seed, RULE)
