"""Agents over the real stack: queue, claim races, messages, resolve, give back, timeouts, auth."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from supportflow.domain.access import Role
from supportflow.domain.flow import Handoff
from tests.helpers import wait_until

from .agent_helpers import HANDOFF_REQUEST, Agent, handed_off_chat, make_token
from .chat import Chat

pytestmark = pytest.mark.slow
HANDOFF_MESSAGE = Handoff().message


@pytest.fixture
def agent(client: Any, redis_url: str) -> Agent:
    return Agent(client, redis_url)


def test_handoff_is_in_the_queue_with_reason_attribute_and_transcript(
    client: Any, agent: Agent
) -> None:
    chat = handed_off_chat(client)
    entry = agent.queue_entry(chat.id)
    assert entry is not None
    assert entry["reason"] == "the assistant handed the conversation to a person"
    assert entry["attribute"] == {"name": "gpt_response", "value": HANDOFF_REQUEST}
    assert entry["claimed_by"] is None and entry["waiting_s"] >= 0
    assert [m["author"] for m in entry["messages"]] == ["bot", "customer", "bot"]
    assert entry["messages"][-1]["text"] == HANDOFF_MESSAGE
    assert agent.get(entry["transcript_url"].removeprefix("/v1/agent")).status_code == 200
    waits = [e["entered_at"] for e in agent.get("/handoffs").get_json()["handoffs"]]
    assert waits == sorted(waits)


def race(one: Agent, conversation_id: str, barrier: threading.Barrier,
         results: dict[str, list[tuple[int, Any]]]) -> None:
    barrier.wait()
    for _ in range(10):
        response = one.claim(conversation_id)
        results[one.name].append((response.status_code, response.get_json()))


def test_two_agents_racing_to_claim_exactly_one_wins(client: Any, redis_url: str) -> None:
    for _ in range(3):
        chat = handed_off_chat(client)
        agents = [Agent(client.application.test_client(), redis_url) for _ in range(2)]
        barrier = threading.Barrier(2)
        results: dict[str, list[tuple[int, Any]]] = {a.name: [] for a in agents}
        threads = [threading.Thread(target=race, args=(a, chat.id, barrier, results))
                   for a in agents]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        won = [name for name, got in results.items()
               if any(code == 200 and body["newly_claimed"] for code, body in got)]
        assert len(won) == 1, results
        loser = next(name for name in results if name != won[0])
        assert all(code == 200 for code, _ in results[won[0]])
        assert all(code == 409 and body["error"]["fields"]["claimed_by"] == won[0]
                   for code, body in results[loser])
        assert agents[0].queue_entry(chat.id)["claimed_by"] == won[0]  # type: ignore[index]


def test_only_the_claimer_sends_and_the_customer_reads_it_once(
    client: Any, redis_url: str, agent: Agent
) -> None:
    chat = handed_off_chat(client)
    other = Agent(client, redis_url)
    assert agent.send(chat.id, "Hi, I'm here").status_code == 409  # not claimed yet
    assert agent.claim(chat.id).status_code == 200
    first = agent.send(chat.id, "Hi, Sam here. How can I help?", "a-1")
    again = agent.send(chat.id, "Hi, Sam here. How can I help?", "a-1")
    assert first.status_code == 201 and first.get_json()["duplicate"] is False
    assert again.status_code == 201 and again.get_json()["duplicate"] is True
    refused = other.send(chat.id, "I'll take it", "b-1")
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "claimed_by_other"
    agent_messages = chat.messages("agent")
    assert [m["text"] for m in agent_messages] == ["Hi, Sam here. How can I help?"]
    assert chat.state()["state"] == "handed_off"


def test_resolve_closes_removes_from_queue_and_the_widget_gets_409(
    client: Any, agent: Agent
) -> None:
    chat = handed_off_chat(client)
    assert agent.claim(chat.id).status_code == 200
    response = agent.post(f"/conversations/{chat.id}/resolve")
    assert response.status_code == 200 and response.get_json()["state"] == "closed"
    assert agent.queue_entry(chat.id) is None
    assert chat.state()["state"] == "closed"
    posted = client.post(f"/v1/conversations/{chat.id}/messages", json={"text": "Hello?"},
                         headers=chat.headers)
    assert posted.status_code == 409
    # Its visitor token still reads the transcript until it expires, but is not renewed.
    assert chat.messages()
    assert client.post(f"/v1/conversations/{chat.id}/token", headers=chat.headers).status_code == 409
    assert agent.post(f"/conversations/{chat.id}/resolve").status_code == 409


def test_give_back_lets_the_bot_answer_the_next_message(client: Any, agent: Agent) -> None:
    chat = handed_off_chat(client)
    chat.say("Hello? Anyone there?")
    assert agent.claim(chat.id).status_code == 200
    response = agent.post(f"/conversations/{chat.id}/return")
    assert response.status_code == 200 and response.get_json()["state"] == "wait_for_user"
    assert agent.queue_entry(chat.id) is None
    assert "Hello? Anyone there?" in [m["text"] for m in chat.messages("customer")]
    chat.say("How long does shipping take?")
    replies = chat.wait_for_bot_messages(3)
    assert "we ship within" in replies[-1].lower()
    assert chat.wait_for_state("wait_for_user")["turn"] == 2


def test_unclaimed_handoff_timeout_tells_the_customer(client: Any, agent: Agent) -> None:
    # Told once, and never once claimed: tests/integration/test_turn_engine.py, on a fake clock.
    chat = handed_off_chat(client, "handoff_tell")
    wait_until(lambda: "timeout-tell" in chat.bot_texts(), timeout=10)
    assert chat.state()["state"] == "handed_off"
    assert agent.queue_entry(chat.id) is not None


def test_unclaimed_handoff_timeout_returns_it_to_the_bot(client: Any, agent: Agent) -> None:
    chat = handed_off_chat(client, "handoff_return")
    chat.wait_for_state("wait_for_user", timeout=10)
    assert chat.bot_texts()[-1] == "timeout-return"
    assert agent.queue_entry(chat.id) is None
    chat.say("Can I return an item?")
    assert "return" in chat.wait_for_bot_messages(4)[-1].lower()


def test_bad_input_gets_4xx_and_changes_nothing(client: Any, agent: Agent) -> None:
    chat = handed_off_chat(client)
    before = chat.messages()
    assert agent.claim("conv-unknown").status_code == 404
    assert agent.get("/conversations/conv-unknown").status_code == 404
    assert agent.post("/conversations/conv-unknown/resolve").status_code == 404
    assert agent.claim(chat.id).status_code == 200
    for body in ({}, {"text": ""}, {"text": "   "}, {"text": 5},
                 {"text": "hi", "client_message_id": "bad id!"}):
        response = agent.post(f"/conversations/{chat.id}/messages", body)
        assert response.status_code == 422, body
        assert response.get_json()["error"]["code"] == "invalid_request"
    raw = agent.client.post(f"/v1/agent/conversations/{chat.id}/messages",
                            data="text", headers=agent.headers)
    assert raw.status_code == 400
    bot = Chat(client, "responses")
    assert agent.claim(bot.id).status_code == 409
    assert agent.post(f"/conversations/{bot.id}/return").status_code == 409
    assert chat.messages() == before
    assert chat.state()["state"] == "handed_off" and bot.state()["state"] == "ask"


def test_agent_endpoints_need_an_agent_token(client: Any, redis_url: str) -> None:
    chat = handed_off_chat(client)
    widget = make_token(redis_url, Role.WIDGET)
    admin = make_token(redis_url, Role.ADMIN)
    paths = [("get", "/v1/agent/handoffs"), ("get", f"/v1/agent/conversations/{chat.id}"),
             ("post", f"/v1/agent/conversations/{chat.id}/claim"),
             ("post", f"/v1/agent/conversations/{chat.id}/resolve"),
             ("get", "/v1/agent/handoffs/stream")]
    for method, path in paths:
        call = getattr(client, method)
        assert call(path).status_code == 401
        assert call(path, headers={"Authorization": "Bearer sft_nope"}).status_code == 401
        refused = call(path, headers=widget)
        assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "forbidden"
    assert client.get("/v1/agent/handoffs", headers=admin).status_code == 200
    assert chat.state()["state"] == "handed_off"


# The pages send visitors to /signin; the OAuth endpoints authenticate clients their own way
# (tests/integration/test_oauth.py); the actions' document is public.
PUBLIC = {"widget.", "widget_assets.", "health.", "openapi.", "streams.conversation_events", "static",
          "pages.", "signin.", "oauth.", "actions.document"}


def test_every_endpoint_but_the_public_ones_refuses_a_missing_token(client: Any) -> None:
    """Webhook endpoints authenticate by signature (Standard Webhooks), not by token."""
    app = client.application
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(tuple(PUBLIC)) or "webhook" in rule.rule \
                or "/integrations/" in rule.rule:  # Chatwoot's and OpenAI's events
            continue
        path = rule.rule.replace("<conversation_id>", "conv-x").replace("<", "").replace(">", "")
        method = "GET" if "GET" in (rule.methods or set()) else sorted(
            (rule.methods or set()) - {"HEAD", "OPTIONS"})[0]
        response = client.open(path, method=method)
        assert response.status_code == 401, (rule.rule, response.status_code)
