"""Text is valid Unicode at the edge: every text field of every route refuses lone surrogates
and control characters with a 422 naming the field, and nothing changes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from supportflow.domain.access import Role
from supportflow.domain.inbox import InboxKind
from tests.integration.chat import Chat
from tests.isolated import (
    Isolated,
    chatwoot_event,
    signed_chatwoot,
    signed_webhook,
    webhook_payload,
)

BAD_TEXTS = {"lone surrogate": "hi \udc80", "NUL": "hi \x00", "escape": "\x1b[31mred",
             "C1 control": "hi \x85", "unpaired high surrogate": "\ud83d"}
# A request for a route: (path, body, headers) with `value` in the field under test.
Request = Callable[[Isolated, Any], tuple[str, bytes, dict[str, str]]]


def _start(field: str) -> Request:
    def build(iso: Isolated, value: Any) -> tuple[str, bytes, dict[str, str]]:
        contact: dict[str, Any] = {"id": "c-1"}
        if field == "attributes":
            contact["attributes"] = {"plan": value}
        else:
            contact[field] = value
        return "/v1/conversations", json.dumps({"contact": contact}).encode(), {}
    return build


def _widget_message(iso: Isolated, value: Any) -> tuple[str, bytes, dict[str, str]]:
    conversation = iso.start()
    return (f"/v1/conversations/{conversation}/messages", json.dumps({"text": value}).encode(),
            iso.visitor[conversation])


def _agent_message(iso: Isolated, value: Any) -> tuple[str, bytes, dict[str, str]]:
    return (f"/v1/agent/conversations/{iso.start()}/messages", json.dumps({"text": value}).encode(),
            iso.token(Role.AGENT))


def _webhook(field: str) -> Request:
    def build(iso: Isolated, value: Any) -> tuple[str, bytes, dict[str, str]]:
        inbox = iso.inbox(InboxKind.WEBHOOK)
        if field == "text":
            body = webhook_payload("t-1", value)
        elif field == "attributes":
            body = webhook_payload("t-1", "hello", attributes={"plan": value})
        else:
            body = webhook_payload("t-1", "hello", **{field: value})
        return f"/v1/webhooks/{inbox.name}", body, signed_webhook(inbox, body)
    return build


def _chatwoot(field: str) -> Request:
    def build(iso: Isolated, value: Any) -> tuple[str, bytes, dict[str, str]]:
        inbox = iso.inbox(InboxKind.CHATWOOT)
        event = chatwoot_event(7, value if field == "content" else "hello")
        if field != "content":
            event["sender"][field] = value
        body = json.dumps(event).encode()
        return f"/v1/integrations/chatwoot/{inbox.name}", body, signed_chatwoot(body)
    return build


def _article(field: str) -> Request:
    def build(iso: Isolated, value: Any) -> tuple[str, bytes, dict[str, str]]:
        article: dict[str, Any] = {"title": "Returns", "text": "Within 30 days.", "tags": []}
        article[field] = [value] if field == "tags" else value
        return "/v1/agent/knowledge", json.dumps(article).encode(), iso.token(Role.AGENT)
    return build


# Every text field a client sends, and where the 422 names it.
FIELDS: dict[str, tuple[Request, tuple[str, ...]]] = {
    "start contact.name": (_start("name"), ("contact", "name")),
    "start contact.attributes": (_start("attributes"), ("contact", "attributes", "plan", "value")),
    "widget message text": (_widget_message, ("text",)),
    "agent message text": (_agent_message, ("text",)),
    "webhook message.text": (_webhook("text"), ("message", "text")),
    "webhook contact.name": (_webhook("name"), ("contact", "name")),
    "webhook contact.attributes": (_webhook("attributes"),
                                   ("contact", "attributes", "plan", "value")),
    "chatwoot content": (_chatwoot("content"), ("content",)),
    "chatwoot sender.name": (_chatwoot("name"), ("sender", "name")),
    "chatwoot sender.email": (_chatwoot("email"), ("sender", "email")),
    "knowledge title": (_article("title"), ("title",)),
    "knowledge text": (_article("text"), ("text",)),
    "knowledge tags": (_article("tags"), ("tags", "0")),
}


def dig(fields: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        assert isinstance(fields, dict) and name in fields, (fields, path)
        fields = fields[name]
    return fields


@pytest.mark.parametrize("bad", BAD_TEXTS)
@pytest.mark.parametrize("field", FIELDS)
def test_bad_text_gets_422_naming_the_field_and_changes_nothing(
        isolated: Isolated, field: str, bad: str) -> None:
    build, path = FIELDS[field]
    url, body, headers = build(isolated, BAD_TEXTS[bad])
    before = isolated.snapshot()
    response = isolated.api.post(url, data=body, headers={"content-type": "application/json",
                                                          **headers})
    assert response.status_code == 422, response.get_json()
    [problem] = dig(response.get_json()["error"]["fields"], path)
    assert "U+" in problem
    assert isolated.snapshot() == before
    assert isolated.queue.drains == []


def test_newlines_and_tabs_are_kept_and_carriage_returns_become_newlines(
        isolated: Isolated) -> None:
    conversation = isolated.start()
    response = isolated.api.post(f"/v1/conversations/{conversation}/messages",
                                 json={"text": "line one\r\nline two\r\tend"},
                                 headers=isolated.visitor[conversation])
    assert response.status_code == 202
    [message] = isolated.services.store.mailbox(conversation)
    assert message.text == "line one\nline two\n\tend"


def test_a_lone_surrogate_is_refused_and_the_conversation_still_answers(client: Any) -> None:
    """The issue's reproduction, over the real stack (worker, sandbox)."""
    chat = Chat(client, "responses")
    refused = client.post(f"/v1/conversations/{chat.id}/messages",
                          data=json.dumps({"text": "hi \udc80"}), content_type="application/json",
                          headers=chat.headers)
    assert refused.status_code == 422
    assert [m["author"] for m in chat.messages()] == ["bot"]
    chat.say("How long does shipping take?")
    chat.wait_for_state("wait_for_user")
    assert len(chat.bot_texts()) == 2


def test_a_lone_surrogate_in_a_contact_profile_is_a_422_not_a_500(client: Any) -> None:
    for contact in ({"id": "c-sur", "name": "Ann \udc80"},
                    {"id": "c-sur", "attributes": {"plan": "\udc80"}}):
        response = client.post("/v1/conversations", data=json.dumps({"contact": contact}),
                               content_type="application/json")
        assert response.status_code == 422, response.get_json()
