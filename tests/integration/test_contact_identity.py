"""Whom a start acts as: an anonymous visitor, a contact the site signs, or any contact a trusted
server names. A browser never acts as another contact, and every refusal changes nothing."""

from __future__ import annotations

import secrets
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from supportflow.adapters.redis_store import RedisConversationStore
from supportflow.adapters.visitor_tokens import ContactTokens
from supportflow.domain.access import Role
from supportflow.domain.contacts import identity_hash
from tests.isolated import Isolated

from .agent_helpers import make_token
from .chat import Chat

WIDGET_SECRET = "widget-secret-of-the-identity-tests"
SECRET, OLD_SECRET = secrets.token_hex(32), secrets.token_hex(32)
FLOW = "responses_contact"  # optional identity; contact-scope threads
ALICE = {"id": "alice", "name": "Alice", "email": "alice@example.com",
         "attributes": {"plan": "gold"}}


@pytest.fixture
def iso(redis_url: str, flows_dir: Path) -> Isolated:
    """An app under its own prefix whose FLOW verifies with SECRET (OLD_SECRET rotated out), and
    where a trusted server has started a conversation for Alice."""
    made = Isolated(redis_url, flows_dir, widget_secret=WIDGET_SECRET, rate_limits_enabled=False)
    made.services.vault.set_identity_secret(FLOW, OLD_SECRET, now=time.time())
    made.services.vault.set_identity_secret(FLOW, SECRET, now=time.time(), keep_previous_s=0)
    assert start(made, contact=ALICE, headers=made.token(Role.WIDGET)).status_code == 201
    return made


def start(iso: Isolated, flow: str = FLOW, headers: dict[str, str] | None = None,
          **body: Any) -> Any:
    return iso.api.post("/v1/conversations", json={"flow": flow, **body}, headers=headers or {})


