"""Diverging runs end to end: the weak-error and mini-batch stages on settings where runs diverge, through Snakemake.

The DAG must end with exit 0, every figure of both stages, the claims and the report; the errors tables record the
divergence (``diverged`` rows), each figure marks it in exactly the panels whose rows diverged (its rule log has one
``marked <panel>: ...`` line per marked panel, written by samsde_workflow.plotting.log_marks), and every claim whose
fit saw a diverged run fails and says so.

The settings: the weak-error stage on the user quadratic of spectrum [30, 1] (eta lambda_max = 3 > 2 at eta = 0.1:
gradient descent is unstable) with the horizon T = 2 of config.yaml, where every USAM run at both smoke etas
passes the blow-up bound; the mini-batch stage on matrix sensing (a quartic: once unstable, an iterate blows up
within a few steps) at etas [0.2, 0.1] over T = 1, where some paths of the discrete runs and of the SDEs diverge at
eta = 0.2 (at the smoke config's seed).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from PIL import Image

from samsde_workflow.inventory import STAGE_FIGURES

ROOT = Path(__file__).resolve().parent.parent
STAGES = ["weak_error", "weak_error_minibatch"]
MARK = re.compile(r"marked (.+?): (.*)$")


def diverging_config() -> dict:
    config = yaml.safe_load((ROOT / "config.smoke.yaml").read_text())
    config["run"] = {"stages": STAGES, "tasks": ["quadratic", "matrix_sensing"]}
    quadratic = config["weak_error"]["tasks"]["quadratic"]
    quadratic["params"] = {"spectrum": [30.0, 1.0], "x0": [1.0, -1.0]}
    quadratic["horizon"] = 2.0
    sensing = {"n": 4, "rank": 1, "k": 4, "n_measurements": 8, "init_scale": 0.3, "seed": 0}
    config["weak_error_minibatch"]["tasks"]["matrix_sensing"] = {
        "source": "reconstructed",
        "params": sensing,
        "batch_size": 2,
        "etas": [0.2, 0.1],
        "horizon": 1.0,
    }
    return config


def run_snakemake(workdir: Path, configfile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.run([*cmd, "--configfile", str(configfile), *args], capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def diverged_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("diverged")
    configfile = workdir / "diverging.yaml"
    configfile.write_text(yaml.safe_dump(diverging_config(), sort_keys=False))
    out = run_snakemake(workdir, configfile, "--cores", "2")
    assert out.returncode == 0, f"{out.stdout[-3000:]}\n{out.stderr[-6000:]}"
    report = run_snakemake(workdir, configfile, "--report", "results/report.html")
    assert report.returncode == 0, report.stderr[-6000:]
    return workdir


def marks(workdir: Path, figure: str) -> dict[str, str]:
    """panel -> its marks, from the figure rule's log."""
    lines = (workdir / "logs" / "figures" / f"{figure}.log").read_text().splitlines()
    return dict(m.groups() for m in map(MARK.search, lines) if m)


def diverged_panels(errors: pd.DataFrame, keys: list[str]) -> dict[str, str]:
    """panel -> "diverged at eta = ..." for the panels (rows grouped by ``keys``) with diverged rows."""
    bad = errors[errors.diverged]
    etas = bad.groupby(keys).eta.agg(lambda e: ", ".join(f"{v:g}" for v in sorted(set(e))))
    return {", ".join(k): f"diverged at eta = {v}" for k, v in etas.items()}


def test_every_figure_claims_and_report(diverged_run):
    for fig in (f for stage in STAGES for f in STAGE_FIGURES[stage]):
        with Image.open(diverged_run / "results" / "figures" / f"{fig}.png") as im:
            im.verify()
        assert (diverged_run / "results" / "figures" / f"{fig}.pdf").read_bytes()[:5] == b"%PDF-", fig
    assert (diverged_run / "results" / "report.html").stat().st_size > 10_000
    assert len(pd.read_csv(diverged_run / "results" / "claims.csv")) > 0


@pytest.mark.parametrize("stage", STAGES)
def test_divergence_recorded_and_marked_in_its_panels(diverged_run, stage):
    errors = pd.read_csv(diverged_run / "results" / stage / "errors.csv")
    errors["scaling"] = errors.scaling.astype(str)
    assert errors.diverged.any() and (~errors.diverged).any(), stage  # the settings diverge in part
    if stage == "weak_error":
        panels = {"weak_error": (errors[errors.model.isin(["own_sde", "sgd_sde"])], ["task", "algorithm", "scaling"])}
        ablation = errors[(errors.statistic == "grad_norm_plus_norm") & (errors.model != "additive_formula")]
        panels["drift_ablation"] = (ablation[ablation.scaling.isin(["sqrt", "none"])], ["task", "algorithm", "scaling"])
    else:
        keys = ["task", "algorithm", "scaling", "statistic"]
        mini = errors[errors.model.isin(["own_sde", "sgd_sde", "additive_formula"])]
        panels = {"weak_error_minibatch": (mini, keys)}
    for figure, (rows, keys) in panels.items():
        expected = diverged_panels(rows, keys)
        found = {p: m for p, m in marks(diverged_run, figure).items() if "diverged at eta" in m}
        if figure == "drift_ablation":  # its panels: the algorithms at the ablation's scalings (no SGD control)
            expected = {p: m for p, m in expected.items() if ", sgd, " not in p}
        assert expected, figure
        assert set(found) == set(expected), (figure, set(found) ^ set(expected))
        for panel, text in expected.items():
            assert text in found[panel], (figure, panel, found[panel])


def test_trajectories_mark_diverged_paths(diverged_run):
    runs = diverged_run / "results" / "weak_error" / "runs" / "quadratic"
    traj = pd.read_csv(runs / "eta_0.1" / "trajectories.csv")
    usam = traj[(traj.algorithm == "usam") & (traj.alpha == 0.5) & (traj.model == "own_sde")]
    assert usam.n_paths.min() < usam.n_paths.max()  # the USAM SDE loses paths at eta = 0.1
    found = marks(diverged_run, "trajectories")
    assert "own SDE: paths diverge from t = " in found["quadratic, usam, grad_norm_plus_norm"]


def test_claims_of_diverged_fits_fail_and_say_why(diverged_run):
    claims = pd.read_csv(diverged_run / "results" / "claims.csv")
    note = claims.note.fillna("")
    said = claims[note.str.contains("diverged runs present")]  # a slope fit with diverged points among its etas
    assert len(said) and not said.passed.any()
    assert {"weak_error", "weak_error_minibatch"} <= set(said.figure), set(said.figure)
    # a claim at the smallest eta whose rows diverged there names them (its value is then not measured)
    usam = claims.set_index("claim_id").loc["own_beats_sgd_sde.quadratic.usam.sqrt"]
    assert not usam.passed and "diverged runs at eta = 0.05 (drift_only, own_sde, sgd_sde)" in usam.note, usam.note
    # every claim of these stages without a value fails and says why
    unmeasured = claims[claims.value.isna()]
    assert len(unmeasured) and not unmeasured.passed.any()
    why = unmeasured.note.fillna("").str.contains("diverged|not a pass")
    assert why.all(), unmeasured[~why].claim_id.tolist()
