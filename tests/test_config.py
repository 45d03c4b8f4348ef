"""Config validation: every bad value is rejected before any job starts, with a message naming key and value."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from samsde_workflow.config import ConfigError, task_setting, validate_config

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = yaml.safe_load((ROOT / "config.yaml").read_text())


def edited(edit) -> dict:
    config = copy.deepcopy(DEFAULT)
    edit(config)
    return config


def setitem(path: str, value):
    """An edit that sets config[a][b]... = value for path 'a.b...' (integers index lists)."""

    def edit(config):
        *parents, last = path.split(".")
        node = config
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(last) if last.isdigit() else last] = value

    return edit


def delitem(path: str):
    def edit(config):
        *parents, last = path.split(".")
        node = config
        for key in parents:
            node = node[key]
        del node[last]

    return edit


# (edit, substrings the message must contain: the key and the offending value)
BAD = {
    "negative eta": (setitem("weak_error.etas", [0.1, -0.05]), ["weak_error.etas[1]", "-0.05"]),
    "zero eta": (setitem("weak_error.etas", [0.0]), ["weak_error.etas[0]", "0.0"]),
    "empty eta list": (setitem("weak_error.etas", []), ["weak_error.etas", "[]"]),
    "eta is a string": (setitem("weak_error.etas", ["fast"]), ["weak_error.etas[0]", "fast"]),
    "unknown task": (
        setitem("weak_error.tasks.mnist", {"source": "paper", "params": {}}),
        ["weak_error.tasks", "mnist"],
    ),
    "unknown algorithm": (setitem("weak_error.algorithms", ["usam", "adam"]), ["weak_error.algorithms[1]", "adam"]),
    "sgd is not a weak-error algorithm": (
        setitem("weak_error.algorithms", ["sgd"]),
        ["weak_error.algorithms[0]", "sgd"],
    ),
    "scaling without a constant": (
        setitem("weak_error.scalings.sqrt", {"alpha": 0.5}),
        ["weak_error.scalings.sqrt", "'c'"],
    ),
    "negative scaling constant": (setitem("weak_error.scalings.sqrt.c", -1.0), ["weak_error.scalings.sqrt.c", "-1.0"]),
    "resolution below 1": (setitem("weak_error.resolution", 0), ["weak_error.resolution", "0"]),
    "fractional resolution": (setitem("weak_error.resolution", 2.5), ["weak_error.resolution", "2.5"]),
    "one path": (setitem("weak_error.n_paths", 1), ["weak_error.n_paths", "1"]),
    "unknown diffusion mode": (setitem("weak_error.diffusion", "milstein"), ["weak_error.diffusion", "milstein"]),
    "unknown noise kind": (setitem("weak_error.noise.kind", "cauchy"), ["weak_error.noise.kind", "cauchy"]),
    "negative sigma": (setitem("weak_error.noise.sigma", -0.5), ["weak_error.noise.sigma", "-0.5"]),
    "misspelled key": (setitem("weak_error.horizn", 2.0), ["weak_error", "horizn"]),
    "unknown top-level key": (setitem("extra", 1), ["<top level>", "extra"]),
    "missing section": (delitem("saddle"), ["<top level>", "saddle"]),
    "unknown device": (setitem("device", "tpu"), ["device", "tpu"]),
    "negative seed": (setitem("seed", -3), ["seed", "-3"]),
    "spectrum and x0 of different lengths": (
        setitem("weak_error.tasks.quadratic.params", {"spectrum": [1.0, 2.0, -0.5], "x0": [1.0, 1.0]}),
        ["weak_error.tasks.quadratic.params.x0", "2", "3"],
    ),
    "bad task parameter": (
        setitem("weak_error.tasks.iris.params", {"n_hiden": 4}),
        ["weak_error.tasks.iris.params", "n_hiden"],
    ),
    "dim contradicts spectrum": (
        setitem("weak_error.tasks.quadratic.params", {"dim": 4, "spectrum": [1.0, 2.0]}),
        ["weak_error.tasks.quadratic.params", "dim 4"],
    ),
    "positive saddle eigenvalue": (
        setitem("saddle.negative_eigenvalues", [-1.0, 0.5]),
        ["saddle.negative_eigenvalues[1]", "0.5"],
    ),
    "negative rho in a sweep": (
        setitem("quadratic_stationary.rhos", [0.0, -0.1]),
        ["quadratic_stationary.rhos[1]", "-0.1"],
    ),
    "per-task override with a bad value": (
        setitem("weak_error.tasks.iris.n_paths", 0),
        ["weak_error.tasks.iris.n_paths", "0"],
    ),
    "minibatch without batch size": (
        setitem("weak_error.tasks.iris.noise", {"kind": "minibatch"}),
        ["weak_error.tasks.iris.noise", "batch_size"],
    ),
    "inverted slope range": (setitem("claims.own_slope_range", [1.2, 0.8]), ["claims.own_slope_range", "1.2"]),
    "drift ablation at an unknown scaling": (
        setitem("weak_error.drift_ablation", ["sqrt", "cubic"]),
        ["weak_error.drift_ablation[1]", "cubic"],
    ),
    "duplicate etas of a task": (
        setitem("weak_error.tasks.iris.etas", [0.1, 0.05, 0.1]),
        ["weak_error.tasks.iris.etas", "duplicates"],
    ),
    "scaling named like the control": (
        setitem("weak_error.scalings.none", {"alpha": 0.5, "c": 0.1}),
        ["weak_error.scalings.none", "reserved"],
    ),
    "horizon shorter than a step": (
        setitem("weak_error.tasks.iris.horizon", 0.05),
        ["weak_error.tasks.iris.horizon", "0.05", "shorter than one step", "0.1"],
    ),
    # the mini-batch stage
    "batch as large as the data": (
        setitem("weak_error_minibatch.tasks.iris.batch_size", 150),
        ["weak_error_minibatch.tasks.iris.batch_size", "150", "[1, 149]"],
    ),
    "batch larger than the data": (
        setitem("weak_error_minibatch.batch_size", 500),
        ["weak_error_minibatch.batch_size", "500", "'iris'"],
    ),
    "zero batch size": (setitem("weak_error_minibatch.batch_size", 0), ["weak_error_minibatch.batch_size", "0"]),
    "n_inner below 2": (setitem("weak_error_minibatch.n_inner", 1), ["weak_error_minibatch.n_inner", "1"]),
    "n_inner above N for the sampled root": (
        setitem("weak_error_minibatch.tasks.iris.n_inner", 151),
        ["weak_error_minibatch.tasks.iris.n_inner", "151", "N = 150"],
    ),
    "mini-batch task that is not a finite sum": (
        setitem("weak_error_minibatch.tasks.quadratic", {"source": "paper", "params": {}}),
        ["weak_error_minibatch.tasks", "quadratic"],
    ),
    "unknown mini-batch diffusion": (
        setitem("weak_error_minibatch.diffusion", "gaussian"),
        ["weak_error_minibatch.diffusion", "gaussian"],
    ),
    "formula ablation at an unknown scaling": (
        setitem("weak_error_minibatch.formula_ablation", ["linear"]),
        ["weak_error_minibatch.formula_ablation[0]", "linear"],
    ),
    "duplicate mini-batch etas": (
        setitem("weak_error_minibatch.etas", [0.1, 0.1]),
        ["weak_error_minibatch.etas", "duplicates"],
    ),
    "mini-batch horizon shorter than a step": (
        setitem("weak_error_minibatch.horizon", 0.01),
        ["weak_error_minibatch.horizon", "0.01", "shorter than one step"],
    ),
    "NaN eta": (setitem("weak_error_minibatch.etas", [float("nan")]), ["weak_error_minibatch.etas[0]", "nan"]),
}


def test_default_and_smoke_configs_are_valid():
    validate_config(copy.deepcopy(DEFAULT))
    validate_config(yaml.safe_load((ROOT / "config.smoke.yaml").read_text()))


def test_smoke_config_has_the_same_keys():
    smoke = yaml.safe_load((ROOT / "config.smoke.yaml").read_text())

    def keys(d, prefix=""):
        out = set()
        for k, v in d.items():
            if prefix.startswith(("weak_error.tasks", "weak_error_minibatch.tasks")) or prefix.endswith("params"):
                continue  # task lists and task parameters may differ
            out.add(prefix + k)
            if isinstance(v, dict):
                out |= keys(v, prefix + k + ".")
        return out

    assert keys(smoke) == keys(DEFAULT)


def test_smoke_config_is_itself_after_snakemakes_merge():
    """The Snakefile reads config.yaml next to itself and merges a --configfile over it key by key: the smoke
    config must write out every key whose default differs, or per-task entries of config.yaml (breast_cancer's
    sigma, teacher-student's 600 mini-batch paths) leak into the smoke run."""
    from snakemake.utils import update_config

    smoke = yaml.safe_load((ROOT / "config.smoke.yaml").read_text())
    merged = copy.deepcopy(DEFAULT)
    update_config(merged, smoke)
    assert merged == smoke


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_config_is_rejected_with_key_and_value(case):
    edit, needles = BAD[case]
    with pytest.raises(ConfigError) as info:
        validate_config(edited(edit))
    message = str(info.value)
    for needle in needles:
        assert needle in message, f"{case}: {needle!r} not in message:\n{message}"


def test_task_overrides_apply_per_task():
    config = edited(setitem("weak_error.tasks.iris.n_paths", 123))
    assert task_setting(config, "iris")["n_paths"] == 123
    assert task_setting(config, "quadratic")["n_paths"] == DEFAULT["weak_error"]["n_paths"]


def test_snakemake_stops_before_any_job(tmp_path):
    """A bad config stops `snakemake` at start-up with the message, and nothing is created or removed."""
    bad = edited(setitem("weak_error.etas", [0.1, -0.05]))
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    keep = tmp_path / "results" / "claims.csv"
    keep.parent.mkdir()
    keep.write_text("already computed\n")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path)]
    out = subprocess.run([*cmd, "--configfile", str(path), "--cores", "1"], capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert "weak_error.etas[1]" in out.stderr + out.stdout and "-0.05" in out.stderr + out.stdout
    assert keep.read_text() == "already computed\n"
    assert not (tmp_path / "results" / "weak_error").exists()


def test_minibatch_task_setting_is_what_run_cell_takes():
    setting = task_setting(DEFAULT, "iris", "weak_error_minibatch")
    section = DEFAULT["weak_error_minibatch"]
    assert setting["noise"] == {"kind": "minibatch", "batch_size": section["batch_size"]}
    assert setting["inner_samples"] == section["n_inner"] and setting["formula_ablation"] == ["sqrt"]
    assert "drift_ablation" not in setting and "batch_size" not in setting and "n_inner" not in setting
