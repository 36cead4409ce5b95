"""Widget tokens, signed with the server's widget secret (itsdangerous, HMAC-SHA256) and checked
without Redis.

- A visitor token opens one conversation: its id, its flow and an expiry. A conversation id
  alone opens nothing; tokens are renewed while the conversation lives.
- A contact token brings an anonymous visitor back to their contact: the contact id the server
  made, the flow and an expiry (long: months). Each kind is signed under its own salt, so
  neither passes for the other.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis
from itsdangerous import BadData, URLSafeSerializer

TOKEN_PREFIX = "sfv_"
SALT = "supportflow.visitor-token.v1"
CONTACT_TOKEN_PREFIX = "sfk_"
CONTACT_SALT = "supportflow.contact-token.v1"
MAX_TOKEN_CHARS = 1024
# Verified payloads kept per process: a widget sends the same token on every request, and the
# signature check was a tenth of the web's CPU on the message route. Bounded; emptied when full.
VERIFIED_CACHE_SIZE = 4096


class WidgetTokenError(Exception):
    """A token that opens nothing; `reason` is `invalid` or `expired`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Visitor:
    """What a valid visitor token says: whose conversation it opens, under which flow, until when."""

    conversation_id: str
    flow: str
    expires_at: float


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: float
    expires_in: int


class SignedTokens:
    """Issues and checks tokens of one kind (prefix, salt); the secrets come from
    `secrets_source` once, lazily."""

    prefix = ""
    salt = ""

    def __init__(self, secrets_source: Callable[[], Sequence[str]], *, ttl_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._source = secrets_source
        self._serializer: URLSafeSerializer | None = None
        self._lock = threading.Lock()
        self._verified: dict[str, dict[str, Any]] = {}
        self.ttl_s = ttl_s
        self.clock = clock

    def _signer(self) -> URLSafeSerializer:
        with self._lock:
            if self._serializer is None:
                keys = list(self._source())
                # itsdangerous signs with the last key and verifies with all of them.
                self._serializer = URLSafeSerializer(
                    list(reversed(keys)), salt=self.salt,
                    signer_kwargs={"digest_method": hashlib.sha256})
            return self._serializer

    def _issue(self, payload: dict[str, str]) -> IssuedToken:
        expires_at = int(self.clock() + self.ttl_s)
        token = self.prefix + self._signer().dumps({**payload, "x": expires_at})
        return IssuedToken(token, float(expires_at), int(self.ttl_s))

    def _verify(self, token: str, fields: tuple[str, ...]) -> dict[str, Any]:
        """The payload, with every one of `fields` a string; WidgetTokenError otherwise."""
        payload = self._verified.get(token)
        if payload is None:
            payload = self._check_signature(token, fields)
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                self._verified.clear()
            self._verified[token] = payload
        if payload["x"] <= self.clock():
            raise WidgetTokenError("expired")
        return payload

    def _check_signature(self, token: str, fields: tuple[str, ...]) -> dict[str, Any]:
        if not token.startswith(self.prefix) or len(token) > MAX_TOKEN_CHARS:
            raise WidgetTokenError("invalid")
        try:
            payload: Any = self._signer().loads(token[len(self.prefix):])
        except BadData as error:
            raise WidgetTokenError("invalid") from error
        if not (isinstance(payload, dict) and isinstance(payload.get("x"), int)
                and all(isinstance(payload.get(name), str) for name in fields)):
            raise WidgetTokenError("invalid")
        return payload


class VisitorTokens(SignedTokens):
    """Visitor tokens: one conversation each."""

    prefix = TOKEN_PREFIX
    salt = SALT

    def issue(self, conversation_id: str, flow: str) -> IssuedToken:
        """A new token for the conversation, valid for ttl_s from now."""
        return self._issue({"c": conversation_id, "f": flow})

    def verify(self, token: str) -> Visitor:
        """The visitor a token stands for; WidgetTokenError when forged, mangled or expired."""
        payload = self._verify(token, ("c", "f"))
        return Visitor(payload["c"], payload["f"], float(payload["x"]))


class ContactTokens(SignedTokens):
    """Contact tokens: an anonymous visitor's own contact, under one flow."""

    prefix = CONTACT_TOKEN_PREFIX
    salt = CONTACT_SALT

    def issue(self, contact_id: str, flow: str) -> IssuedToken:
        """A new token for the contact, valid for ttl_s from now."""
        return self._issue({"k": contact_id, "f": flow})

    def verify(self, token: str, flow: str) -> str:
        """The contact id the token holds for `flow`; WidgetTokenError when forged, mangled,
        expired or made for another flow."""
        payload = self._verify(token, ("k", "f"))
        if payload["f"] != flow:
            raise WidgetTokenError("invalid")
        return str(payload["k"])

    def contact_of(self, token: str, flow: str) -> str | None:
        """The contact a valid token of `flow` names; None for any other token."""
        try:
            return self.verify(token, flow)
        except WidgetTokenError:
            return None


def configured_secrets(value: str | None) -> list[str]:
    """The secrets of SUPPORTFLOW_WIDGET_SECRET, newest first (empty when unset)."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def redis_secret(client: redis.Redis, *, prefix: str) -> Callable[[], list[str]]:
    """A source that makes one random secret in Redis the first time, so every web process
    shares it; used when no widget secret is configured."""

    def read() -> list[str]:
        key = f"{prefix}:widget:secret"
        client.set(key, secrets.token_urlsafe(48), nx=True)
        value = cast(bytes, client.get(key))
        return [value.decode()]

    return read
