"""OpenAI's signed response events: verified per connector, de-duplicated, and a wake-up for
the conversation that waits on that response, through the same step a poll runs.

An event is only a hint that a response ended: the worker still reads the response from the
API (the flow's own connector) before anything is said to the customer, so a webhook and a
poll that race give one reply, and an event can never put words in the assistant's mouth.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from supportflow.webhooks.signing import SignatureError, verify

from .ports import Metrics, NullMetrics

# The events of background responses; every other type is acknowledged and ignored.
RESPONSE_EVENTS = frozenset(
    {"response.completed", "response.failed", "response.cancelled", "response.incomplete"})


class Outcome(StrEnum):
    """What became of a verified event."""

    WOKE = "woke"  # the conversation waiting on the response is checked at once
    UNKNOWN = "unknown"  # no conversation waits on that response (not ours, or done)
    REPLAYED = "replayed"  # this webhook-id was seen before: no effect
    IGNORED = "ignored"  # not a response event


@dataclass(frozen=True)
class Wake:
    """What the wake-up found: the outcome, and the conversation it woke."""

    outcome: Outcome
    conversation_id: str | None = None
    poll_id: int = 0


class ResponseWakeups(Protocol):
    """Maps a response to the conversation waiting on it and moves its wake-up to now."""

    def wake(self, response_id: str, delivery: str, now: float) -> Wake:
        """Once per `delivery` (connector and webhook-id): REPLAYED, UNKNOWN, or WOKE."""
        ...


class NoWebhookSecret(Exception):
    """The connector has no webhook secret, so nothing can be verified for it."""


class ResponseEvents:
    """The use case behind POST /v1/integrations/openai/<connector>."""

    def __init__(self, *, secrets: Callable[[str, float], list[str]], wakeups: ResponseWakeups,
                 clock: Callable[[], float], metrics: Metrics | None = None) -> None:
        self.secrets = secrets
        self.wakeups = wakeups
        self.clock = clock
        self.metrics = metrics or NullMetrics()

    def verify(self, connector: str, headers: Mapping[str, str], body: bytes) -> str:
        """The webhook-id of a request signed with one of the connector's secrets.

        Raises NoWebhookSecret, or SignatureError (forged, tampered, stale, headers missing).
        """
        now = self.clock()
        secrets = self.secrets(connector, now)
        if not secrets:
            self.refused("no_secret")
            raise NoWebhookSecret(connector)
        try:
            return verify(secrets, headers, body, now)
        except SignatureError as error:
            self.refused(error.reason)
            raise

    def receive(self, connector: str, webhook_id: str, event_type: str, object_id: str) -> Outcome:
        """Act on a verified event: a response event wakes the conversation waiting on it."""
        if event_type not in RESPONSE_EVENTS:
            outcome = Outcome.IGNORED
        else:
            # The wake-up moved to now: the scheduler publishes the poll (services/scheduler.py).
            outcome = self.wakeups.wake(object_id, f"{connector}:{webhook_id}", self.clock()).outcome
        self.metrics.inc("supportflow_openai_events", outcome=outcome.value)
        return outcome

    def refused(self, reason: str) -> None:
        """Count an event refused before it had any effect."""
        self.metrics.inc("supportflow_openai_events_refused", reason=reason)
