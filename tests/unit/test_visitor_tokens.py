"""Widget tokens: visitor tokens bound to one conversation, contact tokens to an anonymous
visitor's contact; signed, expiring, verifiable after a key rotation."""

from __future__ import annotations

import pytest

from supportflow.adapters.visitor_tokens import (
    ContactTokens,
    VisitorTokens,
    WidgetTokenError,
    configured_secrets,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def tokens(*secrets: str, clock: Clock | None = None, ttl_s: float = 600) -> VisitorTokens:
    return VisitorTokens(lambda: list(secrets), ttl_s=ttl_s, clock=clock or Clock())


def refusal(signer: VisitorTokens, token: str) -> str:
    with pytest.raises(WidgetTokenError) as caught:
        signer.verify(token)
    return caught.value.reason


def test_a_token_names_its_conversation_and_flow_until_it_expires() -> None:
    clock = Clock()
    signer = tokens("s3cret", clock=clock)
    issued = signer.issue("conv-1", "default")
    assert issued.token.startswith("sfv_") and issued.expires_in == 600
    visitor = signer.verify(issued.token)
    assert (visitor.conversation_id, visitor.flow, visitor.expires_at) == ("conv-1", "default",
                                                                           clock.now + 600)
    clock.now += 599
    assert signer.verify(issued.token).conversation_id == "conv-1"
    clock.now += 1
    assert refusal(signer, issued.token) == "expired"


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # signature changed
    lambda t: t.replace("sfv_", "sfv_x", 1),            # payload changed
    lambda t: t.removeprefix("sfv_"),                   # not a visitor token
    lambda t: "sft_" + t[4:],                           # an API token's prefix
    lambda t: t + "." * 1100,                           # absurdly long
])
def test_a_mangled_token_is_invalid(mangle: object) -> None:
    signer = tokens("s3cret")
    token = signer.issue("conv-1", "default").token
    assert refusal(signer, mangle(token)) == "invalid"  # type: ignore[operator]


def test_a_token_signed_with_another_secret_is_invalid() -> None:
    assert refusal(tokens("ours"), tokens("theirs").issue("conv-1", "default").token) == "invalid"


def test_after_a_rotation_new_tokens_use_the_first_secret_and_old_ones_still_verify() -> None:
    old = tokens("old-secret").issue("conv-1", "default").token
    rotated = tokens(*configured_secrets(" new-secret , old-secret "))
    assert rotated.verify(old).conversation_id == "conv-1"
    fresh = rotated.issue("conv-2", "default").token
    assert tokens("new-secret").verify(fresh).conversation_id == "conv-2"
    assert refusal(tokens("old-secret"), fresh) == "invalid"
    assert configured_secrets(None) == configured_secrets(" , ") == []


def contact_tokens(*secrets: str, clock: Clock | None = None) -> ContactTokens:
    return ContactTokens(lambda: list(secrets), ttl_s=90 * 86400, clock=clock or Clock())


def test_a_contact_token_names_its_contact_for_its_flow_until_it_expires() -> None:
    clock = Clock()
    signer = contact_tokens("s3cret", clock=clock)
    issued = signer.issue("_v:abc", "default")
    assert issued.token.startswith("sfk_") and issued.expires_in == 90 * 86400
    assert signer.verify(issued.token, "default") == "_v:abc"
    assert signer.contact_of(issued.token, "sales") is None  # another flow's
    clock.now += 90 * 86400
    with pytest.raises(WidgetTokenError, match="expired"):
        signer.verify(issued.token, "default")


def test_visitor_and_contact_tokens_never_pass_for_each_other() -> None:
    visitor = tokens("s3cret").issue("_v:abc", "default").token
    contact = contact_tokens("s3cret").issue("_v:abc", "default").token
    assert contact_tokens("s3cret").contact_of(visitor, "default") is None
    assert contact_tokens("s3cret").contact_of("sfk_" + visitor[4:], "default") is None
    assert refusal(tokens("s3cret"), contact) == "invalid"
    assert refusal(tokens("s3cret"), "sfv_" + contact[4:]) == "invalid"
