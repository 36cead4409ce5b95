"""Thin tasks: take ids, call one use case."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from supportflow.adapters.celery_queue import (
    DELIVER_TASK,
    DRAIN_TASK,
    HANDOFF_TIMEOUTS_TASK,
    KNOWLEDGE_SWEEP_TASK,
    KNOWLEDGE_SYNC_TASK,
    OPS_SAMPLE_TASK,
    POLL_TASK,
    RETENTION_TASK,
    WAKE_TASK,
    wake_items,
)
from supportflow.services.knowledge import SyncBusy
from supportflow.services.ports import AssistantError

from .base import services


@shared_task(name=WAKE_TASK)
def wake(items: list[list[Any]]) -> None:
    """Run the wake-ups the scheduler claimed together (each conversation's poll or drain)."""
    services().engine.wake(wake_items(items))


@shared_task(name=DRAIN_TASK)
def drain(conversation_id: str, dispatch: str = "") -> None:
    """Run a conversation's waiting turn, or go on with its step."""
    services().engine.drain(conversation_id, dispatch)


@shared_task(name=POLL_TASK)
def poll(conversation_id: str, poll_id: int, dispatch: str = "") -> None:
    """Check a conversation's run once."""
    services().engine.poll(conversation_id, poll_id, dispatch)


@shared_task(name=HANDOFF_TIMEOUTS_TASK, max_retries=0)
def handoff_timeouts() -> None:
    """Give unclaimed handoffs past their flow's timeout the flow's action."""
    acted = services().agents.expire_unclaimed()
    if acted:
        logging.getLogger("supportflow.agents").info("handoff timeouts: %s", acted)


@shared_task(name=DELIVER_TASK)
def deliver(delivery_id: str, attempt: int) -> None:
    """Make one attempt at an outbound delivery (the next is scheduled with a countdown)."""
    services().deliveries.deliver(delivery_id, attempt)


@shared_task(name=OPS_SAMPLE_TASK, max_retries=0)
def ops_sample() -> None:
    """Record one point of the ops time series (reply latency, queue depths)."""
    services().ops_view.sample()


@shared_task(name=KNOWLEDGE_SYNC_TASK, autoretry_for=(AssistantError, SyncBusy),
             retry_backoff=2, retry_backoff_max=300, max_retries=12)
def knowledge_sync(article_id: str) -> None:
    """Bring an article's files in the flows' vector stores up to date. Transient failures are
    retried here; others (a missing vector store...) wait for beat's sweep, as do syncs whose
    every retry failed."""
    try:
        services().knowledge_sync.sync(article_id)
    except AssistantError as error:
        if error.retryable:
            raise
        logging.getLogger("supportflow.knowledge").warning(
            "knowledge sync of %s failed: %s", article_id, error.describe())


@shared_task(name=KNOWLEDGE_SWEEP_TASK, max_retries=0)
def knowledge_sweep() -> None:
    """Send again the article syncs that did not finish in time."""
    services().knowledge_sync.sweep()


@shared_task(name=RETENTION_TASK, max_retries=0)
def retention() -> None:
    """Erase conversations and contacts past their retention, in batches."""
    services().retention.sweep()
