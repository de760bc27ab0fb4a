"""Whether the process recorded on a job is still the one running it (Linux /proc, pid + start time).

The server's start-up reconciliation and `latentmap doctor` ask this of every running job.
"""
from __future__ import annotations

import os
import time
from typing import Callable

from app.registry import Registry


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_start_time(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), from /proc on Linux; None elsewhere.

    The start is measured as an age on the kernel's boot clock (/proc/uptime minus the process's
    start tick) and subtracted from the wall clock now. /proc/stat's btime is not used: it is a
    whole second, and on a VM whose wall clock was stepped since boot it is off by the step.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            fields = file.read().rsplit(b")", 1)[1].split()
        with open("/proc/uptime", "rb") as file:
            uptime = float(file.read().split()[0])
    except (OSError, IndexError, ValueError):
        return None
    if fields[0] == b"Z":
        return float("inf")  # a zombie runs nothing
    age = uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return time.time() - max(age, 0.0)


def job_process_alive(registry: Registry) -> Callable[[int], bool]:
    """Whether the process recorded on a running job is still that process.

    A pid alone is not enough: after a crash the pid may belong to an unrelated process started
    since. The recorded process must be alive and have started before its job did.
    """
    started = {job.worker_pid: job.started for job in registry.list_jobs(statuses=("running",))
               if job.worker_pid is not None}

    def is_alive(pid: int) -> bool:
        if not process_alive(pid):
            return False
        began, job_started = process_start_time(pid), started.get(pid)
        if began is None or job_started is None:
            return True
        return began <= job_started + 0.5  # /proc start times have clock-tick (10 ms) resolution

    return is_alive
