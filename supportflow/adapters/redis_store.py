"""The conversation store on Redis: records, mailboxes, transcripts, leases and indexes."""

from __future__ import annotations

import json
import secrets
from typing import Any, cast

import redis

from supportflow.domain.model import (
    Author,
    Conversation,
    CustomerMessage,
    State,
    TranscriptMessage,
)
from supportflow.services.ports import Commit, StaleWrite

from . import redis_scripts


class RedisConversationStore:
    """Implements the ConversationStore port; every multi-key change is one Lua script."""

    def __init__(self, client: redis.Redis, *, prefix: str = "sf", lease_ttl_s: float = 45.0) -> None:
        self.redis = client
        self.prefix = prefix
        self.lease_ttl_s = lease_ttl_s
        self._accept = client.register_script(redis_scripts.ACCEPT_MESSAGE)
        self._commit = client.register_script(redis_scripts.COMMIT)
        self._release = client.register_script(redis_scripts.RELEASE_LEASE)

    # Key layout: everything under one prefix (DESIGN.md section 6).
    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def conv_keys(self, conversation_id: str) -> dict[str, str]:
        base = self.key("conv", conversation_id)
        return {
            "record": base,
            "lease": f"{base}:lease",
            "mailbox": f"{base}:mailbox",
            "transcript": f"{base}:transcript",
            "ids": f"{base}:ids",
        }

    def create(self, conversation: Conversation, welcome: TranscriptMessage) -> None:
        """Store a new conversation with its welcome message and index it."""
        keys = self.conv_keys(conversation.id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(keys["record"], json.dumps(conversation.to_dict()))
        pipe.sadd(keys["ids"], f"transcript:{welcome.id}")
        pipe.rpush(keys["transcript"], json.dumps(welcome.to_dict()))
        pipe.zadd(self.key("conversations"), {conversation.id: conversation.created_at})
        pipe.sadd(self.key("state", conversation.state.value), conversation.id)
        pipe.execute()

    def get(self, conversation_id: str) -> Conversation | None:
        raw = self.redis.get(self.key("conv", conversation_id))
        return Conversation.from_dict(json.loads(raw)) if raw else None

    def accept_customer_message(self, conversation_id: str, message: CustomerMessage) -> bool:
        """Append to mailbox and transcript once per message id; False for a duplicate."""
        keys = self.conv_keys(conversation_id)
        entry = TranscriptMessage(
            id=message.id, author=Author.CUSTOMER, text=message.text, at=message.received_at
        )
        result = self._accept(
            keys=[keys["record"], keys["ids"], keys["mailbox"], keys["transcript"],
                  self.key("mailboxes")],
            args=[message.id, json.dumps(message.to_dict()), json.dumps(entry.to_dict()),
                  message.received_at, conversation_id],
        )
        if result == -1:
            raise KeyError(conversation_id)
        return bool(result == 1)

    def mailbox(self, conversation_id: str) -> list[CustomerMessage]:
        raw = cast(list[bytes], self.redis.lrange(self.conv_keys(conversation_id)["mailbox"], 0, -1))
        return [CustomerMessage.from_dict(json.loads(item)) for item in raw]

    def acquire_lease(self, conversation_id: str, ttl_s: float) -> str | None:
        """Take the conversation's lease; None when another worker holds it."""
        token = secrets.token_hex(8)
        taken = self.redis.set(
            self.conv_keys(conversation_id)["lease"], token, nx=True, px=int(ttl_s * 1000)
        )
        return token if taken else None

    def release_lease(self, conversation_id: str, token: str) -> None:
        self._release(keys=[self.conv_keys(conversation_id)["lease"]], args=[token])

    def lease_held(self, conversation_id: str) -> bool:
        return bool(self.redis.exists(self.conv_keys(conversation_id)["lease"]))

    def commit(self, conversation: Conversation, lease: str, change: Commit) -> None:
        """Write the record if the lease and the version read still hold; bumps the version."""
        keys = self.conv_keys(conversation.id)
        expected = conversation.version
        conversation.version = expected + 1
        entries: list[Any] = []
        for message in change.transcript:
            entries += [f"transcript:{message.id}", json.dumps(message.to_dict())]
        result = self._commit(
            keys=[keys["record"], keys["lease"], keys["mailbox"], keys["transcript"], keys["ids"],
                  self.key("wakeups"), self.key("handoffs"), self.key("mailboxes")],
            args=[lease, expected, json.dumps(conversation.to_dict()), change.consumed,
                  conversation.id, "" if conversation.wake_at is None else conversation.wake_at,
                  conversation.updated_at, int(self.lease_ttl_s * 1000), self.prefix, *entries],
        )
        if result != 1:
            conversation.version = expected
            what = "lease lost" if result == -1 else "version moved"
            raise StaleWrite(f"conversation {conversation.id}: {what}")

    def set_attribute(self, contact_id: str, name: str, value: str) -> None:
        self.redis.hset(self.key("contact", contact_id, "attributes"), name, value)

    def set_attributes(self, contact_id: str, values: dict[str, str]) -> None:
        if values:
            self.redis.hset(self.key("contact", contact_id, "attributes"), mapping=dict(values))  # type: ignore[arg-type]

    def attributes(self, contact_id: str) -> dict[str, str]:
        raw = cast(dict[bytes, bytes], self.redis.hgetall(self.key("contact", contact_id, "attributes")))
        return {k.decode(): v.decode() for k, v in raw.items()}

    def add_note(self, conversation_id: str, note_id: str, text: str, at: float,
                 author: str | None = None) -> None:
        """Keep a private note for agents, once per note id (`author`: the agent's name)."""
        entry = json.dumps({"id": note_id, "text": text, "at": at, "author": author})
        self.redis.hsetnx(self.key("conv", conversation_id, "notes"), note_id, entry)

    def notes(self, conversation_id: str) -> list[dict[str, object]]:
        raw = cast(dict[bytes, bytes], self.redis.hgetall(self.key("conv", conversation_id, "notes")))
        found = [json.loads(value) for value in raw.values()]
        return sorted(found, key=lambda note: float(note["at"]))

    def contact_thread(self, contact_id: str, scope_key: str, candidate: str | None) -> str | None:
        """The contact's thread for scope_key; the first candidate stored wins a race."""
        key = self.key("contact", contact_id, "threads")
        if candidate is not None:
            self.redis.hsetnx(key, scope_key, candidate)
        raw = cast(bytes | None, self.redis.hget(key, scope_key))
        return raw.decode() if raw else None

    def transcript(
        self, conversation_id: str, after: int = 0, limit: int = 100
    ) -> list[tuple[int, TranscriptMessage]]:
        """Transcript entries with sequence numbers greater than `after` (1-based)."""
        key = self.conv_keys(conversation_id)["transcript"]
        raw = cast(list[bytes], self.redis.lrange(key, after, after + limit - 1))
        return [
            (after + index + 1, TranscriptMessage.from_dict(json.loads(item)))
            for index, item in enumerate(raw)
        ]

    def due_wakeups(self, now: float, grace_s: float) -> list[str]:
        """Conversations whose wake-up time passed more than grace_s ago."""
        raw = cast(list[bytes], self.redis.zrangebyscore(self.key("wakeups"), "-inf", now - grace_s))
        return [item.decode() for item in raw]

    def stranded_mailboxes(self, now: float, grace_s: float) -> list[str]:
        """Conversations with customer messages waiting, ready to take them, for over grace_s."""
        raw = cast(list[bytes], self.redis.zrangebyscore(self.key("mailboxes"), "-inf", now - grace_s))
        return [item.decode() for item in raw]

    def counts_by_state(self) -> dict[str, int]:
        pipe = self.redis.pipeline(transaction=False)
        for state in State:
            pipe.scard(self.key("state", state.value))
        return {state.value: int(n) for state, n in zip(State, pipe.execute(), strict=True)}

    def handoff_queue(self) -> list[tuple[str, float]]:
        """Handed-off conversations, oldest first, with the time they entered the queue."""
        raw = cast(list[tuple[bytes, float]],
                   self.redis.zrange(self.key("handoffs"), 0, -1, withscores=True))
        return [(member.decode(), score) for member, score in raw]

    def ping(self) -> bool:
        return bool(self.redis.ping())

