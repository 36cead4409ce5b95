"""Use cases of agent accounts: create, sign in (throttled), read, change, delete."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from supportflow.domain.accounts import (
    Account,
    AccountError,
    AccountRole,
    check_new_account,
    check_password,
)


class PasswordHasher(Protocol):
    """Hashes passwords for storage and checks them (a slow, salted hash)."""

    def hash(self, password: str) -> str: ...

    def verify(self, stored: str, password: str) -> bool: ...

    def needs_rehash(self, stored: str) -> bool: ...


class AccountStore(Protocol):
    """Accounts by name, with their password hashes; emails are unique."""

    def add(self, account: Account, password_hash: str) -> None:
        """Store a new account; AccountError when the name or the email is taken."""
        ...

    def get(self, name: str) -> Account | None: ...

    def find(self, name_or_email: str) -> tuple[Account, str] | None:
        """The account and its password hash, by name or email."""
        ...

    def set_password_hash(self, name: str, password_hash: str) -> bool: ...

    def listing(self) -> list[Account]: ...

    def remove(self, name: str) -> bool: ...


class SignInThrottle(Protocol):
    """Counts failed sign-ins per account and per client address, shared by every process."""

    def retry_after(self, identifier: str, address: str) -> float | None:
        """Seconds until sign-in may be tried again, or None when it may be tried now."""
        ...

    def failed(self, identifier: str, address: str) -> None: ...

    def succeeded(self, identifier: str) -> None: ...


class SignInRefused(Exception):
    """Unknown account or wrong password (the message does not say which)."""


class SignInThrottled(Exception):
    """Too many failed sign-ins; try again after `retry_after_s`."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"too many failed sign-ins; try again in {retry_after_s:.0f} s")
        self.retry_after_s = retry_after_s


@dataclass
class AccountDesk:
    """Accounts and signing in; passwords only ever leave as argon2 hashes."""

    store: AccountStore
    hasher: PasswordHasher
    throttle: SignInThrottle
    clock: Callable[[], float]

    def create(self, name: str, email: str, role: AccountRole, password: str) -> Account:
        """A new account; AccountError when a field is invalid or taken."""
        email = check_new_account(name, email, password)
        account = Account(name=name, email=email, role=role, created_at=self.clock())
        self.store.add(account, self.hasher.hash(password))
        return account

    def sign_in(self, identifier: str, password: str, address: str) -> Account:
        """The account when the password matches; throttled after repeated failures."""
        key = identifier.strip().lower()
        wait = self.throttle.retry_after(key, address)
        if wait is not None:
            raise SignInThrottled(wait)
        found = self.store.find(key) if key else None
        # An unknown account costs a hash too, so timing does not tell which names exist.
        stored = found[1] if found else _DUMMY.get(self.hasher)
        if not self.hasher.verify(stored, password) or found is None:
            self.throttle.failed(key, address)
            raise SignInRefused("unknown account or wrong password")
        account, _ = found
        self.throttle.succeeded(key)
        if self.hasher.needs_rehash(stored):
            self.store.set_password_hash(account.name, self.hasher.hash(password))
        return account

    def get(self, name: str) -> Account | None:
        """The account, or None when it does not exist (any more)."""
        return self.store.get(name)

    def set_password(self, name: str, password: str) -> None:
        """Replace an account's password; AccountError when unknown or too weak."""
        check_password(password)
        if not self.store.set_password_hash(name, self.hasher.hash(password)):
            raise AccountError(f"no account named {name!r}")

    def listing(self) -> list[Account]:
        return self.store.listing()

    def delete(self, name: str) -> bool:
        """Remove an account; its sessions and OAuth tokens stop working at once."""
        return self.store.remove(name)


class _DummyHash:
    """One hash of a random password per hasher, for unknown accounts."""

    def __init__(self) -> None:
        self.value: str | None = None

    def get(self, hasher: PasswordHasher) -> str:
        if self.value is None:
            self.value = hasher.hash(secrets.token_urlsafe(16))
        return self.value


_DUMMY = _DummyHash()
