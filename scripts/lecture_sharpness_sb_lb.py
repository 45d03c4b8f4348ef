"""Small- vs large-batch SGD solutions, their sharpness and test error: samsde.experiments.lecture.sharpness_sb_lb."""

from samsde.experiments.lecture import sharpness_sb_lb as experiment
from samsde.experiments.lecture.common import data_and_model
from samsde_workflow.claims import claims_frame
from samsde_workflow.job import Job

with Job(snakemake, "large_batch") as job:
    data, mlp = data_and_model(job.section)
    tables = experiment.run(job.settings, job.seed, data, mlp, log=job.log)
    claims = claims_frame(experiment.claims(tables, job.settings))
    job.log.info("claims:\n%s", claims.to_string())
    job.write(**tables, claims=claims)
