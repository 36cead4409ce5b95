"""Who a widget contact is: anonymous visitors, and contacts a site vouches for.

Contact ids live in namespaces no client can cross:

| id | whose |
| --- | --- |
| `_v:<random>` | an anonymous visitor; only the server makes these |
| `<id>` (no `:`) | a contact a site names: verified by its hash, or named by a trusted server |
| `<inbox>:<id>` | a helpdesk's contact (inbox names start with a letter or digit) |

A site proves that its user is `<id>` with the hex HMAC-SHA256 of the id under the flow's
identity secret (as Intercom's `user_hash` and Chatwoot's `identifier_hash` do).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from enum import StrEnum

ANONYMOUS_PREFIX = "_v:"
# Shorter identity secrets are refused: they could be guessed from one hash.
MIN_IDENTITY_SECRET_CHARS = 32


class Identity(StrEnum):
    """How a conversation's contact was established."""

    ANONYMOUS = "anonymous"  # the server made the id; the visitor keeps it with a contact token
    VERIFIED = "verified"  # the site signed the id (contact.id_hash)
    TRUSTED = "trusted"  # a trusted server (a widget-role API token) named it


def new_anonymous_contact_id() -> str:
    """A fresh anonymous visitor's contact id (130 random bits)."""
    random = base64.b32encode(secrets.token_bytes(17)).decode().rstrip("=").lower()
    return ANONYMOUS_PREFIX + random


def is_anonymous(contact_id: str) -> bool:
    """True for ids the server made for anonymous visitors."""
    return contact_id.startswith(ANONYMOUS_PREFIX)


def identity_hash(secret: str, contact_id: str) -> str:
    """The hex HMAC-SHA256 of `contact_id` under `secret`: what a site's backend computes."""
    return hmac.new(secret.encode(), contact_id.encode(), hashlib.sha256).hexdigest()


def hash_matches(secrets_: Iterable[str], contact_id: str, given: str) -> bool:
    """True when `given` is the id's hash under one of the secrets (compared in constant time)."""
    claimed = given.lower().encode()
    return any(hmac.compare_digest(identity_hash(secret, contact_id).encode(), claimed)
               for secret in secrets_)
