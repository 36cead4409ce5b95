"""A worker killed with SIGKILL in the middle of a turn: the turn is not lost, nor answered twice."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from supportflow.adapters.redis_store import RedisConversationStore
from supportflow.runtime.redis_server import EmbeddedRedis
from tests.conftest import Processes, Sandbox, make_app, stack_env

from .chat import Chat

pytestmark = pytest.mark.slow


@pytest.fixture
def lonely_stack(
    tmp_path: Path, sandbox: Sandbox, flows_dir: Path
) -> Iterator[tuple[Any, Processes, str]]:
    """A Redis of its own, so that no other worker can pick up this test's tasks."""
    with EmbeddedRedis(tmp_path / "redis") as server:
        processes = Processes(stack_env(server.url, sandbox.url, flows_dir), tmp_path)
        try:
            yield make_app(server.url, sandbox.url, flows_dir).test_client(), processes, server.url
        finally:
            processes.stop_all()


@pytest.mark.parametrize("backend", ["responses", "assistants"])
def test_worker_killed_while_polling_loses_no_turn_and_replies_once(
    lonely_stack: tuple[Any, Processes, str], sandbox: Sandbox, backend: str
) -> None:
    client, processes, url = lonely_stack
    sandbox.reset()
    sandbox.configure(latency_s=2.0)
    first = processes.worker(concurrency=1)
    processes.beat()
    chat = Chat(client, backend)
    chat.say("How long does shipping take?")
    chat.wait_for_state("poll")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    processes.worker(concurrency=1)
    replies = chat.wait_for_bot_messages(2, timeout=30)
    assert "we ship within" in replies[1].lower()
    time.sleep(3)  # time for a duplicate to show up, if there were one
    assert len(chat.bot_texts()) == 2
    assert [m["text"] for m in chat.messages("customer")] == ["How long does shipping take?"]
    store = RedisConversationStore(redis.Redis.from_url(url))
    conversation = store.get(chat.id)
    assert conversation is not None and conversation.thread_id
    assert sandbox.stats()["runs_by_thread"][conversation.thread_id] == 1
    assert chat.state()["state"] == "wait_for_user"


def test_worker_killed_before_taking_the_message_leaves_it_for_the_next_worker(
    lonely_stack: tuple[Any, Processes, str], sandbox: Sandbox
) -> None:
    client, processes, _ = lonely_stack
    sandbox.reset()
    processes.beat()
    chat = Chat(client, "responses")
    chat.say("Can I return an item?")  # no worker yet: the drain task waits in the broker
    first = processes.worker(concurrency=1)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    processes.worker(concurrency=1)
    replies = chat.wait_for_bot_messages(2, timeout=30)
    assert "return" in replies[1].lower()
