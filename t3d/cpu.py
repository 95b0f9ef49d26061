"""How many CPU threads a run should use: the cores this process may run on, not the machine's.

torch defaults to every core it sees; in a container, under `taskset` or a cgroup CPU quota the
process may use fewer, and oversubscribed threads wait on each other (a 2-core machine with one
core busy ran 3.4x slower with torch's default than with one thread).
"""

from __future__ import annotations

import math
import os
from pathlib import Path


def _cgroup_quota_cores() -> float | None:
    """cgroup v2 `cpu.max` (quota period) as a number of cores; None when unlimited or unknown."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return int(quota) / int(period)


def usable_cores() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = _cgroup_quota_cores()
    if quota is not None:
        cores = min(cores, max(1, math.floor(quota)))
    return max(1, cores)


def default_threads() -> int:
    """OMP_NUM_THREADS when the caller set it (a benchmark or batch worker sharing the cores, a
    user's own limit), else every usable core; never more than the usable cores."""
    cores = usable_cores()
    wanted = os.environ.get("OMP_NUM_THREADS", "").strip()
    if wanted.isdigit() and int(wanted) > 0:
        return min(int(wanted), cores)
    return cores


def configure_threads(threads: int) -> int:
    """Set torch's intra-op threads (0 = default_threads()); returns the number used."""
    import torch

    n = threads if threads > 0 else default_threads()
    torch.set_num_threads(n)
    return n
