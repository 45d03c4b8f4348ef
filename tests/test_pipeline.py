"""The whole DAG on the smoke config, end to end, in a scratch directory.

Checks what a user of `snakemake --cores 2` relies on: every figure of the inventory exists and is a valid image,
claims.csv has a row for every expected claim, every results table has a provenance sidecar, the report builds,
and a second run right after the first has nothing to do.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import yaml
from PIL import Image

from samsde_workflow.inventory import FIGURES

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "config.smoke.yaml"


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir)]
    cmd += ["--configfile", str(SMOKE), *args]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout[-4000:]}\n{out.stderr[-8000:]}")
    return out


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("smoke")
    snakemake(workdir, "--cores", "2")
    return workdir


def test_every_figure_is_a_valid_image(smoke_run):
    ids = list(FIGURES)
    assert len(ids) >= 7, ids
    for fig in ids:
        png = smoke_run / "results" / "figures" / f"{fig}.png"
        pdf = smoke_run / "results" / "figures" / f"{fig}.pdf"
        with Image.open(png) as im:
            im.verify()
        with Image.open(png) as im:
            assert im.size[0] > 200 and im.size[1] > 150, (fig, im.size)
        assert pdf.read_bytes()[:5] == b"%PDF-", fig


def test_claims_table_has_every_claim(smoke_run):
    claims = pd.read_csv(smoke_run / "results" / "claims.csv")
    assert claims.claim_id.is_unique
    assert set(claims.figure) >= set(list(FIGURES)) - {"trajectories"}, set(claims.figure)
    config = yaml.safe_load(SMOKE.read_text())
    we = config["weak_error"]
    ids = set(claims.claim_id)
    for task in we["tasks"]:
        assert {f"control.{task}", f"control.{task}.loss", f"solver_error.{task}"} <= ids
        for algorithm in we["algorithms"]:
            for scaling in we["scalings"]:
                for suffix in ("", ".loss"):  # both test functions
                    assert f"order1_own_sde.{task}.{algorithm}.{scaling}{suffix}" in ids
                    assert f"own_beats_sgd_sde.{task}.{algorithm}.{scaling}{suffix}" in ids
    assert claims.passed.isin([True, False]).all()
    for column in ("expected", "quantity"):
        assert claims[column].notna().all(), column
    # a value is missing only where nothing could be measured, and then the claim fails and says why (at the smoke
    # config's two etas a weak-error slope has fewer than 3 resolved points)
    unmeasured = claims[claims.value.isna()]
    assert (~unmeasured.passed).all() and unmeasured.note.str.contains("not a pass").all(), unmeasured.claim_id


def test_tables_are_tidy_with_provenance(smoke_run):
    tables = sorted((smoke_run / "results").rglob("*.csv"))
    assert tables
    for table in tables:
        assert Path(f"{table}.provenance.json").exists(), table
    errors = pd.read_csv(smoke_run / "results" / "weak_error" / "errors.csv")
    required = {"task", "algorithm", "model", "eta", "rho", "alpha", "statistic", "rel_error", "ci_low", "ci_high"}
    required |= {"floor", "resolved", "solver_error", "solver_floor"}
    assert required <= set(errors.columns)
    assert set(errors.statistic) == {"grad_norm_plus_norm", "loss"}
    slopes = pd.read_csv(smoke_run / "results" / "weak_error" / "slopes.csv")
    assert {"n_points", "usable", "max_solver_share"} <= set(slopes.columns)
    traj = pd.read_csv(next((smoke_run / "results" / "weak_error" / "runs").rglob("trajectories.csv")))
    required = {"task", "algorithm", "model", "eta", "rho", "alpha", "step", "time", "statistic", "mean", "sem"}
    required |= {"n_paths"}
    assert required <= set(traj.columns)
    assert set(traj.model) == {"discrete", "own_sde", "sgd_sde", "drift_only"}


def test_second_run_does_nothing(smoke_run):
    out = snakemake(smoke_run, "--cores", "2", "-n")
    assert "Nothing to be done" in out.stdout + out.stderr, out.stdout[-3000:]


def test_changing_one_parameter_reruns_only_its_rules(smoke_run, tmp_path):
    config = yaml.safe_load(SMOKE.read_text())
    config["saddle"]["sigma"] = config["saddle"]["sigma"] * 2
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(config, sort_keys=False))  # params are compared as written
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(smoke_run)]
    out = subprocess.run([*cmd, "--configfile", str(edited), "-n", "--quiet", "rules"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    rules = {line.split()[0] for line in out.stdout.splitlines() if line.strip() and line.split()[-1].isdigit()}
    rules -= {"total", "job", "Job"}
    # the profile summarises every job's benchmark file, so it follows any rerun
    expected = {"saddle", "figure_saddle", "claims", "claims_report", "provenance", "pipeline_profile", "results_page",
                "all"}  # fmt: skip
    assert rules == expected, out.stdout


def test_profile_has_every_job(smoke_run):
    """results/profile.csv: one row per job of the DAG (all but the profile itself and the target), measured times."""
    profile = pd.read_csv(smoke_run / "results" / "profile.csv")
    jobs = list((smoke_run / "results" / "benchmarks").rglob("*.tsv"))
    assert len(profile) == len(jobs) >= 30  # 34 jobs on the smoke config
    assert {"simulate_weak_error", "saddle", "figure_weak_error", "lecture_sam_vs_sgd", "claims"} <= set(profile.rule)
    assert (profile.wall_s > 0).all() and (profile.cpu_s >= 0).all() and (profile.max_rss_mib > 0).all()
    assert profile.wall_s.is_monotonic_decreasing


class TableRows(HTMLParser):
    """The rows of an HTML table that have an id: id -> (class, text of each cell)."""

    def __init__(self):
        super().__init__()
        self.rows, self._row, self._cell = {}, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "id" in attrs:
            self._row = attrs["id"]
            self.rows[self._row] = (attrs.get("class"), [])
        elif tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[self._row][1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def report_variable(html: str, name: str):
    """A JSON variable of the report's single-page app (``<script id="results"> var results = {...};``)."""
    start = html.index(f"var {name} = ", html.index(f'<script id="{name}">')) + len(f"var {name} = ")
    return json.JSONDecoder().raw_decode(html, start)[0]


