"""Ports: the small interfaces the use cases call; adapters implement them.

Over 300 lines on purpose: every port and the value types crossing it are kept in one module,
so the contract between use cases and adapters reads as one page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from supportflow.domain.events import ConversationEvent
from supportflow.domain.flow import Backend, Flow
from supportflow.domain.model import Conversation, CustomerMessage, TranscriptMessage
from supportflow.domain.tools import ToolSpec


class ErrorKind(StrEnum):
    """Why an assistant API call failed; decides whether trying again may help."""

    STATUS = "status"  # the API answered with an error status (see `status`)
    TIMEOUT = "timeout"
    NETWORK = "network"
    NOT_JSON = "not_json"  # a garbled answer (a proxy's page, a cut body): worth another try
    INVALID = "invalid"  # the answer lacks what the API must send
    CONFIG = "config"  # our side: the flow's backend or connector cannot be used as set up


RETRYABLE_STATUSES = frozenset({408, 409, 429})


class AssistantError(Exception):
    """An assistant API call that failed, with its kind (and status, for STATUS)."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after_s = retry_after_s

    @property
    def retryable(self) -> bool:
        """408/409/429/5xx, timeouts, network errors and garbled answers may pass on retry."""
        if self.kind is ErrorKind.STATUS:
            return self.status is not None and (
                self.status in RETRYABLE_STATUSES or self.status >= 500)
        return self.kind in (ErrorKind.TIMEOUT, ErrorKind.NETWORK, ErrorKind.NOT_JSON)

    @property
    def label(self) -> str:
        """The metric label: the HTTP status, or "timeout", "network" or "other"."""
        if self.kind is ErrorKind.STATUS and self.status is not None:
            return str(self.status)
        if self.kind in (ErrorKind.TIMEOUT, ErrorKind.NETWORK):
            return self.kind.value
        return "other"

    def describe(self) -> str:
        """The reason as operators read it: the API's message, and the status once."""
        if self.kind is ErrorKind.STATUS and self.status is not None:
            return f"{self.message} (HTTP {self.status})"
        return self.message


class RunState(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"
    REQUIRES_ACTION = "requires_action"


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class RunStatus:
    """What a check of a run found."""

    state: RunState
    reply: str | None = None
    reason: str | None = None
    poll_after_s: float | None = None
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True)
class RunRequest:
    """Everything a backend needs to start a run for one turn."""

    backend: Backend
    metadata: Mapping[str, str] = field(default_factory=dict)
    tools: tuple[ToolSpec, ...] = ()


class AssistantClient(Protocol):
    """One assistant API (Responses + Conversations, or Assistants v2)."""

    def open_thread(self, *, metadata: Mapping[str, str]) -> str:
        """Create a thread (a conversation, for the Responses API) and return its id."""
        ...

    # True when a turn's messages go with the run request (`start_run(texts=...)`): the
    # post_message step then makes no call of its own.
    messages_with_run: bool

    def post_messages(self, thread_id: str, texts: Sequence[str], *, turn_key: str,
                      recovering: bool = False) -> None:
        """Add the customer's messages of one turn to the thread; `recovering` (the step may
        have run before: a retry, a dead worker) looks for them first, so they go once."""
        ...

    def start_run(self, thread_id: str, request: RunRequest, *, turn_key: str,
                  texts: Sequence[str] = (), recovering: bool = False) -> str:
        """Ask the assistant to answer (with `texts`, when messages go with the run); return
        the run (or response) id. `recovering` finds a run already started for the turn."""
        ...

    def check_run(self, thread_id: str, run_id: str) -> RunStatus:
        """Look at a run once; never waits."""
        ...

    def submit_tool_outputs(
        self, thread_id: str, run_id: str, outputs: Sequence[tuple[str, str]], request: RunRequest
    ) -> str:
        """Return tool outputs; the id of the run that goes on (new for the Responses API)."""
        ...


class AssistantDirectory(Protocol):
    """Finds the client for a flow's backend (kind and connector)."""

    def client_for(self, backend: Backend) -> AssistantClient: ...


class Accepted(StrEnum):
    """What became of a customer's message."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"  # its id was seen before: no effect
    UNKNOWN = "unknown"  # no such conversation
    CLOSED = "closed"  # resolved: it takes no more messages
    NOT_WITH_THE_BOT = "not_with_the_bot"  # agents have it, and the caller wanted the bot


@dataclass(frozen=True)
class Limit:
    """At most `amount` requests per `window_s` for one identity in one scope (a rate limit)."""

    scope: str
    identity: str
    amount: int
    window_s: float
    text: str  # as configured, e.g. "30 per 1 minute"


@dataclass(frozen=True)
class Refusal:
    """The limit a request went past, and how long until its window ends."""

    limit: Limit
    retry_after_s: float


class LimitExceeded(Exception):
    """The request went past one of the rate limits it was counted against: nothing was kept."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.limit.text)
        self.refusal = refusal


class NotReplicated(Exception):
    """The master kept the write but too few replicas confirmed it in time: not acknowledged.

    A failover now could lose it, so the caller is told to retry; the retry (same message id)
    is de-duplicated, and its own wait covers the first write.
    """


