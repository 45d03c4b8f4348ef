"""Figure saddle: distance to the saddle over time, the basin-of-attraction sweep, and rho x |lambda| stay maps
(panels in samsde_workflow.insight_figures)."""

from samsde_workflow.insight_figures import saddle_figure
from samsde_workflow.job import Job
from samsde_workflow.plotting import log_marks, save_figure, set_style

with Job(snakemake) as job:
    set_style()
    fig, marks = saddle_figure(job.read("grid"), job.read("trajectories"), job.read("radius"))
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)
    log_marks(job.log, marks)
