"""Use cases for helpdesk traffic coming in: map its conversations to ours, take its messages."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from supportflow.domain.ids import Source, message_id
from supportflow.domain.inbox import Inbox, InboxKind
from supportflow.domain.model import CustomerMessage

from .intake import Contact, ConversationClosed, Intake, NotWithTheBot, Receipt


@dataclass(frozen=True)
class Mapped:
    """What accepting into a mapped conversation found: `outcome` is replayed, unmapped,
    closed, not_with_the_bot, accepted or duplicate; the conversation when there is one."""

    outcome: str
    conversation_id: str | None


class ConversationMap(Protocol):
    """Which SupportFlow conversation stands for a helpdesk conversation of an inbox."""

    def accept_mapped(self, inbox: str, external_id: str, delivery_id: str | None,
                      message: CustomerMessage, *, bot_only: bool = False) -> Mapped:
        """Keep the message in the conversation mapped to `external_id`, once per delivery id,
        if there is one and it is open (else the caller takes the long way)."""
        ...

    def get(self, inbox: str, external_id: str) -> str | None: ...

    def bind(self, inbox: str, external_id: str, conversation_id: str) -> None: ...

    def locked(self, inbox: str, external_id: str) -> AbstractContextManager[None]:
        """Hold the inbox's lock on this helpdesk conversation (so one creator wins)."""
        ...

    def first_time(self, inbox: str, message_key: str) -> bool:
        """True once per inbound message key (a webhook-id); kept longer than the tolerance."""
        ...

    def forget(self, inbox: str, message_key: str) -> None: ...


@dataclass(frozen=True)
class InboundMessage:
    """A customer's message as a helpdesk sends it."""

    external_id: str
    contact: Contact
    message_id: str
    text: str


class HelpdeskInbound:
    """Takes helpdesk messages into the conversation they belong to; never calls the assistant."""

    def __init__(self, *, intake: Intake, conversations: ConversationMap) -> None:
        self.intake = intake
        self.map = conversations

    def receive(self, inbox: Inbox, message: InboundMessage, delivery_id: str | None = None
                ) -> Receipt | None:
        """Keep the message (once per delivery id and message id); None for a replayed delivery.

        A message of a known, open conversation takes one Redis round trip; the first of a
        helpdesk conversation (or one after it was closed) starts a conversation first.
        """
        chatwoot = inbox.kind is InboxKind.CHATWOOT
        source = Source.CHATWOOT if chatwoot else Source.WEBHOOK
        customer = self.intake.new_message(message_id(source, message.message_id), message.text)
        mapped = self.map.accept_mapped(inbox.name, message.external_id, delivery_id, customer,
                                        bot_only=chatwoot)
        if mapped.outcome == "replayed":
            return None
        if mapped.outcome in ("accepted", "duplicate") and mapped.conversation_id:
            return Receipt(mapped.conversation_id, customer.id,
                           duplicate=mapped.outcome == "duplicate")
        if mapped.outcome == "not_with_the_bot" and mapped.conversation_id:
            raise NotWithTheBot(mapped.conversation_id)
        if delivery_id is not None and not self.map.first_time(inbox.name, delivery_id):
            return None
        try:
            return self._receive(inbox, message)
        except BaseException:
            if delivery_id is not None:
                self.map.forget(inbox.name, delivery_id)
            raise

    def _receive(self, inbox: Inbox, message: InboundMessage) -> Receipt:
        conversation_id = self.conversation_for(inbox, message)
        # Chatwoot sends only what it gives the bot (a pending conversation): while SupportFlow's
        # agents have it, the message is refused so that Chatwoot hands it to a person.
        chatwoot = inbox.kind is InboxKind.CHATWOOT
        source = Source.CHATWOOT if chatwoot else Source.WEBHOOK
        try:
            return self.intake.receive_message(conversation_id, message.message_id, message.text,
                                               source, bot_only=chatwoot)
        except ConversationClosed:
            fresh = self.conversation_for(inbox, message, replacing=conversation_id)
            return self.intake.receive_message(fresh, message.message_id, message.text, source,
                                               bot_only=chatwoot)

    def conversation_for(self, inbox: Inbox, message: InboundMessage,
                         replacing: str | None = None) -> str:
        """The conversation of this helpdesk conversation; started (once) when there is none."""
        known = self.map.get(inbox.name, message.external_id)
        if known and known != replacing:
            return known
        with self.map.locked(inbox.name, message.external_id):
            known = self.map.get(inbox.name, message.external_id)
            if known and known != replacing:
                return known
            contact = Contact(id=f"{inbox.name}:{message.contact.id}", name=message.contact.name,
                              email=message.contact.email, attributes=message.contact.attributes)
            conversation, _ = self.intake.start_conversation(
                contact, inbox.flow, channel=inbox.channel, external_id=message.external_id)
            self.map.bind(inbox.name, message.external_id, conversation.id)
            return conversation.id

