"""The TaskQueue port on Celery: tasks are sent by name, so callers need not import them."""

from __future__ import annotations

from typing import Any, Protocol

DRAIN_TASK = "supportflow.drain"
POLL_TASK = "supportflow.poll"
DELIVER_TASK = "supportflow.deliver"
WATCHDOG_TASK = "supportflow.watchdog"
HANDOFF_TIMEOUTS_TASK = "supportflow.handoff_timeouts"
OPS_SAMPLE_TASK = "supportflow.ops_sample"
RETENTION_TASK = "supportflow.retention"
KNOWLEDGE_SYNC_TASK = "supportflow.knowledge_sync"
KNOWLEDGE_SWEEP_TASK = "supportflow.knowledge_sweep"
# Sent by beat; each run is recorded, so ops (and the HA tests) see the active beat's pulse.
PERIODIC_TASKS = frozenset({WATCHDOG_TASK, HANDOFF_TIMEOUTS_TASK, OPS_SAMPLE_TASK,
                            KNOWLEDGE_SWEEP_TASK})


class TaskSender(Protocol):
    def send_task(self, name: str, args: Any = None, **options: Any) -> Any: ...


class CeleryTaskQueue:
    """Schedules the worker's next look at a conversation, and delivery attempts, as tasks."""

    # Someone must run these tasks: readiness wants a worker seen recently.
    needs_workers = True

    def __init__(self, sender: TaskSender) -> None:
        self.sender = sender

    def drain(self, conversation_id: str, delay_s: float = 0.0) -> None:
        """Take the conversation's waiting turn (or retry its step) after `delay_s`."""
        self.sender.send_task(DRAIN_TASK, args=[conversation_id], countdown=delay_s or None)

    def poll(self, conversation_id: str, poll_id: int, delay_s: float) -> None:
        """Check the conversation's run after `delay_s`."""
        self.sender.send_task(
            POLL_TASK, args=[conversation_id, poll_id], countdown=max(delay_s, 0.0) or None
        )

    def deliver(self, delivery_id: str, attempt: int, delay_s: float) -> None:
        """Make one attempt at an outbound delivery after `delay_s`."""
        self.sender.send_task(DELIVER_TASK, args=[delivery_id, attempt],
                              countdown=max(delay_s, 0.0) or None)

    def sync_article(self, article_id: str) -> None:
        """Bring a knowledge article's files in the vector stores up to date."""
        self.sender.send_task(KNOWLEDGE_SYNC_TASK, args=[article_id])
