"""Run every benchmark, then check each measured value against its target in benchmarks/targets.yaml.

    python3 benchmarks/run_all.py                  # full sizes, one after the other (~35 min on 2 cores)
    python3 benchmarks/run_all.py --quick          # tiny sizes: checks that every script runs (not a measurement)
    python3 benchmarks/run_all.py --summary-only   # re-check the CSVs already in --out-dir

Each benchmark runs in its own process (they would disturb each other's timings) and writes its CSV to --out-dir
(default benchmarks/out/).  Then:
- ``benchmarks.csv``: all their rows, one long table (format: benchmarks/harness.py), each with its run's provenance;
- ``results.csv``: one row per target: ``id, value, target, met, rows, detail, why`` and the provenance of the run
  the value came from (``met`` empty for a quantity reported with no target).
The studies (benchmarks/studies/) are not run here: each has its own command.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
SCRIPTS = {  # script -> extra arguments of the full run
    "bench_simulate.py": ["--cell-budget", "400"],  # room for the exact network step at d = 5121
    "bench_network_derivatives.py": [],
    "bench_torchsde.py": [],
    "bench_minibatch.py": [],
    "bench_minibatch_estimator.py": [],
    "bench_user_model.py": [],
    "bench_lecture_batched.py": [],
}
PROVENANCE = ["commit", "date", "nproc", "cpu", "torch", "threads"]


def select(table: pd.DataFrame, where: dict) -> pd.DataFrame:
    """Rows whose columns equal the given values; a value "~regex" matches by regular expression."""
    mask = pd.Series(True, index=table.index)
    for col, want in where.items():
        if isinstance(want, str) and want.startswith("~"):
            mask &= table[col].astype(str).str.contains(want[1:], regex=True)
        else:
            mask &= table[col] == want
    return table[mask]


def check(table: pd.DataFrame, targets: dict) -> pd.DataFrame:
    keys = ["benchmark", "task", "dim", "n_paths", "variant", "metric", *PROVENANCE]
    med = table.groupby(keys, dropna=False).value.median().reset_index()
    out = []
    for ident, spec in targets.items():
        rows = select(med, spec["select"]).dropna(subset=["value"])
        row = {"id": ident, "target": spec["target"] or "-", "why": spec["why"], "rows": len(rows)}
        if len(rows) == 0:
            out.append(row | {"value": float("nan"), "met": "no rows", "detail": "not measured in this run"})
            continue
        worst = rows.loc[rows.value.idxmax() if spec["aggregate"] == "max" else rows.value.idxmin()]
        met = ""
        if spec["target"]:
            op, bound = re.fullmatch(r"\s*(<=|>=)\s*(\S+)\s*", spec["target"]).groups()
            met = bool(worst.value <= float(bound)) if op == "<=" else bool(worst.value >= float(bound))
        detail = "; ".join(
            f"{r.task} d={r.dim:g} M={r.n_paths:g} {r.variant}: {r.value:.3g}" for r in rows.itertuples()
        )
        out.append(row | {"value": worst.value, "met": met, "detail": detail} | worst[PROVENANCE].to_dict())
    cols = ["id", "value", "target", "met", "rows", "detail", "why", *PROVENANCE]
    return pd.DataFrame(out).reindex(columns=cols)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes for every benchmark")
    p.add_argument("--summary-only", action="store_true", help="only check the CSVs already in --out-dir")
    p.add_argument("--out-dir", type=Path, default=Path("benchmarks/out"))
    args = p.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    csvs = [args.out_dir / script.replace("bench_", "").replace(".py", ".csv") for script in SCRIPTS]
    if not args.summary_only:
        for (script, extra), csv in zip(SCRIPTS.items(), csvs, strict=True):
            cmd = [sys.executable, str(HERE / script), "--out", str(csv), *(["--quick"] if args.quick else extra)]
            print("$", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True)
    table = pd.concat([pd.read_csv(c) for c in csvs if c.exists()], ignore_index=True)
    table.to_csv(args.out_dir / "benchmarks.csv", index=False)
    results = check(table, yaml.safe_load((HERE / "targets.yaml").read_text()))
    results.to_csv(args.out_dir / "results.csv", index=False)
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        print(results[["id", "value", "target", "met", "rows", "commit", "date"]].to_string(index=False))
    print(f"wrote {args.out_dir / 'benchmarks.csv'} and {args.out_dir / 'results.csv'}")


if __name__ == "__main__":
    main()
