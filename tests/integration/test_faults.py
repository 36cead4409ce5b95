"""Faults and run outcomes injected by the sandbox, over the real stack, on both backends."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import redis

from supportflow.adapters.redis_store import RedisConversationStore
from tests.conftest import Sandbox

from .chat import Chat

pytestmark = pytest.mark.slow
BACKENDS = ["responses", "assistants"]
# Where each backend's operations live (substrings of the request path); on responses the
# customer's messages go with the response request.
POST_MESSAGE = {"responses": "/responses", "assistants": "/messages"}
RUN = {"responses": "/responses", "assistants": "/runs"}
OPEN_THREAD = {"responses": "/conversations", "assistants": "/threads"}


def thread_of(redis_url: str, chat: Chat) -> str:
    conversation = RedisConversationStore(redis.Redis.from_url(redis_url)).get(chat.id)
    assert conversation is not None and conversation.thread_id
    return conversation.thread_id


def ask(client: Any, backend: str, text: str = "How long does shipping take?") -> Chat:
    chat = Chat(client, backend)
    chat.say(text)
    return chat


@pytest.mark.parametrize("backend", BACKENDS)
def test_429_is_retried_after_the_time_the_api_asks_for(
    client: Any, sandbox: Sandbox, redis_url: str, backend: str
) -> None:
    sandbox.configure(faults=[{"method": "POST", "path": POST_MESSAGE[backend], "status": 429,
                               "retry_after_ms": 600, "times": 2}])
    served = sandbox.stats()["faults_served"]
    chat = ask(client, backend)
    assert "we ship within" in chat.wait_for_bot_messages(2)[-1].lower()
    stats = sandbox.stats()
    assert stats["faults_served"] - served == 2
    assert len(chat.messages("customer")) == 1
    # As the sandbox saw them: each try came at least the 0.6 s the API asked for after the
    # refused one (the run's first check follows the accepted try).
    first, second = stats["fault_times"][-2:]
    checks = stats["check_times_by_thread"][thread_of(redis_url, chat)]
    assert second - first >= 0.6 and checks[0] - second >= 0.6


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_on_run_checks_are_retried(
    client: Any, sandbox: Sandbox, backend: str, status: int
) -> None:
    sandbox.configure(faults=[{"method": "GET", "path": RUN[backend], "status": status,
                               "retry_after": "0", "times": 2}])
    served = sandbox.stats()["faults_served"]
    chat = ask(client, backend)
    assert "we ship within" in chat.wait_for_bot_messages(2)[-1].lower()
    assert sandbox.stats()["faults_served"] - served == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_read_timeout_is_retried(client: Any, sandbox: Sandbox, backend: str) -> None:
    sandbox.configure(faults=[{"method": "GET", "path": RUN[backend], "delay_s": 2.5, "times": 1}])
    served = sandbox.stats()["faults_served"]
    chat = ask(client, backend)
    assert "we ship within" in chat.wait_for_bot_messages(2, timeout=25)[-1].lower()
    assert chat.state()["state"] == "wait_for_user"
    assert sandbox.stats()["faults_served"] - served == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_client_error_fails_at_once_keeping_the_apis_message(
    client: Any, sandbox: Sandbox, backend: str
) -> None:
    sandbox.configure(faults=[{"method": "POST", "path": RUN[backend], "status": 400,
                               "times": 1}])
    served = sandbox.stats()["faults_served"]
    chat = ask(client, backend)
    state = chat.wait_for_state("handed_off")
    assert state["failure_reason"] == "The sandbox injected this fault. (HTTP 400)"
    assert sandbox.stats()["faults_served"] - served == 1


OUTCOMES = [("responses", "failed", "The sandbox failed this response."),
            ("responses", "cancelled", "cancelled"),
            ("responses", "incomplete", "max_output_tokens"),
            ("assistants", "failed", "The sandbox failed this run."),
            ("assistants", "cancelled", "cancelled"),
            ("assistants", "expired", "expired"),
            ("assistants", "incomplete", "max_completion_tokens")]


@pytest.mark.parametrize(("backend", "outcome", "reason"), OUTCOMES)
def test_run_outcomes_other_than_completed_go_to_the_fallback_with_the_reason(
    client: Any, sandbox: Sandbox, backend: str, outcome: str, reason: str
) -> None:
    sandbox.configure(next_outcome=outcome)
    chat = ask(client, backend)
    state = chat.wait_for_state("handed_off")
    assert reason in state["failure_reason"]
    assert state["handoff_reason"] == f"assistant failure: {state['failure_reason']}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_poll_honours_openai_poll_after_ms_within_the_schedule(
    client: Any, sandbox: Sandbox, redis_url: str, backend: str
) -> None:
    sandbox.configure(latency_s=2.0, poll_after_ms=300)
    chat = ask(client, backend, "Where is my order? I want order tracking")
    chat.wait_for_bot_messages(2)
    checks = sandbox.stats()["check_times_by_thread"][thread_of(redis_url, chat)]
    gaps = [later - earlier for earlier, later in itertools.pairwise(checks)]
    # Without the hint the run (2 s) would be checked 4 times (0.2, 0.4, 0.8, 1.0 s apart);
    # with it, every 0.3 s (a countdown never runs early; how late it runs is the machine's).
    assert len(checks) >= 6
    assert all(gap >= 0.25 for gap in gaps), gaps


@pytest.mark.parametrize("backend", BACKENDS)
def test_citation_marks_are_removed_from_replies(
    client: Any, sandbox: Sandbox, backend: str
) -> None:
    sandbox.configure(next_reply="Shipping takes 3 days【12:3†source】. Returns are free【4:0†faq.md】.")
    chat = ask(client, backend)
    assert chat.wait_for_bot_messages(2)[-1] == "Shipping takes 3 days. Returns are free."


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_empty_reply_is_a_failure_not_a_blank_message(
    client: Any, sandbox: Sandbox, backend: str
) -> None:
    sandbox.configure(next_reply=" 【1:0†source】 ")
    chat = ask(client, backend)
    state = chat.wait_for_state("handed_off")
    assert state["failure_reason"] == "empty reply"
    assert all(text.strip() for text in chat.bot_texts())
