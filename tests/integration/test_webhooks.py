"""Signed webhooks in and out over the real stack: Redis, a Celery worker, the sandbox."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from supportflow.adapters.inbox_store import InboxStore
from supportflow.adapters.redis_store import RedisConversationStore
from supportflow.adapters.vault import Vault
from supportflow.domain.inbox import Inbox, InboxKind
from supportflow.webhooks.signing import new_secret
from tests.conftest import AGENTS_WEBHOOK_PORT, AGENTS_WEBHOOK_SECRET, VAULT_KEY
from tests.helpers import wait_no_tasks, wait_until

from .receiver import Receiver, running, spec_signature, spec_verifies

pytestmark = pytest.mark.slow


@pytest.fixture
def inboxes(redis_url: str) -> InboxStore:
    client = redis.Redis.from_url(redis_url)
    return InboxStore(client, prefix="sf", vault=Vault(client, prefix="sf", key=VAULT_KEY))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running(Receiver()) as server:
        yield server


@pytest.fixture
def inbox(inboxes: InboxStore, receiver: Receiver) -> Inbox:
    made = Inbox(name=f"hd-{uuid.uuid4().hex[:8]}", kind=InboxKind.WEBHOOK, flow="responses",
                 inbound_secrets=[new_secret()], callback_url=f"{receiver.url}/callback",
                 outbound_secret=new_secret())
    inboxes.create(made)
    return made


def payload(conversation: str, text: str = "How long does shipping take?") -> bytes:
    return json.dumps({"conversation": {"id": conversation},
                       "contact": {"id": "c-1", "name": "Ann", "email": "ann@example.com"},
                       "message": {"id": f"m-{uuid.uuid4().hex[:8]}", "text": text}}).encode()


def post(client: Any, inbox: Inbox, body: bytes, *, secret: str | None = None,
         webhook_id: str | None = None, at: float | None = None, signed_body: bytes | None = None
         ) -> Any:
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    stamp = str(int(at if at is not None else time.time()))
    signature = spec_signature(secret or inbox.inbound_secrets[0], webhook_id, stamp,
                               signed_body if signed_body is not None else body)
    return client.post(f"/v1/webhooks/{inbox.name}", data=body, content_type="application/json",
                       headers={"webhook-id": webhook_id, "webhook-timestamp": stamp,
                                "webhook-signature": signature})


def bot_callbacks(receiver: Receiver, inbox: Inbox, count: int = 1) -> list[Any]:
    """The message.created callbacks, each verified against the inbox's outbound secret."""
    found = wait_until(lambda: len(ok := [r for r in receiver.on("/callback") if r.status == 200
                                          and r.json()["type"] == "message.created"]) >= count
                       and ok, timeout=30)
    for request in found:
        assert inbox.outbound_secret and spec_verifies(inbox.outbound_secret, request.headers,
                                                       request.body)
    return list(found)


def test_signed_message_gets_a_signed_reply_on_the_callback(
        client: Any, inbox: Inbox, receiver: Receiver, redis_url: str) -> None:
    response = post(client, inbox, payload("t-1"))
    assert response.status_code == 202, response.get_json()
    conversation_id = response.get_json()["conversation_id"]
    [callback] = bot_callbacks(receiver, inbox)
    body = callback.json()
    assert body["data"]["conversation_id"] == conversation_id
    assert body["data"]["external_id"] == "t-1"
    assert "ship" in body["data"]["message"]["text"].lower()
    assert body["timestamp"].endswith("Z")
    conversation = RedisConversationStore(redis.Redis.from_url(redis_url)).get(conversation_id)
    assert conversation and conversation.channel == f"webhook:{inbox.name}"
    # The same helpdesk conversation maps to the same SupportFlow conversation.
    again = post(client, inbox, payload("t-1", "Can I return an item?"))
    assert again.get_json()["conversation_id"] == conversation_id


def test_forged_tampered_stale_and_unsigned_requests_are_refused(
        client: Any, inbox: Inbox, redis_url: str) -> None:
    body = payload("t-bad")
    keys_before = set(redis.Redis.from_url(redis_url).keys("sf:inbox:*"))
    attempts = [
        post(client, inbox, body, secret=new_secret()),
        post(client, inbox, body, signed_body=body.replace(b"shipping", b"shopping")),
        post(client, inbox, body, at=time.time() - 600),
        post(client, inbox, body, at=time.time() + 600),
        client.post(f"/v1/webhooks/{inbox.name}", data=body, content_type="application/json"),
    ]
    for response in attempts:
        assert response.status_code == 401, response.get_json()
        assert response.get_json()["error"]["code"] == "invalid_signature"
    assert set(redis.Redis.from_url(redis_url).keys("sf:inbox:*")) == keys_before
    assert post(client, inbox, b'{"conversation": {}}').status_code == 422
    assert client.post("/v1/webhooks/nope", data=body).status_code == 404


