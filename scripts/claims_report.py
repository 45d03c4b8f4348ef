"""The claims table inside the Snakemake report: one page per figure (registered in the figure's report category,
listed right after it) and one page of every claim, grouped by figure in inventory order."""

from samsde_workflow.claims import claims_page, summary
from samsde_workflow.inventory import FIGURES
from samsde_workflow.io import read_table, write_page
from samsde_workflow.logs import rule_logging

INTRO = (
    "Rows of <code>results/claims.csv</code>{which}: the measured value, its 95% interval, the expected value or "
    "range, and the verdict (pass: the value, or its interval where the expected column names it, meets the "
    "expectation)."
)

with rule_logging(snakemake) as log:
    claims = read_table(snakemake.input[0])
    figures = snakemake.params.figures
    unknown = sorted(set(claims.figure) - set(figures))
    if unknown:  # their rows would be in no figure's page
        raise ValueError(f"claims of figures outside this run's figures {figures}: {unknown}")
    section = {"claims": snakemake.input[0], "figures": figures}
    for fig in figures:
        rows = claims[claims.figure == fig]
        which = f" whose figure is <code>{fig}</code> (report category {FIGURES[fig]})"
        page = claims_page(f"Claims of figure {fig}: {summary(rows)}", [("", rows)], INTRO.format(which=which))
        write_page(page, getattr(snakemake.output, fig), section, snakemake.params.seed, "claims_report")
        log.info("%s: %s", fig, summary(rows))
    groups = [(fig, claims[claims.figure == fig]) for fig in figures if (claims.figure == fig).any()]
    page = claims_page(f"All claims: {summary(claims)}", groups, INTRO.format(which=", by figure"))
    write_page(page, snakemake.output.all, section, snakemake.params.seed, "claims_report")
    log.info("all: %s", summary(claims))
