"""The scheduler: the `wakeups` index is the schedule, and this publishes what is due.

Every commit writes when a worker should next look at the conversation (a poll, a retry, a
step under way, customer messages waiting); accepting a message writes "now". The scheduler
claims due conversations in one Redis round trip and publishes them in immediate tasks of up to
`per_task` each (a worker takes a task's conversations in one round trip and runs them side by
side: the broker's cost is paid once a task, not once a conversation).
It is the watchdog too, and cannot amplify load:
- a claimed conversation is due again a grace period later, so a task that never runs (its
  worker died) brings it back, at most once per grace period; a commit replaces that;
- one held by a worker is left alone; one whose task still waits in the broker is a
  backlog, not lost work, and is not published again;
- back-pressure: the broker's queue holds `queue_limit` conversations at most (a task counted
  as `per_task`), so it stays short and the backlog waits in the index, in due order;
- each round looks at `batch` conversations at most.
Several schedulers (one per worker) are safe: a claim is atomic.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from .ports import Due, Schedule, TaskQueue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SchedulerConfig:
    grace_s: float = 5.0
    # Conversations looked at per round, and how many may wait in the broker's queue.
    batch: int = 200
    queue_limit: int = 500
    interval_s: float = 0.05
    # Conversations a task carries at most.
    per_task: int = 20


@dataclass
class Round:
    """What one round did: the queue depth it saw, and the tasks it published."""

    depth: int = 0
    published: list[Due] = field(default_factory=list)


class Scheduler:
    """Claims due conversations and publishes their tasks (up to `per_task` conversations each)."""

    def __init__(self, *, schedule: Schedule, queue: TaskQueue, clock: Callable[[], float],
                 config: SchedulerConfig | None = None) -> None:
        self.schedule = schedule
        self.queue = queue
        self.clock = clock
        self.config = config or SchedulerConfig()

    def run_once(self) -> Round:
        """One round: claim what is due (one Redis round trip), publish it in tasks."""
        c = self.config
        claimed = self.schedule.claim_due(self.clock(), c.grace_s, c.batch, c.queue_limit,
                                          self.queue.name, c.per_task)
        for chunk in chunks(claimed.due, c.per_task):
            self.queue.wake(chunk)
        return Round(claimed.depth, claimed.due)

    def run(self, stopped: threading.Event) -> None:
        """Rounds every `interval_s` until `stopped`; at once again while a round was full."""
        while not stopped.is_set():
            try:
                full = len(self.run_once().published) >= self.config.batch
            except Exception as error:  # Redis or the broker away: the next round tries again
                log.warning("scheduler round failed: %s", error)
                full = False
            if not full:
                stopped.wait(self.config.interval_s)


def chunks(due: list[Due], most: int) -> list[list[Due]]:
    """`due` in as few tasks as `most` a task allows, of even sizes (in due order)."""
    if not due:
        return []
    count = -(-len(due) // max(most, 1))
    size, extra = divmod(len(due), count)
    out, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        out.append(due[start:end])
        start = end
    return out
