"""The mini-batch weak-error estimator: Monte Carlo precision per CPU-second, before and after.

    python3 benchmarks/bench_minibatch_estimator.py [--threads 1]   # ~4 min on one thread

One weak-error cell of the default config's mini-batch stage (``samsde.experiments.weak_error.run_cell``, Iris,
eta = 0.05, horizon 1, every algorithm, r = 10) run under two designs, each timed by its process CPU time:
- ``plain``: the design before the estimator (discrete runs and SDEs on the same number of plain paths, 400; the
  SDEs' ``sampled`` root with n_inner = 4);
- ``config``: the config's design (``discrete_paths`` discrete paths, ``n_paths`` SDE paths in antithetic pairs, the
  config's diffusion: the noise-free linear root for USAM and DNSAM).
Rows per design: ``cpu_seconds``, and per own-SDE error point (algorithm x test function) its ``floor``; derived
``efficiency`` = 1 / (floor^2 x CPU seconds) (the precision a CPU-second buys: a floor falls as 1/sqrt(cost)) and,
for ``config``, ``efficiency_ratio`` = its efficiency over the plain design's, per point (target: >= 5).
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pandas as pd
import torch
import yaml
from harness import Rows, parser

from samsde import make_generator, make_noise
from samsde.experiments.weak_error import run_cell
from samsde_workflow.config import build_task, task_setting

ROOT = Path(__file__).resolve().parent.parent
TASK, ETA = "iris", 0.05
PLAIN = {"antithetic": False, "discrete_paths": 400, "n_paths": 400, "diffusion": "sampled", "n_inner": 4}


def setting_for(design: dict, quick: bool) -> dict:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    section = config["weak_error_minibatch"]
    section["tasks"][TASK] = {k: v for k, v in section["tasks"][TASK].items() if k not in design}
    section.update(design)
    if quick:
        section.update(n_paths=8, discrete_paths=16, horizon=0.1, resolution=2, n_boot=10)
    return task_setting(config, TASK, "weak_error_minibatch")


def run(setting: dict) -> tuple[float, int, pd.DataFrame]:
    """CPU seconds of one cell, the task's dimension and the cell's error table."""
    task = build_task(setting)
    noise = make_noise(task=task, seed=0, **setting["noise"])
    x0 = task.initial_point(make_generator(2023, "x0", TASK))
    start = time.process_time()
    errors = run_cell(task, noise, x0, setting, ETA, 2023)["errors"]
    return time.process_time() - start, task.dim, errors


def main() -> None:
    args = parser(__doc__, "minibatch_estimator.csv", threads=1).parse_args()
    torch.set_num_threads(args.threads)
    rows = Rows("minibatch_estimator")
    efficiency = {}
    for name, design in (("plain", PLAIN), ("config", {})):
        setting = setting_for(copy.deepcopy(design), args.quick)
        cpu, dim, errors = run(setting)
        label = (f"{setting['discrete_paths']} discrete paths, {setting['n_paths']} SDE paths"
                 f"{' (antithetic)' if setting['antithetic'] else ''}, diffusion {setting['diffusion']}")  # fmt: skip
        rows.add(TASK, dim, setting["n_paths"], name, "cpu_seconds", "s", cpu, note=label)
        own = errors[errors.model == "own_sde"]
        for r in own.itertuples():
            point = f"{name}:{r.algorithm}:{r.statistic}"
            eff = 1.0 / (r.floor**2 * cpu)
            efficiency[(name, r.algorithm, r.statistic)] = eff
            rows.add(TASK, dim, setting["n_paths"], point, "floor", "relative", r.floor, note=label)
            rows.add(TASK, dim, setting["n_paths"], point, "efficiency", "1/(floor^2 s)", eff)
            if name == "config":
                ratio = eff / efficiency[("plain", r.algorithm, r.statistic)]
                rows.add(TASK, dim, setting["n_paths"], point, "efficiency_ratio", "x", ratio)
    rows.write(args.out)


if __name__ == "__main__":
    main()
