"""The credentials vault: named connectors in Redis, encrypted at rest with a key from the env."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import cast

import redis
from cryptography.fernet import Fernet, InvalidToken

from supportflow.domain.connector import CONNECTOR_NAME, DEFAULT_CONNECTOR, Connector
from supportflow.domain.contacts import MIN_IDENTITY_SECRET_CHARS
from supportflow.domain.secrets import DEFAULT_KEEP_PREVIOUS_S, RotatingSecret, rotate_secrets
from supportflow.webhooks.signing import is_secret


class VaultError(Exception):
    """The vault cannot do what was asked; the message says why (never with a secret)."""


def new_vault_key() -> str:
    """A fresh key for SUPPORTFLOW_VAULT_KEY."""
    return Fernet.generate_key().decode()


class Vault:
    """Connectors encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under one Redis hash."""

    def __init__(self, client: redis.Redis, *, prefix: str, key: str | None) -> None:
        self.redis = client
        self.hash_key = f"{prefix}:vault"
        self.webhooks_key = f"{prefix}:vault:webhooks"
        self.identity_key = f"{prefix}:vault:identity"
        self._fernet = _fernet(key) if key else None

    @property
    def fernet(self) -> Fernet:
        if self._fernet is None:
            raise VaultError("the vault is locked: set SUPPORTFLOW_VAULT_KEY "
                             "(make one with `supportflow vault keygen`)")
        return self._fernet

    def set(self, connector: Connector) -> None:
        """Store or replace a connector."""
        if not CONNECTOR_NAME.fullmatch(connector.name):
            raise VaultError("connector names use lowercase letters, digits, - and _ (max 64)")
        if not connector.api_key.strip():
            raise VaultError("a connector needs an API key")
        payload = json.dumps({**connector.public(), "api_key": connector.api_key}).encode()
        self.redis.hset(self.hash_key, connector.name, self.fernet.encrypt(payload))

    def get(self, name: str) -> Connector:
        """The named connector, decrypted; VaultError when missing or unreadable."""
        raw = cast(bytes | None, self.redis.hget(self.hash_key, name))
        if raw is None:
            raise VaultError(f"no connector named {name!r}")
        try:
            data = json.loads(self.fernet.decrypt(raw))
        except InvalidToken as error:
            raise VaultError(f"connector {name!r} was sealed with another vault key") from error
        return Connector(**data)

    def names(self) -> list[str]:
        return sorted(k.decode() for k in cast(list[bytes], self.redis.hkeys(self.hash_key)))

    def listing(self) -> list[dict[str, str | None]]:
        """Every connector without its key."""
        return [self.get(name).public() for name in self.names()]

    def delete(self, name: str) -> bool:
        """Remove a connector and its webhook secrets."""
        self.redis.hdel(self.webhooks_key, name)
        return bool(self.redis.hdel(self.hash_key, name))

    # ----- webhook secrets: verify OpenAI's signed events for a connector -----

    def set_webhook_secret(self, name: str, secret: str, *, now: float,
                           keep_previous_s: float = DEFAULT_KEEP_PREVIOUS_S) -> int:
        """Make `secret` the connector's webhook secret; how many now verify (the previous
        one stays valid for `keep_previous_s`)."""
        if not is_secret(secret):
            raise VaultError("a webhook secret is whsec_ followed by base64 (as OpenAI shows it)")
        if name != DEFAULT_CONNECTOR and not self.redis.hexists(self.hash_key, name):
            raise VaultError(f"no connector named {name!r} (webhook secrets belong to a "
                             f"connector, or to {DEFAULT_CONNECTOR!r})")
        return self._rotate(self.webhooks_key, name, secret, now, keep_previous_s)

    def webhook_secrets(self, name: str, now: float) -> list[str]:
        """The secrets that verify the connector's webhooks now, newest first."""
        return [s.secret for s in self._secrets(self.webhooks_key, name) if s.valid(now)]

    def remove_webhook_secrets(self, name: str) -> bool:
        return bool(self.redis.hdel(self.webhooks_key, name))

    # ----- identity secrets: a flow's sites sign their users' contact ids with them -----

    def set_identity_secret(self, flow: str, secret: str, *, now: float,
                            keep_previous_s: float = DEFAULT_KEEP_PREVIOUS_S) -> int:
        """Make `secret` the flow's identity secret; how many now verify (the previous one
        stays valid for `keep_previous_s`)."""
        if len(secret) < MIN_IDENTITY_SECRET_CHARS or not secret.isascii() \
                or not secret.isprintable() or secret != secret.strip():
            raise VaultError(f"an identity secret is at least {MIN_IDENTITY_SECRET_CHARS} "
                             "printable ASCII characters without blanks at the ends (make one "
                             "with `python3 -c 'import secrets; print(secrets.token_hex(32))'`)")
        return self._rotate(self.identity_key, flow, secret, now, keep_previous_s)

    def identity_secrets(self, flow: str, now: float) -> list[str]:
        """The secrets that verify the flow's contact id hashes now, newest first."""
        return [s.secret for s in self._secrets(self.identity_key, flow) if s.valid(now)]

    def remove_identity_secrets(self, flow: str) -> bool:
        return bool(self.redis.hdel(self.identity_key, flow))

    def _rotate(self, key: str, name: str, secret: str, now: float,
                keep_previous_s: float) -> int:
        secrets = rotate_secrets(self._secrets(key, name), secret, now=now,
                                 keep_previous_s=keep_previous_s)
        payload = json.dumps([asdict(s) for s in secrets]).encode()
        self.redis.hset(key, name, self.fernet.encrypt(payload))
        return len(secrets)

    def _secrets(self, key: str, name: str) -> list[RotatingSecret]:
        raw = cast(bytes | None, self.redis.hget(key, name))
        if raw is None:
            return []
        try:
            entries = json.loads(self.fernet.decrypt(raw))
        except InvalidToken as error:
            raise VaultError(f"the secrets of {name!r} were sealed with another vault key") \
                from error
        return [RotatingSecret(**entry) for entry in entries]


def _fernet(key: str) -> Fernet:
    try:
        return Fernet(key.encode())
    except (ValueError, TypeError) as error:
        raise VaultError("SUPPORTFLOW_VAULT_KEY is not a valid key "
                         "(make one with `supportflow vault keygen`)") from error
