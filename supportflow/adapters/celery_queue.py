"""The TaskQueue port on Celery: tasks are sent by name, so callers need not import them."""

from __future__ import annotations

from typing import Any, Protocol

DRAIN_TASK = "supportflow.drain"
POLL_TASK = "supportflow.poll"
WATCHDOG_TASK = "supportflow.watchdog"
HANDOFF_TIMEOUTS_TASK = "supportflow.handoff_timeouts"
OPS_SAMPLE_TASK = "supportflow.ops_sample"


class TaskSender(Protocol):
    def send_task(self, name: str, args: Any = None, **options: Any) -> Any: ...


class CeleryTaskQueue:
    """Schedules the worker's next look at a conversation as a Celery task."""

    def __init__(self, sender: TaskSender) -> None:
        self.sender = sender

    def drain(self, conversation_id: str, delay_s: float = 0.0) -> None:
        self.sender.send_task(DRAIN_TASK, args=[conversation_id], countdown=delay_s or None)

    def poll(self, conversation_id: str, poll_id: int, delay_s: float) -> None:
        self.sender.send_task(
            POLL_TASK, args=[conversation_id, poll_id], countdown=max(delay_s, 0.0) or None
        )
