"""Outbound deliveries: events to helpdesk callbacks, Chatwoot and the agents' webhook, retried."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from supportflow.domain.events import ConversationEvent, EventType
from supportflow.domain.inbox import Inbox, InboxKind

from .ports import Metrics, NullMetrics

log = logging.getLogger("supportflow.deliveries")
AGENTS = "agents"


class Outcome(StrEnum):
    DELIVERED = "delivered"
    GONE = "gone"  # the endpoint answered 410: send it nothing more
    RETRY = "retry"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    detail: str = ""


@dataclass
class Delivery:
    """One event on its way to one target ("inbox:<name>" or "agents")."""

    id: str
    target: str
    event: ConversationEvent
    attempt: int = 0
    status: str = "pending"  # pending, delivered or dead
    last_error: str | None = None
    updated_at: float = 0.0
    attempts_made: int = field(default=0)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "target": self.target, "event": self.event.to_dict(),
                "attempt": self.attempt, "status": self.status, "last_error": self.last_error,
                "updated_at": self.updated_at, "attempts_made": self.attempts_made}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Delivery:
        values = dict(data)
        values["event"] = ConversationEvent.from_dict(values["event"])
        return cls(**values)


class DeliveryStore(Protocol):
    def add(self, delivery: Delivery) -> bool:
        """Keep a new delivery; False when one with this id exists."""
        ...

    def get(self, delivery_id: str) -> Delivery | None: ...

    def save(self, delivery: Delivery) -> None: ...

    def bury(self, delivery: Delivery) -> None:
        """Save a dead delivery and put it on the dead-letter list."""
        ...

    def dead(self, limit: int = 100) -> list[Delivery]: ...

    def unbury(self, delivery_id: str) -> bool: ...


class DeliveryQueue(Protocol):
    def deliver(self, delivery_id: str, attempt: int, delay_s: float) -> None:
        """Schedule one attempt at a delivery after `delay_s`."""
        ...


class InboxDirectory(Protocol):
    def get(self, name: str) -> Inbox | None: ...

    def disable(self, name: str, reason: str) -> None: ...


class Transport(Protocol):
    def webhook(self, url: str, secret: str | None, event: ConversationEvent) -> Result: ...

    def chatwoot(self, inbox: Inbox, event: ConversationEvent) -> Result: ...


@dataclass(frozen=True)
class AgentsWebhook:
    url: str | None = None
    secret: str | None = None


class Deliveries:
    """Publishes events as deliveries and runs one attempt at a time on a retry schedule."""

    def __init__(self, *, store: DeliveryStore, queue: DeliveryQueue, inboxes: InboxDirectory,
                 transport: Transport, schedule: Sequence[float], agents: AgentsWebhook,
                 clock: Callable[[], float], metrics: Metrics | None = None) -> None:
        self.store, self.queue, self.inboxes, self.transport = store, queue, inboxes, transport
        self.metrics = metrics or NullMetrics()
        self.schedule = list(schedule) or [0.0]
        self.agents, self.clock = agents, clock

    def publish(self, events: Sequence[ConversationEvent]) -> None:
        """Keep a delivery per event and target, and schedule its first attempt (once per id)."""
        for event in events:
            for target in self.targets(event):
                delivery = Delivery(id=f"{event.id}.{target.replace(':', '-')}", target=target,
                                    event=event, updated_at=self.clock())
                if self.store.add(delivery):
                    self.queue.deliver(delivery.id, 0, self.schedule[0])

    def targets(self, event: ConversationEvent) -> list[str]:
        """Where an event goes: its inbox, and the agents' webhook for handoffs."""
        found = []
        kind, _, name = event.channel.partition(":")
        if kind in (InboxKind.WEBHOOK.value, InboxKind.CHATWOOT.value) and name:
            found.append(f"inbox:{name}")
        if event.type is EventType.HANDED_OFF and self.agents.url:
            found.append(AGENTS)
        return found

    def deliver(self, delivery_id: str, attempt: int) -> None:
        """Make one attempt; on failure schedule the next one or bury the delivery."""
        delivery = self.store.get(delivery_id)
        if delivery is None or delivery.status != "pending" or delivery.attempt != attempt:
            return  # delivered, dead, or a stale copy of the task
        result = self._attempt(delivery)
        delivery.attempts_made += 1
        delivery.updated_at = self.clock()
        if result.outcome is Outcome.DELIVERED:
            delivery.status, delivery.last_error = "delivered", None
            self.store.save(delivery)
        elif result.outcome is Outcome.GONE:
            self._bury(delivery, result.detail)
        elif attempt + 1 >= len(self.schedule):
            self._bury(delivery, f"gave up after {delivery.attempts_made} attempts: {result.detail}")
        else:
            delivery.attempt, delivery.last_error = attempt + 1, result.detail
            self.store.save(delivery)
            self.queue.deliver(delivery.id, attempt + 1, self.schedule[attempt + 1])
            self.metrics.inc("supportflow_delivery_retries")

    def _attempt(self, delivery: Delivery) -> Result:
        if delivery.target == AGENTS:
            if not self.agents.url:
                return Result(Outcome.GONE, "no agents' webhook is configured")
            return self.transport.webhook(self.agents.url, self.agents.secret, delivery.event)
        name = delivery.target.removeprefix("inbox:")
        inbox = self.inboxes.get(name)
        if inbox is None:
            return Result(Outcome.GONE, f"inbox {name!r} no longer exists")
        if not inbox.enabled:
            return Result(Outcome.GONE, f"inbox {name!r} is disabled: {inbox.disabled_reason}")
        if inbox.kind is InboxKind.CHATWOOT:
            result = self.transport.chatwoot(inbox, delivery.event)
        elif not inbox.callback_url:
            return Result(Outcome.DELIVERED, "no callback URL")
        else:
            result = self.transport.webhook(inbox.callback_url, inbox.outbound_secret, delivery.event)
        if result.outcome is Outcome.GONE:
            self.inboxes.disable(name, result.detail)
        return result

    def _bury(self, delivery: Delivery, reason: str) -> None:
        log.warning("delivery %s dead: %s", delivery.id, reason)
        delivery.status, delivery.last_error = "dead", reason
        self.store.bury(delivery)
        self.metrics.inc("supportflow_dead_letters")

    def dead_letters(self, limit: int = 100) -> list[Delivery]:
        """Deliveries that were given up on, oldest first."""
        return self.store.dead(limit)

    def replay(self, delivery_id: str) -> bool:
        """Send a dead delivery again from the first attempt, with the same webhook-id."""
        delivery = self.store.get(delivery_id)
        if delivery is None or delivery.status != "dead" or not self.store.unbury(delivery_id):
            return False
        delivery.status, delivery.attempt, delivery.updated_at = "pending", 0, self.clock()
        self.store.save(delivery)
        self.queue.deliver(delivery.id, 0, self.schedule[0])
        return True
