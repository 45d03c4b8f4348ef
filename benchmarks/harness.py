"""The one timing harness of benchmarks/: timers, peak memory in a child process, provenance, the long CSV.

Every benchmark and study imports it (``from harness import ...``; benchmarks/ is on ``sys.path`` when a script in
it runs).  What it measures:
- wall time: :func:`time_interleaved` runs a dict of jobs in ``repeats`` rounds, every job once per round (optionally
  once untimed before its timed call), so that a burst of outside load hits every job alike; per job the wall
  seconds of each timed call, and ``foreign_load``: the CPU, in cores, that *other* processes used during its timed
  calls ((machine CPU from /proc/stat - own CPU) / wall; NaN if they total < 0.5 s, too short to tell).  On 2 cores
  a foreign load above ~0.2 cores slows torch's batched operations many-fold: such numbers are not meaningful.
- memory: :func:`in_child` runs a function in a fresh process (multiprocessing ``forkserver``: torch and samsde
  already imported, no parallel op run before the fork); inside it :class:`PeakMemory` resets the kernel's peak-RSS
  mark (``/proc/self/clear_refs``) and reads the growth of ``VmHWM`` (/proc/self/status), in MiB.
- provenance: every row written by :class:`Rows` carries the git commit, date, nproc, CPU model, torch version and
  torch thread count of the run.

The CSV (one row per measurement): ``benchmark, task, dim, n_paths, variant, metric, unit, repeat, value, note``
(``repeat`` -1 for a derived value such as a median ratio) then the provenance columns ``commit, date, nproc, cpu,
torch, threads``.
"""

from __future__ import annotations

import argparse
import gc
import math
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import torch

COLUMNS = ["benchmark", "task", "dim", "n_paths", "variant", "metric", "unit", "repeat", "value", "note"]
PROVENANCE = ["commit", "date", "nproc", "cpu", "torch", "threads"]
QUIET = 0.2  # cores: above this foreign load a timing is disturbed


def provenance() -> dict:
    """The run's git commit (``+dirty`` with uncommitted changes), UTC date, machine and torch."""
    root = Path(__file__).resolve().parent.parent
    git = lambda *a: subprocess.run(["git", *a], cwd=root, capture_output=True, text=True).stdout.strip()
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    if git("status", "--porcelain", "--", "samsde", "benchmarks"):
        commit += "+dirty"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"commit": commit, "date": datetime.now(UTC).strftime("%Y-%m-%d"), "nproc": os.cpu_count(), "cpu": cpu,
            "torch": torch.__version__, "threads": torch.get_num_threads()}  # fmt: skip


