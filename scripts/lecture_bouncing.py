"""Full-batch SAM "bouncing across ravines": a two-cycle on a quadratic, a drift to flatter regions on a valley.

Quadratic f = x^T H x / 2, H = Q diag(spectrum) Q^T (Q a seeded random rotation), from random starting points.
Full-batch SAM (samsde.algorithms.discrete_step with z = 0) ends in x -> -x along the top eigenvector v_1 with
amplitude a = eta lam_1 rho / (2 - eta lam_1) (samsde.lecture.quadratic_two_cycle_amplitude) while the other
eigen-coordinates decay to 0.  Measured over the last `window` steps: amplitude, sign alternation, residuals.

Valley f(x, y) = a(y) x^2 / 2 + slope y (samsde.lecture.Valley): SAM and gradient descent (GD) from jittered starts;
lambda_max(H) at every recorded iterate (every record_every steps, an even number keeps one phase of the bounce).
"""

import numpy as np
import pandas as pd
import torch

from samsde import make_generator
from samsde.lecture import (
    Valley,
    mean_ci,
    quadratic_two_cycle_amplitude,
    random_rotation,
    run_full_batch,
    two_cycle_summary,
)
from samsde_workflow.claims import Claim, claims_frame
from samsde_workflow.io import write_table
from samsde_workflow.logs import rule_logging

RULE = "lecture_bouncing"
DTYPE = torch.float64


def stream(seed, *keys):
    return make_generator(seed, "lecture", "bouncing", *keys)


def quadratic(seed, n_seeds, q, log):
    lam = torch.tensor(q["spectrum"], dtype=DTYPE)
    top = int(lam.argmax())
    rotation = random_rotation(lam.numel(), stream(seed, "rotation"), DTYPE)
    hessian = rotation @ torch.diag(lam) @ rotation.T
    x0 = torch.randn(n_seeds, lam.numel(), generator=stream(seed, "x0"), dtype=DTYPE)
    xs = run_full_batch("sam", lambda x: x @ hessian, x0, q["eta"], q["rho"], q["n_steps"])
    proj = xs @ rotation  # (n_steps + 1, M, d): coordinates in the eigenbasis
    steps = np.arange(q["n_steps"] + 1)
    rows = pd.concat([
        pd.DataFrame({"seed": m, "step": steps, "eigen_index": i, "eigenvalue": lam[i].item(),
                      "projection": proj[:, m, i].numpy()})
        for m in range(n_seeds) for i in range(lam.numel())
    ])  # fmt: skip

    amplitude = quadratic_two_cycle_amplitude(lam[top].item(), q["eta"], q["rho"])
    window = proj[-q["window"] :]
    cycles = [two_cycle_summary(window[:, m, top]) for m in range(n_seeds)]
    measured = np.array([c.amplitude for c in cycles])
    rel_error = np.abs(measured / amplitude - 1)
    spread = max(c.amplitude_spread for c in cycles)
    alternation = min(c.alternation for c in cycles)
    others = torch.cat([window[:, :, :top], window[:, :, top + 1 :]], dim=-1).abs().max().item() / amplitude
    log.info("quadratic: closed-form amplitude %.6g; measured %s; spread %.2g; alternation %.3g; others/a %.2g",
             amplitude, measured, spread, alternation, others)  # fmt: skip
    setting = (f"spectrum {q['spectrum']}, eta {q['eta']}, rho {q['rho']}, last {q['window']} of {q['n_steps']} "
               f"steps, {n_seeds} random starts; interval = [min, max] over starts")  # fmt: skip
    claims = [
        Claim("lecture.bouncing.two_cycle_amplitude", "lecture", "bouncing",
              "Full-batch SAM on a quadratic ends in a two-cycle along the top eigenvector with the closed-form "
              "amplitude eta lam rho / (2 - eta lam)", "two-cycle amplitude |<x_k, v_1>|",
              float(measured.mean()), float(measured.min()), float(measured.max()),
              f"{amplitude:.6g} within relative {q['rel_tol']:g}", bool(rel_error.max() <= q["rel_tol"]),
              f"{setting}; max relative error {rel_error.max():.2g}, amplitude spread {spread:.2g}"),
        Claim("lecture.bouncing.two_cycle_alternates", "lecture", "bouncing",
              "SAM's iterate flips sign along the top eigenvector at every step and is ~0 along the others",
              "min share of sign flips of <x_k, v_1> per step", alternation, alternation,
              float(max(c.alternation for c in cycles)), "1 (and max |<x_k, v_i>| / a <= rel_tol for i > 1)",
              bool(alternation == 1.0 and others <= q["rel_tol"]), f"{setting}; max |<x_k, v_i>| / a = {others:.2g}"),
    ]  # fmt: skip
    return rows, claims


