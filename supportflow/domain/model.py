"""Conversation records, transcript messages and the events that drive them."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

CONVERSATION_ID = re.compile(r"conv-[0-9a-f]{32}")


def new_conversation_id() -> str:
    """A fresh conversation id."""
    return f"conv-{uuid.uuid4().hex}"


def is_conversation_id(value: str) -> bool:
    """True for ids the service gives conversations (anything else names none)."""
    return CONVERSATION_ID.fullmatch(value) is not None


class State(StrEnum):
    ASK = "ask"
    STORE_ATTRIBUTE = "store_attribute"
    OPEN_THREAD = "open_thread"
    POST_MESSAGE = "post_message"
    START_RUN = "start_run"
    POLL = "poll"
    DECIDE = "decide"
    WAIT_FOR_USER = "wait_for_user"
    HANDED_OFF = "handed_off"
    CLOSED = "closed"


class Author(StrEnum):
    CUSTOMER = "customer"
    BOT = "bot"
    AGENT = "agent"
    SYSTEM = "system"


@dataclass(frozen=True)
class CustomerMessage:
    """A message the customer wrote, as it waits in the mailbox."""

    id: str
    text: str
    received_at: float

    def to_dict(self) -> dict[str, Any]:
        # Spelled out: dataclasses.asdict deep-copies, a tenth of accepting a message.
        return {"id": self.id, "text": self.text, "received_at": self.received_at}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CustomerMessage:
        return cls(id=str(data["id"]), text=str(data["text"]), received_at=float(data["received_at"]))


def _bound(conversation: Conversation, trigger: str) -> bool:
    """Fire a trigger of the table (or ask `may_<trigger>`) on the process's one machine."""
    from .fsm import trigger_on

    return trigger_on(conversation, trigger)


@dataclass
class Conversation:
    """One conversation's durable state; `version` guards every commit.

    It is the state machine's model: the trigger methods declared below fire the events of the
    process's one machine (`supportflow.domain.fsm.machine`) on it, which moves `state`;
    `supportflow.domain.fsm.bind` attaches the machine's own trigger functions instead
    (transitions' `model_override`: only what is declared here is bound, so every trigger is
    typed).
    """

    id: str
    contact_id: str
    flow: str
    state: State = State.ASK
    # Where the customer writes from: "widget", "webhook:<inbox>" or "chatwoot:<inbox>".
    channel: str = "widget"
    # The helpdesk's own id of this conversation, for channels that have one.
    external_id: str | None = None
    version: int = 0
    turn: int = 0
    thread_id: str | None = None
    run_id: str | None = None
    # Messages of the turn in progress: taken from the mailbox, not yet answered.
    turn_messages: list[CustomerMessage] = field(default_factory=list)
    reply: str | None = None
    handoff_reason: str | None = None
    # The customer was told once that nobody has claimed the handoff yet.
    handoff_timeout_told: bool = False
    failure_reason: str | None = None
    poll_attempt: int = 0
    poll_id: int = 0
    # When a worker should next look at it (a poll, a retry, or a step under way); None: idle.
    wake_at: float | None = None
    run_started_at: float | None = None
    step_attempt: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0

    # ----- conditions of the transition table -----

    def has_thread(self) -> bool:
        """The conversation already has a thread (contact and static scopes, later turns)."""
        return self.thread_id is not None

    def wants_handoff(self) -> bool:
        """The turn ends with a person: a handoff marker, the handoff tool, or the fallback."""
        return self.handoff_reason is not None

    # ----- triggers, bound by the machine -----

    def user_message(self) -> bool: return _bound(self, "user_message")
    def may_user_message(self) -> bool: return _bound(self, "may_user_message")
    def attribute_stored(self) -> bool: return _bound(self, "attribute_stored")
    def may_attribute_stored(self) -> bool: return _bound(self, "may_attribute_stored")
    def thread_opened(self) -> bool: return _bound(self, "thread_opened")
    def may_thread_opened(self) -> bool: return _bound(self, "may_thread_opened")
    def message_posted(self) -> bool: return _bound(self, "message_posted")
    def may_message_posted(self) -> bool: return _bound(self, "may_message_posted")
    def run_started(self) -> bool: return _bound(self, "run_started")
    def may_run_started(self) -> bool: return _bound(self, "may_run_started")
    def run_pending(self) -> bool: return _bound(self, "run_pending")
    def may_run_pending(self) -> bool: return _bound(self, "may_run_pending")
    def run_completed(self) -> bool: return _bound(self, "run_completed")
    def may_run_completed(self) -> bool: return _bound(self, "may_run_completed")
    def reply_decided(self) -> bool: return _bound(self, "reply_decided")
    def may_reply_decided(self) -> bool: return _bound(self, "may_reply_decided")
    def failed(self) -> bool: return _bound(self, "failed")
    def may_failed(self) -> bool: return _bound(self, "may_failed")
    def agent_resolved(self) -> bool: return _bound(self, "agent_resolved")
    def may_agent_resolved(self) -> bool: return _bound(self, "may_agent_resolved")
    def agent_returned(self) -> bool: return _bound(self, "agent_returned")
    def may_agent_returned(self) -> bool: return _bound(self, "may_agent_returned")

    # ----- reading it -----

    @property
    def turn_text(self) -> str:
        """The customer's messages of this turn, joined in arrival order."""
        return "\n".join(message.text for message in self.turn_messages)

    @property
    def turn_key(self) -> str:
        """Identifies this turn of this conversation for idempotent effects."""
        return f"{self.id}:{self.turn}"

    def to_dict(self) -> dict[str, Any]:
        """The record as stored (the fields only, never what the machine attached)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["state"] = self.state.value
        data["turn_messages"] = [message.to_dict() for message in self.turn_messages]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Conversation:
        values = dict(data)
        values["state"] = State(values["state"])
        values["turn_messages"] = [CustomerMessage.from_dict(m) for m in values["turn_messages"]]
        return cls(**values)


@dataclass(frozen=True)
class TranscriptMessage:
    """One line of a conversation's transcript, as the widget and agents read it."""

    id: str
    author: Author
    text: str
    at: float
    turn: int | None = None
    # The account (or API token) of the agent who wrote it, for agents' messages.
    agent: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {"id": self.id, "author": self.author.value, "text": self.text, "at": self.at,
                "turn": self.turn}
        if self.agent is not None:
            data["agent"] = self.agent
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TranscriptMessage:
        return cls(
            id=str(data["id"]),
            author=Author(data["author"]),
            text=str(data["text"]),
            at=float(data["at"]),
            turn=data.get("turn"),
            agent=data.get("agent"),
        )
