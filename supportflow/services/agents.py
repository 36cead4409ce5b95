"""Use cases of agents: the handoff queue, claim, answer, resolve, give back, timeouts."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from supportflow.domain import ids
from supportflow.domain.events import EventType
from supportflow.domain.flow import HandoffTimeoutAction
from supportflow.domain.ids import Source
from supportflow.domain.model import Author, Conversation, State, TranscriptMessage

from .intake import UnknownConversation
from .ports import (
    AgentBoard,
    ClaimOutcome,
    Conversations,
    EventPublisher,
    FlowCatalog,
    Metrics,
    NullMetrics,
    OpsIndex,
)
from .steps import conversation_event
from .unit_of_work import Purpose, StaleWrite, Taken, UnitOfWork, Work

log = logging.getLogger(__name__)


class NotHandedOff(Exception):
    """The conversation is not with the agents (the bot has it, or it is closed)."""


class ClaimConflict(Exception):
    """Another agent holds the conversation (or nobody does, when a claim is needed)."""

    def __init__(self, message: str, holder: str | None) -> None:
        super().__init__(message)
        self.holder = holder


class ConversationBusy(Exception):
    """A worker holds the conversation's lease; try again in a moment."""


@dataclass(frozen=True)
class QueueEntry:
    conversation: Conversation
    entered_at: float
    waiting_s: float
    attribute: str
    attribute_value: str | None
    claimed_by: str | None


@dataclass(frozen=True)
class ConversationView:
    conversation: Conversation
    claimed_by: str | None
    messages: list[tuple[int, TranscriptMessage]]
    attributes: dict[str, str]
    notes: list[dict[str, object]]


@dataclass(frozen=True)
class AgentReceipt:
    conversation_id: str
    message_id: str
    duplicate: bool