def parser(doc: str, out: str, threads: int = 2) -> argparse.ArgumentParser:
    """The common command line: --quick (tiny sizes: checks that the script runs), --out, --threads."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes: a check that it runs, not a measurement")
    p.add_argument("--out", type=Path, default=Path("benchmarks/out") / out, help="CSV to write")
    p.add_argument("--threads", type=int, default=threads, help=f"torch.set_num_threads (default {threads})")
    return p


class Rows:
    """The long table of one script: ``add`` rows sharing ``base`` keys, ``write`` them with the provenance."""

    def __init__(self, benchmark: str):
        self.benchmark, self.rows = benchmark, []

    def add(self, task, dim, n_paths, variant, metric, unit, value, repeat=-1, note="") -> None:
        self.rows.append(dict(zip(COLUMNS, (self.benchmark, task, dim, n_paths, variant, metric, unit, repeat,
                                            float(value), note), strict=True)))  # fmt: skip

    def series(self, task, dim, n_paths, variant, metric, unit, values, note="") -> None:
        for i, v in enumerate(values):
            self.add(task, dim, n_paths, variant, metric, unit, v, repeat=i, note=note)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=COLUMNS)

    def write(self, path: Path) -> pd.DataFrame:
        df = self.frame().assign(**provenance())
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(path, index=False)
        show(df)
        loads = df[df.metric == "foreign_load"].value
        if loads.max() > QUIET:
            print(f"WARNING: other processes used up to {loads.max():.2f} cores during timing: times are disturbed")
        print(f"wrote {path} ({len(df)} rows)")
        return df


def show(df: pd.DataFrame) -> None:
    """Median, interquartile range and count per measured quantity, on stdout."""
    keys = ["task", "dim", "n_paths", "variant", "metric"]
    g = df.groupby(keys, dropna=False, sort=False).value
    table = pd.DataFrame({"median": g.median(), "iqr": g.quantile(0.75) - g.quantile(0.25), "n": g.count()})
    with pd.option_context("display.width", 200, "display.max_rows", 1000):
        print(table.to_string(float_format=lambda v: f"{v:.4g}"))


def median(values) -> float:
    return statistics.median(values)


def status_kib(field: str) -> float:
    """A field of /proc/self/status in KiB (``VmHWM``: the peak resident set; NaN if absent)."""
    with open("/proc/self/status") as f:
        return next((float(line.split()[1]) for line in f if line.startswith(field + ":")), math.nan)


def machine_busy_seconds() -> float:
    """CPU-seconds all processes have used since boot (Linux /proc/stat; NaN elsewhere)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return math.nan
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU used by OTHER processes while this one runs, summed over ``with`` blocks; ``cores`` = foreign / wall."""

    def __init__(self, min_wall: float = 0.5):
        self.foreign = self.wall = 0.0
        self.min_wall = min_wall

    def __enter__(self):
        self._start = (machine_busy_seconds(), time.process_time(), time.perf_counter())
        return self

    def __exit__(self, *exc):
        busy, own, wall = machine_busy_seconds(), time.process_time(), time.perf_counter()
        self.foreign += (busy - self._start[0]) - (own - self._start[1])
        self.wall += wall - self._start[2]

    @property
    def cores(self) -> float:
        return max(self.foreign / self.wall, 0.0) if self.wall >= self.min_wall else math.nan


def time_interleaved(jobs: dict, repeats: int, warm: bool = True, rounds: dict | None = None):
    """In each of ``repeats`` rounds every job (key -> callable) runs once timed (after one untimed call if
    ``warm``); ``rounds`` maps a key to the rounds it runs in (default all).  Returns (seconds per key, foreign
    load per key, foreign load over all timed calls)."""
    times = {key: [] for key in jobs}
    meters = {key: CpuMeter() for key in jobs}
    total = CpuMeter()
    for rnd in range(repeats):
        for key, fn in jobs.items():
            if rounds is not None and key in rounds and rnd not in rounds[key]:
                continue
            if warm:
                fn()
            with meters[key], total:
                start = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - start)
    return times, {key: m.cores for key, m in meters.items()}, total.cores


def init_runtime() -> None:
    """One-time set-up of torch's thread pool, BLAS and LAPACK on a tiny problem, so no job is charged for it."""
    a = torch.randn(256, 256, dtype=torch.float64).exp_()
    torch.linalg.eigh(a @ a.T)


class PeakMemory:
    """Growth of this process's peak resident set from ``start()`` on, in MiB (``method``: how it was read)."""

    def start(self) -> PeakMemory:
        gc.collect()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset the peak-RSS mark (VmHWM) to the current resident set
            self.method = "VmHWM"
        except OSError:  # then the peak also includes the set-up
            self.method = "ru_maxrss"
        self.base = self._peak()
        return self

    def _peak(self) -> float:
        if self.method == "VmHWM":
            return status_kib("VmHWM")
        import resource

        return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)

    def mib(self) -> float:
        return max(self._peak() - self.base, 0.0) / 1024


def _child(fn, args, threads, cap_gib, conn) -> None:
    try:
        if cap_gib is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (int(cap_gib * 2**30),) * 2)
        torch.set_num_threads(threads)
        init_runtime()
        result = fn(*args)
    except BaseException as err:  # reported to the parent, which records the cell as not measured
        result = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"}
    conn.send(result)
    conn.close()


_CTX = None


def in_child(fn, *args, threads: int = 1, timeout: float | None = None, cap_gib: float | None = None):
    """``fn(*args)`` in a fresh forkserver child (torch threads set, runtime initialised, address space capped at
    ``cap_gib``); its result, or ``{"error": ...}`` if it raised, was killed, ran out of memory or time."""
    global _CTX
    if _CTX is None:
        _CTX = mp.get_context("forkserver")
        _CTX.set_forkserver_preload(["__main__", "torch", "samsde", "harness"])
    recv, send = _CTX.Pipe(duplex=False)
    proc = _CTX.Process(target=_child, args=(fn, args, threads, cap_gib, send), daemon=True)
    proc.start()
    send.close()
    result = None
    try:
        if recv.poll(timeout):
            result = recv.recv()
        else:
            result = {"error": f"no result within {timeout:.0f} s, child killed"}
    except EOFError:
        pass
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join()
    return result if result is not None else {"error": f"child exited with code {proc.exitcode} (out of memory?)"}
