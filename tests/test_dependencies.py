"""One dependency list: pyproject.toml.  environment.yml and workflow/envs/samsde.yaml hold the same packages with the
same specifiers, and every module the package, the rule scripts and the documented commands import is provided by a
declared dependency (checked statically: a fresh ``pip install -e .`` brings exactly what pyproject declares)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
ENVIRONMENTS = {"environment.yml": ".", "workflow/envs/samsde.yaml": "../.."}  # file -> its editable package path
TORCH = "==2.13.0"  # the CPU build on this machine's disk; any range lets pip pick a CUDA build


def _specs(lines: list[str]) -> dict[str, SpecifierSet]:
    """{canonical name: specifier} of requirement strings (a package listed twice: its last specifier)."""
    return {canonicalize_name(Requirement(line).name): Requirement(line).specifier for line in lines}


RUNTIME = _specs(PYPROJECT["dependencies"])
EXTRAS = {name: _specs(lines) for name, lines in PYPROJECT["optional-dependencies"].items()}
EXTRA_LINES = [line for lines in PYPROJECT["optional-dependencies"].values() for line in lines]
ALL_LINES = PYPROJECT["dependencies"] + EXTRA_LINES
DECLARED = _specs(ALL_LINES)


def test_pyproject_gives_each_package_one_specifier():
    """A package in the dependencies and an extra, or in two extras, has the same specifier in each."""
    specs = {}
    for line in ALL_LINES:
        req = Requirement(line)
        specs.setdefault(canonicalize_name(req.name), set()).add(str(req.specifier))
    assert {name: s for name, s in specs.items() if len(s) > 1} == {}


def _environment(path: str) -> tuple[dict[str, SpecifierSet], list[str]]:
    """({canonical name: specifier} of a conda environment file's packages (conda and pip), its editable installs)."""
    deps = yaml.safe_load((ROOT / path).read_text())["dependencies"]
    conda = [d for d in deps if isinstance(d, str) and not re.match(r"(python|pip)\b", d)]
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    editable = [line.split(None, 1)[1] for line in pip if line.startswith("-e ")]
    return _specs(conda + [line for line in pip if not line.startswith("-e ")]), editable


@pytest.mark.parametrize("path", sorted(ENVIRONMENTS))
def test_environment_files_hold_the_packages_of_pyproject(path):
    """Every package of pyproject (dependencies and extras) is in the file with the same specifier, and the file has
    no other package; the package itself is installed editable from the repository root."""
    packages, editable = _environment(path)
    assert sorted(set(DECLARED) - set(packages)) == [], f"{path} lacks packages of pyproject.toml"
    assert sorted(set(packages) - set(DECLARED)) == [], f"{path} has packages pyproject.toml does not declare"
    differ = {name: (str(packages[name]), str(spec)) for name, spec in DECLARED.items() if packages[name] != spec}
    assert differ == {}, f"{path}: specifiers (file, pyproject) differ"
    assert editable == [ENVIRONMENTS[path]]


def test_torch_is_pinned_everywhere():
    assert str(RUNTIME["torch"]) == TORCH
    for path in ENVIRONMENTS:
        assert str(_environment(path)[0]["torch"]) == TORCH, path


def test_the_slurm_profile_executor_is_the_slurm_extra():
    """workflow/profiles/slurm names the slurm executor; docs/cluster.md installs the extra that has it."""
    profile = yaml.safe_load((ROOT / "workflow/profiles/slurm/config.yaml").read_text())
    plugin = canonicalize_name(f"snakemake-executor-plugin-{profile['executor']}")
    assert plugin in EXTRAS["slurm"] and plugin not in RUNTIME
    assert 'pip install -e ".[slurm]"' in (ROOT / "docs" / "cluster.md").read_text()  # the cluster page's install


def _imports(paths: list[Path]) -> dict[str, list[str]]:
    """{top-level module: files} of the absolute imports outside the standard library and this repository."""
    local = {"samsde", "samsde_workflow"} | {p.stem for path in paths for p in path.parent.glob("*.py")}
    found: dict[str, list[str]] = {}
    for path in paths:
        text = path.read_text()
        if path.suffix == ".py":
            tree = ast.parse(text)
        else:  # a Snakefile or .smk file: its Python import statements (the rest is Snakemake's grammar)
            statements = re.findall(r"^(?:import|from)\s[^(\n]*(?:\([^)]*\))?", text, re.M)
            tree = ast.parse("\n".join(statements))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in local:
                    found.setdefault(top, []).append(str(path.relative_to(ROOT)))
    return found


def _files(*patterns: str) -> list[Path]:
    return sorted(p for pattern in patterns for p in ROOT.glob(pattern))


PROVIDERS = importlib.metadata.packages_distributions()


@pytest.mark.parametrize(
    ("files", "allowed"),
    [
        # the package, the rule scripts and the workflow: what `pip install -e .` and `snakemake` need
        (("samsde/**/*.py", "samsde_workflow/**/*.py", "scripts/*.py", "Snakefile", "workflow/rules/*.smk"), RUNTIME),
        # the tests, benchmarks and examples: `pip install -e ".[test]"`
        (("tests/*.py", "benchmarks/*.py", "examples/*.py"), {**RUNTIME, **EXTRAS["test"]}),
    ],
    ids=["package", "tests"],
)
def test_every_import_is_a_declared_dependency(files, allowed):
    imports = _imports(_files(*files))
    assert imports, files
    missing = {
        module: (PROVIDERS.get(module), where[:2])
        for module, where in imports.items()
        if not {canonicalize_name(d) for d in PROVIDERS.get(module, [])} & set(allowed)
    }
    assert missing == {}, "imported but not declared (module: (distributions, files))"


def test_the_report_command_has_pygments():
    """`snakemake --report` (README) needs pygments, which snakemake itself lists only in its `reports` extra: the
    Snakefile has a report, so pygments is a dependency of the package, not only of the test extra."""
    assert re.search(r"^report:", (ROOT / "Snakefile").read_text(), re.M)
    needs = [Requirement(r) for r in importlib.metadata.requires("snakemake") or []]
    assert any(canonicalize_name(r.name) == "pygments" and r.marker for r in needs)  # extra-only in snakemake
    assert "pygments" in RUNTIME
