"""What every use case that changes a conversation shares: its hold on it, and its events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from supportflow.domain.events import ConversationEvent, EventType, event_id
from supportflow.domain.flow import Flow
from supportflow.domain.fsm import ConversationMachine
from supportflow.domain.model import Conversation


@dataclass(frozen=True)
class EngineConfig:
    lease_ttl_s: float = 45.0
    retry_base_s: float = 1.0
    retry_max_s: float = 60.0


@dataclass
class Session:
    """One worker's hold on one conversation: the record, its flow, its machine, the lease."""

    conversation: Conversation
    flow: Flow
    lease: str
    machine: ConversationMachine = field(init=False)

    def __post_init__(self) -> None:
        self.machine = ConversationMachine(self.conversation, self.flow)


def conversation_event(
    conversation: Conversation, kind: EventType, what: str, data: dict[str, Any]
) -> ConversationEvent:
    """An event of the conversation whose id is stable for the same `what`."""
    return ConversationEvent(
        id=event_id(conversation.id, what), type=kind, conversation_id=conversation.id,
        channel=conversation.channel, external_id=conversation.external_id,
        at=conversation.updated_at, data=data,
    )
