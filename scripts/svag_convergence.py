"""Rule svag_convergence: the coupled weak distance of SVAG_l to SVAG_2l and to the paper's SDE, their slopes in l,
and the gap between SVAG's limit and the paper's SDE against rho (samsde.experiments.svag_convergence)."""

from samsde.experiments import svag_convergence
from samsde_workflow.claims import claims_frame
from samsde_workflow.job import Job

with Job(snakemake, "svag_convergence") as job:
    tables = svag_convergence.run(job.settings, job.seed, job.device, job.log)
    thresholds = {"svag_slope_max": snakemake.params.slope_max, "svag_gap_slope_min": snakemake.params.gap_slope_min}
    claims = claims_frame(svag_convergence.claims(tables, thresholds))
    job.write(**tables, claims=claims)
    job.log.info("slopes:\n%s", tables["slopes"].to_string())
    job.log.info("gap against rho:\n%s", tables["gap_slopes"].to_string())
    job.log.info("claims:\n%s", claims.to_string())
