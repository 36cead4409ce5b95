"""Inboxes in Redis, sealed with the vault's key; helpdesk conversation ids; seen webhook ids."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

import redis
from cryptography.fernet import InvalidToken

from supportflow.domain.inbox import INBOX_NAME, Inbox
from supportflow.domain.model import CustomerMessage
from supportflow.services.helpdesk import Mapped

from . import redis_scripts
from .redis_keys import ConversationKeys
from .redis_store import message_entries, replicated
from .vault import Vault, VaultError

SEEN_TTL_S = 3600  # well past the 5-minute signature tolerance
# How long a web process keeps an inbox (its secrets decrypted) before reading it again.
CACHE_TTL_S = 5.0
LOCK_TTL_MS = 10_000
# Longest wait for another request's lock: well inside a helpdesk's own timeout (Chatwoot's is
# 5 s), so the caller hears "busy, try again" rather than nothing.
LOCK_WAIT_S = 2.0


class InboxError(Exception):
    """An inbox request that cannot be done; the message says why (never with a secret)."""


class InboxStore:
    """Implements the InboxDirectory port; each inbox is one Fernet-sealed record."""

    def __init__(self, client: redis.Redis, *, prefix: str, vault: Vault) -> None:
        self.redis = client
        self.hash_key = f"{prefix}:inboxes"
        self.vault = vault
        self._cache: dict[str, tuple[float, Inbox | None]] = {}

    def cached(self, name: str, *, fresh: bool = False) -> Inbox | None:
        """The inbox as read (and decrypted) at most CACHE_TTL_S ago by this process; `fresh`
        reads it now (a signature that fails with the cached secrets tries a fresh read)."""
        now = time.monotonic()
        hit = self._cache.get(name)
        if hit is not None and not fresh and now - hit[0] < CACHE_TTL_S:
            return hit[1]
        inbox = self.get(name)
        self._cache[name] = (now, inbox)
        return inbox

    def create(self, inbox: Inbox) -> None:
        """Store a new inbox; InboxError when the name is bad or taken."""
        if not INBOX_NAME.fullmatch(inbox.name):
            raise InboxError("inbox names use lowercase letters, digits, - and _ (max 64)")
        if not self.redis.hsetnx(self.hash_key, inbox.name, self._seal(inbox)):
            raise InboxError(f"an inbox named {inbox.name!r} exists")

    def save(self, inbox: Inbox) -> None:
        self.redis.hset(self.hash_key, inbox.name, self._seal(inbox))

    def get(self, name: str) -> Inbox | None:
        """The inbox, decrypted; None when there is none."""
        raw = cast(bytes | None, self.redis.hget(self.hash_key, name))
        if raw is None:
            return None
        try:
            return Inbox.from_dict(json.loads(self.vault.fernet.decrypt(raw)))
        except InvalidToken as error:
            raise VaultError(f"inbox {name!r} was sealed with another vault key") from error

    def names(self) -> list[str]:
        return sorted(k.decode() for k in cast(list[bytes], self.redis.hkeys(self.hash_key)))

    def listing(self) -> list[Inbox]:
        return [inbox for name in self.names() if (inbox := self.get(name)) is not None]

    def delete(self, name: str) -> bool:
        return bool(self.redis.hdel(self.hash_key, name))

    def disable(self, name: str, reason: str) -> None:
        """Stop deliveries to the inbox's endpoint (its callback answered 410)."""
        inbox = self.get(name)
        if inbox is not None and inbox.enabled:
            inbox.enabled, inbox.disabled_reason = False, reason
            self.save(inbox)

    def _seal(self, inbox: Inbox) -> bytes:
        return self.vault.fernet.encrypt(json.dumps(inbox.to_dict()).encode())


class RedisConversationMap:
    """Implements the ConversationMap port with plain keys, SET NX locks and expiring markers."""

    def __init__(self, client: redis.Redis, *, prefix: str, replicas_to_wait: int = 0,
                 wait_timeout_ms: int = 1000) -> None:
        self.redis = client
        self.prefix = prefix
        self.replicas_to_wait = replicas_to_wait
        self.wait_timeout_ms = wait_timeout_ms
        self._accept = client.register_script(redis_scripts.ACCEPT_HELPDESK_MESSAGE)

    def accept_mapped(self, inbox: str, external_id: str, delivery_id: str | None,
                      message: CustomerMessage, *, bot_only: bool = False) -> Mapped:
        """The message into the conversation already mapped, once per delivery: one trip."""
        mailbox, transcript = message_entries(message)
        keys = ConversationKeys(self.prefix)
        reply = cast(list[bytes], replicated(
            self._accept,
            [self._key(inbox, "seen", delivery_id or "-"), self._key(inbox, "conv", external_id),
             keys.messages_in, keys.fence],
            [self.prefix, SEEN_TTL_S, message.id, mailbox, transcript, repr(message.received_at),
             "1" if delivery_id else "0", "1" if self.replicas_to_wait > 0 else "0",
             "1" if bot_only else "0"],
            self.replicas_to_wait, self.wait_timeout_ms, message.id))
        return Mapped(reply[0].decode(), reply[1].decode() if len(reply) > 1 else None)

    def _key(self, inbox: str, *parts: str) -> str:
        return ":".join((self.prefix, "inbox", inbox, *parts))

    def get(self, inbox: str, external_id: str) -> str | None:
        raw = cast(bytes | None, self.redis.get(self._key(inbox, "conv", external_id)))
        return raw.decode() if raw is not None else None

    def bind(self, inbox: str, external_id: str, conversation_id: str) -> None:
        self.redis.set(self._key(inbox, "conv", external_id), conversation_id)

    @contextmanager
    def locked(self, inbox: str, external_id: str) -> Iterator[None]:
        """Wait (up to LOCK_WAIT_S) for the lock on one helpdesk conversation."""
        key, token = self._key(inbox, "lock", external_id), secrets.token_hex(8)
        deadline = time.monotonic() + LOCK_WAIT_S
        while not self.redis.set(key, token, nx=True, px=LOCK_TTL_MS):
            if time.monotonic() > deadline:
                raise TimeoutError(f"conversation {external_id!r} of inbox {inbox!r} stays locked")
            time.sleep(0.02)
        try:
            yield
        finally:
            if self.redis.get(key) == token.encode():
                self.redis.delete(key)

    def first_time(self, inbox: str, message_key: str) -> bool:
        return bool(self.redis.set(self._key(inbox, "seen", message_key), 1, nx=True, ex=SEEN_TTL_S))

    def forget(self, inbox: str, message_key: str) -> None:
        self.redis.delete(self._key(inbox, "seen", message_key))
