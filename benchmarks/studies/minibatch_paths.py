"""Study: how many paths the mini-batch stage needs, discrete and SDE, for the precision its claims need.

    python3 benchmarks/studies/minibatch_paths.py [--threads 1] [--pilot-discrete 2000 --pilot-sde 100]
    python3 benchmarks/studies/minibatch_paths.py --quick          # tiny sizes: checks that it runs

Quoted in: config.yaml (``weak_error_minibatch``: discrete_paths, n_paths), docs/differences.md.

For each task of the config's mini-batch stage, at its smallest eta, one pilot cell (``run_cell``'s runners,
``cell_runners``): the discrete runs on ``--pilot-discrete`` paths and the SDEs on ``--pilot-sde`` paths (antithetic
pairs as configured), each simulated and timed apart (process CPU seconds).  From the pilot, per own-SDE error point
(algorithm x test function), at the step where the error peaks:
- V_d: the variance of one discrete path's value; V_s: the variance of one SDE unit (an antithetic pair's mean,
  Richardson value); c_d, c_s: CPU seconds per discrete path and per SDE unit;
- the error e, and the target floor F = e / ``--ratio`` (default 20: the smallest eta's point then has a 5% standard
  error, enough for a slope interval of about +-0.1 over a factor 8 in eta);
- the cheapest split meeting F: minimise c_d M_d + c_s M_s subject to V_d / M_d + V_s / M_s = (F N)^2 (N the
  error's normaliser), M_d = sqrt(V_d / c_d) S / (F N)^2, M_s = sqrt(V_s / c_s) S / (F N)^2,
  S = sqrt(V_d c_d) + sqrt(V_s c_s).
Rows: ``v_discrete``, ``v_sde``, ``cpu_per_discrete_path``, ``cpu_per_sde_unit``, ``error``, ``m_discrete``,
``m_sde_units``, ``cpu_seconds_needed`` per point; the config's counts should cover the largest need per task.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
import yaml

from samsde import make_generator, make_noise
from samsde.experiments.weak_error import REFINEMENTS, TEST_FUNCTIONS, Role, cell_runners
from samsde.simulate import OBSERVABLES, simulate
from samsde.weak_error import pair_means, richardson
from samsde_workflow.config import build_task, selected_tasks, task_setting

ROOT = Path(__file__).resolve().parents[2]


def pilot(name: str, config: dict, m_d: int, m_s: int, quick: bool, ratio: float) -> list[dict]:
    s = task_setting(config, name, "weak_error_minibatch")
    if quick:
        s.update(horizon=0.1, resolution=2, etas=[max(s["etas"])])
    eta = min(s["etas"])
    task = build_task(s)
    noise = make_noise(task=task, seed=0, **s["noise"])
    x0 = task.initial_point(make_generator(config["seed"], "x0", name))
    runners, roles = cell_runners(task, noise, s, eta, config["seed"])
    args = (round(s["horizon"] / eta), s["resolution"], config["seed"], (name, eta))
    obs = {g: OBSERVABLES[g] for g in TEST_FUNCTIONS}
    timed = {}
    for kind, group, m in (("discrete", lambda r: r == "discrete", m_d), ("sde", lambda r: r != "discrete", m_s)):
        chosen = [r for r in runners if group(roles[r.name].model)]
        start = time.process_time()
        anti = kind == "sde" and s["antithetic"]
        timed[kind] = (simulate(task, chosen, x0, m, *args, observables=obs, antithetic=anti),
                       time.process_time() - start)  # fmt: skip
    by_role = {role: n for n, role in roles.items()}
    (disc, cpu_d), (sde, cpu_s) = timed["discrete"], timed["sde"]
    units = m_s // 2 if s["antithetic"] else m_s
    c_d, c_s = cpu_d / m_d, cpu_s / units
    rows = []
    for algorithm in s["algorithms"]:
        for statistic in TEST_FUNCTIONS:
            a = disc.values[by_role[Role(algorithm, "sqrt", "discrete")]][statistic]
            b = [sde.values[by_role[Role(algorithm, "sqrt", "own_sde", q)]][statistic] for q in REFINEMENTS]
            b = richardson(*b)
            b = pair_means(b) if s["antithetic"] else b
            diff = (a.mean(1) - b.mean(1)).abs()
            k = int(diff.argmax())
            norm = float(a.mean(1).abs().mean())
            err = float(diff[k]) / norm
            v_d, v_s = float(a[k].var()), float(b[k].var())
            target = (err / ratio * norm) ** 2
            total = math.sqrt(v_d * c_d) + math.sqrt(v_s * c_s)
            m_disc, m_sde = math.sqrt(v_d / c_d) * total / target, math.sqrt(v_s / c_s) * total / target
            rows.append({"task": name, "eta": eta, "algorithm": algorithm, "statistic": statistic, "error": err,
                         "v_discrete": v_d, "v_sde": v_s, "cpu_per_discrete_path": c_d, "cpu_per_sde_unit": c_s,
                         "m_discrete": m_disc, "m_sde_units": m_sde,
                         "cpu_seconds_needed": c_d * m_disc + c_s * m_sde})  # fmt: skip
    return rows


def main() -> None:
    import argparse

    import pandas as pd

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--pilot-discrete", type=int, default=2000)
    p.add_argument("--pilot-sde", type=int, default=100)
    p.add_argument("--ratio", type=float, default=20.0, help="target error / floor at the smallest eta")
    p.add_argument("--tasks", nargs="*")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "minibatch_paths.csv")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    m_d, m_s = (40, 8) if args.quick else (args.pilot_discrete, args.pilot_sde)
    rows = []
    for name in args.tasks or selected_tasks(config, "weak_error_minibatch"):
        rows += pilot(name, config, m_d, m_s, args.quick, args.ratio)
    table = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    with pd.option_context("display.width", 200):
        print(table.to_string())


if __name__ == "__main__":
    main()
