"""Visitor tokens: what a widget holds to read and write its one conversation.

A token is the conversation id, the conversation's flow and an expiry, signed with the server's
widget secret (itsdangerous, HMAC-SHA256). It is checked without Redis; a
conversation id alone opens nothing. Tokens are renewed while the conversation lives.
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


class VisitorTokenError(Exception):
    """A token that opens nothing; `reason` is `invalid` or `expired`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Visitor:
    """What a valid token says: whose conversation it opens, under which flow, until when."""

    conversation_id: str
    flow: str
    expires_at: float


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: float
    expires_in: int


class VisitorTokens:
    """Issues and checks visitor tokens; the secrets come from `secrets_source` once, lazily."""

    def __init__(self, secrets_source: Callable[[], Sequence[str]], *, ttl_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._source = secrets_source
        self._serializer: URLSafeSerializer | None = None
        self._lock = threading.Lock()
        self.ttl_s = ttl_s
        self.clock = clock

    def _signer(self) -> URLSafeSerializer:
        with self._lock:
            if self._serializer is None:
                keys = list(self._source())
                # itsdangerous signs with the last key and verifies with all of them.
                self._serializer = URLSafeSerializer(
                    list(reversed(keys)), salt=SALT,
                    signer_kwargs={"digest_method": hashlib.sha256})
            return self._serializer

    def issue(self, conversation_id: str, flow: str) -> IssuedToken:
        """A new token for the conversation, valid for ttl_s from now."""
        expires_at = int(self.clock() + self.ttl_s)
        payload = {"c": conversation_id, "f": flow, "x": expires_at}
        token = TOKEN_PREFIX + self._signer().dumps(payload)
        return IssuedToken(token, float(expires_at), int(self.ttl_s))

    def verify(self, token: str) -> Visitor:
        """The visitor a token stands for; VisitorTokenError when forged, mangled or expired."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 1024:
            raise VisitorTokenError("invalid")
        try:
            payload: Any = self._signer().loads(token[len(TOKEN_PREFIX):])
        except BadData as error:
            raise VisitorTokenError("invalid") from error
        if not (isinstance(payload, dict) and isinstance(payload.get("c"), str)
                and isinstance(payload.get("f"), str) and isinstance(payload.get("x"), int)):
            raise VisitorTokenError("invalid")
        if payload["x"] <= self.clock():
            raise VisitorTokenError("expired")
        return Visitor(payload["c"], payload["f"], float(payload["x"]))


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
