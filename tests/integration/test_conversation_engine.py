"""The canonical flow over the real stack: Redis, a Celery worker and beat, the sandbox over HTTP."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import redis

from supportflow.adapters.redis_store import RedisConversationStore
from supportflow.domain.flow import DEFAULT_HANDOFF_MARKER, Handoff
from tests.conftest import Sandbox
from tests.helpers import wait_idle, wait_until

from .chat import Chat

pytestmark = pytest.mark.slow
BACKENDS = ["responses", "assistants"]
HANDOFF_MESSAGE = Handoff().message


@pytest.fixture
def store(redis_url: str) -> RedisConversationStore:
    return RedisConversationStore(redis.Redis.from_url(redis_url))


def runs_on(sandbox: Sandbox, thread_id: str) -> int:
    return int(sandbox.stats()["runs_by_thread"].get(thread_id, 0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_three_turns_get_answers_and_attribute_holds_latest_answer(
    client: Any, store: RedisConversationStore, backend: str
) -> None:
    chat = Chat(client, backend)
    assert chat.started["welcome"]["text"] == "Hello! How can I help?"
    questions = ["How long does shipping take?", "Can I return an item?",
                 "I forgot my password"]
    for turn, question in enumerate(questions, start=1):
        chat.say(question)
        replies = chat.wait_for_bot_messages(turn + 1)
        assert replies[-1] and replies[-1] != DEFAULT_HANDOFF_MARKER
        assert store.attributes(chat.contact)["gpt_response"] == question
    state = chat.wait_for_state("wait_for_user")
    assert state["turn"] == 3
    answers = chat.bot_texts()[1:]
    assert "we ship within" in answers[0].lower()
    assert "return" in answers[1].lower()
    assert "password" in answers[2].lower()


@pytest.mark.parametrize("backend", BACKENDS)
def test_contact_scope_shares_a_thread_across_a_visitors_conversations_conversation_scope_does_not(
    client: Any, store: RedisConversationStore, backend: str
) -> None:
    threads: dict[str, list[str | None]] = {}
    for flow in (backend, f"{backend}_contact"):
        token: str | None = None  # an anonymous visitor who comes back with their token
        contacts: set[str] = set()
        for _ in range(2):
            chat = Chat(client, flow, contact_token=token)
            token = chat.started["contact_token"]
            contacts.add(chat.contact)
            chat.say("What are your opening hours?")
            chat.wait_for_bot_messages(2)
            conversation = store.get(chat.id)
            assert conversation is not None
            threads.setdefault(flow, []).append(conversation.thread_id)
        assert len(contacts) == 1  # the same contact both times
    shared = threads[f"{backend}_contact"]
    separate = threads[backend]
    assert shared[0] and shared[0] == shared[1]
    assert separate[0] and separate[1] and separate[0] != separate[1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_static_scope_uses_the_flows_thread(
    client: Any, store: RedisConversationStore, flows_dir: Path, backend: str
) -> None:
    from supportflow.adapters.flow_files import load_flow_file

    expected = load_flow_file(flows_dir / f"{backend}_static.yaml").static_thread_id
    chat = Chat(client, f"{backend}_static")
    chat.say("Which payment methods do you accept?")
    chat.wait_for_bot_messages(2)
    conversation = store.get(chat.id)
    assert conversation is not None and conversation.thread_id == expected


@pytest.mark.parametrize("backend", BACKENDS)
def test_handoff_marker_hands_off_and_the_bot_stays_silent(
    client: Any, store: RedisConversationStore, sandbox: Sandbox, redis_url: str, backend: str
) -> None:
    chat = Chat(client, backend)
    chat.say("I want to talk to a human please")
    chat.wait_for_state("handed_off")
    assert chat.bot_texts()[-1] == HANDOFF_MESSAGE
    assert chat.id in dict(store.handoff_queue())
    runs_before = sandbox.stats()["runs_total"]
    chat.say("Hello? Anyone there?")
    wait_idle(redis_url, [chat.id])
    assert chat.bot_texts()[-1] == HANDOFF_MESSAGE
    assert len(chat.bot_texts()) == 2
    assert chat.messages("customer")[-1]["text"] == "Hello? Anyone there?"
    assert sandbox.stats()["runs_total"] == runs_before
    assert chat.state()["state"] == "handed_off"


@pytest.mark.parametrize("backend", BACKENDS)
def test_slow_run_is_polled_until_done_with_delays_following_the_schedule(
    client: Any, store: RedisConversationStore, sandbox: Sandbox, backend: str
) -> None:
    sandbox.configure(latency_s=2.6)
    chat = Chat(client, backend)
    chat.say("Where is my order? I want order tracking")
    chat.wait_for_bot_messages(2, timeout=15)
    conversation = store.get(chat.id)
    assert conversation is not None
    checks = sandbox.stats()["check_times_by_thread"][conversation.thread_id]
    gaps = [later - earlier for earlier, later in itertools.pairwise(checks)]
    # Schedule 0.2, 0.4, 0.8, 1.0 (then 1.0): the run completes at 2.6 s, so five checks.
    assert len(checks) >= 4
    for gap, planned in zip(gaps, [0.4, 0.8, 1.0, 1.0], strict=False):
        assert planned - 0.05 <= gap <= planned + 0.6, (gaps, checks)


@pytest.mark.parametrize("backend", BACKENDS)
def test_run_that_never_finishes_reaches_the_deadline_and_hands_off(
    client: Any, sandbox: Sandbox, backend: str
) -> None:
    sandbox.configure(never_finish=True)
    chat = Chat(client, f"{backend}_deadline")
    chat.say("How long does shipping take?")
    state = chat.wait_for_state("handed_off", timeout=15)
    asked, told = chat.messages("customer")[-1], chat.messages("bot")[-1]
    assert told["at"] - asked["at"] >= 1.5  # as the service recorded them
    assert "did not answer within 1.5 s" in state["failure_reason"]
    assert state["handoff_reason"].startswith("assistant failure")
    assert chat.bot_texts()[-1].startswith("Sorry, something went wrong")


@pytest.mark.parametrize("backend", BACKENDS)
def test_reply_fallback_tells_the_customer_and_waits_for_the_next_message(
    client: Any, sandbox: Sandbox, backend: str
) -> None:
    sandbox.configure(never_finish=True)
    chat = Chat(client, f"{backend}_reply_fallback")
    chat.say("How long does shipping take?")
    chat.wait_for_bot_messages(2, timeout=15)
    assert chat.bot_texts()[-1] == "Sorry, please try again."
    assert chat.wait_for_state("wait_for_user")["failure_reason"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_three_quick_messages_during_a_run_become_one_next_turn(
    client: Any, store: RedisConversationStore, sandbox: Sandbox, backend: str
) -> None:
    sandbox.configure(latency_s=1.5)
    chat = Chat(client, backend)
    chat.say("How long does shipping take?")
    chat.wait_for_state("poll")
    chat.say("Also, can I return an item?")
    chat.say("And how do refunds work?")
    chat.say("Which payment methods do you accept?")
    chat.wait_for_bot_messages(3, timeout=20)
    state = chat.wait_for_state("wait_for_user")
    assert state["turn"] == 2
    conversation = store.get(chat.id)
    assert conversation is not None and conversation.thread_id
    assert runs_on(sandbox, conversation.thread_id) == 2
    second = chat.bot_texts()[2].lower()
    assert "return" in second and "refunds go back" in second and "visa" in second
    assert store.attributes(chat.contact)["gpt_response"] == (
        "Also, can I return an item?\nAnd how do refunds work?\n"
        "Which payment methods do you accept?"
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_repeated_client_message_id_is_processed_once(
    client: Any, store: RedisConversationStore, sandbox: Sandbox, redis_url: str, backend: str
) -> None:
    chat = Chat(client, backend)
    first = chat.say("How long does shipping take?", message_id="m-1")
    again = chat.say("How long does shipping take?", message_id="m-1")
    assert first["duplicate"] is False and again["duplicate"] is True
    chat.wait_for_bot_messages(2)
    wait_idle(redis_url, [chat.id])
    assert len(chat.messages("customer")) == 1
    assert len(chat.bot_texts()) == 2
    conversation = store.get(chat.id)
    assert conversation is not None and conversation.thread_id
    assert runs_on(sandbox, conversation.thread_id) == 1
    assert wait_until(lambda: chat.state()["turn"] == 1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_request_that_takes_metadata_names_the_conversation_and_turn(
    client: Any, store: RedisConversationStore, sandbox: Sandbox, backend: str
) -> None:
    chat = Chat(client, backend)
    for turn, question in enumerate(["How long does shipping take?", "Can I return it?"], 1):
        chat.say(question)
        chat.wait_for_bot_messages(turn + 1)
    conversation = store.get(chat.id)
    assert conversation is not None and conversation.thread_id
    seen = sandbox.stats()["metadata_by_thread"][conversation.thread_id]
    assert seen[0] == ["thread", {"sf_conversation": chat.id, "sf_turn": f"{chat.id}:1"}]
    kinds = ["message", "run"] if backend == "assistants" else ["run"]
    assert [kind for kind, _ in seen[1:]] == kinds * 2
    for index, (kind, metadata) in enumerate(seen[1:]):
        turn = index // len(kinds) + 1
        # The turn key names the conversation too; runs also carry it on its own.
        assert metadata["sf_turn"] == f"{chat.id}:{turn}"
        if kind == "run":
            assert metadata["sf_conversation"] == chat.id