def test_replayed_webhook_id_has_no_effect(client: Any, inbox: Inbox, redis_url: str) -> None:
    body = payload("t-replay")
    first = post(client, inbox, body, webhook_id="msg_same")
    assert first.status_code == 202
    replay = post(client, inbox, payload("t-replay-other"), webhook_id="msg_same")
    assert replay.status_code == 200 and replay.get_json()["replayed"] is True
    store = RedisConversationStore(redis.Redis.from_url(redis_url))
    transcript = store.transcript(first.get_json()["conversation_id"])
    assert len([m for _, m in transcript if m.author == "customer"]) == 1


def test_rotated_secret_and_the_previous_one_are_accepted(
        client: Any, inbox: Inbox, inboxes: InboxStore) -> None:
    old = inbox.inbound_secrets[0]
    inbox.rotate_inbound(new_secret())
    inboxes.save(inbox)
    assert post(client, inbox, payload("t-rot-1")).status_code == 202
    assert post(client, inbox, payload("t-rot-2"), secret=old).status_code == 202


def test_racing_first_messages_start_one_conversation(client: Any, inbox: Inbox) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: post(client, inbox, payload("t-race")), range(4)))
    assert {a.status_code for a in answers} == {202}
    assert len({a.get_json()["conversation_id"] for a in answers}) == 1


def test_failing_receiver_gets_one_success_with_one_webhook_id(
        client: Any, inbox: Inbox, receiver: Receiver, redis_url: str) -> None:
    receiver.plan = [500, 503, 500, 502]
    assert post(client, inbox, payload("t-retry")).status_code == 202
    [success] = bot_callbacks(receiver, inbox)
    wait_no_tasks(redis_url, "supportflow.deliver")  # no further attempt is on its way
    attempts = [r for r in receiver.on("/callback") if r.json()["type"] == "message.created"]
    assert [r.status for r in attempts] == [500, 503, 500, 502, 200]
    assert {r.headers["Webhook-Id"] for r in attempts} == {success.headers["Webhook-Id"]}


def dead_letters(client: Any, token: str) -> list[dict[str, Any]]:
    response = client.get("/v1/ops/dead-letters", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_json()
    letters: list[dict[str, Any]] = response.get_json()["dead_letters"]
    return letters


@pytest.fixture
def ops_token(redis_url: str) -> str:
    from supportflow.adapters.tokens import TokenStore
    from supportflow.domain.access import Role

    return TokenStore(redis.Redis.from_url(redis_url), prefix="sf").create(
        f"ops-{uuid.uuid4().hex[:6]}", Role.OPS)


def test_exhausted_retries_dead_letter_then_replay(
        client: Any, inbox: Inbox, receiver: Receiver, ops_token: str) -> None:
    receiver.default = 500
    conversation = post(client, inbox, payload("t-dead")).get_json()["conversation_id"]
    mine = wait_until(lambda: [d for d in dead_letters(client, ops_token)
                               if d["conversation_id"] == conversation], timeout=30)
    assert mine[0]["attempts"] == 5 and "gave up" in mine[0]["reason"]
    assert client.get("/v1/ops/dead-letters").status_code == 401
    receiver.default = 200
    replay = client.post(f"/v1/ops/dead-letters/{mine[0]['id']}/replay",
                         headers={"Authorization": f"Bearer {ops_token}"})
    assert replay.status_code == 202
    [success] = bot_callbacks(receiver, inbox)
    assert success.headers["Webhook-Id"] == mine[0]["webhook_id"]
    assert not [d for d in dead_letters(client, ops_token) if d["id"] == mine[0]["id"]]


def test_410_disables_the_endpoint(
        client: Any, inbox: Inbox, receiver: Receiver, inboxes: InboxStore, ops_token: str) -> None:
    receiver.default = 410
    first = post(client, inbox, payload("t-gone")).get_json()["conversation_id"]
    wait_until(lambda: (found := inboxes.get(inbox.name)) is not None and not found.enabled)
    letters = wait_until(lambda: [d for d in dead_letters(client, ops_token)
                                  if d["conversation_id"] == first])
    assert "410" in letters[0]["reason"]
    calls = len(receiver.on("/callback"))
    second = post(client, inbox, payload("t-gone-2")).get_json()["conversation_id"]
    wait_until(lambda: [d for d in dead_letters(client, ops_token) if d["conversation_id"] == second],
               timeout=30)
    assert len(receiver.on("/callback")) == calls


def test_handoff_is_announced_to_the_agents_webhook(client: Any, inbox: Inbox) -> None:
    with running(Receiver(AGENTS_WEBHOOK_PORT)) as agents:
        answer = post(client, inbox, payload("t-human", "I want to talk to a human"))
        conversation = answer.get_json()["conversation_id"]
        [announced] = wait_until(lambda: [r for r in agents.on("/agents")
                                          if r.json()["data"]["conversation_id"] == conversation],
                                 timeout=30)
    assert announced.json()["type"] == "conversation.handed_off"
    assert announced.json()["data"]["reason"]
    assert spec_verifies(AGENTS_WEBHOOK_SECRET, announced.headers, announced.body)
