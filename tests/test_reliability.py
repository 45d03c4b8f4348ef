"""Reliability of the pipeline: killed runs recover without truncated outputs and reruns are byte-identical (the
slurm profile's run is checked against a local one in test_pipeline.py)."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
TARGET = "results/claims/weak_error.csv"


def tiny_config(tmp_path: Path, n_paths: int = 200) -> Path:
    """The smoke config restricted to the quadratic task: a few jobs of a few seconds each.  The Snakefile merges
    a --configfile over config.yaml, where the other tasks stay: ``run`` selects the quadratic."""
    config = yaml.safe_load((ROOT / "config.smoke.yaml").read_text())
    we = config["weak_error"]
    we["tasks"] = {"quadratic": copy.deepcopy(we["tasks"]["quadratic"])}
    config["run"] = {"stages": ["weak_error"], "tasks": ["quadratic"]}
    we["n_paths"] = n_paths
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake_cmd(workdir: Path, config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
            "--configfile", str(config), *args]  # fmt: skip


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kw)
    assert out.returncode == 0, f"{' '.join(cmd)}\n{out.stdout[-3000:]}\n{out.stderr[-6000:]}"
    return out


def result_tables(workdir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(workdir)): p.read_bytes() for p in sorted((workdir / "results").rglob("*.csv"))}


def test_rerun_gives_byte_identical_tables(tmp_path):
    config = tiny_config(tmp_path)
    first_dir, second_dir = tmp_path / "a", tmp_path / "b"
    run(snakemake_cmd(first_dir, config, "--cores", "2", TARGET))
    run(snakemake_cmd(second_dir, config, "--cores", "2", TARGET))
    first, second = result_tables(first_dir), result_tables(second_dir)
    assert len(first) >= 4 and first.keys() == second.keys()
    for name in first:
        assert first[name] == second[name], f"{name} differs between two runs of the same config"


def test_killed_run_recovers_without_truncated_outputs(tmp_path):
    config = tiny_config(tmp_path, n_paths=2000)
    workdir = tmp_path / "w"
    proc = subprocess.Popen(
        snakemake_cmd(workdir, config, "--cores", "2", TARGET),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    # kill the whole process group (Snakemake and its jobs) once simulation jobs are running
    logs = workdir / "logs" / "simulate_weak_error"
    deadline = time.time() + 300
    while time.time() < deadline and not (logs.exists() and any(logs.rglob("*.log"))):
        time.sleep(0.5)
    time.sleep(2.0)
    assert proc.poll() is None, "the run finished before it could be killed: make the tiny config larger"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (workdir / TARGET).exists()
    for table in (workdir / "results").rglob("*.csv") if (workdir / "results").exists() else []:
        pd.read_csv(table)  # whatever exists is complete (written atomically)

    # a SIGKILLed Snakemake leaves its lock behind, and the outputs of a job killed between two of its tables marked
    # incomplete: the documented recovery is --unlock, then the same command with --rerun-incomplete
    run(snakemake_cmd(workdir, config, "--unlock"))
    run(snakemake_cmd(workdir, config, "--cores", "2", "--rerun-incomplete", TARGET))
    for table in (workdir / "results").rglob("*.csv"):
        frame = pd.read_csv(table)
        assert len(frame) > 0, table
        assert Path(f"{table}.provenance.json").exists(), table
    claims = pd.read_csv(workdir / TARGET)
    assert claims.claim_id.str.startswith("order1_own_sde.quadratic").any()


@pytest.mark.parametrize("linter", ["ruff", "snakefmt", "lint"])
def test_conventions(linter):
    """ruff check, snakefmt --check and snakemake --lint report nothing."""
    if linter == "ruff":
        cmd = [sys.executable, "-m", "ruff", "check", "."]
    elif linter == "snakefmt":
        cmd = ["snakefmt", "--check", "Snakefile", "workflow/rules"]
    else:
        cmd = [sys.executable, "-m", "snakemake", "--lint", "--cores", "1"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
