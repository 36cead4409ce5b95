"""The sandbox's webhooks: OpenAI's signed response events, sent when a background response ends.

Events are shaped as the API description's `WebhookResponseCompleted` and its siblings and
signed per Standard Webhooks, as OpenAI signs them. Like OpenAI, the sender retries a delivery
that gets no 2xx answer (same webhook-id, fresh timestamp and signature); unlike it, the sender
can also drop, delay, duplicate and reorder deliveries on purpose, to test the receiving side.
"""

from __future__ import annotations

import json
import queue
import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx

from supportflow.webhooks.signing import signed_headers

from .store import new_id
from .timer import Timer

# Event types by the status a background response ends with (`expired` has none).
EVENT_TYPES = {
    "completed": "response.completed",
    "failed": "response.failed",
    "cancelled": "response.cancelled",
    "incomplete": "response.incomplete",
}
SENDER_THREADS = 4
LOG_SIZE = 1000
# Seconds before each new attempt at a delivery that got no 2xx answer.
RETRY_DELAYS_S = (1.0, 2.0, 4.0)


@dataclass(frozen=True)
class WebhookTarget:
    """Where events go, the secret that signs them, and how deliveries misbehave."""

    url: str
    secret: str = field(repr=False)
    delay_s: float = 0.0
    # Each delivery waits delay_s plus a random share of jitter_s, so deliveries overtake
    # one another (reordering).
    jitter_s: float = 0.0
    drop_rate: float = 0.0
    # Extra copies of every delivery, with the same webhook-id (as a retry would be).
    duplicates: int = 0


@dataclass
class Delivery:
    """One event on its way to one target; every attempt carries the same webhook-id."""

    webhook_id: str
    target: WebhookTarget
    body: bytes
    attempt: int = 0


def event_object(event_id: str, event_type: str, response_id: str, finished_at: float) -> dict[str, Any]:
    """The event body OpenAI sends: id, object, type, created_at and the response's id."""
    return {"id": event_id, "object": "event", "type": event_type,
            "created_at": int(finished_at), "data": {"id": response_id}}


class WebhookSender:
    """Sends signed events from a small pool of threads through one pooled HTTP client."""

    def __init__(self, timer: Timer, *, threads: int = SENDER_THREADS,
                 http: httpx.Client | None = None, rng: random.Random | None = None,
                 retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S) -> None:
        self.timer = timer
        self.http = http or httpx.Client(
            timeout=httpx.Timeout(5.0, connect=2.0),
            limits=httpx.Limits(max_connections=threads, max_keepalive_connections=threads))
        self.rng = rng or random.Random()
        self.retry_delays_s = retry_delays_s
        self.counts: Counter[str] = Counter()
        # The latest events, in the order the responses ended (webhook_id None: dropped).
        self.log: deque[dict[str, str | None]] = deque(maxlen=LOG_SIZE)
        self._lock = threading.Lock()
        self._ready: queue.Queue[Delivery | None] = queue.Queue()
        self._threads = [threading.Thread(target=self._work, name=f"sandbox-webhooks-{n}",
                                          daemon=True) for n in range(threads)]
        for thread in self._threads:
            thread.start()

    def response_finished(self, response_id: str, status: str, finished_at: float,
                          target: WebhookTarget | None) -> None:
        """Plan the event of a response that just ended (nothing without a target)."""
        event_type = EVENT_TYPES.get(status)
        if target is None or event_type is None:
            return
        event = event_object(new_id("evt"), event_type, response_id, finished_at)
        body = json.dumps(event)
        dropped = self.rng.random() < target.drop_rate
        webhook_id = None if dropped else new_id("wh")
        with self._lock:
            self.counts["webhook_events"] += 1
            self.counts["webhooks_dropped"] += dropped
            self.log.append({"event": event["id"], "type": event_type, "response": response_id,
                             "webhook_id": webhook_id})
        if webhook_id is None:
            return
        for _ in range(1 + target.duplicates):
            delivery = Delivery(webhook_id, target, body.encode())
            delay = target.delay_s + self.rng.uniform(0.0, target.jitter_s)
            self.timer.call_later(delay, partial(self._ready.put, delivery))

    def stats(self) -> dict[str, Any]:
        """Events made, deliveries dropped, sent (2xx), retried and given up; the latest events."""
        with self._lock:
            counts = {key: self.counts[key] for key in (
                "webhook_events", "webhooks_dropped", "webhooks_sent", "webhooks_retried",
                "webhooks_failed")}
            return {**counts, "webhook_log": list(self.log)}

    def close(self) -> None:
        """Stop the sender threads and close the HTTP client."""
        for _ in self._threads:
            self._ready.put(None)
        for thread in self._threads:
            thread.join(timeout=5)
        self.http.close()

    def _count(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1

    def _work(self) -> None:
        while (delivery := self._ready.get()) is not None:
            self._attempt(delivery)

    def _attempt(self, delivery: Delivery) -> None:
        """POST the event once; a failure is tried again later, a few times."""
        target = delivery.target
        headers = signed_headers([target.secret], delivery.webhook_id, delivery.body, time.time())
        try:
            answer = self.http.post(target.url, content=delivery.body,
                                    headers={**headers, "Content-Type": "application/json"})
            delivered = answer.is_success
        except httpx.HTTPError:
            delivered = False
        if delivered:
            self._count("webhooks_sent")
            return
        if delivery.attempt >= len(self.retry_delays_s):
            self._count("webhooks_failed")
            return
        self._count("webhooks_retried")
        later = Delivery(delivery.webhook_id, target, delivery.body, delivery.attempt + 1)
        self.timer.call_later(self.retry_delays_s[delivery.attempt],
                              partial(self._ready.put, later))
