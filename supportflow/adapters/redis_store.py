"""The conversation store on Redis: new conversations, customer messages, and what is read
outside a turn (transcripts, attributes, notes, the indexes ops and the watchdog use).

Changes inside a turn go through the unit of work (redis_uow.py), on the same keys.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
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
from supportflow.services.ports import (
    Accepted,
    Claimed,
    Due,
    Limit,
    LimitExceeded,
    NotReplicated,
)

from . import redis_scripts
from .redis_keys import ConversationKeys, dump
from .redis_limits import limit_args, limit_keys, refusal_of

ACCEPT_RESULTS = {1: Accepted.ACCEPTED, 0: Accepted.DUPLICATE, -1: Accepted.UNKNOWN,
                  -2: Accepted.CLOSED, -3: Accepted.NOT_WITH_THE_BOT}


def message_entries(message: CustomerMessage) -> tuple[str, str]:
    """A customer's message as the mailbox and the transcript keep it (ASCII JSON: text that
    is not valid Unicode is kept escaped, and the step that reads it fails, not the intake)."""
    entry = TranscriptMessage(id=message.id, author=Author.CUSTOMER, text=message.text,
                              at=message.received_at)
    return json.dumps(message.to_dict()), json.dumps(entry.to_dict())


def replicated(script: Any, keys: list[str], args: list[Any], replicas: int, timeout_ms: int,
               message_id: str) -> Any:
    """Run an accept script; with replicas to wait for, the script and WAIT in one round trip
    on one connection (WAIT covers the writes of its own connection): NotReplicated when too
    few confirmed in time."""
    if replicas <= 0:
        return script(keys=keys, args=args)
    pipe = script.registered_client.pipeline(transaction=False)
    script(keys=keys, args=args, client=pipe)
    pipe.wait(replicas, timeout_ms)
    result, confirmed = pipe.execute()
    # Nothing to confirm when nothing was kept (rate-limit counters are not acknowledged).
    kept_nothing = result == -1 or (isinstance(result, list)
                                    and result[0] in (b"unmapped", b"limited"))
    if not kept_nothing and int(confirmed) < replicas:
        raise NotReplicated(f"{confirmed} of {replicas} replicas confirmed message {message_id} "
                            f"within {timeout_ms} ms")
    return result


# A task the scheduler published and no worker took for this long is lost (a worker died
# holding it); sooner, once the broker's queue is empty (services/scheduler.py).
LOST_AFTER_S = 60.0


class RedisConversationStore:
    """Implements the Conversations, OpsIndex and Schedule ports."""

    def __init__(self, client: redis.Redis, *, prefix: str = "sf", replicas_to_wait: int = 0,
                 wait_timeout_ms: int = 1000) -> None:
        self.redis = client
        # Acknowledged means replicated: accepting a message waits for this many replicas.
        self.replicas_to_wait = replicas_to_wait
        self.wait_timeout_ms = wait_timeout_ms
        self.keys = ConversationKeys(prefix)
        self.prefix = prefix
        self._accept = client.register_script(redis_scripts.ACCEPT_MESSAGE)
        self._claim_due = client.register_script(redis_scripts.CLAIM_DUE)

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

    def accept_customer_message(self, conversation_id: str, message: CustomerMessage, *,
                                bot_only: bool = False, limits: Sequence[Limit] = ()) -> Accepted:
        """Count the request against its limits, then keep a customer's message once per id
        and wake the conversation: one round trip (with the replica wait on, the WAIT rides in
        it; NotReplicated when they did not confirm it in time). LimitExceeded past a limit."""
        mailbox, transcript = message_entries(message)
        waits = self.replicas_to_wait > 0
        keys = [self.keys.messages_in, self.keys.fence, *limit_keys(self.prefix, limits)]
        args: list[Any] = [self.prefix, conversation_id, message.id, mailbox, transcript,
                           repr(message.received_at), "1" if waits else "0",
                           "1" if bot_only else "0", *limit_args(limits)]
        result = replicated(self._accept, keys, args, self.replicas_to_wait,
                            self.wait_timeout_ms, message.id)
        if isinstance(result, list):  # {'limited', which, ms left}
            refusal = refusal_of(limits, int(result[1]), int(result[2]))
            assert refusal is not None
            raise LimitExceeded(refusal)
        return ACCEPT_RESULTS[int(result)]

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

    def schedule_lag(self, now: float) -> tuple[int, float]:
        """Wake-ups due now, and how late the oldest of them is (0 when none is)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcount(self.keys.wakeups, "-inf", now)
        pipe.zrange(self.keys.wakeups, 0, 0, withscores=True)
        due, oldest = pipe.execute()
        lag = max(0.0, now - float(oldest[0][1])) if due and oldest else 0.0
        return int(due), lag

    def overdue_count(self, now: float, grace_s: float) -> int:
        """Conversations a worker should have looked at more than grace_s ago."""
        return int(self.redis.zcount(self.keys.wakeups, "-inf", now - grace_s))

    # ----- Schedule -----

    def claim_due(self, now: float, grace_s: float, limit: int, bound: int,
                  queue: str, per_task: int = 1) -> Claimed:
        """Claim due conversations for tasks, unless `queue` holds `bound` tasks (one trip)."""
        raw = cast(list[Any], self._claim_due(
            keys=[self.keys.wakeups, self.keys.queued, queue, self.keys.dispatched],
            args=[repr(now), grace_s, limit, bound, self.prefix, LOST_AFTER_S, per_task]))
        due = [Due(kind.decode(), cid.decode(), int(poll_id), token.decode())
               for kind, cid, poll_id, token in raw[1:]]
        return Claimed(depth=int(raw[0]), due=due)

    def wake_at(self, conversation_id: str, at: float) -> None:
        """Have the scheduler wake the conversation at `at` (a retry after a failed step)."""
        self.redis.zadd(self.keys.wakeups, {conversation_id: at})

    def wake_of(self, conversation_id: str) -> float | None:
        """When the conversation is due next; None when nothing is planned."""
        score = self.redis.zscore(self.keys.wakeups, conversation_id)
        return None if score is None else float(score)

    def ping(self) -> bool:
        return bool(self.redis.ping())
