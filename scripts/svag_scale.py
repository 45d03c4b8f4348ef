"""Rule svag_scale: discrete SAM, USAM, DNSAM against SVAG_L on a network with d ~ 10^3, the weak error's slope in
eta (samsde.experiments.svag_scale)."""

from samsde.experiments import svag_scale
from samsde_workflow.claims import claims_frame
from samsde_workflow.job import Job

with Job(snakemake, "svag_scale") as job:
    tables = svag_scale.run(job.settings, job.seed, job.device, job.log)
    thresholds = {"own_slope_min": snakemake.params.slope_min}
    claims = claims_frame(svag_scale.claims(tables, thresholds))
    job.write(errors=tables["errors"], slopes=tables["slopes"], claims=claims)
    job.log.info("slopes:\n%s", tables["slopes"].to_string())
    job.log.info("claims:\n%s", claims.to_string())
