"""One row per results table: the rule, config hash, seed, git commit and package versions of its sidecar."""

from pathlib import Path

import pandas as pd

from samsde_workflow.io import read_provenance, write_table
from samsde_workflow.logs import rule_logging

with rule_logging(snakemake) as log:
    rows = []
    for table in sorted(Path("results").rglob("*.csv")):
        if str(table) == snakemake.output[0] or not Path(f"{table}.provenance.json").exists():
            continue
        side = read_provenance(table)
        if side["rule"] == "pipeline_profile":  # written after this table, from the timings of this very run
            continue
        rows.append(
            {"table": str(table), "rule": side["rule"], "config_sha256": side["config_sha256"][:16],
             "seed": side["seed"], "git_commit": side["git_commit"],
             **{f"version_{k}": v for k, v in side["packages"].items()}}
        )
    write_table(pd.DataFrame(rows), snakemake.output[0], {"tables": len(rows)}, None, rule="provenance")
    log.info("%d tables", len(rows))
