"""The DeliveryQueue port on Celery: one task per attempt, sent by name with a countdown."""

from __future__ import annotations

from .celery_queue import TaskSender

DELIVER_TASK = "supportflow.deliver"


class CeleryDeliveryQueue:
    """Schedules a delivery attempt as a Celery task."""

    def __init__(self, sender: TaskSender) -> None:
        self.sender = sender

    def schedule(self, delivery_id: str, attempt: int, delay_s: float) -> None:
        self.sender.send_task(DELIVER_TASK, args=[delivery_id, attempt],
                              countdown=max(delay_s, 0.0) or None)
