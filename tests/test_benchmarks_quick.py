"""The benchmark harness cannot rot: ``benchmarks/run_all.py --quick`` runs every benchmark at tiny sizes, writes
the long table with its provenance and checks every target of benchmarks/targets.yaml against it."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_run_all_quick(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--quick", "--out-dir", str(tmp_path)],
                   cwd=ROOT, check=True, capture_output=True, timeout=600)  # fmt: skip
    table = pd.read_csv(tmp_path / "benchmarks.csv")
    assert {"simulate", "scaling", "network_derivatives", "torchsde", "minibatch", "user_model",
            "lecture_batched"} <= set(table.benchmark)  # fmt: skip
    assert table[["commit", "date", "nproc", "cpu", "torch"]].notna().all().all()
    results = pd.read_csv(tmp_path / "results.csv").set_index("id")
    targets = yaml.safe_load((ROOT / "benchmarks" / "targets.yaml").read_text())
    assert list(results.index) == list(targets)
    # every target is read on measured rows (the quick grid has no d >= 300, so no exact-step slope)
    assert set(results.index[results.rows == 0]) <= {"scaling.exact_slope"}
    assert results.loc["torchsde.path_difference", "met"] == "True"  # same SDE, same increments: same paths
