"""The turn engine through the real wiring, with a fake assistant, a fake clock and real Redis."""

from __future__ import annotations

from pathlib import Path

import pytest

from supportflow.bootstrap import Services
from supportflow.domain.flow import DEFAULT_HANDOFF_MARKER
from supportflow.domain.model import Conversation, State
from supportflow.services.intake import Contact
from supportflow.services.ports import AssistantError, ErrorKind, RunState, RunStatus
from supportflow.services.unit_of_work import Commit, Committed, Purpose, StaleWrite, Work
from tests.conftest import wire_fakes
from tests.fakes import Clock, FakeAssistant, RecordingQueue, scheduled_batch, scheduled_poll
from tests.helpers import wait_until


@pytest.fixture
def parts(redis_url: str, flows_dir: Path) -> tuple[Services, FakeAssistant, RecordingQueue, Clock]:
    return wire_fakes(redis_url, flows_dir, step_retry_base_s=1.0, watchdog_grace_s=2.0)


def begin(services: Services, text: str = "How long does shipping take?") -> str:
    conversation, _ = services.intake.start_conversation(Contact(id="k1"), "responses")
    services.intake.receive_message(conversation.id, None, text)
    return conversation.id


def state_of(services: Services, conversation_id: str) -> State:
    conversation = services.store.get(conversation_id)
    assert conversation is not None
    return conversation.state


def test_a_turn_runs_to_poll_then_the_reply_is_sent_once(
    parts: tuple[Services, FakeAssistant, RecordingQueue, Clock],
) -> None:
    services, assistant, queue, clock = parts
    conversation_id = begin(services)
    services.engine.drain(conversation_id)
    assert state_of(services, conversation_id) is State.POLL
    assert assistant.posted == [("thread-0", ("How long does shipping take?",))]
    assert services.store.wake_of(conversation_id) == pytest.approx(clock() + 0.2)
    poll_id, token = scheduled_poll(services, queue, clock, conversation_id)
    assistant.statuses = [RunStatus(RunState.COMPLETED, reply="It takes 3 days.")]
    services.engine.poll(conversation_id, poll_id, token)
    services.engine.poll(conversation_id, poll_id, token)  # a redelivered poll does nothing
    texts = [m.text for _, m in services.store.transcript(conversation_id)]
    assert texts == ["Hello! How can I help?", "How long does shipping take?", "It takes 3 days."]
    assert state_of(services, conversation_id) is State.WAIT_FOR_USER


def test_a_retryable_error_is_retried_later_with_backoff_honouring_retry_after(
    parts: tuple[Services, FakeAssistant, RecordingQueue, Clock],
) -> None:
    services, assistant, _, clock = parts
    assistant.failures["post_messages"] = [
        AssistantError(ErrorKind.STATUS, "slow down", status=429, retry_after_s=3.5),
    ]
    conversation_id = begin(services)
    services.engine.drain(conversation_id)
    conversation = services.store.get(conversation_id)
    assert conversation is not None
    assert conversation.state is State.POST_MESSAGE and conversation.step_attempt == 1
    assert services.store.wake_of(conversation_id) == pytest.approx(clock() + 3.5)
    services.engine.drain(conversation_id)
    assert state_of(services, conversation_id) is State.POLL
    assert len(assistant.posted) == 1


def test_a_non_retryable_error_runs_the_fallback_with_the_apis_message(
    parts: tuple[Services, FakeAssistant, RecordingQueue, Clock],
) -> None:
    services, assistant, _, _ = parts
    assistant.failures["start_run"] = [
        AssistantError(ErrorKind.STATUS, "No assistant found with id 'asst_x'.", status=404)]
    conversation_id = begin(services)
    services.engine.drain(conversation_id)
    conversation = services.store.get(conversation_id)
    assert conversation is not None and conversation.state is State.HANDED_OFF
    assert conversation.failure_reason == "No assistant found with id 'asst_x'. (HTTP 404)"
    assert conversation_id in dict(services.store.handoff_queue())


