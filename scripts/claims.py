"""Concatenate the claim fragments of every stage into results/claims.csv (one row per claim)."""

import pandas as pd

from samsde_workflow.claims import COLUMNS
from samsde_workflow.io import read_table, write_table
from samsde_workflow.logs import rule_logging

with rule_logging(snakemake) as log:
    claims = pd.concat([read_table(f) for f in snakemake.input], ignore_index=True)[COLUMNS]
    duplicated = claims.claim_id[claims.claim_id.duplicated()]
    if len(duplicated):
        raise ValueError(f"duplicate claim ids: {sorted(duplicated)}")
    write_table(claims, snakemake.output[0], {"fragments": list(snakemake.input)}, snakemake.params.seed, "claims")
    log.info("%d claims, %d passed\n%s", len(claims), int(claims.passed.sum()), claims.to_string())
