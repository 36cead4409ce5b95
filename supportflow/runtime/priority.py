"""A process that gives way on a shared machine: a lower CPU priority for the workers.

A turn can wait a moment; a customer's message waiting to be accepted is what a person sees.
So where the web and the workers share cores, the workers run at a higher nice value: the
scheduler only weighs it when the cores are contended, so an idle machine runs turns as fast.
Linux groups a session's processes (an autogroup, when sched_autogroup is on) and shares the
cores between the groups first, where a process's own nice counts only inside its group: a
worker that leads its own session (as a process manager starts each one) sets its group's nice
too. Under systemd or in containers, give the web a larger CPU weight (CPUWeight, CPU shares)
than the workers instead; a cgroup's weight is not changed from here.
"""

from __future__ import annotations

import os
from pathlib import Path

AUTOGROUP = Path("/proc/self/autogroup")


def give_way(nice: int, *, autogroup: Path = AUTOGROUP) -> list[str]:
    """Run at nice value `nice` at least (its autogroup too, when this process leads its own
    session); what was changed, for the log. Never raises a priority."""
    changed = []
    current = os.nice(0)
    if nice > current:
        changed.append(f"nice {os.nice(nice - current)}")
    if os.getsid(0) == os.getpid() and autogroup.exists():
        changed.extend(_raise_autogroup(nice, autogroup))
    return changed


def _raise_autogroup(nice: int, autogroup: Path) -> list[str]:
    # "/autogroup-N nice K": only ever raised, as an unprivileged process may. Some kernels
    # and sandboxes list the file but refuse to read or write it.
    try:
        current = int(autogroup.read_text().split()[-1])
        if nice <= current:
            return []
        autogroup.write_text(str(nice))
    except (OSError, ValueError, IndexError) as error:
        return [f"autogroup unchanged ({getattr(error, 'strerror', None) or error})"]
    return [f"autogroup nice {nice}"]
