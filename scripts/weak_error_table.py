"""Aggregate the weak-error cells of one stage (Gaussian or mini-batch noise): the error table, the slope fits on
resolved points, and the stage's claims (samsde.experiments.weak_error.claims)."""

from samsde.experiments import weak_error
from samsde_workflow.claims import claims_frame
from samsde_workflow.job import Job

with Job(snakemake) as job:
    replicates = job.read("replicates")
    errors, slopes = weak_error.aggregate(job.read("errors"), replicates)
    job.log.info("\n%s", slopes.to_string())
    stage = getattr(snakemake.params, "stage", None)  # "minibatch": the mini-batch stage's ids and figure
    claims = weak_error.claims(errors, slopes, replicates, job.section, snakemake.params.claims, stage=stage)
    job.write(errors=errors, slopes=slopes, claims=claims_frame(claims))
