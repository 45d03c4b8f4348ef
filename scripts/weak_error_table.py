"""Aggregate the per-run weak errors: intervals per eta, log-log slope fits per (task, algorithm, scaling, model),
and the weak-error claims of the paper."""

import numpy as np
import pandas as pd

from samsde.weak_error import fit_loglog_slope
from samsde_workflow.claims import Claim, claims_frame, in_range
from samsde_workflow.io import read_table, write_table
from samsde_workflow.logs import rule_logging

GROUP = ["task", "algorithm", "scaling", "alpha", "c", "model", "statistic"]
LEVEL = 0.95

with rule_logging(snakemake) as log:
    p = snakemake.params
    runs = pd.concat([read_table(f) for f in snakemake.input.errors], ignore_index=True)
    point = runs[runs.estimate == "point"].drop(columns=["estimate", "replicate"])
    boot = runs[runs.estimate == "bootstrap"]
    q = boot.groupby([*GROUP, "eta"]).rel_error.quantile([(1 - LEVEL) / 2, (1 + LEVEL) / 2]).unstack()
    q.columns = ["ci_low", "ci_high"]
    errors = point.merge(q.reset_index(), on=[*GROUP, "eta"]).sort_values([*GROUP, "eta"])
    errors["diverged"] = (errors.n_diverged_discrete > 0) | (errors.n_diverged_model > 0)
    write_table(errors, snakemake.output.errors, p.section, p.seed, rule="weak_error_table")

    slopes = []
    for key, grp in errors.groupby(GROUP, sort=True):
        grp = grp.sort_values("eta")
        reps = boot.merge(grp[[*GROUP, "eta"]], on=[*GROUP, "eta"]).pivot(
            index="eta", columns="replicate", values="rel_error"
        )
        fit = fit_loglog_slope(grp.eta, grp.rel_error, reps.loc[grp.eta].to_numpy(), level=LEVEL)
        slopes.append(
            {**dict(zip(GROUP, key, strict=True)), "slope": fit.slope, "ci_low": fit.low, "ci_high": fit.high,
             "intercept": fit.intercept, "n_etas": len(grp), "any_diverged": bool(grp.diverged.any())}
        )  # fmt: skip
    slopes = pd.DataFrame(slopes)
    write_table(slopes, snakemake.output.slopes, p.section, p.seed, rule="weak_error_table")
    log.info("\n%s", slopes.to_string())

    lo, hi = p.claims["own_slope_range"]
    sgd_max = p.claims["sgd_slope_max"]
    main = slopes[slopes.statistic == "grad_norm_plus_norm"]
    claims = []
    for (task, algorithm), grp in main.groupby(["task", "algorithm"]):
        by = grp.set_index(["scaling", "model"])
        for scaling in sorted(grp.scaling.unique()):
            alpha = float(grp[grp.scaling == scaling].alpha.iloc[0])
            own, sgd = by.loc[(scaling, "own_sde")], by.loc[(scaling, "sgd_sde")]
            tag = f"{task}.{algorithm}.{scaling}"
            claims.append(Claim(
                f"order1_own_sde.{tag}", "paper", "weak_error",
                f"{algorithm.upper()}'s own SDE is an order-1 weak approximation ({task}, rho = c eta^{alpha:g})",
                "log-log slope of the relative error of the own SDE", own.slope, own.ci_low, own.ci_high,
                f"slope in [{lo}, {hi}]", in_range(own.slope, lo, hi),
                "diverged runs present" if own.any_diverged else "",
            ))  # fmt: skip
            if np.isclose(alpha, 0.5):
                claims.append(Claim(
                    f"sgd_sde_not_order1.{tag}", "paper", "weak_error",
                    f"the SGD SDE is not an order-1 model of {algorithm.upper()} when rho = c sqrt(eta) ({task})",
                    "log-log slope of the relative error of the SGD SDE", sgd.slope, sgd.ci_low, sgd.ci_high,
                    f"slope < {sgd_max}", bool(np.isfinite(sgd.slope) and sgd.slope < sgd_max),
                ))  # fmt: skip
            pe = errors[(errors.task == task) & (errors.algorithm == algorithm) & (errors.scaling == scaling)
                        & (errors.statistic == "grad_norm_plus_norm")]  # fmt: skip
            small = pe[pe.eta == pe.eta.min()].set_index("model")
            ratio = small.rel_error["own_sde"] / small.rel_error["sgd_sde"]
            claims.append(Claim(
                f"own_beats_sgd_sde.{tag}", "paper", "weak_error",
                f"{algorithm.upper()}'s own SDE is closer to it than the SGD SDE ({task}, rho = c eta^{alpha:g})",
                "error ratio own/SGD SDE at the smallest eta (CI: ratio of the interval ends, conservative)",
                ratio, small.ci_low["own_sde"] / small.ci_high["sgd_sde"],
                small.ci_high["own_sde"] / small.ci_low["sgd_sde"], "ratio < 1",
                bool(small.ci_high["own_sde"] < small.ci_low["sgd_sde"]),
            ))  # fmt: skip
    write_table(claims_frame(claims), snakemake.output.claims, p.section, p.seed, rule="weak_error_table")
