"""Full-batch SAM's two-cycle on a quadratic and its drift along a valley: samsde.experiments.lecture.bouncing."""

from samsde.experiments.lecture import bouncing as experiment
from samsde_workflow.claims import claims_frame
from samsde_workflow.job import Job

with Job(snakemake, "bouncing") as job:
    tables = experiment.run(job.settings, job.seed, log=job.log)
    claims = claims_frame(experiment.claims(tables, job.settings, log=job.log))
    job.log.info("claims:\n%s", claims.to_string())
    job.write(**tables, claims=claims)
