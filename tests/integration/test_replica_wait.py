"""Acknowledged means replicated: a customer message gets 202 only once a replica holds it."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from supportflow.adapters.inbox_store import InboxStore
from supportflow.adapters.redis_store import RedisConversationStore
from supportflow.adapters.vault import Vault
from supportflow.domain.inbox import Inbox, InboxKind
from supportflow.runtime.redis_server import EmbeddedRedis
from supportflow.webhooks.signing import new_secret
from tests.conftest import VAULT_KEY, Sandbox, make_app
from tests.helpers import wait_until

from .receiver import spec_signature

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory, sandbox: Sandbox,
               flows_dir: Path) -> Iterator[tuple[Any, EmbeddedRedis]]:
    """A master and one replica; the app waits up to 300 ms for the replica on every accept."""
    folder = tmp_path_factory.mktemp("replicated")
    with EmbeddedRedis(folder / "master") as master, \
            EmbeddedRedis(folder / "replica", replica_of=(master.host, master.port)) as replica:
        app = make_app(master.url, sandbox.url, flows_dir, redis_wait_replicas="1",
                       redis_wait_timeout_ms=300)
        yield app.test_client(), replica


@contextmanager
def replica_stopped(replica: EmbeddedRedis) -> Iterator[None]:
    """SIGSTOP the replica: it stays connected but confirms nothing until SIGCONT."""
    assert replica.process is not None
    os.kill(replica.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(replica.process.pid, signal.SIGCONT)


def replica_transcript(replica: EmbeddedRedis, conversation_id: str) -> list[str]:
    store = RedisConversationStore(replica.client())
    return [message.id for _, message in store.transcript(conversation_id, 0, 100)]


def start(client: Any) -> tuple[str, dict[str, str]]:
    """A new conversation's id, and the headers that carry its visitor token."""
    response = client.post("/v1/conversations", json={"contact": {"id": "ann"}, "flow": "responses"})
    assert response.status_code == 201
    started = response.get_json()
    return str(started["conversation_id"]), {"Authorization": f"Bearer {started['visitor_token']}"}


def test_a_message_is_acknowledged_only_once_the_replica_has_it(
        replicated: tuple[Any, EmbeddedRedis]) -> None:
    client, replica = replicated
    conversation, token = start(client)
    response = client.post(f"/v1/conversations/{conversation}/messages",
                           json={"text": "Hello", "client_message_id": "m-1"}, headers=token)
    assert response.status_code == 202
    assert "c:m-1" in replica_transcript(replica, conversation)


def test_an_unconfirmed_message_gets_503_and_its_retry_counts_once(
        replicated: tuple[Any, EmbeddedRedis]) -> None:
    client, replica = replicated
    conversation, token = start(client)
    body = {"text": "Where is my parcel?", "client_message_id": "m-2"}
    with replica_stopped(replica):
        refused = client.post(f"/v1/conversations/{conversation}/messages", json=body,
                              headers=token)
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "1"
    assert refused.get_json()["error"]["code"] == "not_replicated"
    retried = client.post(f"/v1/conversations/{conversation}/messages", json=body, headers=token)
    assert retried.status_code == 202 and retried.get_json()["duplicate"] is True
    assert replica_transcript(replica, conversation).count("c:m-2") == 1


def test_an_unconfirmed_webhook_is_taken_again_under_the_same_webhook_id(
        replicated: tuple[Any, EmbeddedRedis]) -> None:
    client, replica = replicated
    master = client.application.extensions["supportflow"].store.redis
    inbox = Inbox(name=f"hd-{uuid.uuid4().hex[:8]}", kind=InboxKind.WEBHOOK, flow="responses",
                  inbound_secrets=[new_secret()])
    InboxStore(master, prefix="sf", vault=Vault(master, prefix="sf", key=VAULT_KEY)).create(inbox)
    body = json.dumps({"conversation": {"id": "t-1"}, "contact": {"id": "c-1"},
                       "message": {"id": "w-1", "text": "Hi"}}).encode()
    stamp = str(int(time.time()))
    headers = {"webhook-id": "msg_1", "webhook-timestamp": stamp,
               "webhook-signature": spec_signature(inbox.inbound_secrets[0], "msg_1", stamp, body)}

    def send() -> Any:
        return client.post(f"/v1/webhooks/{inbox.name}", data=body, headers=headers,
                           content_type="application/json")

    with replica_stopped(replica):
        assert send().status_code == 503
    retried = send()
    assert retried.status_code == 202, retried.get_json()
    assert "w:w-1" in replica_transcript(replica, retried.get_json()["conversation_id"])


def test_readiness_shows_the_topology_and_fails_while_no_replica_can_confirm(
        replicated: tuple[Any, EmbeddedRedis]) -> None:
    client, replica = replicated

    def topology() -> dict[str, Any]:
        found: dict[str, Any] = client.get("/readyz").get_json()["redis"]
        return found

    # A replica the earlier tests stopped may still be resyncing (wait_bgsave) when this starts.
    shown = wait_until(lambda: (found := topology())["replicas"]
                       and found["replicas"][0]["state"] == "online" and found)
    assert shown["mode"] == "direct" and shown["role"] == "master"
    assert shown["replica_wait"] == {"on": True, "replicas": 1, "timeout_ms": 300}
    assert [r["state"] for r in shown["replicas"]] == ["online"]
    replica.stop()
    try:
        ready = client.get("/readyz").get_json()
        assert ready["redis"]["replicas"] == []
        assert any("0 of the 1 replica" in reason for reason in ready["reasons"])
    finally:
        replica.start()
    wait_until(lambda: [r["state"] for r in topology()["replicas"]] == ["online"])
