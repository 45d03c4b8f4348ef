"""Losses along the line through the small- and large-batch solutions: samsde.experiments.lecture.interpolation."""

from samsde.experiments.lecture import interpolation as experiment
from samsde.experiments.lecture.common import data_and_model
from samsde_workflow.claims import claims_frame
from samsde_workflow.job import Job

with Job(snakemake, "interpolation") as job:
    data, mlp = data_and_model(job.section)
    tables = experiment.run(job.settings, job.seed, data, mlp, params=job.read("params"), log=job.log)
    claims = claims_frame(experiment.claims(tables, job.settings))
    job.log.info("claims:\n%s", claims.to_string())
    job.write(**tables, claims=claims)
