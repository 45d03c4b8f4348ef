# Shared helpers: config validation at start-up, the figure inventory, per-job parameter sections.
from itertools import product

from samsde_workflow.config import task_setting, validate_config
from samsde_workflow.inventory import CLAIM_FRAGMENTS, FIGURES

validate_config(config)


# every job's Snakemake benchmark file (wall, CPU, memory), registered by benchmark_file() as the rules are
# defined; the pipeline_profile rule (claims.smk, included last) summarises them
PROFILED = []


def benchmark_file(rule_name, pattern=None, combinator=product, **wildcard_values):
    """results/benchmarks/<rule>[/<pattern>].tsv, the benchmark of a rule's jobs, registered for the profile
    (``combinator=zip`` when the wildcard values are given as aligned lists of the jobs).
    """
    job = f"{rule_name}/{pattern}" if pattern else rule_name
    path = f"results/benchmarks/{job}.tsv"
    PROFILED.extend(
        expand(path, combinator, **wildcard_values) if wildcard_values else [path]
    )
    return path


def all_figures():
    return expand("results/figures/{fig}.{ext}", fig=FIGURES, ext=["png", "pdf"])


def section(name):
    """One config section plus the base seed: a rule's params, so editing another section reruns nothing here."""
    return {"seed": config["seed"], "device": config["device"], name: config[name]}


# ---- weak_error stage
WE = config["weak_error"]


# one simulation job per (task, eta): every model of the task at that eta shares one Brownian path
WE_CELLS = {
    "task": [t for t in WE["tasks"] for _ in task_setting(config, t)["etas"]],
    "eta": [str(e) for t in WE["tasks"] for e in task_setting(config, t)["etas"]],
}


def weak_error_runs(name):
    """Every run's table ``name`` (errors, replicates or trajectories)."""
    return expand(
        "results/weak_error/runs/{task}/eta_{eta}/{name}.csv",
        zip,
        **WE_CELLS,
        name=[name] * len(WE_CELLS["eta"]),
    )


def weak_error_eta(wildcards):
    """The eta of a simulation job, as the config writes it (the wildcard is its str())."""
    etas = {str(e): e for e in task_setting(config, wildcards.task)["etas"]}
    return etas[wildcards.eta]


# panel order of the weak-error figures: as listed in the config
FIGURE_LAYOUT = dict(
    tasks=list(WE["tasks"]),
    algorithms=WE["algorithms"],
    scalings=list(WE["scalings"]),
    drift_ablation=list(WE.get("drift_ablation", WE["scalings"])),
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
