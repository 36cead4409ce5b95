"""The TaskQueue port on Celery: tasks are sent by name, so callers need not import them."""

from __future__ import annotations

from typing import Any, Protocol

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

    def drain(self, conversation_id: str, token: str = "") -> None:
        """Take the conversation's waiting turn, or go on with its step."""
        self.sender.send_task(DRAIN_TASK, args=[conversation_id, token])

    def poll(self, conversation_id: str, poll_id: int, token: str = "") -> None:
        """Check the conversation's run."""
        self.sender.send_task(POLL_TASK, args=[conversation_id, poll_id, token])

    def deliver(self, delivery_id: str, attempt: int, delay_s: float) -> None:
        """Make one attempt at an outbound delivery after `delay_s`."""
        self.sender.send_task(DELIVER_TASK, args=[delivery_id, attempt],
                              countdown=max(delay_s, 0.0) or None)

    def sync_article(self, article_id: str) -> None:
        """Bring a knowledge article's files in the vector stores up to date."""
        self.sender.send_task(KNOWLEDGE_SYNC_TASK, args=[article_id])
