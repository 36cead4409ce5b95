"""The conversation state machine: the transition table and the step table, checked against
DESIGN.md section 2 (the canonical flow) at a glance.

The conversation is the machine's model: one `transitions` machine per process (`machine()`)
moves `conversation.state` (an enum, held once) when a trigger method of the conversation
fires its event; `bind(conversation)` attaches the machine's own trigger functions instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any

from transitions import Machine, MachineError

from .model import Conversation, State

S = State
# Steps that talk to the assistant; any of them can fail into the flow's fallback.
ASSISTANT_STEPS = [S.STORE_ATTRIBUTE, S.OPEN_THREAD, S.POST_MESSAGE, S.START_RUN, S.POLL, S.DECIDE]

# trigger, from, to, [condition]: the first row whose condition holds wins.
TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "user_message", "source": [S.ASK, S.WAIT_FOR_USER], "dest": S.STORE_ATTRIBUTE},
    {"trigger": "attribute_stored", "source": S.STORE_ATTRIBUTE, "dest": S.POST_MESSAGE,
     "conditions": "has_thread"},
    {"trigger": "attribute_stored", "source": S.STORE_ATTRIBUTE, "dest": S.OPEN_THREAD},
    {"trigger": "thread_opened", "source": S.OPEN_THREAD, "dest": S.POST_MESSAGE},
    {"trigger": "message_posted", "source": S.POST_MESSAGE, "dest": S.START_RUN},
    {"trigger": "run_started", "source": S.START_RUN, "dest": S.POLL},
    {"trigger": "run_pending", "source": S.POLL, "dest": None},
    {"trigger": "run_completed", "source": S.POLL, "dest": S.DECIDE},
    {"trigger": "reply_decided", "source": S.DECIDE, "dest": S.HANDED_OFF,
     "conditions": "wants_handoff"},
    {"trigger": "reply_decided", "source": S.DECIDE, "dest": S.WAIT_FOR_USER},
    {"trigger": "failed", "source": ASSISTANT_STEPS, "dest": S.HANDED_OFF,
     "conditions": "wants_handoff"},
    {"trigger": "failed", "source": ASSISTANT_STEPS, "dest": S.WAIT_FOR_USER},
    {"trigger": "agent_resolved", "source": S.HANDED_OFF, "dest": S.CLOSED},
    {"trigger": "agent_returned", "source": S.HANDED_OFF, "dest": S.WAIT_FOR_USER},
]


class Wake(StrEnum):
    """What a state waits for before its step can run."""

    NOW = "now"  # nothing: the worker runs it right away
    CUSTOMER = "customer"  # a customer message in the mailbox
    RUN_CHECK = "run_check"  # the next poll of the run (a timer)
    AGENT = "agent"  # an agent resolves it or gives it back
    NOTHING = "nothing"  # closed


@dataclass(frozen=True)
class Step:
    """What the worker does in a state: the effect (by name, in services/steps.py) and the
    trigger it fires when the effect is done. `outside` effects change the assistant's side
    (a thread, a message, a run): the worker commits right after them, so they are never
    redone; the others are folded into the next commit."""

    effect: str
    done: str
    wake: Wake = Wake.NOW
    outside: bool = False


# state                     effect             exit trigger        waits for          outside
STEPS: dict[State, Step] = {
    S.ASK:             Step("take_turn",       "user_message",     Wake.CUSTOMER),
    S.WAIT_FOR_USER:   Step("take_turn",       "user_message",     Wake.CUSTOMER),
    S.STORE_ATTRIBUTE: Step("store_attribute", "attribute_stored"),
    S.OPEN_THREAD:     Step("open_thread",     "thread_opened",    outside=True),
    # On the responses backend the messages go with start_run's request: no call here.
    S.POST_MESSAGE:    Step("post_message",    "message_posted",   outside=True),
    S.START_RUN:       Step("start_run",       "run_started",      outside=True),
    # Not finished: `run_pending` and the next check after the schedule's delay (tool calls:
    # their outputs go back first). Checking changes nothing, so a reply is not saved apart.
    S.POLL:            Step("check_run",       "run_completed",    Wake.RUN_CHECK),
    S.DECIDE:          Step("decide",          "reply_decided"),
}  # fmt: skip
# States without a step wait for someone other than the worker.
WAITS = {S.HANDED_OFF: Wake.AGENT, S.CLOSED: Wake.NOTHING}
# States the worker is in the middle of: a commit there sets the wake-up to now, so the
# watchdog finds a worker that died in them.
WORKING_STATES = frozenset(state for state, step in STEPS.items() if step.wake is Wake.NOW)
TAKES_TURNS = frozenset(state for state, step in STEPS.items() if step.wake is Wake.CUSTOMER)


def waits_for(state: State) -> Wake:
    """What the conversation waits for in this state."""
    step = STEPS.get(state)
    return step.wake if step is not None else WAITS[state]


class TransitionRefused(Exception):
    """A trigger that the table does not allow from the conversation's current state."""


class _DeclaredOnly(Machine):  # type: ignore[misc]
    """A machine that binds only what the model declares (model_override), quietly.

    transitions logs a warning for each convenience method it skips (`is_<state>`,
    `may_trigger`, ...) on every model; a conversation is bound once per step, so skip them
    without a word.
    """

    def _checked_assignment(self, model: Any, name: str, func: Any) -> None:
        if getattr(model, name, None) is not None:
            setattr(model, name, func)


@cache
def machine() -> Machine:
    """The machine of the table, built once per process: every conversation is its model."""
    return _DeclaredOnly(model=None, states=State, transitions=TRANSITIONS, initial=S.ASK,
                         auto_transitions=False, model_override=True)


def bind(conversation: Conversation) -> Conversation:
    """Attach the machine to the conversation (its model), in the conversation's state.

    Building a machine costs more than the rest of a run check, so one machine serves every
    conversation: `add_model` binds its triggers, and `remove_model` at once lets the machine
    forget the conversation (transitions documents that the triggers stay bound), so it holds
    no reference to any and threads binding side by side share nothing but the table.
    """
    shared = machine()
    shared.add_model(conversation, initial=conversation.state)
    shared.remove_model(conversation)
    return conversation


def trigger_on(conversation: Conversation, trigger: str) -> bool:
    """Fire `trigger` on the shared machine with the conversation as its model, or answer
    `may_<trigger>`: no binding on the hot path (a check of a run still going fires one)."""
    if trigger.startswith("may_"):
        bound = getattr(bind(conversation), trigger)
        return bool(bound())
    return bool(machine().events[trigger].trigger(conversation))


def fire(conversation: Conversation, trigger: str) -> State:
    """Fire a trigger of the table by name; TransitionRefused when it is not allowed."""
    try:
        getattr(conversation, trigger)()
    except MachineError as error:
        raise TransitionRefused(
            f"{trigger!r} is not allowed in state {conversation.state.value!r}") from error
    return conversation.state
