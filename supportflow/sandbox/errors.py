"""Errors and ids shaped like the OpenAI API's, shared by the sandbox's modules."""

from __future__ import annotations

import hashlib
import secrets


def bearer_fingerprint(token: str) -> str:
    """A short SHA-256 fingerprint of an API key: shows which key came, not the key."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def new_id(prefix: str) -> str:
    """An id with the API's prefix, e.g. `thread_...`, `resp_...`."""
    return f"{prefix}_{secrets.token_hex(12)}"


class ApiError(Exception):
    """An error the sandbox answers with, shaped like the OpenAI API's."""

    def __init__(self, status: int, message: str, *, param: str | None = None,
                 code: str | None = None, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = (
            status, message, param, code, kind)
