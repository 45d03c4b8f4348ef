"""Longest job first: each job's Snakemake priority is its measured wall time in a default run.

On 2 cores the default DAG is throughput-bound, and Snakemake, which knows nothing of a job's cost, may start the
longest job (the Breast Cancer weak-error cell at the smallest eta, ~7 min) last, with one core idle while it runs
alone.  ``workflow/job_seconds.tsv`` (rule, job, wall_s: one row per job of a measured default run, written with the
slurm profile by ``python -m samsde_workflow.cluster results/profile.csv``) gives every job a priority, so the longest
start first.  A job the table does not list (a new task, a changed config) gets priority 0: it runs after the
measured ones, and nothing else changes.  Priorities order the jobs; they never change what a job computes.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

JOB_SECONDS = Path(__file__).resolve().parent.parent / "workflow" / "job_seconds.tsv"


def load_job_seconds(path: Path = JOB_SECONDS) -> dict[tuple[str, str], int]:
    """(rule, job) -> whole seconds of wall time; {} when the table is absent."""
    if not path.exists():
        return {}
    with path.open() as f:
        return {(row["rule"], row["job"]): round(float(row["wall_s"])) for row in csv.DictReader(f, delimiter="\t")}


def job_priority(seconds: dict[tuple[str, str], int], rule: str, pattern: str | None = None) -> int | Callable:
    """A rule's ``priority:``: its measured seconds (one-job rules, job "-"), or for a rule with wildcards a function
    of them formatting ``pattern`` (the job label of its benchmark file, e.g. "{task}/eta_{eta}")."""
    if pattern is None:
        return seconds.get((rule, "-"), 0)
    return lambda wildcards: seconds.get((rule, pattern.format(**wildcards)), 0)
