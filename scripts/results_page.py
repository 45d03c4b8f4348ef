"""The results page (results/results.md) and the report's front-page fragment, from the run's tables."""

from pathlib import Path

from samsde_workflow.logs import rule_logging
from samsde_workflow.results_page import main

with rule_logging(snakemake) as log:
    results = str(Path(snakemake.input.claims).parent)
    main(["--results", results, "--out", snakemake.output.page, "--front", snakemake.output.front])
    log.info("results page: %s", snakemake.output.page)
