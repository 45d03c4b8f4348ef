"""What the benchmarks share: how busy the whole machine is (to flag runs disturbed by other processes)."""

import math
import os
import platform
import time

import torch


def status_kib(field: str) -> float:
    """A field of this process's /proc/self/status in KiB (``VmHWM``: its peak resident set; NaN if absent)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return float(line.split()[1])
    return math.nan


def machine_busy_seconds() -> float:
    """CPU-seconds all processes have used since boot (Linux /proc/stat; NaN elsewhere)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return math.nan
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def use_threads(threads: int, *also: str) -> str:
    """Set torch's intra-op threads; return the line that says what the run measures on (versions, cores)."""
    torch.set_num_threads(threads)
    versions = ", ".join([f"torch {torch.__version__}", *also])
    return (
        f"{versions} on {platform.machine()} ({os.cpu_count()} cores visible); torch threads = "
        f"{torch.get_num_threads()}, interop threads = {torch.get_num_interop_threads()}"
    )


class CpuMeter:
    """CPU used by OTHER processes while this one runs, in cores: (machine CPU - own CPU) / wall time."""

    def __init__(self):
        self.foreign = 0.0
        self.wall = 0.0

    def __enter__(self):
        self._start = (machine_busy_seconds(), time.process_time(), time.perf_counter())
        return self

    def __exit__(self, *exc):
        busy, own, wall = machine_busy_seconds(), time.process_time(), time.perf_counter()
        self.foreign += (busy - self._start[0]) - (own - self._start[1])
        self.wall += wall - self._start[2]

    @property
    def cores(self) -> float:
        return max(self.foreign / self.wall, 0.0) if self.wall > 0 else math.nan


def time_interleaved(jobs: dict, repeats: int, rounds: dict | None = None) -> tuple[dict, dict, float]:
    """Interleaved timing: in each of ``repeats`` rounds every job (key -> callable) runs once untimed, then once
    timed.  ``rounds`` maps a key to the set of rounds it runs in (default: all; for slow jobs).  Returns the wall
    seconds of each timed call, the foreign load (cores) over each job's timed calls and over all of them."""
    times = {key: [] for key in jobs}
    meters = {key: CpuMeter() for key in jobs}
    total = CpuMeter()  # all timed calls together
    for rnd in range(repeats):
        for key, fn in jobs.items():
            if rounds is not None and key in rounds and rnd not in rounds[key]:
                continue
            fn()  # warm-up
            with meters[key], total:
                start = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - start)
    loads = {key: m.cores if m.wall >= 0.5 else math.nan for key, m in meters.items()}
    return times, loads, total.cores
