"""Where a conversation lives in Redis: every key under one prefix (DESIGN.md section 6)."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any


def dump(value: Any) -> bytes:
    """JSON as UTF-8; text that is not valid Unicode (a lone surrogate) raises here, before
    anything is written, instead of leaving a record the scripts cannot read."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class OneConversation:
    """Every key of one conversation: erasure deletes exactly these (add new ones here)."""

    record: str
    lease: str
    mailbox: str
    transcript: str
    ids: str
    notes: str
    faults: str
    deliveries: str

    def all(self) -> list[str]:
        return [getattr(self, name.name) for name in fields(self)]


@dataclass(frozen=True)
class ConversationKeys:
    """Key names; shared by the store, the unit of work and the agents' board."""

    prefix: str

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def of(self, conversation_id: str) -> OneConversation:
        base = self.key("conv", conversation_id)
        return OneConversation(record=base, lease=f"{base}:lease", mailbox=f"{base}:mailbox",
                               transcript=f"{base}:transcript", ids=f"{base}:ids",
                               notes=f"{base}:notes", faults=f"{base}:faults",
                               deliveries=f"{base}:deliveries")

    def attributes(self, contact_id: str) -> str:
        return self.key("contact", contact_id, "attributes")

    def contact_threads(self, contact_id: str) -> str:
        return self.key("contact", contact_id, "threads")

    def contact_conversations(self, contact_id: str) -> str:
        return self.key("contact", contact_id, "conversations")

    def state(self, state: str) -> str:
        return self.key("state", state)

    def response(self, response_id: str) -> str:
        """The response index: the conversation waiting on a response (run) id."""
        return self.key("response", response_id)

    @property
    def conversations(self) -> str:
        return self.key("conversations")

    @property
    def wakeups(self) -> str:
        return self.key("wakeups")

    @property
    def queued(self) -> str:
        """Conversation -> dispatch token of the task the scheduler published for it."""
        return self.key("queued")

    @property
    def fence(self) -> str:
        """Written by a duplicate accept while the replica wait is on (redis_scripts._ACCEPT)."""
        return self.key("replication", "fence")

    @property
    def messages_in(self) -> str:
        """The supportflow_messages_in metric's hash (the accept scripts count there)."""
        return self.key("metrics", "supportflow_messages_in")

    @property
    def dispatched(self) -> str:
        """The scheduler's counters (a metric's hash: supportflow_dispatched by kind)."""
        return self.key("metrics", "supportflow_dispatched")

    @property
    def handoffs(self) -> str:
        return self.key("handoffs")

    @property
    def handoffs_log(self) -> str:
        return self.key("handoffs", "log")

    @property
    def handoff_claims(self) -> str:
        return self.key("handoffs", "claims")

    @property
    def activity(self) -> str:
        """Conversations by their last activity (retention)."""
        return self.key("activity")

    @property
    def closed(self) -> str:
        """Closed conversations by when they closed (retention)."""
        return self.key("closed")

    @property
    def contacts(self) -> str:
        """Contacts whose conversations were erased, by the last one's activity (retention)."""
        return self.key("contacts")

    @property
    def dead_letters(self) -> str:
        return self.key("deliveries", "dead")

    @property
    def failures(self) -> str:
        return self.key("ops", "failures")

    def delivery(self, delivery_id: str) -> str:
        return self.key("delivery", delivery_id)
