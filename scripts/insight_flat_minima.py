"""Rule flat_minima: which basin of a two-well landscape each algorithm ends in (samsde.experiments.flat_minima)."""

from samsde.experiments import flat_minima
from samsde_workflow.claims import claims_frame
from samsde_workflow.job import Job

with Job(snakemake, "flat_minima") as job:
    tables = flat_minima.run(job.settings, job.seed, job.device, job.log)
    claims = claims_frame(flat_minima.claims(tables, job.settings))
    job.write(**tables, claims=claims)
    job.log.info("claims:\n%s", claims.to_string())
