"""Bring your own model: the torch.func task against the closed-form network tasks, finite differences, the
contract's error messages, and a user's model through the DAG (examples/digits_cnn.py at smoke size)."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from snakemake.utils import update_config
from torch import nn

from samsde import from_module
from samsde.tasks import BreastCancer, Iris, ModuleTask, TeacherStudent
from samsde_workflow.config import ConfigError, build_task, task_setting, validate_config

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = yaml.safe_load((ROOT / "config.yaml").read_text())
EXAMPLE = ROOT / "examples" / "digits_cnn.py"
DTYPE = torch.float64


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def _half_squared_error(outputs, targets):
    return 0.5 * (outputs.squeeze(-1) - targets) ** 2


def _as_module(task) -> tuple[nn.Module, object]:
    """A registered one-hidden-layer task written as an nn.Module with its loss (same flat layout W1, b1, W2, b2)."""
    p, h, o = task.layout.n_in, task.layout.n_hidden, task.layout.n_out
    activation = {"identity": nn.Identity(), "sigmoid": nn.Sigmoid(), "tanh": nn.Tanh()}[task.activation.name]
    loss = {"iris": "cross_entropy", "breast_cancer": "bce", "teacher_student": _half_squared_error}[task.name]
    return nn.Sequential(nn.Linear(p, h), activation, nn.Linear(h, o)), loss


CLOSED_FORM = {
    "iris": lambda: Iris(n_hidden=4, l2=1e-3),
    "breast_cancer": lambda: BreastCancer(n_hidden=4, l2=1e-3),
    "teacher_student": lambda: TeacherStudent(n_hidden=4, n_samples=60, l2=1e-3),
}


@pytest.fixture(scope="module", params=sorted(CLOSED_FORM))
def pair(request):
    reference = CLOSED_FORM[request.param]()
    model, loss = _as_module(reference)
    task = from_module(model, reference.inputs, reference.targets, loss, l2=reference.l2, name=request.param)
    x = 0.5 * torch.randn(6, reference.dim, generator=torch.Generator().manual_seed(1), dtype=DTYPE)
    return reference, task, x


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_torch_func_task_equals_the_closed_form_network(pair, mode, monkeypatch):
    """Loss, gradient, Hessian-vector products (both routes), mini-batch gradients and HVPs, weighted per-sample
    gradients, the curvature term sum_i H_i grad l_i and the dense Hessian: all to 1e-12 of the closed form."""
    reference, task, x = pair
    monkeypatch.setattr(ModuleTask, "hvp_mode", mode)
    gen = torch.Generator().manual_seed(2)
    v = torch.randn(x.shape, generator=gen, dtype=DTYPE)
    batch = torch.randint(0, reference.n_data, (x.shape[0], 7), generator=gen)
    weights = torch.randn(x.shape[0], reference.n_data, generator=gen, dtype=DTYPE)
    assert task.dim == reference.dim and task.n_data == reference.n_data
    checks = {
        "loss": (task.loss(x), reference.loss(x)),
        "grad": (task.grad(x), reference.grad(x)),
        "hvp": (task.linearize(x).hvp(v), reference.linearize(x).hvp(v)),
        "batch grad": (task.grad(x, batch), reference.grad(x, batch)),
        "batch hvp": (task.batch_linearize(x, batch).hvp(v), reference.batch_linearize(x, batch).hvp(v)),
        "batch loss": (task.batch_loss(x, batch), reference.batch_loss(x, batch)),
        "weighted sample grad": (task.weighted_sample_grad(x, weights), reference.weighted_sample_grad(x, weights)),
        "sum_i H_i grad l_i": (task.half_grad_of_sample_sq_norms(x), reference.half_grad_of_sample_sq_norms(x)),
        "hessian": (task.hessian(x[:2]), reference.hessian(x[:2])),
        "per-sample grads": (task.per_sample_grads(x[:2]), reference.per_sample_grads(x[:2])),
    }
    for name, (got, want) in checks.items():
        assert got.shape == want.shape, name
        assert _relative(got, want) < 1e-12, (name, _relative(got, want))


def _example_task():
    sys.path.insert(0, str(EXAMPLE.parent))
    try:
        import digits_cnn
    finally:
        sys.path.remove(str(EXAMPLE.parent))
    return from_module(**digits_cnn.build(n_samples=40), name="digits_cnn")


def test_hvp_matches_finite_differences_on_the_convolutional_example():
    """(grad f(x + e v) - grad f(x - e v)) / 2e = H v + O(e^2): e = 1e-4 gives ~1e-8 relative agreement; a wrong
    H v (for instance the Gauss-Newton part alone, or a missing L2 term) is off by far more than the 1e-6 allowed."""
    task = _example_task()
    gen = torch.Generator().manual_seed(3)
    x = task.x0 + 0.3 * torch.randn(4, task.dim, generator=gen, dtype=DTYPE)
    v = torch.randn(x.shape, generator=gen, dtype=DTYPE)
    eps = 1e-4
    finite = (task.grad(x + eps * v) - task.grad(x - eps * v)) / (2 * eps)
    for mode in ("reverse", "forward"):
        task.hvp_mode = mode
        assert _relative(task.linearize(x).hvp(v), finite) < 1e-6, mode
    l2_free = from_module(task.model, task.inputs, task.targets, "cross_entropy", l2=0.0)
    assert _relative(l2_free.linearize(x).hvp(v), finite) > 1e-6  # the check sees a missing (l2 = 1e-3) term


def test_initial_point_is_the_models_parameters_and_the_model_is_left_alone():
    model = nn.Sequential(nn.Linear(3, 2), nn.Tanh(), nn.Linear(2, 1))
    before = [p.detach().clone() for p in model.parameters()]
    task = from_module(model, torch.randn(10, 3), torch.randn(10, 1), "mse")
    flat = torch.cat([p.reshape(-1) for p in before]).to(DTYPE)
    assert torch.equal(task.initial_point(torch.Generator()), flat)
    assert all(p.dtype == torch.float32 for p in model.parameters()) and model.training
    task.grad(flat.repeat(2, 1))
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before, strict=True))
    assert task.to("cpu").grad(flat[None]).shape == (1, task.dim)


# ---- the contract's error messages: one line naming the key and the problem, before any job


def _user_config(module: Path, params: dict | None = None, **entry) -> dict:
    config = copy.deepcopy(DEFAULT)
    config["weak_error"]["tasks"]["mine"] = {"source": "user", "module": str(module), "params": params or {}, **entry}
    return config


GOOD_BUILD = """
import torch
from torch import nn

