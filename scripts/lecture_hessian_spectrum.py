"""Hessian spectrum and sharpness at the sam_vs_sgd solutions: samsde.experiments.lecture.hessian_spectrum."""

from samsde.experiments.lecture import hessian_spectrum as experiment
from samsde.experiments.lecture.common import data_and_model
from samsde_workflow.claims import claims_frame
from samsde_workflow.job import Job

with Job(snakemake, "hessian_spectrum") as job:
    data, mlp = data_and_model(job.section)
    tables = experiment.run(job.settings, job.seed, data, mlp, params=job.read("params"), log=job.log)
    claims = claims_frame(experiment.claims(tables, job.settings))
    job.log.info("claims:\n%s", claims.to_string())
    job.write(**tables, claims=claims)
