"""The large batch with lr * sqrt(k) and the small batch's updates: samsde.experiments.lecture.lr_scaling."""

from samsde.experiments.lecture import lr_scaling as experiment
from samsde.experiments.lecture.common import data_and_model
from samsde_workflow.claims import claims_frame
from samsde_workflow.job import Job

with Job(snakemake, "lr_scaling") as job:
    data, mlp = data_and_model(job.section)
    large_batch = job.section["large_batch"]  # the settings of the runs it extends
    runs = job.read("runs")
    tables = experiment.run(job.settings, job.seed, data, mlp, runs=runs, large_batch=large_batch, log=job.log)
    claims = claims_frame(experiment.claims(tables, job.settings, seed=job.seed, large_batch=large_batch))
    job.log.info("claims:\n%s", claims.to_string())
    job.write(**tables, claims=claims)
