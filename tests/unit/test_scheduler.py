"""The scheduler's bounds, on its real claim script (a real Redis) and a fake clock: a wake-up
is published at most once per grace period, a task still waiting in the broker is a backlog
and never published again, nothing is claimed while the broker's queue is full, and each round
looks at a bounded number of conversations."""

from __future__ import annotations

from pathlib import Path

import pytest

from supportflow.bootstrap import Services
from supportflow.services.intake import Contact
from supportflow.services.unit_of_work import Purpose
from tests.conftest import wire_fakes
from tests.fakes import Clock, FakeAssistant, RecordingQueue

Parts = tuple[Services, FakeAssistant, RecordingQueue, Clock]
GRACE = 2.0


@pytest.fixture
def parts(redis_url: str, flows_dir: Path) -> Parts:
    return wire_fakes(redis_url, flows_dir, watchdog_grace_s=GRACE, dispatch_batch=4,
                      dispatch_queue_limit=6, dispatch_per_task=3)


def waiting(services: Services, count: int) -> list[str]:
    """Conversations with a customer message each, due now."""
    ids = []
    for n in range(count):
        conversation, _ = services.intake.start_conversation(Contact(id=f"s{n}"), "responses")
        services.intake.receive_message(conversation.id, None, "hello")
        ids.append(conversation.id)
    return ids


def backlog(services: Services, queue: RecordingQueue, tasks: int) -> None:
    """Fake tasks waiting in the broker's queue list."""
    services.store.redis.delete(queue.name)
    if tasks:
        services.store.redis.rpush(queue.name, *[b"task"] * tasks)


def dispatched(services: Services) -> dict[str, float]:
    return {labels[0]: value for labels, value in
            services.metrics.counter_values("supportflow_dispatched").items()}


def test_a_due_wake_up_is_published_once_then_again_only_after_the_grace_period(
    parts: Parts,
) -> None:
    services, _, queue, clock = parts
    (cid,) = waiting(services, 1)
    assert [d.conversation_id for d in services.scheduler.run_once().published] == [cid]
    for _ in range(3):  # however often it runs within the grace period: nothing
        clock.now += GRACE / 4
        assert services.scheduler.run_once().published == []
    clock.now += GRACE / 4
    requeued = dispatched(services).get("requeued", 0.0)
    # No worker took the task, and the broker's queue is empty: it was lost; once more.
    assert [d.conversation_id for d in services.scheduler.run_once().published] == [cid]
    assert dispatched(services)["requeued"] == requeued + 1
    assert queue.drains == [cid, cid]


def test_a_task_still_waiting_in_the_broker_is_a_backlog_and_is_not_published_again(
    parts: Parts,
) -> None:
    services, _, queue, clock = parts
    (cid,) = waiting(services, 1)
    services.scheduler.run_once()
    backlog(services, queue, 1)  # workers are behind: a task waits in the broker (room is left)
    for _ in range(10):
        clock.now += GRACE
        assert services.scheduler.run_once().published == []
    assert queue.drains == [cid]
    # The task comes out of the broker: the take clears its mark, the turn runs.
    services.engine.drain(cid, queue.tokens[cid])
    assert services.store.get(cid).state.value == "poll"  # type: ignore[union-attr]
    wake = services.store.wake_of(cid)
    assert wake is not None and wake > clock()


def test_nothing_is_claimed_while_the_broker_queue_is_full_and_only_the_room_left_after(
    parts: Parts,
) -> None:
    services, _, queue, _ = parts
    ids = waiting(services, 5)
    backlog(services, queue, 2)  # two tasks of three: the limit of six conversations
    assert services.scheduler.run_once().published == []
    backlog(services, queue, 1)  # room for three conversations: one task
    assert len(services.scheduler.run_once().published) == 3
    assert [len(task) for task in queue.tasks] == [3]
    backlog(services, queue, 0)
    rest = services.scheduler.run_once().published
    assert sorted(queue.drains) == sorted(ids) and len(rest) == 2


def test_a_round_looks_at_a_bounded_number_of_conversations_and_publishes_them_in_tasks(
    parts: Parts,
) -> None:
    services, _, queue, _ = parts
    waiting(services, 10)
    sizes = [len(services.scheduler.run_once().published) for _ in range(3)]
    assert sizes == [4, 4, 2]  # dispatch_batch = 4
    assert len(set(queue.drains)) == 10
    # In tasks of three at most, as even as they can be.
    assert [len(task) for task in queue.tasks] == [2, 2, 2, 2, 2]


def test_a_conversation_a_worker_holds_is_left_alone_until_its_lease_would_run_out(
    parts: Parts,
) -> None:
    services, _, queue, clock = parts
    (cid,) = waiting(services, 1)
    _, held = services.uow.take(cid, Purpose.ANY)
    assert held is not None
    assert services.scheduler.run_once().published == []
    wake = services.store.wake_of(cid)
    assert wake is not None and clock() < wake <= clock() + services.settings.lease_ttl_s
    services.uow.release(held)  # let go without a commit (its holder died, say)
    assert services.scheduler.run_once().published == []  # looked at again when the lease ends
    clock.now = wake
    assert [d.conversation_id for d in services.scheduler.run_once().published] == [cid]
    assert queue.drains == [cid]


def test_a_conversation_with_nothing_to_do_leaves_the_schedule(parts: Parts) -> None:
    services, _, queue, _ = parts
    conversation, _ = services.intake.start_conversation(Contact(id="idle"), "responses")
    services.store.wake_at(conversation.id, 0.0)  # a wake-up left behind, with no message
    assert services.scheduler.run_once().published == []
    assert services.store.wake_of(conversation.id) is None
    assert queue.drains == []


def test_the_ops_overview_says_when_a_backlog_waits_in_the_schedule(parts: Parts) -> None:
    services, _, queue, clock = parts
    waiting(services, 3)
    backlog(services, queue, 6)  # workers are behind: nothing more is claimed
    assert services.ops_view.overview()["schedule"]["behind"] is False
    clock.now += GRACE + 1
    services.scheduler.run_once()
    schedule = services.ops_view.overview()["schedule"]
    assert schedule["due"] == 3 and schedule["lag_s"] == GRACE + 1 and schedule["behind"]
