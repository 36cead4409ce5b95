"""Whom a conversation's start speaks for: an anonymous visitor, a contact the site vouches for,
or any contact a trusted server names. Browsers can never act as another contact.

- A trusted server (a widget-role API token) that names `contact.id` gets that contact.
- A browser that names `contact.id` with its `id_hash` (the HMAC-SHA256 of the id under the
  flow's identity secret) gets that contact; a wrong hash is refused.
- A browser that proves nothing (a bare `contact.id` is ignored) gets its own anonymous contact:
  the one its contact token names, else a new one; refused when the flow requires identity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from supportflow.domain.contacts import Identity, hash_matches, is_anonymous, new_anonymous_contact_id
from supportflow.domain.flow import Flow, IdentityMode


class IdentityRefused(Exception):
    """The start cannot act as the contact it names; `code` says why (the message, how to fix)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ContactTokenReader(Protocol):
    def contact_of(self, token: str, flow: str) -> str | None:
        """The contact a valid contact token of `flow` names; None for any other token."""


@dataclass(frozen=True)
class ContactClaim:
    """What a start says about its contact."""

    id: str | None = None
    id_hash: str | None = None
    token: str | None = None  # a contact token from an earlier start


@dataclass(frozen=True)
class ResolvedContact:
    id: str
    identity: Identity


class ContactIdentities:
    """Decides the contact of a start; reads only (a refusal writes nothing)."""

    def __init__(self, *, secrets: Callable[[str, float], list[str]], tokens: ContactTokenReader,
                 clock: Callable[[], float]) -> None:
        self.secrets = secrets
        self.tokens = tokens
        self.clock = clock

    def resolve(self, flow: Flow, claim: ContactClaim, *, trusted: bool) -> ResolvedContact:
        """The contact the start acts as; IdentityRefused when a browser cannot be it."""
        if trusted and claim.id:
            return ResolvedContact(claim.id, Identity.TRUSTED)
        if claim.id_hash is not None and claim.id:
            return ResolvedContact(self._verified(flow, claim.id, claim.id_hash), Identity.VERIFIED)
        if flow.widget.identity is IdentityMode.REQUIRED and not trusted:
            raise IdentityRefused("identity_required", f"flow {flow.name!r} serves identified "
                                  "users only: send contact.id with contact.id_hash")
        known = self.tokens.contact_of(claim.token, flow.name) if claim.token else None
        if known is not None and is_anonymous(known):
            return ResolvedContact(known, Identity.ANONYMOUS)
        return ResolvedContact(new_anonymous_contact_id(), Identity.ANONYMOUS)

    def _verified(self, flow: Flow, contact_id: str, id_hash: str) -> str:
        secrets = self.secrets(flow.name, self.clock())
        if not secrets:
            raise IdentityRefused("identity_not_configured", f"flow {flow.name!r} has no "
                                  "identity secret, so it cannot verify contact.id_hash (set "
                                  f"one: supportflow flows identity-secret {flow.name})")
        if not hash_matches(secrets, contact_id, id_hash):
            raise IdentityRefused("identity_invalid", "contact.id_hash is not the HMAC-SHA256 "
                                  "of contact.id under this flow's identity secret")
        return contact_id
