"""The unit of work: one holder's hold on one conversation, and everything it will write.

Everything that changes a conversation (the turn engine, agents, tools, handoff timeouts) takes
it through `UnitOfWork.take`, changes the record and stages its other writes on the `Work`,
and `commit`s: the record (version- and lease-checked), the transcript, contact attributes,
notes, the indexes, the next wake-up, the buffered metrics and, optionally, the release of the
lease, all at once (one Redis round trip in adapters/redis_uow.py). Taking is one round trip
too, and a task that is stale, a duplicate, or finds nothing to do is dropped in that trip.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from supportflow.domain.events import ConversationEvent
from supportflow.domain.model import Conversation, CustomerMessage, State, TranscriptMessage


class Taken(StrEnum):
    """What a take found."""

    TAKEN = "taken"
    BUSY = "busy"  # another holder has it; it hands waiting messages over when it lets go
    STALE = "stale"  # a poll task that is no longer current (or a duplicate)
    IDLE = "idle"  # a drain with nothing to do (no waiting messages, no step under way)
    MISSING = "missing"  # no such conversation


class Purpose(StrEnum):
    """Why the conversation is taken; decides what counts as stale or idle."""

    DRAIN = "drain"  # take waiting messages, or go on with a step under way
    POLL = "poll"  # check the run (only while the poll id is current)
    ANY = "any"  # agents and timeouts: whatever the state


class StaleWrite(Exception):
    """A commit whose version or lease no longer holds: someone else moved the conversation."""


@dataclass
class MetricEntry:
    """One buffered call of the Metrics port."""

    kind: str  # "inc" or "observe"
    name: str
    value: float
    labels: dict[str, str]


class BufferedMetrics:
    """The Metrics port, kept in memory during a step; the commit carries the entries."""

    def __init__(self) -> None:
        self.entries: list[MetricEntry] = []

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        self.entries.append(MetricEntry("inc", name, amount, labels))

    def observe(self, name: str, value: float, **labels: str) -> None:
        self.entries.append(MetricEntry("observe", name, value, labels))

    def take(self) -> list[MetricEntry]:
        """The entries so far, leaving the buffer empty."""
        entries, self.entries = self.entries, []
        return entries


@dataclass(frozen=True)
class Note:
    id: str
    text: str
    at: float


@dataclass(frozen=True)
class Wakeup:
    """When and how a worker looks at the conversation next (a poll, or a drain: a retry)."""

    delay_s: float
    poll: bool


@dataclass
class Work:
    """A hold on one conversation: the record (bound to its machine), the waiting messages,
    and what the next commit writes besides the record."""

    conversation: Conversation
    lease: str
    # Customer messages waiting at take time (or handed back by a commit).
    mailbox: list[CustomerMessage] = field(default_factory=list)
    consumed: int = 0
    transcript: list[TranscriptMessage] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)
    metrics: BufferedMetrics = field(default_factory=BufferedMetrics)
    # Sent out after the commit that holds them (never for a change that was not written).
    events: list[ConversationEvent] = field(default_factory=list)
    wakeup: Wakeup | None = None
    held: bool = True
    # An OpenAI event announced the end of the run this poll checks (the turn ends by webhook).
    woken: bool = False
    # The step may have run before without its commit (a retry, a dead worker): effects look
    # for what they did first. Only until this holder's first commit.
    recovering: bool = False
    # Turn, state and poll id as last committed (faults are counted against them).
    committed: tuple[int, State, int] = (0, State.ASK, 0)

    def __post_init__(self) -> None:
        self.committed = (self.conversation.turn, self.conversation.state,
                          self.conversation.poll_id)

    def take_mailbox(self) -> list[CustomerMessage]:
        """The waiting messages, consumed at the next commit."""
        taken, self.mailbox = self.mailbox, []
        self.consumed += len(taken)
        return taken

    def set_attribute(self, name: str, value: str) -> None:
        """Write a contact attribute with the next commit."""
        self.attributes[name] = value

    def add_note(self, note: Note) -> None:
        """Keep a private note for agents (once per note id) with the next commit."""
        self.notes.append(note)

    def add_message(self, message: TranscriptMessage) -> None:
        """Append to the transcript (once per message id) with the next commit."""
        self.transcript.append(message)

    def wake_in(self, delay_s: float, *, poll: bool) -> None:
        """Ask for the next look after `delay_s` (the session ends at the next commit)."""
        self.wakeup = Wakeup(delay_s, poll)

    def written(self, handed_back: list[CustomerMessage]) -> None:
        """Forget what the commit wrote; `handed_back` messages wait for this holder now."""
        self.consumed = 0
        self.recovering = False
        self.transcript, self.attributes, self.notes = [], {}, []
        self.mailbox = handed_back
        self.committed = (self.conversation.turn, self.conversation.state,
                          self.conversation.poll_id)


@dataclass(frozen=True)
class TakeRequest:
    """One take of a batch: the arguments of `UnitOfWork.take`."""

    conversation_id: str
    purpose: Purpose = Purpose.DRAIN
    poll_id: int | None = None
    dispatch: str = ""


@dataclass(frozen=True)
class Committed:
    """What a commit found: whether customer messages wait for a turn (and it let go)."""

    waiting: bool
    # When the holder asked to keep going: the messages it now holds (the lease kept).
    handed_back: list[CustomerMessage] = field(default_factory=list)
    # An OpenAI event announced the end of the run while the holder was busy: the planned
    # poll is due now.
    woken: bool = False


@dataclass(frozen=True)
class Commit:
    """One last commit of a batch (`UnitOfWork.commit_many`): the arguments of `commit`, with
    the lease let go."""

    work: Work
    keep_if_waiting: bool
    wake_at: float | None
    now: float


class UnitOfWork(Protocol):
    """Takes and commits conversations (adapters/redis_uow.py)."""

    def take(self, conversation_id: str, purpose: Purpose = Purpose.DRAIN,
             poll_id: int | None = None, dispatch: str = "") -> tuple[Taken, Work | None]:
        """Lease, record and mailbox at once; a stale, idle or busy take takes nothing.

        `dispatch` is the token of the scheduler's task that asks (its mark is cleared).
        """
        ...

    def take_many(self, requests: Sequence[TakeRequest]) -> list[tuple[Taken, Work | None]]:
        """Several takes at once (one round trip), in order."""
        ...

    def commit(self, work: Work, *, release: bool, keep_if_waiting: bool = False,
               wake_at: float | None = None, now: float) -> Committed:
        """Write the record and the staged changes if version and lease hold (else StaleWrite).

        With `release`, the lease goes too, unless `keep_if_waiting` and customer messages wait
        for a turn: then the holder keeps it and gets them (`handed_back`).
        """
        ...

    def commit_many(self, commits: Sequence[Commit]) -> list[Committed | Exception]:
        """Several releasing commits at once (one round trip), in order; a commit that could
        not be written is its error in the list (StaleWrite: version or lease moved) and the
        others still are; only an unreachable store raises."""
        ...

    def release(self, work: Work) -> None:
        """Let go without writing the record (buffered metrics are still written)."""
        ...

    def count_fault(self, conversation_id: str, what: str) -> int:
        """Count a failed attempt at `what` (a turn's step); the count so far."""
        ...

    def contact_thread(self, contact_id: str, scope_key: str, candidate: str | None) -> str | None:
        """The contact's thread for scope_key; stores candidate when there is none yet."""
        ...


Clock = Callable[[], float]
