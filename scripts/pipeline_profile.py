"""The pipeline's profile: every job's wall time, CPU time and peak memory from its Snakemake benchmark file.

Writes results/profile.csv (one row per job, slowest first) and a bar chart of the slowest jobs: measurements of
this run on this machine, which unlike every other table are not reproducible bit for bit."""

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from samsde_workflow.io import write_table
from samsde_workflow.logs import rule_logging
from samsde_workflow.plotting import finish, save_figure, set_style

ROOT = Path("results/benchmarks")
STAGES = dict.fromkeys(["simulate_weak_error", "weak_error_table"], "weak error")
STAGES |= dict.fromkeys(["simulate_weak_error_minibatch", "weak_error_minibatch_table"], "weak error, mini-batch")
SHOWN = 25  # jobs in the chart


def stage(rule: str) -> str:
    if rule in STAGES:
        return STAGES[rule]
    if rule.startswith("figure_"):
        return "figures"
    if rule.startswith("lecture_"):
        return "lecture"
    if rule in ("claims", "claims_report", "provenance"):
        return "claims and provenance"
    return "insights"


def job_row(path: Path) -> dict:
    bench = pd.read_csv(path, sep="\t").iloc[-1]  # the last repeat (Snakemake's repeat() is not used here)
    parts = path.relative_to(ROOT).with_suffix("").parts
    rule, job = parts[0], "/".join(parts[1:]) or "-"
    return {"rule": rule, "job": job, "stage": stage(rule), "wall_s": float(bench["s"]),
            "cpu_s": float(bench["cpu_time"]), "max_rss_mib": float(bench["max_rss"]),
            "mean_load_pct": float(bench["mean_load"])}


with rule_logging(snakemake) as log:
    table = pd.DataFrame([job_row(Path(p)) for p in snakemake.input])
    table = table.sort_values("wall_s", ascending=False, ignore_index=True)
    table["share_of_job_time"] = table.wall_s / table.wall_s.sum()
    write_table(table, snakemake.output.table, {"jobs": len(table)}, None, rule="pipeline_profile")
    by_rule = table.groupby("rule")[["wall_s", "cpu_s"]].sum().sort_values("wall_s", ascending=False)
    log.info("%d jobs, %.0f s of job wall time, %.0f s CPU", len(table), table.wall_s.sum(), table.cpu_s.sum())
    log.info("per rule:\n%s", by_rule.to_string(float_format="%.1f"))

    set_style()
    shown = table.head(SHOWN).assign(label=lambda t: t.rule + " " + t.job.where(t.job != "-", ""))
    fig, ax = plt.subplots(figsize=(7.5, 0.28 * len(shown) + 1.2))
    sns.barplot(data=shown, y="label", x="wall_s", hue="stage", dodge=False, ax=ax)
    ax.set(xlabel="wall time of the job (s)", ylabel="")
    ax.legend(title="stage", loc="lower right", fontsize=8)
    finish(fig, f"Slowest {len(shown)} of {len(table)} jobs: {table.wall_s.sum():.0f} s job wall time, "
                f"{table.cpu_s.sum():.0f} s CPU in total")
    save_figure(fig, snakemake.output.png)