def test_retries_are_bounded_then_the_fallback_runs(
    parts: tuple[Services, FakeAssistant, RecordingQueue, Clock],
) -> None:
    services, assistant, queue, clock = parts
    assistant.failures["open_thread"] = [
        AssistantError(ErrorKind.STATUS, "upstream 503", status=503) for _ in range(10)]
    conversation_id = begin(services)
    services.engine.drain(conversation_id)
    retries = 0
    while (wake := services.store.wake_of(conversation_id)) is not None:  # each retry planned
        clock.now = wake
        services.scheduler.run_once()
        services.engine.drain(queue.drains.pop())
        retries += 1
    conversation = services.store.get(conversation_id)
    assert conversation is not None and conversation.state is State.HANDED_OFF
    assert conversation.failure_reason == "upstream 503 (HTTP 503)"
    assert assistant.calls.count("open_thread") == 6  # the first try and max_step_retries (5)
    assert retries == 5
    assert [m.text for _, m in services.store.transcript(conversation_id)][-1].startswith(
        "Sorry, something went wrong")


def test_a_stale_poll_is_ignored(
    parts: tuple[Services, FakeAssistant, RecordingQueue, Clock],
) -> None:
    services, assistant, _, _ = parts
    conversation_id = begin(services)
    services.engine.drain(conversation_id)
    assistant.statuses = [RunStatus(RunState.COMPLETED, reply="done")]
    services.engine.poll(conversation_id, poll_id=999)
    assert state_of(services, conversation_id) is State.POLL
    assert assistant.statuses


def test_a_held_conversation_keeps_other_workers_out_and_the_holder_hands_over_messages(
    parts: tuple[Services, FakeAssistant, RecordingQueue, Clock],
) -> None:
    services, assistant, queue, clock = parts
    conversation_id = begin(services)
    _, hold = services.uow.take(conversation_id, Purpose.ANY)
    assert hold is not None
    services.engine.drain(conversation_id)
    assert state_of(services, conversation_id) is State.ASK
    assert assistant.posted == []
    # Letting go, the holder learns that a message waits, and the commit wakes a worker.
    assert services.uow.commit(hold, release=True, now=clock()).waiting
    services.scheduler.run_once()
    assert queue.drains == [conversation_id]
    services.engine.drain(conversation_id)
    assert state_of(services, conversation_id) is State.POLL


def test_a_batch_commit_hands_back_messages_that_came_in_and_keeps_only_that_lease(
    parts: tuple[Services, FakeAssistant, RecordingQueue, Clock],
) -> None:
    services, assistant, queue, clock = parts
    answered = begin(services)
    services.engine.drain(answered)
    assistant.statuses = [RunStatus(RunState.COMPLETED, reply="It takes 3 days.")]
    services.engine.poll(answered, *scheduled_poll(services, queue, clock, answered))
    quiet, _ = services.intake.start_conversation(Contact(id="k2"), "responses")
    holds = [services.uow.take(cid, Purpose.ANY)[1] for cid in (answered, quiet.id)]
    assert holds[0] is not None and holds[1] is not None
    services.intake.receive_message(answered, None, "And returns?")
    outcomes = services.uow.commit_many(
        [Commit(hold, keep_if_waiting=True, wake_at=None, now=clock()) for hold in holds])
    first, second = outcomes
    assert isinstance(first, Committed) and isinstance(second, Committed)
    assert [m.text for m in first.handed_back] == ["And returns?"]
    assert holds[0].held and not holds[1].held
    assert services.uow.leases.renew_now() == 1
    services.uow.release(holds[0])


def test_a_record_that_cannot_be_written_fails_alone_in_a_batch_commit(
    parts: tuple[Services, FakeAssistant, RecordingQueue, Clock],
) -> None:
    services, _, _, clock = parts
    ids = [services.intake.start_conversation(Contact(id=f"k{n}"), "responses")[0].id
           for n in range(2)]
    bad, good = [services.uow.take(cid, Purpose.ANY)[1] for cid in ids]
    assert bad is not None and good is not None
    bad.conversation.handoff_reason = "lone \udc80"  # no commit can write it
    versions = [bad.conversation.version, good.conversation.version]
    failed, committed = services.uow.commit_many(
        [Commit(hold, keep_if_waiting=True, wake_at=None, now=clock()) for hold in (bad, good)])
    assert isinstance(failed, UnicodeEncodeError) and isinstance(committed, Committed)
    assert [bad.conversation.version, good.conversation.version] == [versions[0],
                                                                      versions[1] + 1]
    assert bad.held and not good.held
    services.uow.release(bad)


