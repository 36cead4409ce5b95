"""The watchdog use case: nothing stalls because a worker died holding a conversation's task."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from supportflow.domain.model import State

from .ports import ConversationStore, Metrics, NullMetrics, TaskQueue


@dataclass
class WatchdogReport:
    polls: list[str] = field(default_factory=list)
    drains: list[str] = field(default_factory=list)


class Watchdog:
    """Wakes conversations whose poll or step is overdue, or whose mailbox has no owner."""

    def __init__(self, *, store: ConversationStore, queue: TaskQueue,
                 clock: Callable[[], float], grace_s: float, metrics: Metrics | None = None) -> None:
        self.store = store
        self.queue = queue
        self.clock = clock
        self.grace_s = grace_s
        self.metrics = metrics or NullMetrics()

    def run(self) -> WatchdogReport:
        """One round: re-schedule what is late by more than the grace period."""
        now = self.clock()
        report = WatchdogReport()
        for conversation_id in self.store.due_wakeups(now, self.grace_s):
            conversation = self.store.get(conversation_id)
            if conversation is None or self.store.lease_held(conversation_id):
                continue
            if conversation.state is State.POLL:
                self.queue.poll(conversation_id, conversation.poll_id, 0.0)
                report.polls.append(conversation_id)
                self.metrics.inc("supportflow_watchdog_actions", action="poll")
            else:
                self.queue.drain(conversation_id)
                report.drains.append(conversation_id)
                self.metrics.inc("supportflow_watchdog_actions", action="drain")
        for conversation_id in self.store.stranded_mailboxes(now, self.grace_s):
            if conversation_id not in report.drains and not self.store.lease_held(conversation_id):
                self.queue.drain(conversation_id)
                report.drains.append(conversation_id)
                self.metrics.inc("supportflow_watchdog_actions", action="stranded")
        return report
