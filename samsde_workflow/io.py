"""One results writer: atomic tidy tables with a provenance sidecar, and atomic figures.

Every file is written to a temporary file in the same directory and renamed into place (an atomic operation
on POSIX), so a killed job never leaves a truncated output that a later run would mistake for a result.
A table ``foo.csv`` gets ``foo.csv.provenance.json`` with the config section that produced it, its hash, the seed,
package versions and the git commit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pandas as pd

PACKAGES = ("samsde", "torch", "numpy", "pandas", "scipy", "seaborn", "matplotlib", "scikit-learn", "snakemake")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``, on failure delete it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix or ".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def config_hash(section: object) -> str:
    """SHA-256 of the canonical JSON of a config section (sorted keys), the key of a result's provenance."""
    return hashlib.sha256(json.dumps(section, sort_keys=True, default=str).encode()).hexdigest()


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, cwd=Path(__file__).parent
        )
        commit = out.stdout.strip()
        if out.returncode != 0 or not commit:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=Path(__file__).parent,
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(section: object, seed: int | None, rule: str | None = None) -> dict:
    """The sidecar of a results table.  Deliberately without timestamps, so reruns are byte-identical."""
    return {
        "rule": rule,
        "config": section,
        "config_sha256": config_hash(section),
        "seed": seed,
        "packages": package_versions(),
        "git_commit": git_commit(),
    }


def write_table(
    df: pd.DataFrame, path: str | os.PathLike, section: object, seed: int | None, rule: str | None = None
) -> None:
    """Write a tidy table as CSV (fixed float format, so reruns are byte-identical) plus its provenance sidecar."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.10g")
    write_sidecar(path, section, seed, rule)


def write_page(html: str, path: str | os.PathLike, section: object, seed: int | None, rule: str | None = None) -> None:
    """Write an HTML page of the report (a rendering of tables) with the same provenance sidecar as a table."""
    write_text(path, html)
    write_sidecar(path, section, seed, rule)


def write_sidecar(path: str | os.PathLike, section: object, seed: int | None, rule: str | None = None) -> None:
    write_text(f"{path}.provenance.json", json.dumps(provenance(section, seed, rule), indent=2, default=str) + "\n")


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    return pd.read_csv(path)


def read_provenance(path: str | os.PathLike) -> dict:
    return json.loads(Path(f"{path}.provenance.json").read_text())
