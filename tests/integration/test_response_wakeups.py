"""An OpenAI event wakes the conversation waiting on its response, on a real Redis: whatever
the timing (the worker busy with the run, or the event ahead of the run's commit), the check
runs at once, once, through the same step a poll runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from supportflow.bootstrap import Services
from supportflow.domain.model import State
from supportflow.services.intake import Contact
from supportflow.services.openai_events import Outcome
from supportflow.services.ports import RunState, RunStatus
from tests.conftest import WEBHOOK_POLL_S, wire_fakes
from tests.fakes import Clock, CountingRedis, FakeAssistant, RecordingQueue, scheduled_poll


@pytest.fixture
def wired(redis_url: str, flows_dir: Path) -> tuple[Services, CountingRedis, FakeAssistant,
                                                    RecordingQueue, Clock]:
    spy = CountingRedis.from_url(redis_url)
    services, assistant, queue, clock = wire_fakes(redis_url, flows_dir, redis_client=spy,
                                                   lease_ttl_s=60.0)
    return services, spy, assistant, queue, clock


def started(services: Services, flow: str = "responses_webhooks") -> str:
    conversation, _ = services.intake.start_conversation(Contact(id="waker"), flow)
    services.intake.receive_message(conversation.id, None, "How long does shipping take?")
    services.engine.drain(conversation.id)
    return conversation.id


def ended_by(services: Services, via: str) -> float:
    return services.metrics.counter_values("supportflow_runs_ended").get((via,), 0.0)


def event(services: Services, run_id: str, webhook_id: str) -> Outcome:
    return services.openai_events.receive("default", webhook_id, "response.completed", run_id)


def planned_poll(services: Services, conversation_id: str) -> int:
    conversation = services.store.get(conversation_id)
    assert conversation is not None
    return conversation.poll_id


def test_an_event_wakes_the_waiting_conversation_in_one_script_and_the_turn_ends_by_webhook(
        wired: tuple[Services, CountingRedis, FakeAssistant, RecordingQueue, Clock]) -> None:
    services, spy, assistant, queue, clock = wired
    conversation_id = started(services)
    conversation = services.store.get(conversation_id)
    assert conversation is not None and conversation.run_id is not None
    planned = conversation.poll_id
    # The check is only the safety net.
    assert services.store.wake_of(conversation_id) == pytest.approx(clock() + WEBHOOK_POLL_S)
    spy.trips()
    assert event(services, conversation.run_id, "wh_1") is Outcome.WOKE
    assert spy.trips()[0] == "EVALSHA"  # verify-free part: the wake-up is one script
    assert services.store.wake_of(conversation_id) == pytest.approx(clock())  # due now
    poll_id, token = scheduled_poll(services, queue, clock, conversation_id)
    assert poll_id == planned
    before = ended_by(services, "webhook")
    assistant.statuses = [RunStatus(RunState.COMPLETED, reply="We ship within 2 days.")]
    services.engine.poll(conversation_id, poll_id, token)
    done = services.store.get(conversation_id)
    assert done is not None and done.state is State.WAIT_FOR_USER
    assert ended_by(services, "webhook") == before + 1
    assert assistant.calls.count("check_run") == 1
    # A copy of the poll finds nothing to do; a late copy (another webhook-id) wakes nothing.
    services.engine.poll(conversation_id, planned)
    assert event(services, conversation.run_id, "wh_2") is Outcome.UNKNOWN
    assert event(services, conversation.run_id, "wh_2") is Outcome.REPLAYED
    assert assistant.calls.count("check_run") == 1
    assert not services.store.redis.exists(f"{services.settings.key_prefix}:response:"
                                           f"{conversation.run_id}")


def test_an_event_while_the_worker_checks_the_run_moves_its_next_poll_to_now(
        wired: tuple[Services, CountingRedis, FakeAssistant, RecordingQueue, Clock]) -> None:
    services, _, assistant, queue, clock = wired
    conversation_id = started(services)
    poll_id, token = scheduled_poll(services, queue, clock, conversation_id)
    woke: list[Outcome] = []
    # The run ends just after the check saw it pending, while the worker holds the
    # conversation: the holder's commit must act on the event.
    assistant.during["check_run"] = lambda run_id: woke.append(event(services, run_id, "wh_b"))
    services.engine.poll(conversation_id, poll_id, token)
    assert woke == [Outcome.WOKE]
    assert services.store.wake_of(conversation_id) == pytest.approx(clock())  # not 10 s later
    assert scheduled_poll(services, queue, clock, conversation_id)[0] == poll_id + 1
    assert assistant.calls.count("check_run") == 1


def test_an_event_ahead_of_the_runs_commit_makes_the_first_check_immediate(
        wired: tuple[Services, CountingRedis, FakeAssistant, RecordingQueue, Clock]) -> None:
    services, _, assistant, queue, clock = wired
    outcomes: list[Outcome] = []
    assistant.during["start_run"] = lambda run_id: outcomes.append(event(services, run_id, "wh_e"))
    conversation_id = started(services)
    assert outcomes == [Outcome.UNKNOWN]
    assert services.store.wake_of(conversation_id) == pytest.approx(clock.now)
    # Once acted on, the mark does not speed up later polls (a retry keeps its backoff).
    assistant.statuses = [RunStatus(RunState.PENDING)]
    services.engine.poll(conversation_id, *scheduled_poll(services, queue, clock, conversation_id))
    assert services.store.wake_of(conversation_id) == pytest.approx(clock.now + WEBHOOK_POLL_S)
