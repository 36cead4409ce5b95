"""The flow model: what one conversation flow is configured to do."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

MAX_POLL_DELAY_S = 10.0
# Checks every 1.5 s for the first 12 s, where most runs end (a reply waits 0.75 s for its
# check on average), then slower up to the 10 s ceiling (bench/README.md has the measurements).
DEFAULT_DELAYS = (1.5,) * 8 + (2.0, 3.0, 5.0, 10.0)
# The schedule of a flow whose runs' ends come by webhook (`poll: {webhooks: true}` without
# delays): most turns end by webhook, so a check is only the safety net, at the 10 s ceiling.
WEBHOOK_DELAYS = (10.0,)


class ThreadScope(StrEnum):
    CONVERSATION = "conversation"
    CONTACT = "contact"
    STATIC = "static"


class BackendKind(StrEnum):
    RESPONSES = "responses"
    ASSISTANTS = "assistants"


class FallbackAction(StrEnum):
    HANDOFF = "handoff"
    REPLY = "reply"


@dataclass(frozen=True)
class PromptRef:
    """A stored prompt of the Responses API, with its version and variables."""

    id: str
    version: str | None = None
    variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Backend:
    """Which assistant API a flow talks to, and what it asks it to be."""

    kind: BackendKind
    assistant_id: str | None = None
    prompt: PromptRef | None = None
    model: str | None = None
    instructions: str | None = None
    connector: str | None = None
    # The vector store the agents' knowledge articles are synced to; responses search it.
    vector_store_id: str | None = None


@dataclass(frozen=True)
class PollSchedule:
    """Delays between run checks (each at most 10 s) and a deadline for the whole run."""

    delays: tuple[float, ...] = DEFAULT_DELAYS
    deadline_s: float = 120.0
    # OpenAI's webhooks announce the run's end (Responses API); the checks are the safety net.
    webhooks: bool = False

    def delay(self, attempt: int, poll_after_s: float | None = None) -> float:
        """The wait before check number `attempt + 1`, honouring the API's hint within the ceiling."""
        planned = self.delays[min(attempt, len(self.delays) - 1)]
        if poll_after_s is None:
            return planned
        return max(0.0, min(poll_after_s, self.ceiling))

    @property
    def ceiling(self) -> float:
        return max(self.delays)


class HandoffTimeoutAction(StrEnum):
    TELL = "tell"
    RETURN = "return"


TIMEOUT_MESSAGES = {
    HandoffTimeoutAction.TELL: "Sorry for the wait: everyone on our team is busy right now. "
    "Someone will answer here as soon as they can.",
    HandoffTimeoutAction.RETURN: "Nobody from our team is free right now, so I'll keep helping "
    "you. What can I do for you?",
}


# The sandbox assistant answers exactly this when it hands off (config: handoff_text).
DEFAULT_HANDOFF_MARKER = "I'll connect you with a member of our team."


@dataclass(frozen=True)
class Handoff:
    """When a reply means "hand off", what the customer is told, and unclaimed handoffs."""

    markers: tuple[str, ...] = (DEFAULT_HANDOFF_MARKER,)
    message: str = "You're being transferred to a person from our team. They'll answer here shortly."
    # An unclaimed handoff gets `on_timeout` after `timeout_s`: tell the customer once, or
    # give the conversation back to the bot; both post `timeout_message`.
    timeout_s: float = 300.0
    on_timeout: HandoffTimeoutAction = HandoffTimeoutAction.TELL
    # Empty: the action's own message (TIMEOUT_MESSAGES).
    timeout_message: str = ""

    def __post_init__(self) -> None:
        if not self.timeout_message:
            object.__setattr__(self, "timeout_message", TIMEOUT_MESSAGES[self.on_timeout])


@dataclass(frozen=True)
class Fallback:
    """What happens when the assistant fails: tell the customer, then hand off or wait."""

    action: FallbackAction = FallbackAction.HANDOFF
    message: str = "Sorry, something went wrong on our side. A person from our team will take over."


class IdentityMode(StrEnum):
    """Whether a browser must prove who its user is (a contact id signed by the site)."""

    OPTIONAL = "optional"  # visitors who prove nothing are anonymous
    REQUIRED = "required"  # every browser start names a contact with a valid hash


@dataclass(frozen=True)
class WidgetAccess:
    """Which web sites may embed the chat widget for this flow (exact origins), and whether
    its visitors must be identified by the site."""

    allowed_origins: tuple[str, ...] = ()
    identity: IdentityMode = IdentityMode.OPTIONAL

    def allows(self, origin: str) -> bool:
        """True when a page from `origin` (as a browser sends it) may use this flow."""
        return origin in self.allowed_origins


@dataclass(frozen=True)
class Flow:
    """One conversation flow, as loaded from `config/flows/<name>.yaml`."""

    name: str
    welcome: str
    backend: Backend
    handoff: Handoff = field(default_factory=Handoff)
    attribute: str = "gpt_response"
    thread_scope: ThreadScope = ThreadScope.CONVERSATION
    static_thread_id: str | None = None
    poll: PollSchedule = field(default_factory=PollSchedule)
    fallback: Fallback = field(default_factory=Fallback)
    max_step_retries: int = 5
    # Names of the tools (supportflow.domain.tools) the assistant may call in this flow.
    tools: tuple[str, ...] = ()
    widget: WidgetAccess = field(default_factory=WidgetAccess)

    def is_handoff(self, reply: str) -> bool:
        """True when the reply equals one of the handoff markers (surrounding blanks ignored)."""
        text = reply.strip()
        return any(text == marker.strip() for marker in self.handoff.markers)
