"""Agent accounts and what an OAuth token of an account may do (its scopes)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from .access import Principal, Role

ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024


class AccountRole(StrEnum):
    AGENT = "agent"
    ADMIN = "admin"


class AccountError(ValueError):
    """An account request that cannot be done; the message says why."""


@dataclass(frozen=True)
class Account:
    """A person who signs in: an agent, or an admin (who may also see the ops dashboard)."""

    name: str
    email: str
    role: AccountRole
    created_at: float

    @property
    def principal(self) -> Principal:
        """The account as a caller of the API: it acts with its role's rights."""
        return Principal(name=self.name, role=Role(self.role.value))


def check_new_account(name: str, email: str, password: str) -> str:
    """The email, normalised, for a valid new account; AccountError otherwise."""
    if not ACCOUNT_NAME.fullmatch(name):
        raise AccountError("account names use 1-64 letters, digits and ._-")
    check_password(password)
    email = email.strip().lower()
    if not EMAIL.fullmatch(email):
        raise AccountError(f"{email!r} is not an email address")
    return email


def check_password(password: str) -> None:
    """AccountError for a password too short or too long to accept."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"passwords have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"passwords have at most {MAX_PASSWORD} characters")


class Scope(StrEnum):
    """What an OAuth access token lets the agent's GPT do."""

    NOTES_WRITE = "notes:write"
    KNOWLEDGE_READ = "knowledge:read"
    KNOWLEDGE_WRITE = "knowledge:write"
    CONVERSATIONS_READ = "conversations:read"
    HANDOFFS_READ = "handoffs:read"
    HANDOFFS_REPLY = "handoffs:reply"


SCOPE_TEXT = {
    Scope.NOTES_WRITE: "Save notes on conversations",
    Scope.KNOWLEDGE_READ: "Search the knowledge base",
    Scope.KNOWLEDGE_WRITE: "Save answers to the knowledge base the bot uses",
    Scope.CONVERSATIONS_READ: "Read conversations and their transcripts",
    Scope.HANDOFFS_READ: "See the handoffs waiting and those you claimed",
    Scope.HANDOFFS_REPLY: "Claim handoffs and answer customers as you",
}


def parse_scopes(text: str | None) -> list[Scope]:
    """Scopes from a space-separated list, in order, without repeats; ValueError if unknown."""
    found: list[Scope] = []
    for part in (text or "").split():
        scope = Scope(part)
        if scope not in found:
            found.append(scope)
    return found