def build(n=20, **kw):
    torch.manual_seed(0)
    inputs = torch.randn(n, 3)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    out = {"model": model, "inputs": inputs, "targets": torch.randint(0, 2, (n,)), "loss": "cross_entropy"}
    out.update(kw)
    return out
"""

BAD_FILES = {
    "missing file": (None, {}, ["weak_error.tasks.mine.module", "not found"]),
    "no build": ("x = 1\n", {}, ["weak_error.tasks.mine.module", "no function build"]),
    "import fails": ("import not_a_module_anywhere\n", {}, ["weak_error.tasks.mine.module", "ModuleNotFoundError"]),
    "build raises": (
        "def build(**p):\n    raise RuntimeError('the data file is gone')\n",
        {},
        ["weak_error.tasks.mine.params", "RuntimeError: the data file is gone"],
    ),
    "build returns a list": (
        "def build():\n    return []\n",
        {},
        ["weak_error.tasks.mine.module", "must return a dict"],
    ),
    "build misses a key": (
        "def build():\n    return {'model': None}\n",
        {},
        ["weak_error.tasks.mine.module", "misses", "inputs"],
    ),
    "no parameters": (
        GOOD_BUILD + "\n_b = build\nbuild = lambda: {**_b(), 'model': nn.ReLU()}\n",
        {},
        ["weak_error.tasks.mine.module", "no parameters"],
    ),
    "integer parameters": (
        GOOD_BUILD
        + "\n_b = build\ndef build():\n    out = _b()\n"
        + "    out['model'].register_parameter('count', nn.Parameter(torch.zeros(2, dtype=torch.long), False))\n"
        + "    return out\n",
        {},
        ["weak_error.tasks.mine.module", "not floating point", "count"],
    ),
    "lengths differ": (GOOD_BUILD, {"targets": "short"}, ["weak_error.tasks.mine.module", "different lengths", "20"]),
    "unknown loss": (GOOD_BUILD, {"loss": "hinge"}, ["weak_error.tasks.mine.module", "unknown loss 'hinge'"]),
    "loss of the wrong shape": (
        GOOD_BUILD,
        {"loss": "mean"},
        ["weak_error.tasks.mine.module", "shape (20,)", "got ()"],
    ),
    "negative l2": (GOOD_BUILD, {"l2": -1.0}, ["weak_error.tasks.mine.module", "l2"]),
}


def _write_case(tmp_path: Path, source: str | None, change: dict) -> Path:
    path = tmp_path / "mine.py"
    if source is None:
        return path
    text = source
    if change.get("targets") == "short":
        text += "\n_c = build\ndef build(**p):\n    out = _c(**p)\n    out['targets'] = out['targets'][:5]\n"
        text += "    return out\n"
    if change.get("loss") == "hinge":
        text += "\n_c = build\ndef build(**p):\n    return {**_c(**p), 'loss': 'hinge'}\n"
    if change.get("loss") == "mean":  # a callable that reduces: the most common mistake
        text += "\n_c = build\ndef build(**p):\n    return {**_c(**p), 'loss': lambda u, y: torch.nn.functional"
        text += ".cross_entropy(u, y)}\n"
    if "l2" in change:
        text += f"\n_c = build\ndef build(**p):\n    return {{**_c(**p), 'l2': {change['l2']}}}\n"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_user_model_is_rejected_with_one_line_naming_the_key(tmp_path, case):
    source, change, needles = BAD_FILES[case]
    config = _user_config(_write_case(tmp_path, source, change))
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    lines = str(info.value).splitlines()[1:]
    assert len(lines) == 1, lines
    for needle in needles:
        assert needle in lines[0], f"{case}: {needle!r} not in {lines[0]!r}"


def test_the_good_user_model_passes_and_builds(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(GOOD_BUILD)
    config = validate_config(_user_config(path, {"n": 30}))
    task = build_task(task_setting(config, "mine"))
    assert isinstance(task, ModuleTask) and task.name == "mine" and task.n_data == 30 and task.dim == 26


@pytest.mark.parametrize(
    "edit, needles",
    [
        (lambda c: c["weak_error"]["tasks"]["mine"].pop("module"), ["weak_error.tasks.mine", "'module' is a required"]),
        (lambda c: c["weak_error"]["tasks"]["iris"].update(module="x.py"), ["weak_error.tasks.iris.module", "only"]),
        (
            lambda c: c["weak_error"]["tasks"]["mine"].update(source="paper"),
            ["weak_error.tasks.mine", "not a registered"],
        ),
        (
            lambda c: c["weak_error"]["tasks"]["mine"].update(noise={"kind": "minibatch", "batch_size": 21}),
            ["weak_error.tasks.mine.noise.batch_size", "21", "N = 20"],
        ),
        (
            lambda c: c["weak_error_minibatch"]["tasks"].update(
                mine={"source": "user", "module": "M", "batch_size": 20}
            ),
            ["weak_error_minibatch.tasks.mine.batch_size", "20", "[1, 19]"],
        ),
        (lambda c: c["run"].update(tasks=["mine", "yours"]), ["run.tasks", "yours"]),
        (lambda c: c["run"].update(tasks=["mine"]), ["run.tasks", "weak_error_minibatch"]),
        (lambda c: c["run"].update(stages=["weak_error", "cluster"]), ["run.stages[1]", "cluster"]),
    ],
    ids=[
        "user without module",
        "module on a paper task",
        "unregistered name as paper",
        "weak_error batch above N",
        "minibatch batch of N",
        "run.tasks names an unknown task",
        "run.tasks leaves a stage empty",
        "unknown stage",
    ],
)
def test_config_of_a_user_task_is_checked(tmp_path, edit, needles):
    path = tmp_path / "mine.py"
    path.write_text(GOOD_BUILD)
    config = _user_config(path)

    def with_module(c):
        edit(c)
        mine = c["weak_error_minibatch"]["tasks"].get("mine")
        if mine is not None:
            mine["module"] = str(path)

    with_module(config)
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    message = str(info.value)
    for needle in needles:
        assert needle in message, f"{needle!r} not in:\n{message}"


def test_snakemake_stops_before_any_job_on_a_bad_user_model(tmp_path):
    path = _write_case(tmp_path, BAD_FILES["build raises"][0], {})
    config = {"run": {"stages": ["weak_error"], "tasks": ["mine"]}}
    config["weak_error"] = {"tasks": {"mine": {"source": "user", "module": str(path)}}}
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "--cores", "1"]
    out = subprocess.run(
        [*cmd, "--configfile", str(tmp_path / "mine.yaml")], capture_output=True, text=True, timeout=300
    )
    assert out.returncode != 0
    assert (
        "weak_error.tasks.mine.params" in out.stdout + out.stderr and "the data file is gone" in out.stdout + out.stderr
    )
    assert not (tmp_path / "results").exists()


# ---- the documented example (docs/your-own-model.md) and the shipped example through the DAG


def test_documented_example_follows_the_contract(tmp_path):
    """The model file of docs/your-own-model.md, run as a user would: validated, built, one gradient and HVP."""
    page = (ROOT / "docs" / "your-own-model.md").read_text()
    section = page[page.index("## An example") :]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    yamls = re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert blocks and yamls, "docs/your-own-model.md's example shows a Python file and a config file"
    (tmp_path / "my_model.py").write_text(blocks[0])
    user = yaml.safe_load(yamls[0])
    assert "samsde" not in blocks[0], "the user's file needs nothing from samsde"
    config = copy.deepcopy(DEFAULT)
    update_config(config, user)  # what snakemake does with a --configfile
    cwd = os.getcwd()
    os.chdir(tmp_path)  # the module path is relative to the working directory
    try:
        validate_config(config)
        (name,) = config["run"]["tasks"]
        task = build_task(task_setting(config, name))
    finally:
        os.chdir(cwd)
    x = task.initial_point(torch.Generator()).repeat(2, 1)
    assert task.linearize(x).hvp(task.grad(x)).shape == x.shape


@pytest.fixture(scope="module")
def example_run(tmp_path_factory) -> Path:
    """examples/digits_cnn.yaml at smoke size, through snakemake in a scratch directory (a copy of examples/), with
    the model in the mini-batch stage too."""
    workdir = tmp_path_factory.mktemp("user_model")
    shutil.copytree(ROOT / "examples", workdir / "examples")
    example = yaml.safe_load((ROOT / "examples" / "digits_cnn.yaml").read_text())
    entry = example["weak_error"]["tasks"]["digits_cnn"]
    entry.update(params={**entry["params"], "n_samples": 40}, n_paths=8, etas=[0.1, 0.05], horizon=0.2)
    minibatch = {"source": "user", "module": entry["module"], "params": dict(entry["params"]), "n_paths": 8}
    smaller = {
        "run": {"stages": ["weak_error", "weak_error_minibatch"], "tasks": ["digits_cnn"]},
        "weak_error": {"tasks": {"digits_cnn": entry}, "resolution": 2, "n_boot": 20},
        "weak_error_minibatch": {
            "tasks": {"digits_cnn": {**minibatch, "etas": [0.1, 0.05], "horizon": 0.2, "batch_size": 10}},
            "resolution": 2,
            "n_boot": 20,
        },
    }
    (workdir / "smaller.yaml").write_text(yaml.safe_dump(smaller))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--cores", "2"]
    cmd += ["--configfile", str(ROOT / "examples" / "digits_cnn.yaml"), str(workdir / "smaller.yaml")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, env={**os.environ, "PYTHONHASHSEED": "0"})
    assert out.returncode == 0, out.stderr[-6000:]
    return workdir


def test_the_example_gets_its_figures_tables_and_claims_and_nothing_else(example_run):
    figures = sorted(p.stem for p in (example_run / "results" / "figures").glob("*.png"))
    assert figures == ["drift_ablation", "pipeline_profile", "trajectories", "weak_error", "weak_error_minibatch"]
    runs = sorted(p.parent.name for p in (example_run / "results").glob("weak_error*/runs/*/eta_*"))
    assert sorted({p.name for p in (example_run / "results").glob("weak_error*/runs/*")}) == ["digits_cnn"], runs
    claims = pd.read_csv(example_run / "results" / "claims.csv", comment="#")
    ids = set(claims.claim_id)
    assert {"control.digits_cnn", "solver_error.digits_cnn", "minibatch.solver_error.digits_cnn"} <= ids
    for algorithm in DEFAULT["weak_error"]["algorithms"]:
        assert f"order1_own_sde.digits_cnn.{algorithm}.sqrt" in ids
        assert f"drift_ablation.digits_cnn.{algorithm}.sqrt.loss" in ids
        assert f"minibatch.order1_own_sde.digits_cnn.{algorithm}.sqrt" in ids
    # besides the model's rows, only the mini-batch stage's exact anchor (a fixed quadratic that checks the stage's SDE
    # code, run whatever run.tasks selects)
    others = sorted(i for i in ids if "digits_cnn" not in i)
    assert others == ["minibatch.exact.additive_formula_order_half", "minibatch.exact.own_sde_order1",
                      "minibatch.exact.sgd_sde_order_half"], others  # fmt: skip
    errors = pd.read_csv(example_run / "results" / "weak_error" / "errors.csv", comment="#")
    assert set(errors.task) == {"digits_cnn"} and errors.rel_error.notna().all()
