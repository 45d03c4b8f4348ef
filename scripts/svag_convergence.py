"""Rule svag_convergence: the coupled weak distance of SVAG_l to the own SDE, and its slope in l
(samsde.experiments.svag_convergence)."""

from samsde.experiments import svag_convergence
from samsde_workflow.claims import claims_frame
from samsde_workflow.job import Job

with Job(snakemake, "svag_convergence") as job:
    tables = svag_convergence.run(job.settings, job.seed, job.device, job.log)
    thresholds = {"svag_slope_range": snakemake.params.slope_range}
    claims = claims_frame(svag_convergence.claims(tables, thresholds))
    job.write(errors=tables["errors"], slopes=tables["slopes"], claims=claims)
    job.log.info("slopes:\n%s", tables["slopes"].to_string())
    job.log.info("claims:\n%s", claims.to_string())