def test_a_batch_whose_check_lost_a_lease_commits_the_others_and_lets_that_one_go(
    parts: tuple[Services, FakeAssistant, RecordingQueue, Clock],
) -> None:
    services, assistant, queue, clock = parts
    ids = [begin(services, f"question {n}") for n in range(3)]
    for conversation_id in ids:
        services.engine.drain(conversation_id)
    polls = {cid: services.store.get(cid).poll_id for cid in ids}  # type: ignore[union-attr]
    lost: list[str] = []

    def lose_the_lease(run_id: str) -> None:  # another holder took it meanwhile
        (cid,) = [c for c in ids if services.store.get(c).run_id == run_id]  # type: ignore[union-attr]
        services.uow.redis.delete(services.uow.keys.of(cid).lease)
        lost.append(cid)

    assistant.during["check_run"] = lose_the_lease
    task = scheduled_batch(services, queue, clock, ids)
    services.engine.wake(task)
    assert len(lost) == 1
    for cid in ids:
        conversation = services.store.get(cid)
        assert conversation is not None and conversation.state is State.POLL
        assert conversation.poll_id == polls[cid] + (0 if cid in lost else 1)
    assert services.store.wake_of(lost[0]) is not None  # the scheduler comes back to it
    assert services.uow.leases.renew_now() == 0  # nothing left held, nothing renewed


def test_a_commit_with_an_old_version_or_without_the_lease_is_refused(
    parts: tuple[Services, FakeAssistant, RecordingQueue, Clock],
) -> None:
    services, _, _, clock = parts
    conversation_id = begin(services)
    _, old = services.uow.take(conversation_id, Purpose.ANY)
    assert old is not None
    fresh = Work(Conversation.from_dict(old.conversation.to_dict()), old.lease)
    services.uow.commit(fresh, release=False, now=clock())
    with pytest.raises(StaleWrite, match="version moved"):
        services.uow.commit(old, release=False, now=clock())
    stranger = Work(Conversation.from_dict(fresh.conversation.to_dict()), "not-the-lease")
    with pytest.raises(StaleWrite, match="lease lost"):
        services.uow.commit(stranger, release=False, now=clock())


def test_a_step_that_keeps_failing_for_another_reason_gets_the_fallback_and_shows_in_ops(
    parts: tuple[Services, FakeAssistant, RecordingQueue, Clock],
) -> None:
    services, assistant, _, clock = parts
    assistant.failures["post_messages"] = [RuntimeError("a bug in the client")] * 5
    errors_before = sum(services.metrics.counter_values("supportflow_step_errors").values())
    conversation_id = begin(services)
    for backoff in (1.0, 2.0):  # the first try and the retries, each after a longer wait
        services.engine.drain(conversation_id)
        assert services.store.wake_of(conversation_id) == pytest.approx(clock() + backoff)
    services.engine.drain(conversation_id)
    conversation = services.store.get(conversation_id)
    assert conversation is not None and conversation.state is State.HANDED_OFF
    assert conversation.failure_reason == (
        "internal error in post_message: RuntimeError: a bug in the client")
    assert assistant.calls.count("post_messages") == 3
    texts = [m.text for _, m in services.agents.view(conversation_id).messages]
    assert texts == ["Hello! How can I help?", "How long does shipping take?",
                     "Sorry, something went wrong on our side. A person from our team will take over."]
    assert conversation_id in [f["conversation_id"] for f in services.ops.failures()]
    errors = sum(services.metrics.counter_values("supportflow_step_errors").values())
    assert errors == errors_before + 3


