"""Figure flat_minima: the two-well landscape, where each start ends (SGD vs SAM), and the flat-basin share vs rho
(panels in samsde_workflow.insight_figures)."""

from samsde_workflow.insight_figures import flat_minima_figure
from samsde_workflow.job import Job
from samsde_workflow.plotting import log_marks, save_figure, set_style

with Job(snakemake, "flat_minima") as job:
    set_style()
    fig, marks = flat_minima_figure(job.read("table"), job.read("paths"), job.settings)
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)
    log_marks(job.log, marks)