class Conversations(Protocol):
    """Conversation records outside a turn: intake writes them, the web and agents read them."""

    def create(self, conversation: Conversation, welcome: TranscriptMessage) -> None: ...

    def get(self, conversation_id: str) -> Conversation | None: ...

    def accept_customer_message(self, conversation_id: str, message: CustomerMessage, *,
                                bot_only: bool = False, limits: Sequence[Limit] = ()) -> Accepted:
        """Append to mailbox and transcript unless the id was seen, and wake the conversation
        (counted in supportflow_messages_in); nothing for an unknown or closed one.

        The request counts against `limits` first, in the same round trip, whatever becomes of
        the message; past one of them it raises LimitExceeded and keeps nothing.

        Raises NotReplicated when replicas are required and did not confirm the write in time.
        """
        ...

    def set_attributes(self, contact_id: str, values: dict[str, str]) -> None:
        """Store several contact attributes in one write."""
        ...

    def attributes(self, contact_id: str) -> dict[str, str]: ...

    def add_note(self, conversation_id: str, note_id: str, text: str, at: float,
                 author: str | None = None) -> None:
        """Keep a private note for agents, once per note id."""
        ...

    def notes(self, conversation_id: str) -> list[dict[str, object]]: ...

    def transcript(self, conversation_id: str, after: int = 0, limit: int = 100) -> list[
        tuple[int, TranscriptMessage]
    ]: ...


class OpsIndex(Protocol):
    """The indexes operators (and the agents' queue) read."""

    def counts_by_state(self) -> dict[str, int]: ...

    def handoff_queue(self) -> list[tuple[str, float]]:
        """Handed-off conversations, oldest first, with the time they entered the queue."""
        ...

    def overdue_count(self, now: float, grace_s: float) -> int: ...

    def schedule_lag(self, now: float) -> tuple[int, float]:
        """Wake-ups due now, and how late the oldest of them is."""
        ...


@dataclass(frozen=True)
class Due:
    """A conversation the scheduler claimed: a poll of its run, or a drain (its turn, or the
    step under way); `token` marks the task published for it until a worker takes it."""

    kind: str
    conversation_id: str
    poll_id: int
    token: str


@dataclass(frozen=True)
class Claimed:
    """One claim of the scheduler: the broker queue's depth, and what to publish."""

    depth: int
    due: list[Due]


class Schedule(Protocol):
    """When a worker next looks at each conversation (the `wakeups` index: commits write it)."""

    def claim_due(self, now: float, grace_s: float, limit: int, bound: int,
                  queue: str, per_task: int = 1) -> Claimed:
        """Claim what is due and nobody holds, each at most once per grace period, while the
        broker's `queue` has room for it (`bound` conversations, a task counted as `per_task`)."""
        ...

    def wake_at(self, conversation_id: str, at: float) -> None:
        """Have a worker look at the conversation at `at`."""
        ...


class ClaimOutcome(StrEnum):
    WON = "won"
    ALREADY_YOURS = "already_yours"
    TAKEN = "taken"
    NOT_HANDED_OFF = "not_handed_off"
    UNKNOWN = "unknown"


class AgentBoard(Protocol):
    """Who holds which handoff (claimed atomically), and transcript-id checks."""

    def claim(self, conversation_id: str, agent: str) -> tuple[ClaimOutcome, str | None]: ...

    def claimant(self, conversation_id: str) -> str | None: ...

    def claimants(self, conversation_ids: Sequence[str]) -> dict[str, str | None]: ...

    def release(self, conversation_id: str) -> None: ...

    def has_message(self, conversation_id: str, message_id: str) -> bool: ...

    def latest_handoff_id(self) -> str: ...

    def handoffs_after(self, after: str, count: int = 100) -> list[tuple[str, dict[str, Any]]]:
        """Handoff announcements newer than `after`, oldest first."""
        ...


class TaskQueue(Protocol):
    """Publishes tasks: the scheduler's wake-ups, outbound delivery attempts, knowledge syncs."""

    # True when the tasks run on separate workers (readiness then wants one seen recently).
    needs_workers: bool
    # The broker queue the tasks go to (the scheduler's back-pressure watches its length).
    name: str

    def wake(self, due: Sequence[Due]) -> None:
        """One task for these conversations: each one's poll or drain, now."""
        ...

    def deliver(self, delivery_id: str, attempt: int, delay_s: float) -> None: ...

    def sync_article(self, article_id: str) -> None:
        """Sync a knowledge article to the vector stores (retried until it is done)."""
        ...


class EventPublisher(Protocol):
    """Sends conversation events out (helpdesk callbacks, Chatwoot, streams)."""

    def publish(self, events: Sequence[ConversationEvent]) -> None: ...


class NullPublisher:
    """A publisher for conversations nobody outside listens to."""

    def publish(self, events: Sequence[ConversationEvent]) -> None:
        return None


class FlowCatalog(Protocol):
    """The flows this deployment knows, by name."""

    default: str

    def get(self, name: str) -> Flow:
        """The named flow; KeyError when there is none."""
        ...

    def names(self) -> list[str]: ...


class Metrics(Protocol):
    """Counters and histograms of the metric catalog (supportflow/observability/catalog.py)."""

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None: ...

    def observe(self, name: str, value: float, **labels: str) -> None: ...


class NullMetrics:
    """Metrics for fakes: records nothing."""

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        return None

    def observe(self, name: str, value: float, **labels: str) -> None:
        return None


class FailureLog(Protocol):
    """The latest failed turns, for operators."""

    def record_failure(self, conversation_id: str, reason: str, at: float) -> None: ...


class NullFailureLog:
    """A failure log for fakes: keeps nothing."""

    def record_failure(self, conversation_id: str, reason: str, at: float) -> None:
        return None


Job = Callable[[], None]


class StepRunner(Protocol):
    """Runs the jobs of a batch (one conversation's steps each), maybe side by side."""

    def run(self, jobs: Sequence[Job]) -> None:
        """Run every job and return when all are done; the first error of any, raised."""
        ...


class InTurn:
    """A StepRunner that runs the jobs one after the other, in the caller's thread."""

    def run(self, jobs: Sequence[Job]) -> None:
        errors: list[BaseException] = []
        for job in jobs:
            try:
                job()
            except Exception as error:
                errors.append(error)
        if errors:
            raise errors[0]
