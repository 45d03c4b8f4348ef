# ruff: noqa: E741 (l is the SVAG amplification)
"""Study (not a timing): where SVAG_l's distance to the paper's SAM SDE levels off on the networks, and how that
level scales with rho.

Question: SVAG_l converges to the SDE with the SAM step's exact mean and covariance, the paper's SDE keeps them to
first order in rho; at which l does the distance stop falling on iris and teacher_student, how does that level move
when rho is halved, and does SGD (rho = 0, no gap) fall like 1/l all the way?

    python3 benchmarks/studies/svag_rho_gap.py            # ~10 min on one thread -> benchmarks/out/svag_rho_gap.csv
    python3 benchmarks/studies/svag_rho_gap.py --quick    # tiny sizes: checks that it runs
    python3 benchmarks/studies/svag_rho_gap.py --from-csv benchmarks/out/svag_rho_gap.csv   # the summary only

Quoted in: benchmarks/README.md (the svag_rho_gap table), the project README ("SVAG": the SGD control and "What SVAG
tests"), workflow/report/svag_convergence.rst.  No claim row: it is outside the default DAG.

Protocol: the svag_convergence experiment of config.yaml (SAM, eta 0.1, sigma 0.5, its seed, paths and horizon) on
iris and teacher_student with l = 1 ... 256 (reference r = 32; SVAG_l for l > 32 reads the refined path) at
rho = c sqrt(eta) for c = 0.5 (the default) and c = 0.25, and the end point c = 0: SGD against its own SDE, with
l up to 512 (SVAG's limit is then the SGD SDE exactly: E D = grad f, Cov D = Sigma).  SVAG_l converges to the SDE
with the step's exact mean and covariance; the paper's SDE drops its O(rho^2) terms, so the distance falls like 1/l
down to a level set by those terms, or to the Monte Carlo floor if that is lower.  Printed per (task, test
function, c): the distance over its paired standard error at every l (below 3: not resolved, the floor is reached),
the distance at the largest l, and the Richardson slope in l with its bootstrap 95% interval.  On the quadratic the
gradient is linear and the distance reaches the floor (the default DAG's claims svag.floor.*).
"""

from __future__ import annotations

import argparse
import os
import sys

import pandas as pd
import torch
import yaml

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from harness import provenance  # noqa: E402

from samsde.experiments import svag_convergence  # noqa: E402

LS, RESOLUTION, CS, TASKS = [1, 2, 4, 8, 16, 32, 64, 128, 256], 32, (0.5, 0.25, 0.0), ("iris", "teacher_student")
SGD_LS = [*LS, 512]  # c = 0: SGD, whose distance has no O(rho^2) level to stop at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/out/svag_rho_gap.csv")
    parser.add_argument("--from-csv", help="only print the summary of an earlier run's CSV")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a check that it runs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with open("config.yaml") as f:
        config = yaml.safe_load(f)
    base = config["svag_convergence"]
    if args.from_csv:
        summarise(pd.read_csv(args.from_csv))
        return
    errors, slopes = [], []
    for c in CS:
        algorithm, ls = ("sam", LS) if c > 0 else ("sgd", SGD_LS)
        tasks = {name: base["tasks"][name] | {"ls": ls, "resolution": RESOLUTION} for name in TASKS}
        if args.quick:
            tasks = {name: t | {"ls": [1, 2], "resolution": 2, "n_paths": 16} for name, t in tasks.items()}
        settings = base | {"algorithms": [algorithm], "tasks": tasks, "rho": base["rho"] | {"c": c}}
        settings |= {"floor_tasks": {}, "gap_cs": []}
        settings |= {"n_boot": 20, "horizon": 0.2} if args.quick else {}
        tables = svag_convergence.run(settings, config["seed"], "cpu")
        for out, table in ((errors, tables["errors"]), (slopes, tables["slopes"])):
            out.append(table[table.reference == "richardson"].assign(c=c))
    errors, slopes = pd.concat(errors, ignore_index=True), pd.concat(slopes, ignore_index=True)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    table = errors.merge(slopes[["task", "statistic", "c", "slope", "ci_low", "ci_high"]],
                         on=["task", "statistic", "c"], suffixes=("", "_slope"))  # fmt: skip
    table.assign(**provenance()).to_csv(args.out, index=False)
    summarise(table)
    print(f"wrote {args.out}")


def summarise(errors: pd.DataFrame) -> None:
    keys = ["task", "statistic", "c"]
    ratio = errors.assign(ratio=errors.distance / errors.floor).pivot_table(index=keys, columns="l", values="ratio")
    last = errors.sort_values("l").groupby(keys).last()
    ratio["largest l: distance"] = last.distance
    if "slope" in errors:  # CSVs written before 2026-12-03 have no slopes
        interval = lambda r: f"{r.slope:.2f} [{r.ci_low_slope:.2f}, {r.ci_high_slope:.2f}]"  # noqa: E731
        ratio["slope [95%]"] = last.apply(interval, axis=1)
    print("distance / paired standard error per l (< 3: at the floor); c = 0 is SGD")
    print(ratio.to_string(float_format=lambda v: f"{v:.2g}"))


if __name__ == "__main__":
    main()
