"""The TaskQueue port on Celery: tasks are sent by name, so callers need not import them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from supportflow.services.ports import Due

WAKE_TASK = "supportflow.wake"
# One conversation a task, as published before wake-ups went in batches: still run, so tasks a
# previous version left in the broker are not lost in an upgrade.
DRAIN_TASK = "supportflow.drain"
POLL_TASK = "supportflow.poll"
DELIVER_TASK = "supportflow.deliver"
HANDOFF_TIMEOUTS_TASK = "supportflow.handoff_timeouts"
OPS_SAMPLE_TASK = "supportflow.ops_sample"
RETENTION_TASK = "supportflow.retention"
KNOWLEDGE_SYNC_TASK = "supportflow.knowledge_sync"
KNOWLEDGE_SWEEP_TASK = "supportflow.knowledge_sweep"
# The broker queue every task goes to (workers/app.py task_default_queue).
QUEUE = "supportflow"
# Sent by beat; each run is recorded, so ops (and the HA tests) see the active beat's pulse.
PERIODIC_TASKS = frozenset({HANDOFF_TIMEOUTS_TASK, OPS_SAMPLE_TASK, KNOWLEDGE_SWEEP_TASK})


class TaskSender(Protocol):
    def send_task(self, name: str, args: Any = None, **options: Any) -> Any: ...


class CeleryTaskQueue:
    """Publishes the scheduler's wake-ups, delivery attempts and knowledge syncs as tasks."""

    # Someone must run these tasks: readiness wants a worker seen recently.
    needs_workers = True

    def __init__(self, sender: TaskSender, name: str = QUEUE) -> None:
        self.sender = sender
        self.name = name

    def wake(self, due: Sequence[Due]) -> None:
        """One task for these conversations (each one's poll or drain)."""
        self.sender.send_task(WAKE_TASK, args=[wake_args(due)])

    def deliver(self, delivery_id: str, attempt: int, delay_s: float) -> None:
        """Make one attempt at an outbound delivery after `delay_s`."""
        self.sender.send_task(DELIVER_TASK, args=[delivery_id, attempt],
                              countdown=max(delay_s, 0.0) or None)

    def sync_article(self, article_id: str) -> None:
        """Bring a knowledge article's files in the vector stores up to date."""
        self.sender.send_task(KNOWLEDGE_SYNC_TASK, args=[article_id])


def wake_args(due: Sequence[Due]) -> list[list[Any]]:
    """A wake task's argument: [kind, conversation id, poll id, token] per conversation."""
    return [[d.kind, d.conversation_id, d.poll_id, d.token] for d in due]


def wake_items(args: Sequence[Sequence[Any]]) -> list[Due]:
    """The conversations a wake task carries (ValueError for an argument it cannot read)."""
    return [Due(str(kind), str(cid), int(poll_id), str(token))
            for kind, cid, poll_id, token in args]
