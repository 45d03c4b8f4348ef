# Shared helpers: config validation at start-up, the figure inventory, per-job parameter sections.
import sys
from itertools import product

import yaml

from samsde_workflow.config import (
    ConfigError,
    resolve_config,
    selected_tasks,
    stage_section,
    task_setting,
    validate_config,
)
from samsde_workflow.claims import report_label
from samsde_workflow.inventory import FIGURE_STAGE, FIGURES, selected
from samsde_workflow.priorities import job_priority, load_job_seconds


# The run's config: the user's --configfile files and --config values over config.yaml (docs/configuration.md:
# Snakemake's key-by-key merge, except that a task's params keep only the form the user's file names), checked
# before any job.  A bad value ends the run here: its lines once, no traceback, exit status 1, nothing created.
def _run_config():
    settings = workflow.config_settings
    defaults = (
        {} if settings.replace_workflow_config else yaml.safe_load(open(DEFAULTS_FILE))
    )
    try:
        return validate_config(resolve_config(defaults, settings.overwrite_config))
    except ConfigError as err:
        sys.exit(str(err))


_resolved = _run_config()
config.clear()
config.update(_resolved)

# lecture_sam_vs_sgd runs once per label set: wildcard value -> share of training labels replaced at random
SAM_LABELS = {"true": 0.0} | {
    f"noise_{round(100 * share)}": share
    for share in config["lecture"]["sam_vs_sgd"]["label_noise"]
}

# what the default target builds: the figures and claim fragments of the stages of run.stages (sam_vs_sgd's
# fragment: one per label set)
RUN_FIGURES, RUN_FRAGMENTS = selected(config["run"]["stages"])
RUN_FRAGMENTS = [
    part
    for fragment in RUN_FRAGMENTS
    for part in (
        [f"sam_vs_sgd.{labels}" for labels in SAM_LABELS]
        if fragment == "sam_vs_sgd"
        else [fragment]
    )
]


# every job's Snakemake benchmark file (wall, CPU, memory), registered by benchmark_file() as the rules are
# defined; the pipeline_profile rule (claims.smk, included last) summarises them
PROFILED = []


def benchmark_file(
    rule_name, pattern=None, combinator=product, stage=None, **wildcard_values
):
    """results/benchmarks/<rule>[/<pattern>].tsv, the benchmark of a rule's jobs, registered for the profile
    (``combinator=zip`` when the wildcard values are given as aligned lists of the jobs) if the rule's ``stage``
    runs (``None``: every run has the rule).
    """
    job = f"{rule_name}/{pattern}" if pattern else rule_name
    path = f"results/benchmarks/{job}.tsv"
    if stage is None or stage in config["run"]["stages"]:
        PROFILED.extend(
            expand(path, combinator, **wildcard_values) if wildcard_values else [path]
        )
    return path


def all_figures():
    return expand("results/figures/{fig}.{ext}", fig=RUN_FIGURES, ext=["png", "pdf"])


# longest job first: a job's priority is its wall time in a measured default run (samsde_workflow.priorities)
JOB_SECONDS = load_job_seconds()


def measured_priority(rule_name, pattern=None):
    return job_priority(JOB_SECONDS, rule_name, pattern)


def section(name):
    """One config section plus the base seed: a rule's params, so editing another section reruns nothing here."""
    return {"seed": config["seed"], "device": config["device"], name: config[name]}


# ---- weak_error stages: Gaussian noise (weak_error) and real mini-batches (weak_error_minibatch)
WE = config["weak_error"]
WE_MB = config["weak_error_minibatch"]


def stage_cells(stage):
    """One simulation job per (selected task, eta): every model of the task at that eta shares one Brownian
    path."""
    tasks = selected_tasks(config, stage)
    return {
        "task": [t for t in tasks for _ in task_setting(config, t, stage)["etas"]],
        "eta": [str(e) for t in tasks for e in task_setting(config, t, stage)["etas"]],
    }


WE_CELLS = stage_cells("weak_error")
WE_MB_CELLS = stage_cells("weak_error_minibatch")


def stage_runs(stage, name):
    """Every run's table ``name`` (errors, replicates or trajectories) of a stage."""
    cells = stage_cells(stage)
    return expand(
        f"results/{stage}/runs/{{task}}/eta_{{eta}}/{{name}}.csv",
        zip,
        **cells,
        name=[name] * len(cells["eta"]),
    )


def weak_error_runs(name):
    return stage_runs("weak_error", name)


def stage_eta(stage):
    """The eta of a simulation job, as the config writes it (the wildcard is its str())."""

    def eta(wildcards):
        etas = {str(e): e for e in task_setting(config, wildcards.task, stage)["etas"]}
        return etas[wildcards.eta]

    return eta


# panel order of the weak-error figures: as listed in the config
FIGURE_LAYOUT = dict(
    tasks=selected_tasks(config, "weak_error"),
    algorithms=WE["algorithms"],
    scalings=list(WE["scalings"]),
    drift_ablation=list(WE.get("drift_ablation", WE["scalings"])),
)
MINIBATCH_LAYOUT = dict(
    tasks=selected_tasks(config, "weak_error_minibatch"),
    algorithms=WE_MB["algorithms"],
    scalings=list(WE_MB["scalings"]),
    batch_sizes={
        t: task_setting(config, t, "weak_error_minibatch")["noise"]["batch_size"]
        for t in selected_tasks(config, "weak_error_minibatch")
    },
)


# ---- lecture stage
LECTURE = config["lecture"]


def lecture_section(*names):
    """The lecture's shared data and model settings, the named sub-sections and the base seed: a rule's params,
    so editing another sub-section (or another stage) reruns nothing here."""
    return {
        "seed": config["seed"],
        "data": LECTURE["data"],
        "model": LECTURE["model"],
        **{name: LECTURE[name] for name in names},
    }


# ---- the claims pages of the report (claims.smk): a page's label, its count of passing claims, is read when the
# report is built
def claims_label(fig=None):
    return lambda wildcards, input: {
        "figure" if fig else "table": report_label(input[0], fig)
    }