def valley(seed, n_seeds, v, log):
    landscape = Valley(v["a_max"], v["a_min"], v["width"], v["slope"])
    if not v["eta"] * v["a_max"] < 2:
        raise ValueError(f"valley: eta * a_max = {v['eta'] * v['a_max']} >= 2: gradient descent would diverge")
    jitter = (torch.rand(n_seeds, 2, generator=stream(seed, "valley_start"), dtype=DTYPE) * 2 - 1) * v["jitter"]
    x0 = torch.tensor(v["start"], dtype=DTYPE) + jitter
    rows, ratio = [], {}
    for algorithm, rho in (("sam", v["rho"]), ("sgd", 0.0)):
        xs = run_full_batch(algorithm, landscape.grad, x0, v["eta"], rho, v["n_steps"])[:: v["record_every"]]
        lam, loss = landscape.lambda_max(xs), landscape.loss(xs)
        steps = np.arange(xs.shape[0]) * v["record_every"]
        name = "gd" if algorithm == "sgd" else algorithm
        rows += [pd.DataFrame({"seed": m, "algorithm": name, "step": steps, "x": xs[:, m, 0].numpy(),
                               "y": xs[:, m, 1].numpy(), "loss": loss[:, m].numpy(),
                               "lambda_max": lam[:, m].numpy()}) for m in range(n_seeds)]  # fmt: skip
        ratio[name] = (lam[-1] / lam[0]).numpy()
        log.info("valley %s: lambda_max %.4g -> %.4g (mean over starts), y %.3g -> %.3g", name, lam[0].mean(),
                 lam[-1].mean(), xs[0, :, 1].mean(), xs[-1, :, 1].mean())  # fmt: skip
    setting = (f"a(y) from {v['a_max']} to {v['a_min']} (width {v['width']}), slope {v['slope']}, eta {v['eta']}, "
               f"rho {v['rho']}, {v['n_steps']} steps, {n_seeds} jittered starts")  # fmt: skip
    sam_mean, _, sam_low, sam_high = mean_ci(ratio["sam"])
    gd_mean, _, gd_low, gd_high = mean_ci(ratio["gd"])
    claims = [
        Claim("lecture.bouncing.valley_sam_flatter", "lecture", "bouncing",
              "On a valley whose curvature varies along the floor, full-batch SAM drifts toward lower lambda_max",
              "lambda_max at the last iterate / at the start, SAM", sam_mean, sam_low, sam_high,
              f"< {v['max_ratio']:g} (95% CI)", bool(sam_high < v["max_ratio"]), setting),
        Claim("lecture.bouncing.valley_gd_control", "lecture", "bouncing",
              "Gradient descent from the same starts does not drift to flatter regions (control)",
              "lambda_max at the last iterate / at the start, GD", gd_mean, gd_low, gd_high,
              f"> {v['max_ratio']:g} (95% CI)", bool(gd_low > v["max_ratio"]), setting),
    ]  # fmt: skip
    return pd.concat(rows, ignore_index=True), claims


with rule_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    section = snakemake.params.section
    seed, cfg = section["seed"], section["bouncing"]
    quad_rows, quad_claims = quadratic(seed, cfg["n_seeds"], cfg["quadratic"], log)
    valley_rows, valley_claims = valley(seed, cfg["n_seeds"], cfg["valley"], log)
    table = claims_frame(quad_claims + valley_claims)
    log.info("claims:\n%s", table.to_string())
    write_table(quad_rows, snakemake.output.quadratic, section, seed, RULE)
    write_table(valley_rows, snakemake.output.valley, section, seed, RULE)
    write_table(table, snakemake.output.claims, section, seed, RULE)
