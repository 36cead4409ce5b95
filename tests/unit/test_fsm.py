"""The FSM table against DESIGN.md section 2."""

from __future__ import annotations

import pytest

from supportflow.domain.flow import (
    Backend,
    BackendKind,
    Fallback,
    FallbackAction,
    Flow,
    Handoff,
    PollSchedule,
)
from supportflow.domain.fsm import ConversationMachine, TransitionRefused
from supportflow.domain.model import Conversation, State


def make(fallback: FallbackAction = FallbackAction.HANDOFF) -> tuple[Conversation, ConversationMachine]:
    flow = Flow(name="f", welcome="hi", backend=Backend(kind=BackendKind.RESPONSES, model="m"),
                handoff=Handoff(markers=("HANDOFF",), message="bye"),
                fallback=Fallback(action=fallback))
    conversation = Conversation(id="c", contact_id="k", flow="f")
    return conversation, ConversationMachine(conversation, flow)


def test_first_turn_walks_the_canonical_flow_to_wait_for_user() -> None:
    conversation, machine = make()
    path = [machine.fire(t) for t in ["user_message", "attribute_stored", "thread_opened",
                                      "message_posted", "run_started", "run_pending",
                                      "run_completed", "reply_decided"]]
    assert path == [State.STORE_ATTRIBUTE, State.OPEN_THREAD, State.POST_MESSAGE, State.START_RUN,
                    State.POLL, State.POLL, State.DECIDE, State.WAIT_FOR_USER]
    assert conversation.state is State.WAIT_FOR_USER


def test_a_conversation_with_a_thread_skips_open_thread() -> None:
    conversation, machine = make()
    conversation.thread_id = "t"
    machine.fire("user_message")
    assert machine.fire("attribute_stored") is State.POST_MESSAGE


def test_a_handoff_reply_leads_to_handed_off_and_an_agent_can_resolve_or_give_back() -> None:
    conversation, machine = make()
    conversation.state = State.DECIDE
    machine = ConversationMachine(conversation, machine.flow)
    conversation.handoff_reason = "marker"
    assert machine.fire("reply_decided") is State.HANDED_OFF
    assert machine.fire("agent_returned") is State.WAIT_FOR_USER
    conversation.state = State.HANDED_OFF
    machine = ConversationMachine(conversation, machine.flow)
    assert machine.fire("agent_resolved") is State.CLOSED


@pytest.mark.parametrize(("action", "expected"), [(FallbackAction.HANDOFF, State.HANDED_OFF),
                                                  (FallbackAction.REPLY, State.WAIT_FOR_USER)])
def test_failure_runs_the_flows_fallback(action: FallbackAction, expected: State) -> None:
    conversation, machine = make(action)
    conversation.state = State.POLL
    machine = ConversationMachine(conversation, machine.flow)
    assert machine.fire("failed") is expected


def test_a_trigger_the_table_does_not_allow_is_refused_and_changes_nothing() -> None:
    conversation, machine = make()
    with pytest.raises(TransitionRefused):
        machine.fire("run_completed")
    assert conversation.state is State.ASK
    assert not machine.can("run_started")


def test_poll_schedule_grows_to_its_ceiling_and_honours_the_api_hint_within_it() -> None:
    schedule = PollSchedule(delays=(1, 2, 4, 8, 10))
    assert [schedule.delay(n) for n in range(7)] == [1, 2, 4, 8, 10, 10, 10]
    assert schedule.delay(0, poll_after_s=0.5) == 0.5
    assert schedule.delay(0, poll_after_s=30) == 10


def test_handoff_marker_matches_the_whole_reply_only() -> None:
    _, machine = make()
    assert machine.flow.is_handoff("  HANDOFF \n")
    assert not machine.flow.is_handoff("HANDOFF now")