def test_text_that_cannot_be_stored_jams_nothing_and_the_next_message_is_answered(
    parts: tuple[Services, FakeAssistant, RecordingQueue, Clock],
) -> None:
    services, assistant, queue, clock = parts
    conversation, _ = services.intake.start_conversation(Contact(id="k2"), "responses_reply_fallback")
    # A lone surrogate that slipped past the edge: no commit can write it into the record.
    services.intake.receive_message(conversation.id, "bad", "hi \udc80")
    for _ in range(3):
        services.engine.drain(conversation.id)
    after = services.store.get(conversation.id)
    assert after is not None and after.state is State.WAIT_FOR_USER and after.turn == 1
    assert after.failure_reason and "internal error in ask" in after.failure_reason
    messages = [m for _, m in services.store.transcript(conversation.id)]
    assert [m.id for m in messages] == ["sf:welcome", "c:bad", "sf:1:fallback"]
    assert messages[-1].text == "Sorry, please try again."
    services.intake.receive_message(conversation.id, None, "How long does shipping take?")
    services.engine.drain(conversation.id)
    assistant.statuses = [RunStatus(RunState.COMPLETED, reply="We ship within 2 days.")]
    services.engine.poll(conversation.id, *scheduled_poll(services, queue, clock, conversation.id))
    answered = services.store.get(conversation.id)
    assert answered is not None and answered.state is State.WAIT_FOR_USER and answered.turn == 2
    assert [m.text for _, m in services.store.transcript(conversation.id)][-1] == (
        "We ship within 2 days.")


def test_a_slow_step_keeps_its_short_lease_and_a_dead_holders_lease_runs_out(
    redis_url: str, flows_dir: Path,
) -> None:
    services, _, _, _ = wire_fakes(redis_url, flows_dir, lease_ttl_s=0.6)
    slow, dead = begin(services), begin(services, "anyone?")
    _, holding = services.uow.take(slow, Purpose.ANY)
    _, dying = services.uow.take(dead, Purpose.ANY)
    assert holding is not None and dying is not None
    keeper = services.uow.leases
    keeper.drop(services.uow.keys.of(dead).lease)  # its process died: nobody renews it
    start = keeper.rounds
    wait_until(lambda: keeper.rounds >= start + 3 and not services.store.lease_held(dead),
               timeout=10)
    assert services.store.lease_held(slow)  # renewed in one round trip for all it holds
    services.uow.commit(holding, release=True, now=1.0)
    assert not services.store.lease_held(slow)


def handed_off(services: Services, assistant: FakeAssistant, queue: RecordingQueue,
               clock: Clock, flow: str) -> str:
    conversation, _ = services.intake.start_conversation(Contact(id="k3"), flow)
    services.intake.receive_message(conversation.id, None, "I want a person")
    services.engine.drain(conversation.id)
    assistant.statuses = [RunStatus(RunState.COMPLETED, reply=DEFAULT_HANDOFF_MARKER)]
    services.engine.poll(conversation.id, *scheduled_poll(services, queue, clock, conversation.id))
    assert state_of(services, conversation.id) is State.HANDED_OFF
    return conversation.id


def test_an_unclaimed_handoff_is_told_of_the_wait_once(
    parts: tuple[Services, FakeAssistant, RecordingQueue, Clock],
) -> None:
    services, assistant, queue, clock = parts
    conversation_id = handed_off(services, assistant, queue, clock, "handoff_tell")
    assert services.agents.expire_unclaimed() == []  # not yet: the flow waits 1.5 s
    clock.now += 2
    assert services.agents.expire_unclaimed() == [conversation_id]
    for _ in range(3):
        clock.now += 10
        assert services.agents.expire_unclaimed() == []
    texts = [m.text for _, m in services.store.transcript(conversation_id)]
    assert texts.count("timeout-tell") == 1
    assert state_of(services, conversation_id) is State.HANDED_OFF


def test_a_claimed_handoff_never_times_out(
    parts: tuple[Services, FakeAssistant, RecordingQueue, Clock],
) -> None:
    services, assistant, queue, clock = parts
    conversation_id = handed_off(services, assistant, queue, clock, "handoff_tell")
    assert services.agents.claim(conversation_id, "sam")
    clock.now += 60
    assert services.agents.expire_unclaimed() == []
    assert "timeout-tell" not in [m.text for _, m in services.store.transcript(conversation_id)]
