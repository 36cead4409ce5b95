"""Budgets of the hot path in Redis round trips (DESIGN.md section 3), counted on a real Redis.

Taking a conversation is one round trip, committing a step is one (metrics included), a stale
or duplicate task is dropped in one, and a whole first turn with one pending check is seven
on the responses backend (its messages go with the run request: no commit of their own). The
scheduler's round that publishes wake-ups is one more per batch of them (counted apart), and a
task carrying several wake-ups takes them all in one, and commits its quiet checks in one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from supportflow.bootstrap import Services
from supportflow.domain.inbox import Inbox, InboxKind
from supportflow.domain.model import State
from supportflow.observability.redis_metrics import render
from supportflow.services.helpdesk import InboundMessage
from supportflow.services.intake import Contact
from supportflow.services.ports import RunState, RunStatus
from supportflow.services.unit_of_work import Purpose
from tests.conftest import wire_fakes
from tests.fakes import (
    Clock,
    CountingRedis,
    FakeAssistant,
    RecordingQueue,
    scheduled_batch,
    scheduled_poll,
)

EVAL = "EVALSHA"


@pytest.fixture
def counted(redis_url: str, flows_dir: Path) -> tuple[Services, CountingRedis, FakeAssistant,
                                                      RecordingQueue, Clock]:
    spy = CountingRedis.from_url(redis_url)
    # A long lease: no background renewal lands inside a measured step.
    services, assistant, queue, clock = wire_fakes(redis_url, flows_dir, spy, lease_ttl_s=60.0)
    assistant.messages_with_run = True  # like the responses backend the flows name
    return services, spy, assistant, queue, clock


Counted = tuple[Services, CountingRedis, FakeAssistant, RecordingQueue, Clock]


def first_message(services: Services, text: str = "How long does shipping take?") -> str:
    conversation, _ = services.intake.start_conversation(Contact(id="budget"), "responses")
    services.intake.receive_message(conversation.id, None, text)
    return conversation.id


def metric_total(services: Services, name: str) -> float:
    return sum(services.metrics.counter_values(name).values())


def test_a_first_turn_takes_seven_round_trips_and_its_metrics_ride_on_the_commits(
    counted: Counted,
) -> None:
    services, spy, assistant, queue, clock = counted
    services.engine.drain(first_message(services, "warm-up"))  # loads the scripts into Redis once
    runs_before = metric_total(services, "supportflow_runs")
    conversation_id = first_message(services)
    spy.trips()

    services.engine.drain(conversation_id)  # take; open_thread and start_run commits
    assert spy.trips() == [EVAL] * 3
    due = scheduled_poll(services, queue, clock, conversation_id)
    spy.trips()
    services.engine.poll(conversation_id, *due)  # take; still pending: commit and let go
    assert spy.trips() == [EVAL] * 2
    assistant.statuses = [RunStatus(RunState.COMPLETED, reply="We ship within 2 days.")]
    due = scheduled_poll(services, queue, clock, conversation_id)
    spy.trips()
    services.engine.poll(conversation_id, *due)  # take; reply and let go
    assert spy.trips() == [EVAL] * 2

    conversation = services.store.get(conversation_id)
    assert conversation is not None and conversation.state is State.WAIT_FOR_USER
    assert metric_total(services, "supportflow_runs") == runs_before + 1


def test_a_later_turn_on_its_thread_takes_two_round_trips_to_start(counted: Counted) -> None:
    services, spy, assistant, queue, clock = counted
    conversation_id = first_message(services)
    services.engine.drain(conversation_id)
    assistant.statuses = [RunStatus(RunState.COMPLETED, reply="Sure.")]
    services.engine.poll(conversation_id, *scheduled_poll(services, queue, clock, conversation_id))
    services.intake.receive_message(conversation_id, None, "And returns?")
    spy.trips()
    services.engine.drain(conversation_id)
    assert spy.trips() == [EVAL] * 2


def test_a_stale_poll_a_duplicate_drain_and_a_busy_conversation_cost_one_round_trip(
    counted: Counted,
) -> None:
    services, spy, _, queue, clock = counted
    conversation_id = first_message(services)
    services.engine.drain(conversation_id)
    current, _ = scheduled_poll(services, queue, clock, conversation_id)
    spy.trips()
    services.engine.poll(conversation_id, current - 1)  # an old poll
    services.engine.drain(conversation_id)  # nothing waits: a duplicate drain
    assert spy.trips() == [EVAL, EVAL]
    _, hold = services.uow.take(conversation_id, Purpose.ANY)
    assert hold is not None
    spy.trips()
    services.engine.poll(conversation_id, current)  # held by someone else
    assert spy.trips() == [EVAL]
    services.uow.release(hold)


def test_a_task_of_several_wake_ups_takes_them_all_in_one_round_trip(counted: Counted) -> None:
    services, spy, _, queue, clock = counted
    ids = [first_message(services, f"question {n}") for n in range(3)]
    for conversation_id in ids:
        services.engine.drain(conversation_id)  # each waits on its run now
    task = scheduled_batch(services, queue, clock, ids)
    spy.trips()
    services.engine.wake(task)  # one take for all three; all still pending: one commit trip
    assert spy.trips() == ["PIPELINE", "PIPELINE"]
    services.engine.wake(task)  # the same task again: stale, all three dropped in one trip
    assert spy.trips() == ["PIPELINE"]


def test_a_reply_in_a_task_of_several_wake_ups_is_committed_at_once_the_checks_together(
    counted: Counted,
) -> None:
    services, spy, assistant, queue, clock = counted
    ids = [first_message(services, f"question {n}") for n in range(3)]
    for conversation_id in ids:
        services.engine.drain(conversation_id)
    task = scheduled_batch(services, queue, clock, ids)
    assistant.statuses = [RunStatus(RunState.COMPLETED, reply="We ship within 2 days.")]
    spy.trips()
    services.engine.wake(task)  # the reply does not wait for the others' checks
    assert spy.trips() == ["PIPELINE", EVAL, "PIPELINE"]
    states = sorted(services.store.get(cid).state.value for cid in ids)  # type: ignore[union-attr]
    assert states == ["poll", "poll", "wait_for_user"]


def test_counters_and_histograms_reach_the_keys_metrics_reads(counted: Counted) -> None:
    services, _, assistant, queue, clock = counted
    before = {name: metric_total(services, name) for name in
              ("supportflow_polls", "supportflow_messages_out")}
    conversation_id = first_message(services)
    services.engine.drain(conversation_id)
    assistant.statuses = [RunStatus(RunState.COMPLETED, reply="Yes.")]
    services.engine.poll(conversation_id, *scheduled_poll(services, queue, clock, conversation_id))
    assert metric_total(services, "supportflow_polls") == before["supportflow_polls"] + 1
    assert metric_total(services, "supportflow_messages_out") == (
        before["supportflow_messages_out"] + 1)
    exposition = render(services.ops_view.families)
    assert b"supportflow_reply_latency_seconds_count" in exposition
    assert b'supportflow_runs_total{backend="responses",outcome="completed"}' in exposition


def test_accepting_a_message_takes_one_round_trip_and_publishes_nothing(
    counted: Counted,
) -> None:
    services, spy, _, queue, _ = counted
    conversation, _ = services.intake.start_conversation(Contact(id="ingest"), "responses")
    inbox = Inbox(name="budget", kind=InboxKind.WEBHOOK, flow="responses")
    first = InboundMessage(external_id="hd-1", contact=Contact(id="cust"), message_id="h1",
                           text="Hello")
    services.inbound.receive(inbox, first, "delivery-1")  # starts the helpdesk conversation
    spy.trips()
    services.intake.receive_message(conversation.id, "w1", "How long does shipping take?")
    assert spy.trips() == [EVAL]  # widget: dedup, mailbox, transcript, wake-up, metric
    again = InboundMessage(external_id="hd-1", contact=Contact(id="cust"), message_id="h2",
                           text="Anyone there?")
    receipt = services.inbound.receive(inbox, again, "delivery-2")
    assert spy.trips() == [EVAL]  # helpdesk: replay mark, map, and the same as the widget
    assert receipt is not None and not receipt.duplicate
    assert services.inbound.receive(inbox, again, "delivery-2") is None  # replayed
    assert spy.trips() == [EVAL]
    assert queue.drains == [] and queue.polls == []
    assert services.store.wake_of(conversation.id) is not None
