"""The transition and step tables against DESIGN.md section 2; the conversation as the model."""

from __future__ import annotations

import pytest

from supportflow.domain.flow import PollSchedule
from supportflow.domain.fsm import (
    STEPS,
    TAKES_TURNS,
    WORKING_STATES,
    TransitionRefused,
    bind,
    fire,
    machine,
)
from supportflow.domain.model import Conversation, State


def conversation(state: State = State.ASK, **values: object) -> Conversation:
    return bind(Conversation(id="c", contact_id="k", flow="f", state=state, **values))  # type: ignore[arg-type]


def test_first_turn_walks_the_canonical_flow_to_wait_for_user() -> None:
    c = conversation()
    path = [fire(c, t) for t in ["user_message", "attribute_stored", "thread_opened",
                                 "message_posted", "run_started", "run_pending",
                                 "run_completed", "reply_decided"]]
    assert path == [State.STORE_ATTRIBUTE, State.OPEN_THREAD, State.POST_MESSAGE, State.START_RUN,
                    State.POLL, State.POLL, State.DECIDE, State.WAIT_FOR_USER]
    assert c.state is State.WAIT_FOR_USER


def test_each_steps_exit_trigger_leads_on_along_the_canonical_flow() -> None:
    follows = {State.ASK: State.STORE_ATTRIBUTE, State.WAIT_FOR_USER: State.STORE_ATTRIBUTE,
               State.STORE_ATTRIBUTE: State.OPEN_THREAD, State.OPEN_THREAD: State.POST_MESSAGE,
               State.POST_MESSAGE: State.START_RUN, State.START_RUN: State.POLL,
               State.POLL: State.DECIDE, State.DECIDE: State.WAIT_FOR_USER}
    assert set(STEPS) == set(follows)
    for state, step in STEPS.items():
        assert fire(conversation(state), step.done) is follows[state], state
    assert {State.ASK, State.WAIT_FOR_USER} == TAKES_TURNS
    assert {State.STORE_ATTRIBUTE, State.OPEN_THREAD, State.POST_MESSAGE,
                              State.START_RUN, State.DECIDE} == WORKING_STATES
    assert [s for s, step in STEPS.items() if step.outside] == [
        State.OPEN_THREAD, State.POST_MESSAGE, State.START_RUN]


def test_a_conversation_with_a_thread_skips_open_thread() -> None:
    c = conversation(State.STORE_ATTRIBUTE, thread_id="t")
    assert c.attribute_stored() and c.state is State.POST_MESSAGE


def test_a_handoff_reply_leads_to_handed_off_and_an_agent_can_resolve_or_give_back() -> None:
    c = conversation(State.DECIDE, handoff_reason="marker")
    assert fire(c, "reply_decided") is State.HANDED_OFF
    assert fire(c, "agent_returned") is State.WAIT_FOR_USER
    closing = conversation(State.HANDED_OFF)
    assert fire(closing, "agent_resolved") is State.CLOSED


@pytest.mark.parametrize(("reason", "expected"), [("assistant failure: x", State.HANDED_OFF),
                                                  (None, State.WAIT_FOR_USER)])
def test_failure_hands_off_when_the_fallback_set_a_reason_else_waits(
    reason: str | None, expected: State
) -> None:
    assert fire(conversation(State.POLL, handoff_reason=reason), "failed") is expected


def test_a_trigger_the_table_does_not_allow_is_refused_and_changes_nothing() -> None:
    c = conversation()
    with pytest.raises(TransitionRefused):
        fire(c, "run_completed")
    assert c.state is State.ASK
    assert not c.may_run_started() and c.may_user_message()


def test_conversations_share_one_machine_that_keeps_no_reference_to_them() -> None:
    first = Conversation(id="a", contact_id="k", flow="f")
    second = Conversation(id="b", contact_id="k", flow="f", state=State.POLL)
    assert first.user_message() and first.state is State.STORE_ATTRIBUTE
    assert second.run_completed() and second.state is State.DECIDE
    assert second.may_reply_decided() and not second.may_user_message()
    assert "user_message" not in vars(first)  # nothing was built for it
    assert machine().models == []


def test_the_record_holds_the_fields_only() -> None:
    c = conversation()
    fire(c, "user_message")
    assert Conversation.from_dict(c.to_dict()) == c
    assert c.to_dict()["state"] == "store_attribute"


def test_poll_schedule_grows_to_its_ceiling_and_honours_the_api_hint_within_it() -> None:
    schedule = PollSchedule(delays=(1, 2, 4, 8, 10))
    assert [schedule.delay(n) for n in range(7)] == [1, 2, 4, 8, 10, 10, 10]
    assert schedule.delay(0, poll_after_s=0.5) == 0.5
    assert schedule.delay(0, poll_after_s=30) == 10
