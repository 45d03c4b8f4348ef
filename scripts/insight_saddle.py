"""Rule saddle: who stays near a saddle, and for how long (samsde.experiments.saddle)."""

from samsde.experiments import saddle
from samsde_workflow.claims import claims_frame
from samsde_workflow.job import Job

with Job(snakemake, "saddle") as job:
    tables = saddle.run(job.settings, job.seed, job.device, job.log)
    claims = claims_frame(saddle.claims(tables, job.settings))
    job.write(**tables, claims=claims)
    job.log.info("claims:\n%s", claims.to_string())