def page_rows(result: dict) -> dict:
    """The claim rows of an HTML result of the report, decoded from its embedded data URI."""
    assert result["mime_type"] == "text/html", result["name"]
    parser = TableRows()
    parser.feed(base64.b64decode(result["data_uri"].split("base64,", 1)[1]).decode())
    return parser.rows


def test_report_builds(smoke_run):
    snakemake(smoke_run, "--report", "results/report.html")
    html = (smoke_run / "results" / "report.html").read_text(errors="ignore")
    assert len(html) > 10_000
    # the front page states the claims summary of this run (results_page's fragment) and shows the headline figure
    claims = pd.read_csv(smoke_run / "results" / "claims.csv")
    assert f"Claims: {int(claims.passed.sum())} of {len(claims)} pass." in html
    assert 'alt=\\"weak_error.png\\"' in html or 'alt="weak_error.png"' in html
    page = (smoke_run / "results" / "results.md").read_text()
    assert f"## Claims: {int(claims.passed.sum())} of {len(claims)} pass" in page


def test_report_holds_the_claims_table_next_to_each_figure(smoke_run):
    """A reviewer reads the claims in the report: every row of claims.csv, with its value, interval, expected value
    and verdict, in a page of its figure's category listed right after the figure, and all rows in "Claims"."""
    report = smoke_run / "results" / "report.html"
    if not report.exists():
        snakemake(smoke_run, "--report", "results/report.html")
    html = report.read_text()
    results, categories = report_variable(html, "results"), report_variable(html, "categories")
    claims = pd.read_csv(smoke_run / "results" / "claims.csv")

    def check_rows(rows, expected):
        assert set(rows) == set(expected.claim_id), set(rows) ^ set(expected.claim_id)
        for c in expected.itertuples():
            word = "pass" if c.passed else "fail"
            css, (claim, value, interval, wanted, verdict, _) = rows[c.claim_id]
            assert (css, verdict) == (word, word), c.claim_id
            assert c.claim_id in claim and c.claim in claim and wanted == c.expected, c.claim_id
            assert value == ("not measured" if pd.isna(c.value) else f"{c.value:.4g}"), (c.claim_id, value)
            assert interval == ("none" if pd.isna(c.ci_low) else f"[{c.ci_low:.4g}, {c.ci_high:.4g}]"), c.claim_id

    for fig, category in FIGURES.items():
        paths = [p for sub in categories[category].values() for p in sub]
        png, page = f"results/figures/{fig}.png", f"results/report/claims_{fig}.html"
        assert png in paths and page in paths, (fig, category)
        rows = claims[claims.figure == fig]
        label = f"{fig} claims: " + (f"{int(rows.passed.sum())} of {len(rows)} pass" if len(rows) else "none")
        assert results[png]["labels"] == {"figure": fig} and results[page]["labels"] == {"figure": label}
        check_rows(page_rows(results[page]), rows)
    [page] = [p for sub in categories["Claims"].values() for p in sub]
    check_rows(page_rows(results[page]), claims)


