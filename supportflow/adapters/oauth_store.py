"""OAuth2 clients, authorization codes and tokens on Redis; secrets only as SHA-256 hashes.

Tokens of one authorization form a grant (a family): a refresh rotates within it, and revoking
the grant (a revoked refresh token, a refresh token used again after rotation, an authorization
code used twice) deletes every token of the family at once.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import redis

from supportflow.domain.accounts import Scope

from .redis_accounts import digest

CLIENT_NAME = re.compile(r"^[A-Za-z0-9 ._\-]{1,64}$")
USED_CODE_MEMORY_S = 3600


class OAuthClientError(ValueError):
    """A client registration that cannot be done; the message says why."""


@dataclass(frozen=True)
class OAuthClient:
    client_id: str
    name: str
    secret_hash: str
    redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...]
    created_at: float


@dataclass(frozen=True)
class CodeGrant:
    """What an authorization code stands for (the code itself is never stored)."""

    client_id: str
    account: str
    redirect_uri: str
    scope: str
    expires_at: float
    code_challenge: str | None = None
    code_challenge_method: str | None = None


@dataclass
class TokenRecord:
    """An access or refresh token's record (under the hash of the token)."""

    kind: str  # "access" or "refresh"
    grant_id: str
    client_id: str
    account: str
    scope: str
    issued_at: float
    expires_at: float
    rotated: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def check_redirect_uri(uri: str) -> None:
    """OAuthClientError unless the URI is absolute https (or http on this machine), no fragment."""
    match = re.match(r"^(https?)://([^/?#]+)([^#]*)$", uri)
    if not match:
        raise OAuthClientError(f"{uri!r}: a redirect URI is an absolute http(s) URL without #")
    scheme, host = match.group(1), match.group(2).split(":")[0]
    if scheme == "http" and host not in {"127.0.0.1", "localhost", "[::1]"}:
        raise OAuthClientError(f"{uri!r}: use https (http only for 127.0.0.1 or localhost)")


class OAuthStore:
    """Clients, codes and tokens under `<prefix>:oauth:`."""

    def __init__(self, client: redis.Redis, *, prefix: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.redis = client
        self.base = f"{prefix}:oauth"
        self.clock = clock

    # ----- clients -----

    def create_client(self, name: str, redirect_uris: Sequence[str],
                      scopes: Sequence[str]) -> tuple[OAuthClient, str]:
        """Register a client; returns it and its secret (shown once, stored hashed)."""
        if not CLIENT_NAME.fullmatch(name):
            raise OAuthClientError("client names use 1-64 letters, digits, spaces and ._-")
        if not redirect_uris:
            raise OAuthClientError("name at least one --redirect-uri")
        for uri in redirect_uris:
            check_redirect_uri(uri)
        try:
            checked = tuple(dict.fromkeys(Scope(s).value for s in scopes))
        except ValueError as error:
            known = " ".join(s.value for s in Scope)
            raise OAuthClientError(f"unknown scope ({error}); scopes: {known}") from error
        if not checked:
            raise OAuthClientError("name at least one --scope")
        secret = "sfcs_" + secrets.token_urlsafe(32)
        client = OAuthClient(client_id="sfc_" + secrets.token_hex(12), name=name,
                             secret_hash=digest(secret), redirect_uris=tuple(redirect_uris),
                             scopes=checked, created_at=self.clock())
        self.redis.hset(f"{self.base}:clients", client.client_id, json.dumps(asdict(client)))
        return client, secret

    def client(self, client_id: str) -> OAuthClient | None:
        raw = cast(bytes | None, self.redis.hget(f"{self.base}:clients", client_id))
        if raw is None:
            return None
        data = json.loads(raw)
        data["redirect_uris"], data["scopes"] = tuple(data["redirect_uris"]), tuple(data["scopes"])
        return OAuthClient(**data)

    def clients(self) -> list[OAuthClient]:
        raw = cast(dict[bytes, bytes], self.redis.hgetall(f"{self.base}:clients"))
        return sorted((c for k in raw if (c := self.client(k.decode()))), key=lambda c: c.name)

    def delete_client(self, client_id: str) -> bool:
        return bool(self.redis.hdel(f"{self.base}:clients", client_id))

    # ----- authorization codes -----

    def save_code(self, code: str, grant: CodeGrant) -> None:
        ttl_ms = max(1, int((grant.expires_at - self.clock()) * 1000)) + 60_000
        self.redis.set(f"{self.base}:code:{digest(code)}", json.dumps(asdict(grant)), px=ttl_ms)

    def take_code(self, code: str) -> tuple[CodeGrant | None, str | None]:
        """Use a code up (atomically): its grant, or the token family of an earlier use."""
        key = digest(code)
        raw = cast(bytes | None, self.redis.getdel(f"{self.base}:code:{key}"))
        if raw is None:
            used = cast(bytes | None, self.redis.get(f"{self.base}:code-used:{key}"))
            return None, used.decode() if used else None
        return CodeGrant(**json.loads(raw)), None

    def remember_code_use(self, code: str, grant_id: str) -> None:
        """Keep which token family a code made, to revoke it if the code comes again."""
        self.redis.set(f"{self.base}:code-used:{digest(code)}", grant_id, ex=USED_CODE_MEMORY_S)

    # ----- tokens -----

    def save_tokens(self, tokens: Sequence[tuple[str, TokenRecord]]) -> None:
        """Keep tokens' records under their hashes, in their family, until they expire."""
        pipe = self.redis.pipeline(transaction=True)
        longest: dict[str, int] = {}
        for token, record in tokens:
            ttl_ms = max(1, int((record.expires_at - self.clock()) * 1000)) + 60_000
            key = f"{self.base}:{record.kind}:{digest(token)}"
            pipe.set(key, json.dumps(asdict(record)), px=ttl_ms)
            pipe.sadd(f"{self.base}:grant:{record.grant_id}", key)
            longest[record.grant_id] = max(longest.get(record.grant_id, 0), ttl_ms)
        # The newest tokens of a family always outlive the older ones (a refresh makes a
        # new refresh token), so the family lives as long as its newest pair.
        for grant_id, ttl_ms in longest.items():
            pipe.pexpire(f"{self.base}:grant:{grant_id}", ttl_ms)
        pipe.execute()

    def token(self, kind: str, token: str) -> TokenRecord | None:
        raw = cast(bytes | None, self.redis.get(f"{self.base}:{kind}:{digest(token)}"))
        return TokenRecord(**json.loads(raw)) if raw else None

    def mark_rotated(self, token: str) -> None:
        """A refresh token that was exchanged: kept only to notice if it comes again."""
        key = f"{self.base}:refresh:{digest(token)}"
        raw = cast(bytes | None, self.redis.get(key))
        if raw is not None:
            record = json.loads(raw)
            record["rotated"] = True
            self.redis.set(key, json.dumps(record), keepttl=True)

    def revoke_token(self, kind: str, token: str) -> None:
        self.redis.delete(f"{self.base}:{kind}:{digest(token)}")

    def revoke_grant(self, grant_id: str) -> None:
        """Delete every token of a family."""
        family = f"{self.base}:grant:{grant_id}"
        keys = [k.decode() for k in cast(set[bytes], self.redis.smembers(family))]
        self.redis.delete(family, *keys)
