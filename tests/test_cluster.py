"""The slurm profile's resources come from a measured run (samsde_workflow.cluster) and cover every rule."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
import yaml

from samsde_workflow import cluster


def profile_rows(*rows):
    return pd.DataFrame(rows, columns=["rule", "job", "wall_s", "cpu_s", "max_rss_mib"])


def test_resources_are_the_measurement_with_its_margins():
    profile = profile_rows(
        ("sim", "a", 900.0, 850.0, 2000.0),  # 15 min, 2000 MiB = 2097 MB: 1.5x -> 3146 -> 3200 MB, 2x -> 30 min
        ("sim", "b", 100.0, 20.0, 100.0),
        ("fig", "-", 5.0, 4.0, 300.0),  # below both floors
        ("busy", "-", 10.0, 19.0, 500.0),  # 1.9 CPUs busy on a 1-thread rule: not given more
        ("wide", "-", 10.0, 15.0, 500.0),  # 1.5 CPUs busy, declares 4 threads: 2
    )
    table = cluster.rule_resources(profile, {"sim": 1, "fig": 1, "busy": 1, "wide": 4, "gather": 1})
    assert table.loc["sim", ["jobs", "mem_mb", "runtime", "threads"]].tolist() == [2, 3200, 30, 1]
    assert table.loc["fig", ["mem_mb", "runtime"]].tolist() == [cluster.MIN_MEM_MB, cluster.MIN_RUNTIME_MIN]
    assert table.loc["busy", "threads"] == 1 and table.loc["wide", "threads"] == 2
    # a rule the run did not measure gets the floors, so it too has a runtime
    assert table.loc["gather", ["jobs", "mem_mb", "runtime", "threads"]].tolist() == [0, 1000, 10, 1]


def test_the_command_writes_a_profile_with_every_rule(tmp_path):
    csv, out = tmp_path / "profile.csv", tmp_path / "config.yaml"
    profile_rows(("simulate_weak_error", "quadratic/eta_0.1", 60.0, 50.0, 600.0)).to_csv(csv, index=False)
    assert cluster.main([str(csv), "--out", str(out), "--seconds-out", str(tmp_path / "job_seconds.tsv")]) == 0
    written = yaml.safe_load(out.read_text())
    assert written["set-resources"]["simulate_weak_error"] == {"mem_mb": 1000, "runtime": 10}
    assert set(written["set-resources"]) == set(written["set-threads"]) == set(cluster.declared_threads())


@pytest.mark.parametrize("key", ["set-resources", "set-threads"])
def test_the_committed_profile_covers_every_rule(key):
    """No rule falls back on the executor's defaults (the executor warns 'No wall time information given')."""
    committed = yaml.safe_load(cluster.PROFILE.read_text())
    rules = cluster.declared_threads()
    listed = subprocess.run([sys.executable, "-m", "snakemake", "--list-rules"], capture_output=True, text=True,
                            cwd=cluster.PROFILE.parents[3], check=True).stdout.split()  # fmt: skip
    assert set(rules) == set(listed) - {"all"}, set(rules) ^ (set(listed) - {"all"})
    assert {"simulate_weak_error", "pipeline_profile", "claims", "figure_svag_scale"} <= set(rules)
    assert set(committed[key]) == set(rules), set(committed[key]) ^ set(rules)
    if key == "set-resources":
        assert all(set(r) == {"mem_mb", "runtime"} for r in committed[key].values())
    else:
        assert all(committed[key][rule] <= rules[rule] for rule in rules)


def test_job_priorities_are_the_measured_wall_times_longest_first(tmp_path):
    """The command writes workflow/job_seconds.tsv from the same run; a job's priority is its whole seconds, a job
    the table does not list gets 0, and the wildcards format the job label of the rule's benchmark file."""
    from samsde_workflow.priorities import job_priority, load_job_seconds

    csv, out, seconds = tmp_path / "profile.csv", tmp_path / "config.yaml", tmp_path / "job_seconds.tsv"
    profile_rows(
        ("simulate_weak_error", "iris/eta_0.1", 30.4, 25.0, 500.0),
        ("simulate_weak_error", "breast_cancer/eta_0.00625", 441.8, 420.0, 600.0),
        ("saddle", "-", 20.0, 19.0, 300.0),
    ).to_csv(csv, index=False)
    assert cluster.main([str(csv), "--out", str(out), "--seconds-out", str(seconds)]) == 0
    assert seconds.read_text().splitlines()[1] == "simulate_weak_error\tbreast_cancer/eta_0.00625\t441.8"
    table = load_job_seconds(seconds)
    cell = job_priority(table, "simulate_weak_error", "{task}/eta_{eta}")
    assert cell({"task": "breast_cancer", "eta": "0.00625"}) == 442 and cell({"task": "iris", "eta": "0.1"}) == 30
    assert cell({"task": "quadratic", "eta": "0.1"}) == 0
    assert job_priority(table, "saddle") == 20 and job_priority(table, "flat_minima") == 0
    assert load_job_seconds(tmp_path / "absent.tsv") == {}


def test_the_committed_job_seconds_name_rules_of_the_dag():
    from samsde_workflow.priorities import JOB_SECONDS, load_job_seconds

    assert {rule for rule, _ in load_job_seconds(JOB_SECONDS)} <= set(cluster.declared_threads())
