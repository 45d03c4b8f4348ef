"""Test error of SGD, SAM and USAM with rho chosen on a validation split: samsde.experiments.lecture.sam_vs_sgd."""

from samsde.experiments.lecture import sam_vs_sgd as experiment
from samsde.experiments.lecture.common import data_and_model
from samsde_workflow.claims import claims_frame
from samsde_workflow.job import Job

with Job(snakemake, "sam_vs_sgd") as job:
    data, mlp = data_and_model(job.section)
    tables = experiment.run(job.settings, job.seed, data, mlp, log=job.log)
    claims = claims_frame(experiment.claims(tables, job.settings))
    job.log.info("claims:\n%s", claims.to_string())
    job.write(**tables, claims=claims)
