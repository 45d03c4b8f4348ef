"""Full-batch SAM vs gradient descent on the digits MLP: samsde.experiments.lecture.full_batch_sharpness."""

from samsde.experiments.lecture import full_batch_sharpness as experiment
from samsde.experiments.lecture.common import data_and_model
from samsde_workflow.claims import claims_frame
from samsde_workflow.job import Job

with Job(snakemake, "full_batch_sharpness") as job:
    data, mlp = data_and_model(job.section)
    tables = experiment.run(job.settings, job.seed, data, mlp, log=job.log)
    claims = claims_frame(experiment.claims(tables, job.settings))
    job.log.info("claims:\n%s", claims.to_string())
    job.write(**tables, claims=claims)
