"""Rule quadratic_stationary: the stationary loss on a quadratic against the closed forms
(samsde.experiments.quadratic_stationary)."""

from samsde.experiments import quadratic_stationary
from samsde_workflow.claims import claims_frame
from samsde_workflow.job import Job

with Job(snakemake, "quadratic_stationary") as job:
    tables = quadratic_stationary.run(job.settings, job.seed, job.device, job.log)
    claims = claims_frame(quadratic_stationary.claims(tables, job.settings, rel_tol=snakemake.params.rel_tol))
    job.write(table=tables["table"], claims=claims)
    job.log.info("claims:\n%s", claims.to_string())