class AgentDesk:
    """Agents' changes go through the FSM on the unit of work (lease, version check)."""

    def __init__(self, *, store: Conversations, index: OpsIndex, uow: UnitOfWork,
                 board: AgentBoard, flows: FlowCatalog,
                 publisher: EventPublisher, clock: Callable[[], float],
                 lease_wait_s: float = 3.0, metrics: Metrics | None = None) -> None:
        self.metrics = metrics or NullMetrics()
        self.store = store
        self.index = index
        self.uow = uow
        self.board = board
        self.flows = flows
        self.publisher = publisher
        self.clock = clock
        self.lease_wait_s = lease_wait_s

    # ----- reading -----

    def queue(self) -> list[QueueEntry]:
        """Handed-off conversations, oldest first, with wait, attribute and claim."""
        entries = self.index.handoff_queue()
        claims = self.board.claimants([cid for cid, _ in entries])
        now, found = self.clock(), []
        for cid, entered in entries:
            conversation = self.store.get(cid)
            if conversation is None or conversation.state is not State.HANDED_OFF:
                continue
            attribute = self._flow_attribute(conversation)
            found.append(QueueEntry(
                conversation, entered, max(0.0, now - entered), attribute,
                self.store.attributes(conversation.contact_id).get(attribute), claims.get(cid)))
        return found

    def view(self, conversation_id: str, limit: int = 500) -> ConversationView:
        """Any conversation's state, transcript, contact attributes and notes."""
        conversation = self._get(conversation_id)
        return ConversationView(
            conversation, self.board.claimant(conversation_id),
            self.store.transcript(conversation_id, 0, limit),
            self.store.attributes(conversation.contact_id), self.store.notes(conversation_id))

    def claimed_by(self, agent: str) -> list[QueueEntry]:
        """The handoffs `agent` holds, oldest first."""
        return [entry for entry in self.queue() if entry.claimed_by == agent]

    # ----- changes -----

    def add_note(self, conversation_id: str, agent: str, text: str) -> dict[str, object]:
        """Keep a private note on any conversation, signed by the agent."""
        self._get(conversation_id)
        note_id = f"note-{uuid.uuid4().hex}"
        at = self.clock()
        self.store.add_note(conversation_id, note_id, text, at, author=agent)
        return {"id": note_id, "text": text, "at": at, "author": agent}

    def claim(self, conversation_id: str, agent: str) -> bool:
        """Claim a handoff for `agent` (atomic); True when newly won, False when already theirs."""
        outcome, holder = self.board.claim(conversation_id, agent)
        if outcome is ClaimOutcome.UNKNOWN:
            raise UnknownConversation(conversation_id)
        if outcome is ClaimOutcome.NOT_HANDED_OFF:
            raise NotHandedOff(conversation_id)
        if outcome is ClaimOutcome.TAKEN:
            raise ClaimConflict(f"already claimed by {holder}", holder)
        return outcome is ClaimOutcome.WON

    def send(self, conversation_id: str, agent: str, text: str,
             client_message_id: str | None = None) -> AgentReceipt:
        """The claiming agent's message to the customer, once per client message id."""
        message_id = ids.message_id(Source.AGENT, client_message_id, agent=agent)
        with self._hold(conversation_id) as work:
            self._check_agent(work.conversation, agent, need_claim=True)
            if self.board.has_message(conversation_id, message_id):
                return AgentReceipt(conversation_id, message_id, duplicate=True)
            message = TranscriptMessage(id=message_id, author=Author.AGENT, text=text,
                                        at=self.clock(), turn=work.conversation.turn,
                                        agent=agent)
            work.add_message(message)
            work.metrics.inc("supportflow_messages_out", author="agent")
            self._publish(work, EventType.MESSAGE_CREATED, message.id,
                          {"message": message.to_dict(), "agent": agent})
            self._commit(work)
        return AgentReceipt(conversation_id, message_id, duplicate=False)

    def resolve(self, conversation_id: str, agent: str) -> Conversation:
        """Close a handed-off conversation and take it out of the queue."""
        with self._hold(conversation_id) as work:
            self._check_agent(work.conversation, agent, need_claim=False)
            work.conversation.agent_resolved()
            self._publish(work, EventType.RESOLVED, f"resolved:{work.conversation.turn}",
                          {"agent": agent})
            self._commit(work)
        self.board.release(conversation_id)
        return work.conversation

    def give_back(self, conversation_id: str, agent: str) -> Conversation:
        """Return a handed-off conversation to the bot, which waits for the customer."""
        with self._hold(conversation_id) as work:
            self._check_agent(work.conversation, agent, need_claim=False)
            self._return(work)
            self._publish(work, EventType.RETURNED_TO_BOT, f"returned:{work.conversation.turn}",
                          {"agent": agent})
            self._commit(work)
        self.board.release(conversation_id)
        return work.conversation

    def expire_unclaimed(self) -> list[str]:
        """Apply the flow's timeout action to handoffs nobody claimed in time (beat task)."""
        now, acted = self.clock(), []
        entries = self.index.handoff_queue()
        claims = self.board.claimants([cid for cid, _ in entries])
        for cid, entered in entries:
            conversation = self.store.get(cid)
            if claims.get(cid) or conversation is None or conversation.handoff_timeout_told:
                continue
            try:
                if now - entered < self.flows.get(conversation.flow).handoff.timeout_s:
                    continue
                if self._time_out(cid):
                    acted.append(cid)
            except (ConversationBusy, StaleWrite, KeyError) as error:
                log.info("handoff timeout of %s postponed: %r", cid, error)
        return acted

    # ----- helpers -----

    def _time_out(self, conversation_id: str) -> bool:
        with self._hold(conversation_id, wait_s=0.0) as work:
            conversation = work.conversation
            handoff = self.flows.get(conversation.flow).handoff
            if (conversation.state is not State.HANDED_OFF or conversation.handoff_timeout_told
                    or self.board.claimant(conversation_id)):
                return False
            returned = handoff.on_timeout is HandoffTimeoutAction.RETURN
            kind = "handoff-returned" if returned else "handoff-timeout"
            if returned:
                self._return(work)
            else:
                conversation.handoff_timeout_told = True
            message = TranscriptMessage(id=ids.service_id(conversation.turn, kind), author=Author.BOT,
                                        text=handoff.timeout_message, at=self.clock(),
                                        turn=conversation.turn)
            work.add_message(message)
            work.metrics.inc("supportflow_messages_out", author="bot")
            self._publish(work, EventType.MESSAGE_CREATED, message.id,
                          {"message": message.to_dict()})
            if returned:
                self._publish(work, EventType.RETURNED_TO_BOT, f"returned:{conversation.turn}",
                              {"agent": None})
            self._commit(work)
        if returned:
            self.board.release(conversation_id)
        return True

    def _return(self, work: Work) -> None:
        work.conversation.agent_returned()
        work.conversation.handoff_reason = None
        work.conversation.handoff_timeout_told = False

    def _check_agent(self, conversation: Conversation, agent: str, *, need_claim: bool) -> None:
        if conversation.state is not State.HANDED_OFF:
            raise NotHandedOff(conversation.id)
        holder = self.board.claimant(conversation.id)
        if holder is None and need_claim:
            raise ClaimConflict("claim the conversation first", None)
        if holder is not None and holder != agent:
            raise ClaimConflict(f"claimed by {holder}", holder)

    @contextmanager
    def _hold(self, conversation_id: str, wait_s: float | None = None) -> Iterator[Work]:
        """The conversation on the unit of work; waits briefly while a worker holds it."""
        deadline = time.monotonic() + (self.lease_wait_s if wait_s is None else wait_s)
        while True:
            taken, work = self.uow.take(conversation_id, Purpose.ANY)
            if work is not None:
                break
            if taken is Taken.MISSING:
                raise UnknownConversation(conversation_id)
            if time.monotonic() >= deadline:
                raise ConversationBusy(conversation_id)
            time.sleep(0.05)
        work.conversation.updated_at = self.clock()  # events of this change carry its time
        try:
            yield work
        finally:
            if work.held:
                self.uow.release(work)

    def _commit(self, work: Work) -> None:
        """Write and let go; customer messages waiting for the bot get a wake-up (the commit)."""
        now = self.clock()
        work.conversation.updated_at = now
        self.uow.commit(work, release=True, wake_at=None, now=now)
        if work.events:
            events, work.events = work.events, []
            self.publisher.publish(events)

    def _publish(self, work: Work, kind: EventType, what: str, data: dict[str, object]) -> None:
        """An event sent out once the change it tells of is committed."""
        work.events.append(conversation_event(work.conversation, kind, what, dict(data)))

    def _get(self, conversation_id: str) -> Conversation:
        conversation = self.store.get(conversation_id)
        if conversation is None:
            raise UnknownConversation(conversation_id)
        return conversation

    def _flow_attribute(self, conversation: Conversation) -> str:
        try:
            return self.flows.get(conversation.flow).attribute
        except KeyError:
            return "gpt_response"
