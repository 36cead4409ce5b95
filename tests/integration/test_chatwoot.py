"""The Chatwoot agent bot over the real stack, against a local stand-in for Chatwoot's API."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from supportflow.adapters.inbox_store import InboxStore, RedisConversationMap
from supportflow.adapters.redis_store import RedisConversationStore
from supportflow.adapters.vault import Vault
from supportflow.domain.inbox import Inbox, InboxKind
from tests.conftest import VAULT_KEY
from tests.helpers import wait_until

from .receiver import Receiver, running

pytestmark = pytest.mark.slow
TOKEN = "bot-token-123"
HMAC_SECRET = "chatwoot-webhook-secret"
ACCOUNT = 7
TEAM = 3


@pytest.fixture
def chatwoot() -> Iterator[Receiver]:
    """Chatwoot's API: answers 401 without the bot's api_access_token."""
    server = Receiver()
    server.required_headers = {"api_access_token": TOKEN}
    with running(server):
        yield server


@pytest.fixture
def inbox(redis_url: str, chatwoot: Receiver) -> Inbox:
    client = redis.Redis.from_url(redis_url)
    made = Inbox(name=f"cw-{uuid.uuid4().hex[:8]}", kind=InboxKind.CHATWOOT, flow="responses",
                 base_url=chatwoot.url, account_id=ACCOUNT, api_access_token=TOKEN,
                 hmac_secret=HMAC_SECRET, team_id=TEAM)
    InboxStore(client, prefix="sf", vault=Vault(client, prefix="sf", key=VAULT_KEY)).create(made)
    return made


def event(conversation: int, content: str, *, message_type: str = "incoming",
          status: str = "pending", private: bool = False) -> dict[str, Any]:
    """An agent-bot message_created event, shaped as Chatwoot sends it."""
    return {
        "event": "message_created", "id": int(time.time_ns() % 10**9), "content": content,
        "created_at": "2025-05-15T19:10:40.449Z", "message_type": message_type,
        "content_type": "text", "content_attributes": {}, "source_id": None, "private": private,
        "sender": {"id": 42, "name": "Ann", "email": "ann@example.com", "type": "contact"},
        "inbox": {"id": 1, "name": "Website"}, "account": {"id": ACCOUNT, "name": "Acme"},
        "conversation": {"id": conversation, "inbox_id": 1, "status": status,
                         "additional_attributes": {}, "can_reply": True,
                         "channel": "Channel::WebWidget", "contact_inbox": {"source_id": "x"},
                         "meta": {"sender": {"id": 42, "name": "Ann"}}, "messages": []},
    }


def send(client: Any, inbox: Inbox, data: dict[str, Any], secret: str = HMAC_SECRET) -> Any:
    body = json.dumps(data).encode()
    stamp = str(int(time.time()))
    signature = "sha256=" + hmac.new(secret.encode(), stamp.encode() + b"." + body,
                                     hashlib.sha256).hexdigest()
    return client.post(f"/v1/integrations/chatwoot/{inbox.name}", data=body,
                       content_type="application/json",
                       headers={"X-Chatwoot-Signature": signature, "X-Chatwoot-Timestamp": stamp})


def not_taken(redis_url: str, inbox: Inbox, conversation: int) -> bool:
    """No SupportFlow conversation stands for this Chatwoot conversation."""
    mapping = RedisConversationMap(redis.Redis.from_url(redis_url), prefix="sf")
    return mapping.get(inbox.name, str(conversation)) is None


def route(conversation: int, action: str) -> str:
    return f"/api/v1/accounts/{ACCOUNT}/conversations/{conversation}/{action}"


def test_incoming_message_gets_the_bots_reply_posted_to_chatwoot(
        client: Any, inbox: Inbox, chatwoot: Receiver, redis_url: str) -> None:
    answer = send(client, inbox, event(101, "How long does shipping take?"))
    assert answer.status_code == 202, answer.get_json()
    [posted] = wait_until(lambda: chatwoot.on(route(101, "messages")), timeout=30)
    assert posted.status == 200
    body = posted.json()
    assert body["message_type"] == "outgoing" and body["private"] is False
    assert "ship" in body["content"].lower()
    store = RedisConversationStore(redis.Redis.from_url(redis_url))
    conversation = store.get(answer.get_json()["conversation_id"])
    assert conversation is not None and conversation.state.value == "wait_for_user"


def test_outgoing_private_and_non_pending_messages_are_ignored(
        client: Any, inbox: Inbox, chatwoot: Receiver, redis_url: str) -> None:
    for data in (event(102, "agent says hi", message_type="outgoing"),
                 event(102, "a private note", private=True),
                 event(102, "customer again", status="open"),
                 {**event(102, "x"), "event": "conversation_created"}):
        answer = send(client, inbox, data)
        assert answer.status_code == 200 and answer.get_json() == {"ignored": True}
    # Nothing was taken in, so nothing can ever be sent back.
    assert not_taken(redis_url, inbox, 102)
    assert chatwoot.requests == []


def test_bad_signature_is_refused(
        client: Any, inbox: Inbox, chatwoot: Receiver, redis_url: str) -> None:
    assert send(client, inbox, event(103, "hello"), secret="wrong").status_code == 401
    unsigned = client.post(f"/v1/integrations/chatwoot/{inbox.name}",
                           json=event(103, "hello"))
    assert unsigned.status_code == 401
    assert not_taken(redis_url, inbox, 103)
    assert chatwoot.requests == []


def test_handoff_opens_the_conversation_and_assigns_the_team(
        client: Any, inbox: Inbox, chatwoot: Receiver) -> None:
    assert send(client, inbox, event(104, "I want to talk to a human")).status_code == 202
    [toggled] = wait_until(lambda: chatwoot.on(route(104, "toggle_status")), timeout=30)
    assert toggled.json() == {"status": "open"} and toggled.status == 200
    [assigned] = wait_until(lambda: chatwoot.on(route(104, "assignments")))
    assert assigned.json() == {"team_id": TEAM}
    [told] = wait_until(lambda: chatwoot.on(route(104, "messages")))
    assert told.json()["content"]