SLURM_PROFILE = ROOT / "workflow" / "profiles" / "slurm"
# on a throw-away cluster: no accounting daemon (squeue, not sacct), no accounts, and a short first status check
SLURM_CI = ["--slurm-status-command", "squeue", "--slurm-no-account", "--slurm-init-seconds-before-status-checks", "2"]


def slurm_ready() -> bool:
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "idle" in out.stdout


def measured(workdir: Path) -> dict[str, bytes]:
    """Every table and sidecar of a run but the profile's (a measurement of this run, not reproducible)."""
    paths = sorted(p for p in (workdir / "results").rglob("*.csv*") if not p.name.startswith("profile.csv"))
    return {str(p.relative_to(workdir)): p.read_bytes() for p in paths}


@pytest.mark.skipif(
    not os.environ.get("SAMSDE_SLURM") and not slurm_ready(),
    reason="no SLURM here: `.ci/slurm.sh up` brings one up (CI sets SAMSDE_SLURM=1)",
)
def test_slurm_profile_writes_the_tables_of_a_local_run(smoke_run, tmp_path):
    """The smoke DAG submitted through workflow/profiles/slurm, every job a SLURM job, writes every table byte for
    byte as the local run of the same commit, and the executor warns about nothing (every rule has its resources)."""
    assert slurm_ready(), "SAMSDE_SLURM is set but sinfo shows no idle node: run `.ci/slurm.sh up` first"
    workdir = tmp_path / "slurm"
    out = snakemake(workdir, "--profile", str(SLURM_PROFILE), *SLURM_CI, "--default-resources", "slurm_partition=ci")
    submitted = out.stderr.count("has been submitted with SLURM jobid")
    local = pd.read_csv(smoke_run / "results" / "profile.csv")
    assert submitted == len(local) + 1, submitted  # every job but the target rule, the profile's own included
    # the executor's warning about a job without a runtime has no "warning" in it
    lines = (out.stdout + out.stderr).splitlines()
    warnings = [line for line in lines if "warn" in line.lower() or "No wall time information" in line]
    assert not warnings, warnings
    slurm, reference = measured(workdir), measured(smoke_run)
    assert len(reference) >= 150 and slurm.keys() == reference.keys(), set(slurm) ^ set(reference)
    differ = [name for name in reference if slurm[name] != reference[name]]
    assert not differ, f"{len(differ)} of {len(reference)} tables differ from the local run: {differ[:10]}"
