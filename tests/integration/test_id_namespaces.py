"""The issue's id reproductions over the real stack: a client id never hides another's message."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import wait_until
from tests.isolated import Isolated

from .agent_helpers import Agent, handed_off_chat
from .chat import Chat

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("client_id", ["1:reply", "sf:1:reply"])
def test_a_customer_id_shaped_like_the_bots_reply_does_not_hide_the_reply(
        client: Any, client_id: str) -> None:
    chat = Chat(client, "responses")
    receipt = chat.say("How long does shipping take?", client_id)
    assert receipt == {"conversation_id": chat.id, "message_id": f"c:{client_id}",
                       "duplicate": False}
    chat.wait_for_state("wait_for_user")
    ids = [(m["author"], m["id"]) for m in chat.messages()]
    assert ids == [("bot", "sf:welcome"), ("customer", f"c:{client_id}"), ("bot", "sf:1:reply")]
    assert chat.say("How long does shipping take?", client_id)["duplicate"] is True


def test_a_customer_id_shaped_like_an_agents_does_not_suppress_the_agents_message(
        client: Any, redis_url: str) -> None:
    chat = handed_off_chat(client)
    agent = Agent(client, redis_url)
    for hostile in ("agent-x", f"a:{agent.name}:x"):
        chat.say("anyone there?", hostile)
    assert agent.claim(chat.id).status_code == 200
    sent = agent.send(chat.id, "Hi", "x")
    assert sent.status_code == 201
    assert sent.get_json() == {"conversation_id": chat.id, "message_id": f"a:{agent.name}:x",
                               "duplicate": False}
    wait_until(lambda: [m["text"] for m in chat.messages("agent")] == ["Hi"])
    again = agent.send(chat.id, "Hi", "x")
    assert again.status_code == 201 and again.get_json()["duplicate"] is True
    assert [m["text"] for m in chat.messages("agent")] == ["Hi"]


def test_a_widget_contact_cannot_name_a_helpdesk_contact(isolated: Isolated) -> None:
    """Helpdesk contacts are "<inbox>:<id>": a widget id with ':' could read their attributes."""
    response = isolated.api.post("/v1/conversations", json={"contact": {"id": "acme:c-1"}})
    assert response.status_code == 422
    assert "id" in response.get_json()["error"]["fields"]["contact"]
