"""Test error of SGD, SAM and USAM with rho chosen on a validation split, on the true labels or with a share of the
training labels replaced at random (params.label_noise): samsde.experiments.lecture.sam_vs_sgd."""

from samsde.experiments.lecture import sam_vs_sgd as experiment
from samsde.experiments.lecture.common import data_and_model
from samsde_workflow.claims import claims_frame
from samsde_workflow.job import Job

with Job(snakemake, "sam_vs_sgd") as job:
    data, mlp = data_and_model(job.section)
    share = snakemake.params.label_noise
    tables = experiment.run(job.settings, job.seed, data, mlp, log=job.log, label_noise=share)
    claims = claims_frame(experiment.claims(tables, job.settings))
    job.log.info("claims:\n%s", claims.to_string())
    job.write(**tables, claims=claims)
