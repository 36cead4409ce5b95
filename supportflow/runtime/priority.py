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


def give_way(nice: int) -> list[str]:
    """Run at nice value `nice` at least (its autogroup too, when this process leads its own
    session); what was changed, for the log. Never raises a priority."""
    changed = []
    current = os.nice(0)
    if nice > current:
        changed.append(f"nice {os.nice(nice - current)}")
    if os.getsid(0) == os.getpid() and AUTOGROUP.exists():
        # "/autogroup-N nice K": only ever raised, as an unprivileged process may.
        current = int(AUTOGROUP.read_text().split()[-1])
        if nice > current:
            try:
                AUTOGROUP.write_text(str(nice))
                changed.append(f"autogroup nice {nice}")
            except OSError as error:
                changed.append(f"autogroup unchanged ({error.strerror})")
    return changed
