"""The schedule over the real stack: a waiting poll lives in Redis's wakeups index (no task
held in the broker or a worker's memory), and an overload keeps the broker's queue within the
scheduler's limit, then every conversation completes, answered once."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from supportflow.adapters.redis_store import RedisConversationStore
from tests.conftest import Processes, Sandbox, private_stack
from tests.helpers import wait_idle, wait_until

from .chat import Chat

pytestmark = pytest.mark.slow
QUEUE_LIMIT = 4  # conversations waiting in the broker
PER_TASK = 2


def broker_tasks(payloads: list[bytes]) -> list[list[Any]]:
    """The args of tasks in the broker's queue list or its unacked hash (kombu's envelopes)."""
    found = []
    for raw in payloads:
        message = json.loads(raw)
        message = message[0] if isinstance(message, list) else message  # unacked: [message, ...]
        args, _, _ = json.loads(base64.b64decode(message["body"]))
        found.append(args)
    return found


def snapshot(client: redis.Redis, conversation_id: str) -> tuple[bool, float | None, bool]:
    """At one instant: is the conversation held or just published by the scheduler (marked),
    when is it due, does a task for its current poll wait in the broker's queue or in a
    worker's hands (the task that just ran may still be there, being acknowledged: it names an
    older poll)."""
    pipe = client.pipeline(transaction=True)
    pipe.exists(f"sf:conv:{conversation_id}:lease")
    pipe.hexists("sf:queued", conversation_id)
    pipe.zscore("sf:wakeups", conversation_id)
    pipe.get(f"sf:conv:{conversation_id}")
    pipe.lrange("supportflow", 0, -1)
    pipe.hvals("unacked")
    held, published, due, record, queued, unacked = pipe.execute()
    poll_id = json.loads(record)["poll_id"]
    in_broker = any(args[:2] == [conversation_id, poll_id]
                    for args in broker_tasks([*queued, *unacked]))
    return bool(held or published), due, in_broker


def test_a_waiting_poll_lives_in_the_schedule_not_in_the_broker(
    client: Any, redis_url: str, sandbox: Sandbox
) -> None:
    sandbox.configure(latency_s=3.0)
    chat = Chat(client, "responses")
    chat.say("How long does shipping take?")
    chat.wait_for_state("poll")
    direct = redis.Redis.from_url(redis_url)
    waits = 0
    while len(chat.bot_texts()) < 2:
        busy, due, in_broker = snapshot(direct, chat.id)
        if not busy and due is not None and due > time.time() + 0.05:
            waits += 1
            assert not in_broker, "a poll waited in the broker instead of the schedule"
        time.sleep(0.05)
    assert waits > 0  # the schedule 0.2, 0.4, 0.8, 1.0 s leaves waits between checks


@pytest.fixture
def limited_stack(tmp_path: Path, sandbox: Sandbox, flows_dir: Path
                  ) -> Iterator[tuple[Any, Processes, str]]:
    """A Redis of its own and a worker whose scheduler keeps at most QUEUE_LIMIT conversations
    queued, PER_TASK a task."""
    with private_stack(tmp_path, sandbox, flows_dir, settings={
            "SUPPORTFLOW_DISPATCH_QUEUE_LIMIT": str(QUEUE_LIMIT),
            "SUPPORTFLOW_DISPATCH_PER_TASK": str(PER_TASK),
            "SUPPORTFLOW_DISPATCH_BATCH": str(QUEUE_LIMIT)}) as stack:
        yield stack


def test_an_overload_keeps_the_queue_bounded_then_every_conversation_is_answered_once(
    limited_stack: tuple[Any, Processes, str], sandbox: Sandbox
) -> None:
    client, processes, url = limited_stack
    sandbox.configure(latency_s=0.3)
    direct = redis.Redis.from_url(url)
    # The burst arrives before any worker runs: forty turns wait in the schedule.
    burst = [Chat(client, "responses") for _ in range(40)]
    for chat in burst:
        chat.say("How long does shipping take?")
    assert direct.llen("supportflow") == 0  # accepting a message publishes nothing
    processes.worker(concurrency=2)
    depths = []

    def answered(chats: list[Chat]) -> bool:
        depths.append(direct.llen("supportflow"))
        return all(len(chat.bot_texts()) >= 2 for chat in chats)

    wait_until(lambda: answered(burst), timeout=60)
    later = [Chat(client, "responses") for _ in range(5)]  # then normal load
    for chat in later:
        chat.say("Can I return an item?")
    wait_until(lambda: answered(later), timeout=30)
    assert max(depths) * PER_TASK <= QUEUE_LIMIT
    everyone = [*burst, *later]
    wait_idle(url, [chat.id for chat in everyone])
    store = RedisConversationStore(direct)
    for chat in everyone:
        assert len(chat.bot_texts()) == 2, chat.bot_texts()
        conversation = store.get(chat.id)
        assert conversation is not None and conversation.thread_id
        assert sandbox.stats()["runs_by_thread"][conversation.thread_id] == 1
