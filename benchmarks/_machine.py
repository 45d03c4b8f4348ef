"""What the benchmarks share: how busy the whole machine is (to flag runs disturbed by other processes)."""

import math
import os


def machine_busy_seconds() -> float:
    """CPU-seconds all processes have used since boot (Linux /proc/stat; NaN elsewhere)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return math.nan
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
