"""The conversation state machine: a declarative table checked against DESIGN.md section 2."""

from __future__ import annotations

from typing import Any

from transitions import Machine, MachineError

from .flow import FallbackAction, Flow
from .model import Conversation, State

# Steps the worker runs by itself; every other state waits for someone (customer, run, agent).
WORKING_STATES = frozenset(
    {State.STORE_ATTRIBUTE, State.OPEN_THREAD, State.POST_MESSAGE, State.START_RUN, State.DECIDE}
)
ASSISTANT_STATES = [
    State.STORE_ATTRIBUTE,
    State.OPEN_THREAD,
    State.POST_MESSAGE,
    State.START_RUN,
    State.POLL,
    State.DECIDE,
]

STATES = [state.value for state in State]

TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "user_message", "source": ["ask", "wait_for_user"], "dest": "store_attribute"},
    {"trigger": "attribute_stored", "source": "store_attribute", "dest": "post_message",
     "conditions": "has_thread"},
    {"trigger": "attribute_stored", "source": "store_attribute", "dest": "open_thread"},
    {"trigger": "thread_opened", "source": "open_thread", "dest": "post_message"},
    {"trigger": "message_posted", "source": "post_message", "dest": "start_run"},
    {"trigger": "run_started", "source": "start_run", "dest": "poll"},
    {"trigger": "run_pending", "source": "poll", "dest": None},
    {"trigger": "run_completed", "source": "poll", "dest": "decide"},
    {"trigger": "reply_decided", "source": "decide", "dest": "handed_off",
     "conditions": "reply_is_handoff"},
    {"trigger": "reply_decided", "source": "decide", "dest": "wait_for_user"},
    {"trigger": "failed", "source": [s.value for s in ASSISTANT_STATES], "dest": "handed_off",
     "conditions": "fallback_is_handoff"},
    {"trigger": "failed", "source": [s.value for s in ASSISTANT_STATES], "dest": "wait_for_user"},
    {"trigger": "agent_resolved", "source": "handed_off", "dest": "closed"},
    {"trigger": "agent_returned", "source": "handed_off", "dest": "wait_for_user"},
]


class TransitionRefused(Exception):
    """A trigger that the table does not allow from the conversation's current state."""


class ConversationMachine:
    """Wraps one conversation so `transitions` can move it; conditions read the flow."""

    state: str

    def __init__(self, conversation: Conversation, flow: Flow) -> None:
        self.conversation = conversation
        self.flow = flow
        Machine(
            model=self,
            states=STATES,
            transitions=TRANSITIONS,
            initial=conversation.state.value,
            auto_transitions=False,
        )

    def fire(self, trigger: str) -> State:
        """Fire a trigger and write the new state back to the conversation."""
        try:
            getattr(self, trigger)()
        except (MachineError, AttributeError) as error:
            raise TransitionRefused(
                f"{trigger!r} is not allowed in state {self.conversation.state.value!r}"
            ) from error
        self.conversation.state = State(self.state)
        return self.conversation.state

    def can(self, trigger: str) -> bool:
        """True when the trigger is allowed from the current state."""
        method = getattr(self, f"may_{trigger}", None)
        return bool(method and method())

    def has_thread(self) -> bool:
        return self.conversation.thread_id is not None

    def reply_is_handoff(self) -> bool:
        return self.conversation.handoff_reason is not None

    def fallback_is_handoff(self) -> bool:
        return self.flow.fallback.action is FallbackAction.HANDOFF
