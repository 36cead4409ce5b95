"""Use cases on the way in: start a conversation, accept a customer's message."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from supportflow.domain.ids import WELCOME_ID, Source, message_id
from supportflow.domain.model import (
    Author,
    Conversation,
    CustomerMessage,
    State,
    TranscriptMessage,
    new_conversation_id,
)

from .ports import Accepted, Conversations, FlowCatalog, Limit, Metrics, NullMetrics


class UnknownConversation(LookupError):
    """No conversation has this id."""


class UnknownFlow(LookupError):
    """No flow has this name."""


class ConversationClosed(Exception):
    """The conversation was resolved; it takes no more messages."""


class NotWithTheBot(Exception):
    """The conversation is with the agents; a channel that only talks to the bot is refused."""


@dataclass(frozen=True)
class Contact:
    """The helpdesk's contact: its id, and what the helpdesk knows of it."""

    id: str
    name: str | None = None
    email: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)

    def profile(self) -> dict[str, str]:
        """Attributes to store on the contact, name and email included when given."""
        values = dict(self.attributes)
        if self.name:
            values["name"] = self.name
        if self.email:
            values["email"] = self.email
        return values


@dataclass(frozen=True)
class Receipt:
    conversation_id: str
    message_id: str
    duplicate: bool


class Intake:
    """Starts conversations and takes customer messages; never calls the assistant."""

    def __init__(
        self,
        *,
        store: Conversations,
        flows: FlowCatalog,
        clock: Callable[[], float],
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.flows = flows
        self.clock = clock
        self.metrics = metrics or NullMetrics()

    def start_conversation(
        self,
        contact: Contact,
        flow_name: str | None = None,
        *,
        channel: str = "widget",
        external_id: str | None = None,
    ) -> tuple[Conversation, TranscriptMessage]:
        """Create a conversation in `ask` and record the flow's welcome question."""
        name = flow_name or self.flows.default
        try:
            flow = self.flows.get(name)
        except KeyError as error:
            raise UnknownFlow(name) from error
        now = self.clock()
        conversation = Conversation(
            id=new_conversation_id(),
            contact_id=contact.id,
            flow=flow.name,
            state=State.ASK,
            channel=channel,
            external_id=external_id,
            created_at=now,
            updated_at=now,
        )
        welcome = TranscriptMessage(id=WELCOME_ID, author=Author.BOT, text=flow.welcome, at=now,
                                    turn=0)
        self.store.set_attributes(contact.id, contact.profile())
        self.store.create(conversation, welcome)
        return conversation, welcome

    def receive_message(self, conversation_id: str, client_id: str | None, text: str,
                        source: Source = Source.CUSTOMER, *, bot_only: bool = False,
                        limits: Sequence[Limit] = ()) -> Receipt:
        """Keep the customer's message (once per id of its source); the scheduler wakes the
        conversation. One Redis round trip (it counts the message, and the request against
        `limits`: LimitExceeded past one). `bot_only` refuses it while agents have the
        conversation."""
        message = self.new_message(message_id(source, client_id), text)
        accepted = self.store.accept_customer_message(conversation_id, message, bot_only=bot_only,
                                                      limits=limits)
        if accepted is Accepted.UNKNOWN:
            raise UnknownConversation(conversation_id)
        if accepted is Accepted.CLOSED:
            raise ConversationClosed(conversation_id)
        if accepted is Accepted.NOT_WITH_THE_BOT:
            raise NotWithTheBot(conversation_id)
        return Receipt(conversation_id, message.id, duplicate=accepted is Accepted.DUPLICATE)

    def new_message(self, message_id: str, text: str) -> CustomerMessage:
        """A customer's message received now."""
        return CustomerMessage(id=message_id, text=text, received_at=self.clock())
