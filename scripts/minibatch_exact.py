"""Rule minibatch_exact: the exact weak errors of mini-batch USAM on a finite-sum quadratic against the paper's
mini-batch SDE, the SGD SDE and the additive formula, and their claims (samsde.experiments.minibatch_exact)."""

from samsde.experiments import minibatch_exact
from samsde_workflow.claims import claims_frame
from samsde_workflow.job import Job

with Job(snakemake, "exact_anchor") as job:
    table = minibatch_exact.run(job.settings, job.log)
    thresholds = {"own_slope_min": snakemake.params.own_slope_min, "exact_half_order_window": snakemake.params.window}
    claims = claims_frame(minibatch_exact.claims(table, thresholds))
    job.write(table=table, claims=claims)
    job.log.info("claims:\n%s", claims.to_string())
