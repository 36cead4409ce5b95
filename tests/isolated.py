"""A web app on the real Redis under a key prefix of its own, and what tests read of it.

Requests that are refused must change nothing: `snapshot()` reads every key under the prefix
(values included), so a test compares it before and after.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from supportflow.adapters.inbox_store import InboxStore
from supportflow.adapters.tokens import TokenStore
from supportflow.bootstrap import Services, bootstrap
from supportflow.domain.access import Role
from supportflow.domain.inbox import Inbox, InboxKind
from supportflow.settings import load_settings
from supportflow.web import create_app
from supportflow.webhooks.signing import new_secret
from tests.conftest import VAULT_KEY
from tests.fakes import RecordingQueue
from tests.helpers import wait_until
from tests.integration.receiver import spec_signature

CHATWOOT_SECRET = "isolated-chatwoot-secret"


def key_values(client: redis.Redis, pattern: str) -> dict[str, Any]:
    """Every key matching `pattern` with its value read by type (strings decoded leniently)."""
    found: dict[str, Any] = {}
    for raw in client.scan_iter(match=pattern, count=1000):
        key = raw.decode(errors="replace")
        kind = client.type(raw).decode()
        value: Any
        if kind == "string":
            value = client.get(raw)
        elif kind == "list":
            value = client.lrange(raw, 0, -1)
        elif kind == "set":
            value = sorted(client.smembers(raw))
        elif kind == "zset":
            value = client.zrange(raw, 0, -1, withscores=True)
        elif kind == "hash":
            value = sorted(client.hgetall(raw).items())
        elif kind == "stream":
            value = client.xrange(raw)
        else:
            value = kind
        found[key] = value
    return found


class Isolated:
    """Services, a test client, tokens and inboxes under a fresh key prefix."""

    def __init__(self, redis_url: str, flows_dir: Path, sandbox_url: str | None = None,
                 clock: Callable[[], float] = time.time, **settings: Any) -> None:
        """With `sandbox_url`, the engine (run in-process by `drive`) talks to the sandbox."""
        self.prefix = f"iso{uuid.uuid4().hex[:10]}"
        self.queue = RecordingQueue()
        self.settings = load_settings({"redis_url": redis_url, "flows_dir": flows_dir,
                                       "key_prefix": self.prefix, "vault_key": VAULT_KEY,
                                       "stream_max_s": 0.2, "stream_poll_s": 0.05,
                                       "sandbox_url": sandbox_url or "http://127.0.0.1:9/v1",
                                       "openai_api_key": None, **settings})
        assistants = None if sandbox_url else object()
        self.services: Services = bootstrap(self.settings, queue=self.queue, clock=clock,
                                            assistants=assistants)  # type: ignore[arg-type]
        self.app = create_app({"TESTING": True, "SUPPORTFLOW_SERVICES": self.services})
        self.api = self.app.test_client()
        self.redis: redis.Redis = self.services.store.redis
        # Each widget conversation's visitor-token headers, by conversation id.
        self.visitor: dict[str, dict[str, str]] = {}
        self.server: dict[str, str] = {}  # a trusted server's widget token, made when first needed

    def drive(self, conversation_id: str, state: str, timeout: float = 20.0) -> None:
        """Run the engine in this process (drain, then polls) until the conversation is in
        `state`, as a worker would with the tasks the recording queue kept."""
        engine = self.services.engine
        engine.drain(conversation_id)

        def reached() -> bool:
            found = self.services.store.get(conversation_id)
            assert found is not None
            if found.state.value == "poll":
                engine.poll(conversation_id, found.poll_id)
            return found.state.value == state

        wait_until(reached, timeout=timeout, interval=0.1)

    def snapshot(self) -> dict[str, Any]:
        """Every key of this app but its metrics and rate-limit counters (a refused request
        is counted too)."""
        counted = (f"{self.prefix}:metrics:", f"{self.prefix}:ratelimit:")
        return {key: value for key, value in key_values(self.redis, f"{self.prefix}:*").items()
                if not key.startswith(counted)}

    def token(self, role: Role, name: str | None = None) -> dict[str, str]:
        """Authorization headers with a new token of `role`."""
        store = TokenStore(self.redis, prefix=self.prefix)
        made = store.create(name or f"{role.value}-{uuid.uuid4().hex[:6]}", role)
        return {"Authorization": f"Bearer {made}"}

    def inbox(self, kind: InboxKind, **fields: Any) -> Inbox:
        """A new inbox of `kind` (a Chatwoot one checks CHATWOOT_SECRET signatures)."""
        secrets = ({"inbound_secrets": [new_secret()], "outbound_secret": new_secret()}
                   if kind is InboxKind.WEBHOOK else
                   {"hmac_secret": CHATWOOT_SECRET, "base_url": "http://127.0.0.1:9",
                    "account_id": 1, "api_access_token": "token"})
        made = Inbox(name=f"{kind.value[:2]}-{uuid.uuid4().hex[:8]}", kind=kind,
                     **{"flow": "responses", **secrets, **fields})
        InboxStore(self.redis, prefix=self.prefix, vault=self.services.vault).create(made)
        return made

    def start(self, contact: str = "c-1", *, named: bool = False, **extra: Any) -> str:
        """A new widget conversation's id (its visitor token in `visitor`): a browser's (its
        contact is anonymous), or `named` by a trusted server (the contact is `contact`)."""
        if named and not self.server:
            self.server = self.token(Role.WIDGET)
        response = self.api.post("/v1/conversations", json={"contact": {"id": contact, **extra}},
                                 headers=self.server if named else {})
        assert response.status_code == 201, response.get_json()
        started = response.get_json()
        self.visitor[started["conversation_id"]] = {
            "Authorization": f"Bearer {started['visitor_token']}"}
        return str(started["conversation_id"])


def signed_webhook(inbox: Inbox, body: bytes, webhook_id: str | None = None) -> dict[str, str]:
    """Standard Webhooks headers signing `body` for `inbox`."""
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    stamp = str(int(time.time()))
    return {"webhook-id": webhook_id, "webhook-timestamp": stamp, "content-type": "application/json",
            "webhook-signature": spec_signature(inbox.inbound_secrets[0], webhook_id, stamp, body)}


def signed_chatwoot(body: bytes, secret: str = CHATWOOT_SECRET) -> dict[str, str]:
    """Chatwoot's agent-bot signature headers for `body`."""
    stamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Chatwoot-Signature": f"sha256={digest}", "X-Chatwoot-Timestamp": stamp,
            "content-type": "application/json"}


def chatwoot_event(conversation: int, content: Any, **changes: Any) -> dict[str, Any]:
    """An agent-bot message_created event as Chatwoot sends it."""
    event = {"event": "message_created", "id": int(time.time_ns() % 10**9), "content": content,
             "message_type": "incoming", "private": False,
             "sender": {"id": 42, "name": "Ann", "email": "ann@example.com", "type": "contact"},
             "conversation": {"id": conversation, "status": "pending"}}
    event.update(changes)
    return event


def webhook_payload(conversation: str, text: Any, **contact: Any) -> bytes:
    """A helpdesk's inbound message body."""
    return json.dumps({"conversation": {"id": conversation},
                       "contact": {"id": "hc-1", **contact},
                       "message": {"id": f"m-{uuid.uuid4().hex[:8]}", "text": text}}).encode()
