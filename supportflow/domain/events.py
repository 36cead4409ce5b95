"""Events a conversation sends out: to the helpdesk's callback, Chatwoot, agents and streams."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class EventType(StrEnum):
    MESSAGE_CREATED = "message.created"
    HANDED_OFF = "conversation.handed_off"
    RESOLVED = "conversation.resolved"
    RETURNED_TO_BOT = "conversation.returned_to_bot"


@dataclass(frozen=True)
class ConversationEvent:
    """One outbound event; `id` is stable, so a re-sent event keeps its webhook-id."""

    id: str
    type: EventType
    conversation_id: str
    channel: str
    external_id: str | None
    at: float
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["type"] = self.type.value
        return values

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConversationEvent:
        values = dict(data)
        values["type"] = EventType(values["type"])
        return cls(**values)


def event_id(conversation_id: str, what: str) -> str:
    """A stable id for the event `what` of a conversation (e.g. a message id)."""
    return "evt_" + hashlib.sha256(f"{conversation_id}|{what}".encode()).hexdigest()[:24]
