"""The unit of work on Redis: take and commit a conversation in one round trip each.

A lease is short (SUPPORTFLOW_LEASE_TTL_S); while a step runs, the process renews every lease
it holds in one round trip every third of the TTL (LeaseKeeper), so a worker that dies costs
its conversations seconds, and a slow step keeps its hold.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from supportflow.domain.model import Conversation, CustomerMessage
from supportflow.observability.redis_metrics import RedisMetrics
from supportflow.services.unit_of_work import (
    Commit,
    Committed,
    MetricEntry,
    Purpose,
    StaleWrite,
    Taken,
    TakeRequest,
    Work,
)

from . import redis_scripts
from .redis_keys import ConversationKeys, dump

log = logging.getLogger(__name__)
FAULTS_KEPT_S = 86_400


class LeaseKeeper:
    """Renews every lease this process holds, in one round trip, every third of the TTL."""

    def __init__(self, client: redis.Redis, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._renew = client.register_script(redis_scripts.RENEW)
        self._held: dict[str, str] = {}
        self._lock = threading.Lock()
        self._pid = 0
        self._wake = threading.Event()
        self.rounds = 0  # renewal round trips made (for tests and debugging)

    def hold(self, key: str, token: str) -> None:
        with self._lock:
            self._held[key] = token
            if self._pid != os.getpid():  # first use, or first use after a fork
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="lease-keeper", daemon=True).start()

    def drop(self, key: str) -> None:
        with self._lock:
            self._held.pop(key, None)

    def renew_now(self) -> int:
        """Renew every held lease; how many are still held."""
        with self._lock:
            held = dict(self._held)
        if not held:
            return 0
        self.rounds += 1
        return int(self._renew(keys=list(held), args=[int(self.ttl_s * 1000), *held.values()]))

    def _run(self) -> None:
        while not self._wake.wait(self.ttl_s / 3):
            try:
                self.renew_now()
            except redis.RedisError as error:  # the next round tries again; commits will tell
                log.warning("leases not renewed: %s", error)


@dataclass(frozen=True)
class _TakeCall:
    keys: list[str]
    args: list[Any]
    token: str


def run_script_many(client: redis.Redis, script: Script,
                    calls: Sequence[tuple[list[str], list[Any]]], *,
                    raise_errors: bool = True) -> list[Any]:
    """Run a script once per (keys, args) in one pipelined round trip; its replies in order
    (with `raise_errors` off, a call's error is its reply).

    Not `script(client=pipeline)`: redis-py then asks `SCRIPT EXISTS` first, a second round
    trip on every batch. A script the server does not know (restarted, flushed) is loaded and
    those calls run again.
    """
    replies = _evalsha_all(client, script.sha, calls)
    missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if missing:
        script.sha = client.script_load(script.script)
        again = _evalsha_all(client, script.sha, [calls[i] for i in missing])
        for index, reply in zip(missing, again, strict=True):
            replies[index] = reply
    for reply in replies:
        if raise_errors and isinstance(reply, Exception):
            raise reply
    return replies


def _evalsha_all(client: redis.Redis, sha: str,
                 calls: Sequence[tuple[list[str], list[Any]]]) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    for keys, args in calls:
        pipe.evalsha(sha, len(keys), *keys, *args)
    return list(pipe.execute(raise_on_error=False))


class RedisUnitOfWork:
    """Implements the UnitOfWork port on the keys of RedisConversationStore."""

    def __init__(self, client: redis.Redis, *, prefix: str, lease_ttl_s: float,
                 metrics: RedisMetrics) -> None:
        self.redis = client
        self.keys = ConversationKeys(prefix)
        self.lease_ttl_s = lease_ttl_s
        self.metrics = metrics
        self.leases = LeaseKeeper(client, lease_ttl_s)
        self._take = client.register_script(redis_scripts.TAKE)
        self._commit = client.register_script(redis_scripts.COMMIT)
        self._release = client.register_script(redis_scripts.RELEASE)

    def take(self, conversation_id: str, purpose: Purpose = Purpose.DRAIN,
             poll_id: int | None = None, dispatch: str = "") -> tuple[Taken, Work | None]:
        """Lease, record and waiting messages in one round trip (nothing when there is no work)."""
        call = self._take_call(TakeRequest(conversation_id, purpose, poll_id, dispatch))
        return self._taken(call, self._take(keys=call.keys, args=call.args))

    def take_many(self, requests: Sequence[TakeRequest]) -> list[tuple[Taken, Work | None]]:
        """Each request's take, all in one round trip (a pipeline of the same script)."""
        calls = [self._take_call(request) for request in requests]
        if len(calls) == 1:
            return [self._taken(calls[0], self._take(keys=calls[0].keys, args=calls[0].args))]
        replies = run_script_many(self.redis, self._take,
                                  [(call.keys, call.args) for call in calls])
        return [self._taken(call, reply) for call, reply in zip(calls, replies, strict=True)]

    def _take_call(self, request: TakeRequest) -> _TakeCall:
        keys = self.keys.of(request.conversation_id)
        token = secrets.token_hex(8)
        poll_id = -1 if request.poll_id is None else request.poll_id
        return _TakeCall(
            keys=[keys.lease, keys.record, keys.mailbox, self.keys.queued, self.keys.wakeups,
                  keys.ids],
            args=[token, int(self.lease_ttl_s * 1000), request.purpose.value, poll_id,
                  self.keys.prefix, request.conversation_id, request.dispatch],
            token=token)

    def _taken(self, call: _TakeCall, raw: Any) -> tuple[Taken, Work | None]:
        reply = cast(list[Any], raw)
        outcome = Taken(reply[0].decode())
        if outcome is not Taken.TAKEN:
            return outcome, None
        self.leases.hold(call.keys[0], call.token)
        conversation = Conversation.from_dict(json.loads(reply[1]))
        mailbox = [CustomerMessage.from_dict(json.loads(entry)) for entry in reply[4:]]
        return outcome, Work(conversation, call.token, mailbox, woken=reply[2] == b"1",
                             recovering=bool(reply[3]))

    def commit(self, work: Work, *, release: bool, keep_if_waiting: bool = False,
               wake_at: float | None = None, now: float) -> Committed:
        """Everything the step wrote, version- and lease-checked, in one round trip."""
        keys, args = self._commit_call(work, release=release, keep_if_waiting=keep_if_waiting,
                                       wake_at=wake_at, now=now)
        try:
            reply = self._commit(keys=keys, args=args)
        except BaseException:
            work.conversation.version -= 1
            raise
        outcome = self._committed(work, reply, release=release, lease_key=keys[1])
        if isinstance(outcome, StaleWrite):
            raise outcome
        return outcome

    def commit_many(self, commits: Sequence[Commit]) -> list[Committed | Exception]:
        """Releasing commits of several conversations, all in one round trip (a pipeline)."""
        outcomes: dict[int, Committed | Exception] = {}
        calls: dict[int, tuple[list[str], list[Any]]] = {}
        for index, c in enumerate(commits):
            try:
                calls[index] = self._commit_call(c.work, release=True, wake_at=c.wake_at,
                                                 keep_if_waiting=c.keep_if_waiting, now=c.now)
            except Exception as error:  # this record cannot be written; the others can
                outcomes[index] = error
        try:
            replies = run_script_many(self.redis, self._commit, list(calls.values()),
                                      raise_errors=False)
        except BaseException:
            for index in calls:
                commits[index].work.conversation.version -= 1
            raise
        for (index, (keys, _)), reply in zip(calls.items(), replies, strict=True):
            work = commits[index].work
            if isinstance(reply, Exception):
                work.conversation.version -= 1
                outcomes[index] = reply
            else:
                outcomes[index] = self._committed(work, reply, release=True, lease_key=keys[1])
        return [outcomes[index] for index in range(len(commits))]

    def _commit_call(self, work: Work, *, release: bool, keep_if_waiting: bool,
                     wake_at: float | None, now: float) -> tuple[list[str], list[Any]]:
        """The commit script's keys and arguments; the record's version moves on by one."""
        conversation = work.conversation
        keys = self.keys.of(conversation.id)
        metric_keys, metric_args = self._metric_ops(work.metrics.entries, first_key=11)
        expected = conversation.version
        conversation.version = expected + 1
        conversation.wake_at = wake_at
        try:
            record = dump(conversation.to_dict())
        except BaseException:
            conversation.version = expected
            raise
        args: list[Any] = [
            work.lease, expected, record, work.consumed, conversation.id,
            "" if wake_at is None else repr(wake_at), repr(now),
            int(self.lease_ttl_s * 1000), self.keys.prefix, conversation.state.value,
            conversation.handoff_reason or "", int(release), int(keep_if_waiting),
            len(work.transcript), len(work.attributes), len(work.notes),
            len(metric_args) // 3, conversation.run_id or ""]
        for message in work.transcript:
            args += [message.id, dump(message.to_dict())]
        for name, value in work.attributes.items():
            args += [name, value.encode()]
        for note in work.notes:
            args += [note.id, dump({"id": note.id, "text": note.text, "at": note.at})]
        return ([keys.record, keys.lease, keys.mailbox, keys.transcript, keys.ids,
                 self.keys.wakeups, self.keys.handoffs,
                 self.keys.attributes(conversation.contact_id), keys.notes,
                 self.keys.handoffs_log, *metric_keys], [*args, *metric_args])

    def _committed(self, work: Work, raw: Any, *, release: bool,
                   lease_key: str) -> Committed | StaleWrite:
        """What the commit script answered, applied to the holder's work."""
        reply = cast(list[Any], raw)
        conversation = work.conversation
        if reply[0] != 1:
            conversation.version -= 1
            what = "lease lost" if reply[0] == -1 else "version moved"
            return StaleWrite(f"conversation {conversation.id}: {what}")
        work.metrics.take()
        handed_back = [CustomerMessage.from_dict(json.loads(entry)) for entry in reply[3:]]
        if release and not handed_back:
            work.held = False
            self.leases.drop(lease_key)
        work.written(handed_back)
        return Committed(waiting=bool(reply[1]), handed_back=handed_back, woken=bool(reply[2]))

    def release(self, work: Work) -> None:
        """Let go of the lease (if still ours), writing the buffered metrics."""
        keys = self.keys.of(work.conversation.id)
        metric_keys, metric_args = self._metric_ops(work.metrics.take(), first_key=2)
        work.held = False
        self.leases.drop(keys.lease)
        self._release(keys=[keys.lease, *metric_keys],
                      args=[work.lease, len(metric_args) // 3, *metric_args])

    def count_fault(self, conversation_id: str, what: str) -> int:
        """Count a failed attempt; kept a day."""
        key = self.keys.of(conversation_id).faults
        pipe = self.redis.pipeline(transaction=True)
        pipe.hincrby(key, what, 1)
        pipe.expire(key, FAULTS_KEPT_S)
        count, _ = pipe.execute()
        return int(count)

    def contact_thread(self, contact_id: str, scope_key: str, candidate: str | None) -> str | None:
        """The contact's thread for scope_key; the first candidate stored wins a race."""
        key = self.keys.contact_threads(contact_id)
        if candidate is not None:
            self.redis.hsetnx(key, scope_key, candidate)
        raw = cast(bytes | None, self.redis.hget(key, scope_key))
        return raw.decode() if raw else None

    def _metric_ops(self, entries: list[MetricEntry], first_key: int) -> tuple[list[str], list[Any]]:
        """The buffered metrics as (key index, field, amount) triples on their keys."""
        keys: dict[str, int] = {}
        args: list[Any] = []
        for entry in entries:
            if entry.kind == "inc":
                ops = self.metrics.increments(entry.name, entry.value, entry.labels)
            else:
                ops = self.metrics.observations(entry.name, entry.value, entry.labels)
            for key, field, amount in ops:
                index = keys.setdefault(key, first_key + len(keys))
                args += [index, field, repr(amount)]
        return list(keys), args
