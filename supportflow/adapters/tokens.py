"""API tokens: shown once when made, stored only as SHA-256 hashes in Redis."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from typing import Any, cast

import redis

from supportflow.domain.access import Principal, Role

TOKEN_PREFIX = "sft_"
TOKEN_NAME = re.compile(r"^[A-Za-z0-9._@\-]{1,64}$")


class TokenError(Exception):
    """A token request that cannot be done; the message says why."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """Makes, checks, lists and revokes tokens; Redis holds hashes, never tokens."""

    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self.redis = client
        self.by_hash = f"{prefix}:tokens"
        self.by_name = f"{prefix}:tokens:names"

    def create(self, name: str, role: Role) -> str:
        """A new token for `name` with `role`; returns the token, which is not kept."""
        if not TOKEN_NAME.fullmatch(name):
            raise TokenError("token names use letters, digits and ._@- (max 64)")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        digest = token_hash(token)
        record = json.dumps({"name": name, "role": role.value, "created_at": time.time()})
        if not self.redis.hsetnx(self.by_name, name, digest):
            raise TokenError(f"a token named {name!r} exists; revoke it first")
        self.redis.hset(self.by_hash, digest, record)
        return token

    def principal(self, token: str) -> Principal | None:
        """Who the token belongs to; None for an unknown or revoked token."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        raw = cast(bytes | None, self.redis.hget(self.by_hash, token_hash(token)))
        if raw is None:
            return None
        data = json.loads(raw)
        return Principal(name=data["name"], role=Role(data["role"]))

    def listing(self) -> list[dict[str, Any]]:
        records = cast(dict[bytes, bytes], self.redis.hgetall(self.by_hash))
        return sorted((json.loads(v) for v in records.values()), key=lambda r: str(r["name"]))

    def revoke(self, name: str) -> bool:
        digest = cast(bytes | None, self.redis.hget(self.by_name, name))
        if digest is None:
            return False
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(self.by_hash, digest.decode())
        pipe.hdel(self.by_name, name)
        pipe.execute()
        return True
