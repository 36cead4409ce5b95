"""The sandbox's response events: sent at the moment a response ends, signed as OpenAI signs them.

Each delivery is caught by a local receiver, verified and parsed by the official `openai`
SDK (`client.webhooks.unwrap`) and checked against the API description's `webhooks:` entries.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openai import OpenAI

from supportflow import defaults
from supportflow.sandbox.server import SandboxHandle, start_in_thread
from supportflow.webhooks.signing import new_secret
from tests.contract import validate_webhook_event
from tests.helpers import free_port, wait_until

from .receiver import Received, Receiver, running

SECRET = new_secret()
LATENCY_S = 0.3


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    handle = start_in_thread("127.0.0.1", free_port(), defaults.KNOWLEDGE, LATENCY_S)
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def listening() -> Iterator[Receiver]:
    with running(Receiver()) as server:
        yield server


@pytest.fixture
def receiver(listening: Receiver) -> Receiver:
    """The module's receiver, emptied for each test."""
    with listening.lock:
        listening.requests.clear()
        listening.plan, listening.default = [], 200
    return listening


@pytest.fixture
def api(sandbox: SandboxHandle, receiver: Receiver) -> Iterator[httpx.Client]:
    """The sandbox's API, with its events going to the receiver."""
    with httpx.Client(base_url=sandbox.url, timeout=5) as client:
        control = sandbox.url.removesuffix("/v1") + "/_sandbox/settings"
        httpx.delete(control).raise_for_status()
        shown = httpx.put(control, json={"webhook_url": f"{receiver.url}/openai",
                                         "webhook_secret": SECRET}).json()
        assert shown["webhook_secret"] == "***"
        yield client
        httpx.delete(control).raise_for_status()


def configure(sandbox: SandboxHandle, **settings: Any) -> None:
    httpx.put(sandbox.url.removesuffix("/v1") + "/_sandbox/settings",
              json=settings).raise_for_status()


def stats(sandbox: SandboxHandle) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(sandbox.url.removesuffix("/v1") + "/_sandbox/stats").json()
    return found


def start_response(api: httpx.Client, text: str = "How long does shipping take?") -> tuple[str, str]:
    """A conversation with one background response; (conversation id, response id)."""
    conversation = api.post("/conversations", json={}).json()["id"]
    response = api.post("/responses", json={
        "conversation": conversation, "model": "sandbox-model", "background": True,
        "input": [{"type": "message", "role": "user", "content": text}]}).json()
    return conversation, response["id"]


def unwrap(delivery: Received) -> Any:
    """The event as the official SDK verifies and parses it."""
    client = OpenAI(api_key="sk-unused", webhook_secret=SECRET, base_url="http://127.0.0.1:9")
    return client.webhooks.unwrap(delivery.body, {k.lower(): v for k, v in delivery.headers.items()})


@pytest.mark.parametrize(("outcome", "event_type"), [
    (None, "response.completed"), ("failed", "response.failed"),
    ("cancelled", "response.cancelled"), ("incomplete", "response.incomplete")])
def test_a_response_nobody_checks_announces_its_end_at_its_moment(
        sandbox: SandboxHandle, api: httpx.Client, receiver: Receiver,
        outcome: str | None, event_type: str) -> None:
    if outcome:
        configure(sandbox, next_outcome=outcome)
    started = time.time()
    conversation, response_id = start_response(api)
    [delivery] = wait_until(lambda: receiver.on("/openai"), timeout=10)
    arrived = time.time()
    event = unwrap(delivery)
    assert event.type == event_type and event.data.id == response_id
    validate_webhook_event(delivery.json())
    assert delivery.json()["object"] == "event"
    # Nobody asked for the response: the timer ended it, LATENCY_S after it was created.
    assert conversation not in stats(sandbox)["checks_by_thread"]
    assert LATENCY_S <= arrived - started < LATENCY_S + 2
    assert api.get(f"/responses/{response_id}").json()["status"] == (outcome or "completed")


def test_tampered_or_wrongly_signed_deliveries_fail_the_sdks_check(
        api: httpx.Client, receiver: Receiver) -> None:
    from openai import InvalidWebhookSignatureError

    start_response(api)
    [delivery] = wait_until(lambda: receiver.on("/openai"), timeout=10)
    tampered = Received(delivery.path, delivery.headers,
                        delivery.body.replace(b"resp_", b"resp_x"), delivery.status)
    with pytest.raises(InvalidWebhookSignatureError):
        unwrap(tampered)
    with pytest.raises(InvalidWebhookSignatureError):
        OpenAI(api_key="sk-unused", webhook_secret=new_secret()).webhooks.unwrap(
            delivery.body, {k.lower(): v for k, v in delivery.headers.items()})


def test_dropped_deliveries_are_counted_and_never_sent(
        sandbox: SandboxHandle, api: httpx.Client, receiver: Receiver) -> None:
    before = stats(sandbox)
    configure(sandbox, webhook_drop_rate=1.0)
    _, response_id = start_response(api)
    wait_until(lambda: stats(sandbox)["webhooks_dropped"] == before["webhooks_dropped"] + 1)
    assert api.get(f"/responses/{response_id}").json()["status"] == "completed"
    assert receiver.on("/openai") == []


def test_duplicates_carry_one_webhook_id_and_a_refused_delivery_is_retried(
        sandbox: SandboxHandle, api: httpx.Client, receiver: Receiver) -> None:
    configure(sandbox, webhook_duplicates=2)
    receiver.plan = [500]
    _, response_id = start_response(api)
    deliveries = wait_until(lambda: len(found := receiver.on("/openai")) >= 4 and found,
                            timeout=10)
    assert [d.status for d in deliveries].count(500) == 1
    assert {d.headers["Webhook-Id"] for d in deliveries} == {deliveries[0].headers["Webhook-Id"]}
    assert {unwrap(d).data.id for d in deliveries} == {response_id}
    assert stats(sandbox)["webhooks_retried"] >= 1


def test_jitter_lets_deliveries_overtake_one_another(
        sandbox: SandboxHandle, api: httpx.Client, receiver: Receiver) -> None:
    configure(sandbox, webhook_delay_s=0.2, webhook_jitter_s=1.0)
    ended = [start_response(api)[1] for _ in range(10)]
    deliveries = wait_until(lambda: len(found := receiver.on("/openai")) == 10 and found,
                            timeout=10)
    arrived = [unwrap(d).data.id for d in deliveries]
    assert sorted(arrived) == sorted(ended) and arrived != ended


@pytest.mark.parametrize("bad", [{"webhook_url": "ftp://x"}, {"webhook_secret": "plain"},
                                 {"webhook_drop_rate": 1.5}, {"webhook_duplicates": 0.5},
                                 {"webhook_delay_s": -1}, {"webhook_jitter_s": True}])
def test_webhook_settings_are_checked(sandbox: SandboxHandle, bad: dict[str, Any]) -> None:
    answer = httpx.put(sandbox.url.removesuffix("/v1") + "/_sandbox/settings", json=bad)
    assert answer.status_code == 400 and "webhook" in answer.json()["error"]["message"]
