"""Rule hessian_trace: the Hessian trace along the trajectories on matrix sensing
(samsde.experiments.hessian_trace)."""

from samsde.experiments import hessian_trace
from samsde_workflow.claims import claims_frame
from samsde_workflow.job import Job

with Job(snakemake, "hessian_trace") as job:
    tables = hessian_trace.run(job.settings, job.seed, job.device, job.log)
    claims = claims_frame(hessian_trace.claims(tables, job.settings))
    job.write(table=tables["table"], claims=claims)
    job.log.info("claims:\n%s", claims.to_string())
