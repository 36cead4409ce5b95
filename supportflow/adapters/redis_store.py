"""The conversation store on Redis: new conversations, customer messages, and what is read
outside a turn (transcripts, attributes, notes, the indexes ops and the watchdog use).

Changes inside a turn go through the unit of work (redis_uow.py), on the same keys.
"""

from __future__ import annotations

import json
from typing import Any, cast

import redis

from supportflow.domain.model import (
    Author,
    Conversation,
    CustomerMessage,
    State,
    TranscriptMessage,
    is_conversation_id,
)
from supportflow.services.ports import NotReplicated, Overdue

from . import redis_scripts
from .redis_keys import ConversationKeys, dump


class RedisConversationStore:
    """Implements the Conversations, OpsIndex and WakeupIndex ports."""

    def __init__(self, client: redis.Redis, *, prefix: str = "sf", replicas_to_wait: int = 0,
                 wait_timeout_ms: int = 1000) -> None:
        self.redis = client
        # Acknowledged means replicated: accepting a message waits for this many replicas.
        self.replicas_to_wait = replicas_to_wait
        self.wait_timeout_ms = wait_timeout_ms
        self.keys = ConversationKeys(prefix)
        self.prefix = prefix
        self._accept = client.register_script(redis_scripts.ACCEPT_MESSAGE)
        self._wake_overdue = client.register_script(redis_scripts.WAKE_OVERDUE)

    def key(self, *parts: str) -> str:
        return self.keys.key(*parts)

    # ----- Conversations -----

    def create(self, conversation: Conversation, welcome: TranscriptMessage) -> None:
        """Store a new conversation with its welcome message and index it."""
        keys = self.keys.of(conversation.id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(keys.record, dump(conversation.to_dict()))
        pipe.sadd(keys.ids, f"transcript:{welcome.id}")
        pipe.rpush(keys.transcript, dump(welcome.to_dict()))
        pipe.zadd(self.keys.conversations, {conversation.id: conversation.created_at})
        pipe.sadd(self.keys.state(conversation.state.value), conversation.id)
        pipe.zadd(self.keys.activity, {conversation.id: conversation.created_at})
        pipe.sadd(self.keys.contact_conversations(conversation.contact_id), conversation.id)
        pipe.execute()

    def get(self, conversation_id: str) -> Conversation | None:
        if not is_conversation_id(conversation_id):
            return None  # e.g. "conv-1:transcript" must not read another key
        raw = self.redis.get(self.keys.of(conversation_id).record)
        return Conversation.from_dict(json.loads(raw)) if raw else None

    def accept_customer_message(self, conversation_id: str, message: CustomerMessage) -> bool:
        """Append to mailbox and transcript once per message id; False for a duplicate.

        With replicas to wait for, NotReplicated when they did not confirm it in time.
        """
        keys = self.keys.of(conversation_id)
        entry = TranscriptMessage(
            id=message.id, author=Author.CUSTOMER, text=message.text, at=message.received_at
        )
        waits = self.replicas_to_wait > 0
        script_keys = [keys.record, keys.ids, keys.mailbox, keys.transcript, self.keys.mailboxes,
                       self.keys.key("replication", "fence"), self.keys.activity]
        args: list[str | float] = [
            message.id, json.dumps(message.to_dict()), json.dumps(entry.to_dict()),
            message.received_at, conversation_id, "1" if waits else "0"]
        if waits:
            result = self._accept_replicated(script_keys, args, message.id)
        else:
            result = self._accept(keys=script_keys, args=args)
        if result == -1:
            raise KeyError(conversation_id)
        return bool(result == 1)

    def _accept_replicated(self, keys: list[str], args: list[str | float], message_id: str) -> Any:
        """The accept script and WAIT in one round trip on one connection (WAIT covers the
        writes of its own connection)."""
        pipe = self.redis.pipeline(transaction=False)
        self._accept(keys=keys, args=args, client=pipe)
        pipe.wait(self.replicas_to_wait, self.wait_timeout_ms)
        result, confirmed = pipe.execute()
        if result != -1 and int(confirmed) < self.replicas_to_wait:
            raise NotReplicated(f"{confirmed} of {self.replicas_to_wait} replicas confirmed message "
                                f"{message_id} within {self.wait_timeout_ms} ms")
        return result

    def mailbox(self, conversation_id: str) -> list[CustomerMessage]:
        raw = cast(list[bytes], self.redis.lrange(self.keys.of(conversation_id).mailbox, 0, -1))
        return [CustomerMessage.from_dict(json.loads(item)) for item in raw]

    def set_attributes(self, contact_id: str, values: dict[str, str]) -> None:
        """Store several contact attributes in one write."""
        if values:
            self.redis.hset(self.keys.attributes(contact_id), mapping=dict(values))  # type: ignore[arg-type]

    def attributes(self, contact_id: str) -> dict[str, str]:
        raw = cast(dict[bytes, bytes], self.redis.hgetall(self.keys.attributes(contact_id)))
        return {k.decode(): v.decode() for k, v in raw.items()}

    def add_note(self, conversation_id: str, note_id: str, text: str, at: float,
                 author: str | None = None) -> None:
        """Keep a private note for agents, once per note id (`author`: the agent's name).

        A note changes nothing of the conversation's record, so an agent's note is written
        here, outside the unit of work; the assistant's notes ride on its step's commit.
        """
        entry = dump({"id": note_id, "text": text, "at": at, "author": author})
        self.redis.hsetnx(self.keys.of(conversation_id).notes, note_id, entry)

    def notes(self, conversation_id: str) -> list[dict[str, object]]:
        raw = cast(dict[bytes, bytes], self.redis.hgetall(self.keys.of(conversation_id).notes))
        found = [json.loads(value) for value in raw.values()]
        return sorted(found, key=lambda note: float(note["at"]))

    def transcript(
        self, conversation_id: str, after: int = 0, limit: int = 100
    ) -> list[tuple[int, TranscriptMessage]]:
        """Transcript entries with sequence numbers greater than `after` (1-based)."""
        key = self.keys.of(conversation_id).transcript
        raw = cast(list[bytes], self.redis.lrange(key, after, after + limit - 1))
        return [
            (after + index + 1, TranscriptMessage.from_dict(json.loads(item)))
            for index, item in enumerate(raw)
        ]

    def lease_held(self, conversation_id: str) -> bool:
        return bool(self.redis.exists(self.keys.of(conversation_id).lease))

    # ----- OpsIndex -----

    def counts_by_state(self) -> dict[str, int]:
        pipe = self.redis.pipeline(transaction=False)
        for state in State:
            pipe.scard(self.keys.state(state.value))
        return {state.value: int(n) for state, n in zip(State, pipe.execute(), strict=True)}

    def handoff_queue(self) -> list[tuple[str, float]]:
        """Handed-off conversations, oldest first, with the time they entered the queue."""
        raw = cast(list[tuple[bytes, float]],
                   self.redis.zrange(self.keys.handoffs, 0, -1, withscores=True))
        return [(member.decode(), score) for member, score in raw]

    def overdue_count(self, now: float, grace_s: float) -> int:
        """Conversations a worker should have looked at more than grace_s ago."""
        return int(self.redis.zcount(self.keys.wakeups, "-inf", now - grace_s))

    # ----- WakeupIndex -----

    def wake_overdue(self, now: float, grace_s: float, limit: int) -> list[Overdue]:
        """Overdue conversations nobody holds, each at most once per grace period (one trip)."""
        raw = cast(list[list[bytes]], self._wake_overdue(
            keys=[self.keys.wakeups, self.keys.mailboxes],
            args=[repr(now), grace_s, limit, self.prefix]))
        return [Overdue(cid.decode(), state.decode(), int(poll_id)) for cid, state, poll_id in raw]

    def ping(self) -> bool:
        return bool(self.redis.ping())