def started(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.get_json()
    found: dict[str, Any] = response.get_json()
    return found


def alice_profile(iso: Isolated) -> dict[str, str]:
    return iso.services.store.attributes("alice")


def test_a_browser_that_proves_nothing_gets_its_own_contact_and_keeps_it_with_its_token(
    iso: Isolated,
) -> None:
    impostor = {"id": "alice", "name": "Mallory", "attributes": {"plan": "free"}}
    first, second = (started(start(iso, contact=impostor)) for _ in range(2))
    assert first["identity"] == second["identity"] == "anonymous"
    assert first["contact_id"] != second["contact_id"]
    assert all(s["contact_id"].startswith("_v:") for s in (first, second))
    # What the browser sent is its own contact's, never Alice's.
    assert alice_profile(iso) == {"name": "Alice", "email": "alice@example.com", "plan": "gold"}
    assert iso.services.store.attributes(first["contact_id"]) == {"name": "Mallory",
                                                                  "plan": "free"}
    again = started(start(iso, contact_token=first["contact_token"]))
    assert (again["contact_id"], again["identity"]) == (first["contact_id"], "anonymous")
    assert again["contact_token"].startswith("sfk_")


def bad_contact_tokens(iso: Isolated) -> dict[str, str]:
    """Contact tokens that must not bring anyone back, each with why."""
    signed = iso.services.contact_tokens
    anonymous = started(start(iso))["contact_id"]
    past = ContactTokens(lambda: [WIDGET_SECRET], ttl_s=60, clock=lambda: time.time() - 3600)
    forged = ContactTokens(lambda: ["not-our-secret"], ttl_s=60)
    return {
        "forged": forged.issue(anonymous, FLOW).token,
        "expired": past.issue(anonymous, FLOW).token,
        "another flow's": signed.issue(anonymous, "responses").token,
        "a visitor token": iso.services.visitors.issue(anonymous, FLOW).token,
        # Signed by us but naming a contact that is not an anonymous visitor's.
        "naming alice": signed.issue("alice", FLOW).token,
    }


def test_a_contact_token_that_is_not_valid_gives_a_new_anonymous_contact(iso: Isolated) -> None:
    for why, token in bad_contact_tokens(iso).items():
        got = started(start(iso, contact_token=token))
        assert got["identity"] == "anonymous", why
        assert got["contact_id"].startswith("_v:"), why
        assert iso.services.contact_tokens.contact_of(token, FLOW) != got["contact_id"], why
    assert alice_profile(iso)["name"] == "Alice"


def test_a_verified_start_acts_as_the_contact_and_the_previous_secret_verifies_for_a_while(
    iso: Isolated,
) -> None:
    verified = started(start(iso, contact={"id": "alice", "id_hash": identity_hash(SECRET, "alice"),
                                           "name": "Alice Liddell"}))
    assert (verified["contact_id"], verified["identity"]) == ("alice", "verified")
    assert "contact_token" not in verified  # the site proves who it is every time
    assert alice_profile(iso)["name"] == "Alice Liddell"  # her own profile, by her own site
    newest = secrets.token_hex(32)
    iso.services.vault.set_identity_secret(FLOW, newest, now=time.time(), keep_previous_s=600)
    for secret in (newest, SECRET):  # the previous secret still verifies during the rotation
        again = started(start(iso, contact={"id": "alice",
                                            "id_hash": identity_hash(secret, "alice").upper()}))
        assert again["contact_id"] == "alice"


def with_last_digit_changed(digest: str) -> str:
    """The digest with its last hex digit replaced by another, so it is always wrong."""
    return digest[:-1] + ("1" if digest[-1] == "0" else "0")


REFUSALS: dict[str, tuple[str, dict[str, Any], int, str]] = {
    "a wrong hash": (FLOW, {"contact": {
        "id": "alice", "id_hash": with_last_digit_changed(identity_hash(SECRET, "alice"))}}, 403,
        "identity_invalid"),
    "a hash for another id": (FLOW, {"contact": {
        "id": "alice", "id_hash": identity_hash(SECRET, "bob")}}, 403, "identity_invalid"),
    "a hash under a rotated-out secret": (FLOW, {"contact": {
        "id": "alice", "id_hash": identity_hash(OLD_SECRET, "alice")}}, 403, "identity_invalid"),
    "no hash on a flow that requires one": ("identified", {"contact": {"id": "alice"}}, 403,
                                            "identity_required"),
    "nobody on a flow that requires one": ("identified", {}, 403, "identity_required"),
    "a hash on a flow without a secret": ("responses", {"contact": {
        "id": "alice", "id_hash": identity_hash(SECRET, "alice")}}, 403,
        "identity_not_configured"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_a_start_that_cannot_prove_its_contact_is_refused_and_changes_nothing(
    iso: Isolated, case: str
) -> None:
    flow, body, status, code = REFUSALS[case]
    before = iso.snapshot()
    response = start(iso, flow, contact={"name": "Mallory", "attributes": {"plan": "free"},
                                         **body.get("contact", {})})
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"]["code"] == code
    assert iso.snapshot() == before
    assert alice_profile(iso) == {"name": "Alice", "email": "alice@example.com", "plan": "gold"}


def test_only_a_widget_or_admin_token_names_a_contact_without_a_hash(iso: Isolated) -> None:
    for role in (Role.WIDGET, Role.ADMIN):  # also on a flow that requires identity
        named = started(start(iso, "identified", iso.token(role), contact={"id": "bob",
                                                                          "name": "Bob"}))
        assert (named["contact_id"], named["identity"]) == ("bob", "trusted")
        assert "contact_token" not in named
    assert iso.services.store.attributes("bob") == {"name": "Bob"}
    for headers, status in ((iso.token(Role.AGENT), 403), (iso.token(Role.OPS), 403),
                            ({"Authorization": "Bearer sft_unknown"}, 401)):
        before = iso.snapshot()
        response = start(iso, headers=headers, contact={"id": "alice", "name": "Mallory"})
        assert response.status_code == status, response.get_json()
        assert iso.snapshot() == before


@pytest.mark.slow
def test_a_verified_user_continues_their_contact_thread_over_the_real_stack(
    client: Any, redis_url: str, identity_secret: str
) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    first = Chat(client, "identified", user, server=make_token(redis_url, Role.WIDGET))
    first.say("What are your opening hours?")
    first.wait_for_state("wait_for_user")
    back = Chat(client, "identified", user, contact_hash=identity_hash(identity_secret, user))
    assert (back.contact, back.started["identity"]) == (user, "verified")
    back.say("How long does shipping take?")
    back.wait_for_state("wait_for_user")
    store = RedisConversationStore(redis.Redis.from_url(redis_url))
    threads = {getattr(store.get(chat.id), "thread_id", None) for chat in (first, back)}
    assert len(threads) == 1 and None not in threads
