"""Standard Webhooks signatures (HMAC-SHA256), and Chatwoot's webhook signature; pure Python."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as random
from collections.abc import Mapping, Sequence

SECRET_PREFIX = "whsec_"
TOLERANCE_S = 300


class SignatureError(Exception):
    """A request whose signature cannot be trusted; the message says why.

    `reason` sorts it for counters: "headers" (missing or malformed), "stale" (timestamp out
    of tolerance) or "signature" (no signature matches).
    """

    def __init__(self, message: str, reason: str = "signature") -> None:
        super().__init__(message)
        self.reason = reason


def new_secret() -> str:
    """A fresh signing secret: whsec_ followed by 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(random.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key a whsec_ secret stands for."""
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError("a signing secret is whsec_ followed by base64") from error


def is_secret(value: object) -> bool:
    """True for a usable signing secret: whsec_ followed by non-empty base64."""
    if not isinstance(value, str) or not value.startswith(SECRET_PREFIX):
        return False
    try:
        return bool(secret_key(value))
    except ValueError:
        return False


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else body


def sign(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The v1 signature of one message: v1,<base64 HMAC-SHA256 of id.timestamp.body>."""
    content = f"{msg_id}.{timestamp}.".encode() + _as_bytes(body)
    digest = hmac.new(secret_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secrets: Sequence[str], msg_id: str, body: bytes | str, now: float) -> dict[str, str]:
    """webhook-id, webhook-timestamp and webhook-signature (one signature per secret)."""
    timestamp = int(now)
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(timestamp)}
    if secrets:
        headers["webhook-signature"] = " ".join(sign(s, msg_id, timestamp, body) for s in secrets)
    return headers


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    raise SignatureError(f"missing header {name}", "headers")


def _fresh_timestamp(raw: str, now: float, tolerance: float) -> int:
    try:
        timestamp = int(raw)
    except ValueError as error:
        raise SignatureError("webhook-timestamp is not a number of seconds", "headers") from error
    if timestamp < now - tolerance:
        raise SignatureError("webhook-timestamp is too old", "stale")
    if timestamp > now + tolerance:
        raise SignatureError("webhook-timestamp is in the future", "stale")
    return timestamp


def verify(
    secrets: Sequence[str],
    headers: Mapping[str, str],
    body: bytes | str,
    now: float,
    tolerance: float = TOLERANCE_S,
) -> str:
    """Check a Standard Webhooks request; return its webhook-id or raise SignatureError."""
    msg_id = _header(headers, "webhook-id")
    timestamp = _fresh_timestamp(_header(headers, "webhook-timestamp"), now, tolerance)
    offered = [part.partition(",") for part in _header(headers, "webhook-signature").split()]
    candidates = [value for version, _, value in offered if version == "v1" and value]
    if not candidates:
        raise SignatureError("webhook-signature holds no v1 signature", "headers")
    for secret in secrets:
        expected = sign(secret, msg_id, timestamp, body).partition(",")[2]
        if any(hmac.compare_digest(expected, candidate) for candidate in candidates):
            return msg_id
    raise SignatureError("no signature matches")


def chatwoot_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Chatwoot's X-Chatwoot-Signature: sha256=<hex HMAC-SHA256 of timestamp.body>."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify_chatwoot(
    secret: str, headers: Mapping[str, str], body: bytes, now: float, tolerance: float = TOLERANCE_S
) -> None:
    """Check X-Chatwoot-Signature and X-Chatwoot-Timestamp; raise SignatureError when wrong."""
    raw = _header(headers, "x-chatwoot-timestamp")
    _fresh_timestamp(raw, now, tolerance)
    offered = _header(headers, "x-chatwoot-signature")
    if not hmac.compare_digest(chatwoot_signature(secret, raw, body), offered):
        raise SignatureError("no signature matches")
