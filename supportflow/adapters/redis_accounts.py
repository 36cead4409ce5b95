"""Accounts, sign-in throttling and browser sessions on Redis (under the key prefix)."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any, cast

import redis

from supportflow.domain.accounts import Account, AccountError, AccountRole

# KEYS: accounts, emails; ARGV: name, email, record. 1 added, -1 name taken, -2 email taken.
ADD_ACCOUNT = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return -1 end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return -2 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
return 1
"""
ANONYMOUS_TTL_MS = 3_600_000


def digest(value: str) -> str:
    """SHA-256 hex of a secret or of user-typed text, so neither is a key in clear."""
    return hashlib.sha256(value.encode()).hexdigest()


class RedisAccounts:
    """Implements AccountStore: one hash of records by name, one of names by email."""

    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self.redis = client
        self.records = f"{prefix}:accounts"
        self.emails = f"{prefix}:accounts:emails"
        self._add = client.register_script(ADD_ACCOUNT)

    def add(self, account: Account, password_hash: str) -> None:
        record = json.dumps({**_fields(account), "password_hash": password_hash})
        outcome = int(self._add(keys=[self.records, self.emails],
                                args=[account.name, account.email, record]))
        if outcome == -1:
            raise AccountError(f"an account named {account.name!r} exists")
        if outcome == -2:
            raise AccountError(f"an account with the email {account.email!r} exists")

    def get(self, name: str) -> Account | None:
        found = self._record(name)
        return _account(found) if found else None

    def find(self, name_or_email: str) -> tuple[Account, str] | None:
        name = name_or_email
        if "@" in name_or_email:
            raw = cast(bytes | None, self.redis.hget(self.emails, name_or_email.lower()))
            if raw is None:
                return None
            name = raw.decode()
        found = self._record(name)
        return (_account(found), str(found["password_hash"])) if found else None

    def set_password_hash(self, name: str, password_hash: str) -> bool:
        found = self._record(name)
        if found is None:
            return False
        found["password_hash"] = password_hash
        self.redis.hset(self.records, name, json.dumps(found))
        return True

    def listing(self) -> list[Account]:
        raw = cast(dict[bytes, bytes], self.redis.hgetall(self.records))
        return sorted((_account(json.loads(v)) for v in raw.values()), key=lambda a: a.name)

    def remove(self, name: str) -> bool:
        found = self._record(name)
        if found is None:
            return False
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(self.records, name)
        pipe.hdel(self.emails, str(found["email"]))
        pipe.execute()
        return True

    def _record(self, name: str) -> dict[str, Any] | None:
        raw = cast(bytes | None, self.redis.hget(self.records, name))
        return cast(dict[str, Any], json.loads(raw)) if raw else None


def _fields(account: Account) -> dict[str, Any]:
    return {"name": account.name, "email": account.email, "role": account.role.value,
            "created_at": account.created_at}


def _account(data: dict[str, Any]) -> Account:
    return Account(name=str(data["name"]), email=str(data["email"]),
                   role=AccountRole(data["role"]), created_at=float(data["created_at"]))


class RedisSignInThrottle:
    """Implements SignInThrottle with expiring counters: every web process sees the same."""

    def __init__(self, client: redis.Redis, *, prefix: str, max_failures: int,
                 max_per_address: int, window_s: float) -> None:
        self.redis = client
        self.prefix = f"{prefix}:signin:failures"
        self.max_failures = max_failures
        self.max_per_address = max_per_address
        self.window_ms = int(window_s * 1000)

    def _keys(self, identifier: str, address: str) -> tuple[str, str]:
        return (f"{self.prefix}:account:{digest(identifier)}",
                f"{self.prefix}:address:{digest(address)}")

    def retry_after(self, identifier: str, address: str) -> float | None:
        account, client = self._keys(identifier, address)
        pipe = self.redis.pipeline(transaction=False)
        for key in (account, client):
            pipe.get(key)
            pipe.pttl(key)
        count_a, ttl_a, count_c, ttl_c = pipe.execute()
        waits = [ttl / 1000 for count, ttl, limit in (
            (count_a, ttl_a, self.max_failures), (count_c, ttl_c, self.max_per_address))
            if count is not None and int(count) >= limit and ttl > 0]
        return max(waits) if waits else None

    def failed(self, identifier: str, address: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for key in self._keys(identifier, address):
            # The window starts at the first failure (SET NX); INCR keeps the expiry.
            pipe.set(key, 0, px=self.window_ms, nx=True)
            pipe.incr(key)
        pipe.execute()

    def succeeded(self, identifier: str) -> None:
        self.redis.delete(self._keys(identifier, "")[0])


class RedisWebSessions:
    """Browser sessions: a random id in the cookie, its data in Redis under the id's hash."""

    def __init__(self, client: redis.Redis, *, prefix: str, ttl_s: float) -> None:
        self.redis = client
        self.prefix = f"{prefix}:websession"
        self.ttl_ms = int(ttl_s * 1000)

    @staticmethod
    def new_id() -> str:
        return secrets.token_urlsafe(32)

    def load(self, session_id: str) -> dict[str, Any] | None:
        raw = cast(bytes | None, self.redis.get(f"{self.prefix}:{digest(session_id)}"))
        return cast(dict[str, Any], json.loads(raw)) if raw else None

    def save(self, session_id: str, data: dict[str, Any]) -> None:
        # A session nobody signed into (a sign-in form's CSRF token) lives an hour at most.
        ttl_ms = self.ttl_ms if data.get("account") else min(self.ttl_ms, ANONYMOUS_TTL_MS)
        self.redis.set(f"{self.prefix}:{digest(session_id)}", json.dumps(data), px=ttl_ms)

    def delete(self, session_id: str) -> None:
        self.redis.delete(f"{self.prefix}:{digest(session_id)}")
