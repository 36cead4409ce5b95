"""The watchdog use case: nothing stalls because a worker died holding a conversation's task.

It can never amplify load: a conversation is woken at most once per grace period however late
it is (the wake-up index remembers, atomically), one held by a worker is left alone, and each
round looks at a bounded number of conversations.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from supportflow.domain.model import State

from .ports import Metrics, NullMetrics, TaskQueue, WakeupIndex

# Conversations looked at per round and per index (overdue steps and polls; waiting mailboxes).
ROUND_LIMIT = 500


@dataclass
class WatchdogReport:
    polls: list[str] = field(default_factory=list)
    drains: list[str] = field(default_factory=list)


class Watchdog:
    """Wakes conversations whose poll or step is overdue, or whose mailbox has no owner."""

    def __init__(self, *, index: WakeupIndex, queue: TaskQueue, clock: Callable[[], float],
                 grace_s: float, metrics: Metrics | None = None,
                 limit: int = ROUND_LIMIT) -> None:
        self.index = index
        self.queue = queue
        self.clock = clock
        self.grace_s = grace_s
        self.limit = limit
        self.metrics = metrics or NullMetrics()

    def run(self) -> WatchdogReport:
        """One round: wake what is later than the grace period (one Redis round trip)."""
        report, actions = WatchdogReport(), Counter[str]()
        for overdue in self.index.wake_overdue(self.clock(), self.grace_s, self.limit):
            cid = overdue.conversation_id
            if overdue.state == State.POLL.value:
                self.queue.poll(cid, overdue.poll_id, 0.0)
                report.polls.append(cid)
                actions["poll"] += 1
            else:
                self.queue.drain(cid)
                report.drains.append(cid)
                actions["stranded" if overdue.state == "mailbox" else "drain"] += 1
        for action, count in actions.items():
            self.metrics.inc("supportflow_watchdog_actions", count, action=action)
        return report
