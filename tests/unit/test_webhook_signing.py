"""Standard Webhooks signing, checked against an implementation written here from the spec."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time

import pytest

from supportflow.webhooks.signing import SignatureError, new_secret, sign, signed_headers, verify

BODY = b'{"type":"message.created","data":{"text":"Hello \\u00e9"}}'


def spec_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def spec_sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret[len("whsec_"):])
    content = b"%s.%d.%s" % (msg_id.encode(), timestamp, body)
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


def spec_verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    expected = spec_sign(secret, headers["webhook-id"], int(headers["webhook-timestamp"]), body)
    return any(hmac.compare_digest(expected, s) for s in headers["webhook-signature"].split())


def spec_headers(secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": " ".join(spec_sign(s, msg_id, timestamp, body) for s in secrets)}


def test_our_signature_is_the_specs() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) >= 24
    now = int(time.time())
    assert sign(secret, "msg_1", now, BODY) == spec_sign(secret, "msg_1", now, BODY)
    headers = signed_headers([secret], "msg_1", BODY, now)
    assert spec_verify(secret, headers, BODY)


def test_we_verify_what_the_spec_signs() -> None:
    secret, now = spec_secret(), int(time.time())
    headers = spec_headers([secret], "msg_2", now, BODY)
    assert verify([secret], headers, BODY, now) == "msg_2"
    # Header names are case-insensitive; extra unknown versions are skipped.
    mixed = {k.title(): v for k, v in headers.items()}
    mixed["Webhook-Signature"] = "v2,abc " + mixed["Webhook-Signature"]
    assert verify([secret], mixed, BODY, now) == "msg_2"


def test_rotation_two_signatures_and_old_secret_still_verifies() -> None:
    old, new, now = spec_secret(), spec_secret(), int(time.time())
    both = spec_headers([new, old], "msg_3", now, BODY)
    assert len(both["webhook-signature"].split()) == 2
    assert verify([old], both, BODY, now) == "msg_3"
    assert verify([new], both, BODY, now) == "msg_3"
    only_old = spec_headers([old], "msg_4", now, BODY)
    assert verify([new, old], only_old, BODY, now) == "msg_4"
    ours = signed_headers([new, old], "msg_5", BODY, now)
    assert spec_verify(old, ours, BODY) and spec_verify(new, ours, BODY)
    with pytest.raises(SignatureError, match="no signature matches"):
        verify([spec_secret()], only_old, BODY, now)


@pytest.mark.parametrize("offset, message", [(-301, "too old"), (301, "in the future")])
def test_stale_and_future_timestamps_are_refused(offset: int, message: str) -> None:
    secret, now = spec_secret(), int(time.time())
    headers = spec_headers([secret], "msg_6", now + offset, BODY)
    with pytest.raises(SignatureError, match=message):
        verify([secret], headers, BODY, now)
    assert verify([secret], spec_headers([secret], "msg_7", now - 299, BODY), BODY, now)


def test_tampered_body_id_or_timestamp_is_refused() -> None:
    secret, now = spec_secret(), int(time.time())
    headers = spec_headers([secret], "msg_8", now, BODY)
    with pytest.raises(SignatureError):
        verify([secret], headers, BODY.replace(b"Hello", b"Hellp"), now)
    with pytest.raises(SignatureError):
        verify([secret], {**headers, "webhook-id": "msg_9"}, BODY, now)
    with pytest.raises(SignatureError):
        verify([secret], {**headers, "webhook-timestamp": str(now - 1)}, BODY, now)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_headers_are_named(missing: str) -> None:
    secret, now = spec_secret(), int(time.time())
    headers = spec_headers([secret], "msg_10", now, BODY)
    del headers[missing]
    with pytest.raises(SignatureError, match=f"missing header {missing}"):
        verify([secret], headers, BODY, now)


def test_garbage_signatures_are_refused() -> None:
    secret, now = spec_secret(), int(time.time())
    for value in ("", "v1,", "v1,not-base64!", "nonsense"):
        headers = {**spec_headers([secret], "m", now, BODY), "webhook-signature": value}
        with pytest.raises(SignatureError):
            verify([secret], headers, BODY, now)
