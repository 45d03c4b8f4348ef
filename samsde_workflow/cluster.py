"""The slurm profile's per-rule resources, derived from a measured run.

    python -m samsde_workflow.cluster results/profile.csv        # rewrites workflow/profiles/slurm/config.yaml
                                                                 # and workflow/job_seconds.tsv

``results/profile.csv`` (rule ``pipeline_profile``) holds every job's wall time, CPU time and peak resident memory
from its Snakemake benchmark. Per rule, over its jobs:
- ``mem_mb``  = MEM_MARGIN x the largest peak RSS, rounded up to 100 MB, at least MIN_MEM_MB;
- ``runtime`` = TIME_MARGIN x the longest wall time, in whole minutes, at least MIN_RUNTIME_MIN;
- threads     = the CPUs the busiest job kept busy (CPU time / wall time, rounded up), never above the threads the
  rule declares: a job's torch thread count can change its floating-point sums, and a table must not depend on
  where the DAG ran. A rule whose jobs would use more is reported, not given more.
Every rule of the measured run gets all three, so no job falls back on the executor's defaults (which is what makes
the slurm executor warn "No wall time information given"). Rerun the command on a new default run whenever the code
changes what a job costs; a test checks that the committed profile covers every rule of the DAG.  The same run's
per-job wall times go to ``workflow/job_seconds.tsv``, the jobs' priorities (samsde_workflow.priorities).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd
import yaml

from samsde_workflow.priorities import JOB_SECONDS

PROFILE = Path(__file__).resolve().parent.parent / "workflow" / "profiles" / "slurm" / "config.yaml"
MEM_MARGIN, MIN_MEM_MB = 1.5, 1000
TIME_MARGIN, MIN_RUNTIME_MIN = 2.0, 10
MIB = 1.048576  # MB per MiB

HEADER = """\
# SLURM: every job of the DAG is a SLURM job.   pip install -e ".[slurm]"
#   snakemake --profile workflow/profiles/slurm --default-resources slurm_partition=<p> slurm_account=<a> --jobs 50
# (docs/cluster.md.) The per-rule resources below are GENERATED from a measured default run by
#   python -m samsde_workflow.cluster results/profile.csv
# do not edit them by hand: rerun that command on a new results/profile.csv.
"""


def rule_resources(profile: pd.DataFrame, declared_threads: dict[str, int]) -> pd.DataFrame:
    """One row per rule: measured peak RSS, wall and CPU load, and the mem_mb, runtime and threads to ask for.
    A rule of ``declared_threads`` that the run did not measure (the profile's own job, which has no benchmark) gets
    the floors."""
    per_rule = profile.assign(load=profile.cpu_s / profile.wall_s.clip(lower=1e-9)).groupby("rule")
    table = per_rule.agg(jobs=("job", "size"), peak_rss_mib=("max_rss_mib", "max"), wall_s=("wall_s", "max"),
                         load=("load", "max"))  # fmt: skip
    table = table.reindex(sorted(set(table.index) | set(declared_threads))).fillna({"jobs": 0, "load": 0.0})
    table["jobs"] = table.jobs.astype(int)
    rss, wall = table.peak_rss_mib.fillna(0.0), table.wall_s.fillna(0.0)
    table["mem_mb"] = [max(MIN_MEM_MB, 100 * math.ceil(MEM_MARGIN * r * MIB / 100)) for r in rss]
    table["runtime"] = [max(MIN_RUNTIME_MIN, math.ceil(TIME_MARGIN * w / 60)) for w in wall]
    table["declared_threads"] = [declared_threads.get(rule, 1) for rule in table.index]
    table["threads"] = [
        min(max(1, math.ceil(load - 0.05)), cap) for load, cap in zip(table.load, table.declared_threads, strict=True)
    ]
    return table


def profile_yaml(table: pd.DataFrame, source: str) -> str:
    """The slurm profile: fixed executor settings, then the generated per-rule resources."""
    settings = {
        "executor": "slurm",
        "jobs": 50,
        "latency-wait": 60,
        "retries": 1,
        # rules not in the measured run (none in the default DAG) get these
        "default-resources": {"mem_mb": 2000, "runtime": 30, "cpus_per_task": 1},
    }
    resources = {rule: {"mem_mb": int(row.mem_mb), "runtime": int(row.runtime)} for rule, row in table.iterrows()}
    threads = {rule: int(row.threads) for rule, row in table.iterrows()}
    notes = [
        f"# generated from {source}: mem_mb = {MEM_MARGIN} x peak RSS (>= {MIN_MEM_MB} MB), runtime = {TIME_MARGIN} x "
        f"wall (>= {MIN_RUNTIME_MIN} min), threads = CPUs used (<= the rule's threads)"
    ]
    for rule, row in table.iterrows():
        measured = (
            f"{int(row.jobs)} jobs, peak {row.peak_rss_mib:.0f} MiB, longest {row.wall_s:.0f} s, {row.load:.2f} CPUs"
        )
        notes.append(f"#   {rule}: " + (measured if row.jobs else "not measured (floors)"))
    body = yaml.safe_dump(settings, sort_keys=False)
    generated = yaml.safe_dump({"set-resources": resources, "set-threads": threads}, sort_keys=False)
    return HEADER + body + "\n".join(notes) + "\n" + generated


def declared_threads() -> dict[str, int]:
    """Every rule of the workflow but the target ``all``, with the threads it declares (``threads: n``; 1 if it
    declares none), read from the Snakefile and the rule files."""
    threads, rule = {}, None
    root = PROFILE.parents[3]
    for path in [root / "Snakefile", *sorted((root / "workflow" / "rules").glob("*.smk"))]:
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith("rule ") and stripped.endswith(":"):
                rule = stripped[5:-1].strip()
                threads[rule] = 1
            elif stripped.startswith("threads:") and rule is not None:
                threads[rule] = int(stripped.split(":", 1)[1])
    threads.pop("all", None)
    # the figure rules are made in a loop over the figure inventory (figures.smk), one thread each
    from samsde_workflow.inventory import FIGURES

    return threads | {f"figure_{fig}": 1 for fig in FIGURES if f"figure_{fig}" not in threads}


def job_seconds(profile: pd.DataFrame) -> pd.DataFrame:
    """rule, job, wall_s (one decimal) per measured job, longest first: the table of the jobs' priorities."""
    table = profile[["rule", "job", "wall_s"]].sort_values("wall_s", ascending=False, kind="stable")
    return table.assign(wall_s=table.wall_s.round(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile_csv", type=Path, help="results/profile.csv of a default run")
    parser.add_argument("--out", type=Path, default=PROFILE, help=f"profile to write (default {PROFILE})")
    parser.add_argument("--seconds-out", type=Path, default=JOB_SECONDS, help=f"job wall times (default {JOB_SECONDS})")
    args = parser.parse_args(argv)
    profile = pd.read_csv(args.profile_csv)
    job_seconds(profile).to_csv(args.seconds_out, sep="\t", index=False)
    table = rule_resources(profile, declared_threads())
    over = table[table.load > table.declared_threads + 0.5]
    for rule, row in over.iterrows():
        print(f"note: {rule} kept {row.load:.2f} CPUs busy with {row.declared_threads} thread(s)", file=sys.stderr)
    args.out.write_text(profile_yaml(table, args.profile_csv.as_posix()))
    print(table.to_string(float_format="%.2f"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
