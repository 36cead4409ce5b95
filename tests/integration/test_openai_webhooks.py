"""OpenAI's webhooks over the real stack: the sandbox sends signed response events to the app
served on a port, a Celery worker runs the conversation, Redis holds it all.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from supportflow.adapters.vault import Vault
from supportflow.domain.connector import Connector
from supportflow.domain.flow import Fallback
from supportflow.sandbox.store import AFTER_TOOLS_REPLY
from supportflow.webhooks.signing import new_secret
from tests.conftest import VAULT_KEY, WEBHOOK_POLL_S, Sandbox, make_app
from tests.helpers import serving, wait_until

from .chat import Chat
from .receiver import spec_signature

pytestmark = pytest.mark.slow

SECRET = new_secret()


@pytest.fixture
def app(stack: dict[str, Any], redis_url: str, sandbox: Sandbox, flows_dir: Path) -> Iterator[Any]:
    """The web app with OPENAI_WEBHOOK_SECRET set for the `default` connector."""
    sandbox.reset()
    yield make_app(redis_url, sandbox.url, flows_dir, openai_webhook_secret=SECRET)
    sandbox.reset()


def event(response_id: str, kind: str = "response.completed") -> bytes:
    return json.dumps({"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": kind,
                       "created_at": int(time.time()), "data": {"id": response_id}}).encode()


def post(client: Any, body: bytes, *, connector: str = "default", secret: str = SECRET,
         webhook_id: str | None = None, at: float | None = None,
         signed_body: bytes | None = None) -> Any:
    """POST an event signed as OpenAI signs it (an implementation of the spec of the tests' own)."""
    webhook_id = webhook_id or f"wh_{uuid.uuid4().hex}"
    stamp = str(int(time.time() if at is None else at))
    signature = spec_signature(secret, webhook_id, stamp,
                               body if signed_body is None else signed_body)
    return client.post(f"/v1/integrations/openai/{connector}", data=body,
                       content_type="application/json",
                       headers={"webhook-id": webhook_id, "webhook-timestamp": stamp,
                                "webhook-signature": signature})


def test_forged_tampered_stale_and_unsigned_events_are_refused(app: Any, redis_url: str) -> None:
    client = app.test_client()
    body = event("resp_forged")
    keys_before = set(redis.Redis.from_url(redis_url).keys("sf:openai:*"))
    refused_before = refused_count(app)
    attempts = [
        post(client, body, secret=new_secret()),
        post(client, body, signed_body=body.replace(b"resp_forged", b"resp_other")),
        post(client, body, at=time.time() - 600),
        post(client, body, at=time.time() + 600),
        client.post("/v1/integrations/openai/default", data=body, content_type="application/json"),
    ]
    for answer in attempts:
        assert answer.status_code == 401, answer.get_json()
        assert answer.get_json()["error"]["code"] == "invalid_signature"
    assert set(redis.Redis.from_url(redis_url).keys("sf:openai:*")) == keys_before
    wait_until(lambda: refused_count(app) == refused_before + len(attempts), timeout=5)
    assert post(client, b'{"type": "response.completed"}').status_code == 422
    assert post(client, body, connector="nobody").status_code == 404


def test_unknown_responses_and_other_events_are_acknowledged_and_ignored(app: Any) -> None:
    client = app.test_client()
    unknown_before, ignored_before = (counter(app, "supportflow_openai_events", outcome)
                                      for outcome in ("unknown", "ignored"))
    unknown = post(client, event("resp_not_ours"))
    assert unknown.status_code == 200 and unknown.get_json()["outcome"] == "unknown"
    batch = post(client, event("batch_1", "batch.completed"))
    assert batch.status_code == 200 and batch.get_json()["outcome"] == "ignored"
    wait_until(lambda: (counter(app, "supportflow_openai_events", "unknown"),
                        counter(app, "supportflow_openai_events", "ignored"))
               == (unknown_before + 1, ignored_before + 1), timeout=5)


def test_a_replayed_webhook_id_has_no_effect(app: Any) -> None:
    client = app.test_client()
    first = post(client, event("resp_replayed"), webhook_id="wh_same")
    again = post(client, event("resp_replayed"), webhook_id="wh_same")
    assert first.get_json()["outcome"] == "unknown"
    assert again.status_code == 200 and again.get_json()["outcome"] == "replayed"


def test_a_connectors_rotated_secret_and_the_previous_one_verify_until_the_window_ends(
        app: Any, redis_url: str) -> None:
    vault = Vault(redis.Redis.from_url(redis_url), prefix="sf", key=VAULT_KEY)
    name = f"rot-{uuid.uuid4().hex[:6]}"
    vault.set(Connector(name, "sk-test"))
    old, new = new_secret(), new_secret()
    vault.set_webhook_secret(name, old, now=time.time())
    client = app.test_client()
    assert post(client, event("resp_rot"), connector=name, secret=old).status_code == 200
    vault.set_webhook_secret(name, new, now=time.time(), keep_previous_s=1.0)
    assert post(client, event("resp_rot"), connector=name, secret=new).status_code == 200
    assert post(client, event("resp_rot"), connector=name, secret=old).status_code == 200
    wait_until(lambda: post(client, event("resp_rot"), connector=name,
                            secret=old).status_code == 401, timeout=5)
    assert post(client, event("resp_rot"), connector=name, secret=new).status_code == 200
    # The environment's secret is the default connector's only.
    assert post(client, event("resp_rot"), connector=name, secret=SECRET).status_code == 401


# ----- whole conversations: the sandbox's signed events reach the app over HTTP -----


@pytest.fixture
def hooked(app: Any, sandbox: Sandbox) -> Iterator[Any]:
    """The app served on a port, and the sandbox sending it its response events."""
    with serving(app) as url:
        sandbox.configure(webhook_url=f"{url}/v1/integrations/openai/default",
                          webhook_secret=SECRET)
        yield app
        sandbox.reset()


def counter(app: Any, name: str, label: str) -> float:
    values = app.extensions["supportflow"].metrics.counter_values(name)
    return float(values.get((label,), 0.0))


def refused_count(app: Any) -> float:
    values = app.extensions["supportflow"].metrics.counter_values(
        "supportflow_openai_events_refused")
    return float(sum(values.values()))


def checks_of(app: Any, sandbox: Sandbox, chat: Chat) -> list[float]:
    """When the sandbox was asked about the conversation's runs (time.time())."""
    conversation = app.extensions["supportflow"].store.get(chat.id)
    found: list[float] = sandbox.stats()["check_times_by_thread"].get(conversation.thread_id, [])
    return found


@pytest.mark.parametrize("outcome", [None, "failed", "incomplete"])
def test_a_finished_response_reaches_the_conversation_by_webhook_with_one_check(
        hooked: Any, sandbox: Sandbox, outcome: str | None) -> None:
    chat = Chat(hooked.test_client(), "responses_webhooks")
    if outcome:
        sandbox.configure(next_outcome=outcome)
    by_webhook = counter(hooked, "supportflow_runs_ended", "webhook")
    said = time.time()
    chat.say("How long does shipping take?")
    reply = chat.wait_for_bot_messages(2)[-1]
    if outcome is None:
        assert "ship" in reply.lower() and chat.state()["state"] == "wait_for_user"
    else:
        assert reply == Fallback().message and chat.state()["state"] == "handed_off"
        assert chat.state()["failure_reason"]
    # One check: the read of the finished response, long before the planned poll.
    [check] = checks_of(hooked, sandbox, chat)
    assert check - said < WEBHOOK_POLL_S
    assert counter(hooked, "supportflow_runs_ended", "webhook") == by_webhook + 1


def test_a_turn_by_webhook_costs_the_api_two_calls(hooked: Any, sandbox: Sandbox) -> None:
    chat = Chat(hooked.test_client(), "responses_webhooks")
    for turn, question in enumerate(["How long does shipping take?", "Do you ship abroad?"]):
        chat.say(question)
        chat.wait_for_bot_messages(2 + turn)
    calls = httpx.get(f"{sandbox.root}/_sandbox/runs", timeout=5).json()["calls"]
    # Opening the conversation once, then per turn the response request (the customer's
    # messages ride in it) and one read of the finished response.
    assert calls[chat.id] == 1 + 2 * 2


def test_a_dropped_webhook_is_covered_by_the_next_poll(hooked: Any, sandbox: Sandbox) -> None:
    sandbox.configure(webhook_drop_rate=1.0)
    chat = Chat(hooked.test_client(), "responses_webhooks")
    by_poll = counter(hooked, "supportflow_runs_ended", "poll")
    said = time.time()
    chat.say("How long does shipping take?")
    assert "ship" in chat.wait_for_bot_messages(2, timeout=WEBHOOK_POLL_S + 10)[-1].lower()
    [check] = checks_of(hooked, sandbox, chat)
    assert check - said >= WEBHOOK_POLL_S - 0.1
    assert counter(hooked, "supportflow_runs_ended", "poll") == by_poll + 1


def test_duplicated_reordered_and_late_events_give_one_reply(hooked: Any, sandbox: Sandbox) -> None:
    client = hooked.test_client()
    sent = sandbox.stats()["webhooks_sent"]
    known = {entry["event"] for entry in sandbox.stats()["webhook_log"]}
    replayed = counter(hooked, "supportflow_openai_events", "replayed")
    # Two responses (a tool call, then the reply), each event delivered three times with the
    # same webhook-id, in an order shuffled by up to half a second.
    sandbox.configure(webhook_duplicates=2, webhook_jitter_s=0.5, next_tool_calls=[
        {"name": "save_note", "arguments": {"text": "asked about shipping"}}])
    chat = Chat(client, "responses_webhooks")
    chat.say("How long does shipping take?")
    assert chat.wait_for_bot_messages(2)[-1] == AFTER_TOOLS_REPLY
    wait_until(lambda: sandbox.stats()["webhooks_sent"] >= sent + 6)
    assert counter(hooked, "supportflow_openai_events", "replayed") == replayed + 4
    events = [e for e in sandbox.stats()["webhook_log"] if e["event"] not in known]
    assert len(events) == 2
    # Late copies under new webhook-ids: the conversation no longer waits on them.
    for late in events:
        answer = post(client, event(late["response"]))
        assert answer.status_code == 200 and answer.get_json()["outcome"] == "unknown"
    assert len(checks_of(hooked, sandbox, chat)) == 2
    assert len(chat.bot_texts()) == 2 and chat.state()["state"] == "wait_for_user"
