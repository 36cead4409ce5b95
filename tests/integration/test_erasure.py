"""Erasing a contact on request, over the real stack: afterwards no key in Redis holds the
contact's id, name, email or anything it wrote."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import redis

from supportflow.cli import main
from supportflow.domain.access import Role
from tests.helpers import wait_until
from tests.isolated import key_values

from .agent_helpers import HANDOFF_REQUEST, Agent, make_token
from .chat import Chat

pytestmark = pytest.mark.slow


def holding(client: redis.Redis, needles: list[str]) -> dict[str, list[str]]:
    """Every key of the whole Redis whose name or value holds one of `needles`."""
    found: dict[str, list[str]] = {}
    for key, value in key_values(client, "*").items():
        text = key + repr(value)
        hits = [needle for needle in needles if needle in text]
        if hits:
            found[key] = hits
    return found


def settled(client: redis.Redis, conversations: list[str]) -> bool:
    """No delivery of these conversations is still being tried (all delivered or dead)."""
    for conversation in conversations:
        for delivery in client.smembers(f"sf:conv:{conversation}:deliveries"):
            raw = client.get(f"sf:delivery:{delivery.decode()}")
            if raw is not None and json.loads(raw)["status"] == "pending":
                return False
    return True


def test_erasing_a_contact_leaves_no_key_holding_its_id_name_email_or_text(
        client: Any, redis_url: str) -> None:
    tag = uuid.uuid4().hex[:12]
    contact = {"id": f"erase-{tag}", "name": f"Name{tag}", "email": f"mail{tag}@example.com",
               "attributes": {"plan": f"plan{tag}"}}
    server = make_token(redis_url, Role.WIDGET)  # a site's server names its contact
    asked = Chat(client, "responses_contact", contact=contact["id"], profile=contact,
                 server=server)
    asked.say(f"How long does shipping take? {tag}")
    asked.wait_for_state("wait_for_user")
    handed = Chat(client, "responses", contact=contact["id"], profile=contact, server=server)
    handed.say(f"{HANDOFF_REQUEST} {tag}")
    handed.wait_for_state("handed_off")
    agent = Agent(client, redis_url)
    assert agent.claim(handed.id).status_code == 200
    assert agent.send(handed.id, f"Hello from an agent {tag}").status_code == 201
    client.application.extensions["supportflow"].agents.add_note(handed.id, agent.name,
                                                                 f"note {tag}")
    handed.say(f"thanks {tag}")
    store = redis.Redis.from_url(redis_url)
    conversations = [asked.id, handed.id]
    wait_until(lambda: settled(store, conversations), timeout=30)
    needles = [contact["id"], contact["name"], contact["email"], tag]
    assert holding(store, needles)  # the scan finds what is there

    response = client.delete(f"/v1/contacts/{contact['id']}",
                             headers=make_token(redis_url, Role.ADMIN))

    assert response.status_code == 200, response.get_json()
    erased = response.get_json()
    assert sorted(erased["conversations"]) == sorted(conversations)
    assert erased["contacts"] == [contact["id"]] and erased["notes"] == 1
    assert erased["threads"] == 1 and erased["attributes"] >= 4 and erased["messages"] >= 7
    assert holding(store, needles + conversations) == {}
    again = client.delete(f"/v1/contacts/{contact['id']}", headers=make_token(redis_url, Role.ADMIN))
    assert again.status_code == 404


def test_only_admins_erase(client: Any, redis_url: str) -> None:
    chat = Chat(client, "responses")
    for role in (Role.AGENT, Role.OPS, Role.WIDGET):
        response = client.delete(f"/v1/contacts/{chat.contact}", headers=make_token(redis_url, role))
        assert response.status_code == 403
    assert client.get(f"/v1/conversations/{chat.id}", headers=chat.headers).status_code == 200


def test_the_cli_erases_a_contact_and_says_what_it_erased(
        client: Any, redis_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    chat = Chat(client, "responses")
    monkeypatch.setenv("SUPPORTFLOW_REDIS_URL", redis_url)
    assert main(["contacts", "forget", chat.contact]) == 0
    said = capsys.readouterr().out
    assert f"erased contact {chat.contact}" in said and chat.id in said
    assert client.get(f"/v1/conversations/{chat.id}", headers=chat.headers).status_code == 404
    assert main(["contacts", "forget", chat.contact]) == 1
    assert "nothing is stored" in capsys.readouterr().err
    assert main(["contacts", "forget", "bad\x1bid"]) == 2
    assert "control character" in capsys.readouterr().err
