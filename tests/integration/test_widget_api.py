"""The widget API over a real Redis: validation, errors that change nothing, cursors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from supportflow.bootstrap import Services, bootstrap
from supportflow.settings import load_settings
from supportflow.web import create_app
from tests.fakes import RecordingQueue


@pytest.fixture
def queue() -> RecordingQueue:
    return RecordingQueue()


@pytest.fixture
def services(redis_url: str, flows_dir: Path, queue: RecordingQueue) -> Services:
    settings = load_settings({"redis_url": redis_url, "flows_dir": flows_dir,
                              "key_prefix": "widgettest", "max_message_chars": 50,
                              "rate_limits_enabled": False})
    return bootstrap(settings, queue=queue, assistants=object())  # type: ignore[arg-type]


@pytest.fixture
def api(services: Services) -> Iterator[Any]:
    yield create_app({"TESTING": True, "SUPPORTFLOW_SERVICES": services}).test_client()


def conversation_count(services: Services) -> int:
    client: redis.Redis = services.store.redis
    return int(client.zcard(services.store.key("conversations")))


def start(api: Any, contact: str = "c-1") -> str:
    """Start a conversation; the client then sends its visitor token with every request."""
    response = api.post("/v1/conversations", json={"contact": {"id": contact, "name": "Ada",
                                                                "email": "ada@example.com"}})
    assert response.status_code == 201
    body = response.get_json()
    api.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {body['visitor_token']}"
    return str(body["conversation_id"])


def holding_a_token_for_a_missing_conversation(api: Any, services: Services) -> None:
    """A valid token whose conversation is gone (e.g. removed after its retention period)."""
    issued = services.visitors.issue("conv-missing", "default")
    api.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {issued.token}"


def test_start_returns_the_welcome_question_and_stores_the_contact_profile(
    api: Any, services: Services
) -> None:
    response = api.post("/v1/conversations", json={
        "contact": {"name": "Ada", "attributes": {"plan": "pro"}}})
    assert response.status_code == 201
    body = response.get_json()
    assert body["state"] == "ask"
    assert body["welcome"]["text"] == "Hello! How can I help?"
    assert body["visitor_token"].startswith("sfv_") and body["visitor_token_expires_in"] == 7200
    assert response.headers["Location"].endswith(body["conversation_id"])
    # A browser's visitor is anonymous: the server made the contact, and a token to keep it.
    assert body["identity"] == "anonymous" and body["contact_id"].startswith("_v:")
    assert body["contact_token"].startswith("sfk_")
    assert body["contact_token_expires_in"] == 90 * 86400
    assert services.store.attributes(body["contact_id"]) == {"name": "Ada", "plan": "pro"}


@pytest.mark.parametrize(("body", "field"), [
    ({"contact": []}, "contact"),
    ({"contact": {"id": "has spaces"}}, "contact"),
    ({"contact": {"id": "_v:taken"}}, "contact"),
    ({"contact": {"id_hash": "ab" * 32}}, "contact"),
    ({"contact": {"id": "ok", "id_hash": "not hex"}}, "contact"),
    ({"contact": {"id": "ok"}, "contact_token": 5}, "contact_token"),
    ({"contact": {"id": "ok", "email": "not-an-email"}}, "contact"),
    ({"contact": {"id": "ok"}, "flow": "../etc"}, "flow"),
    ({"contact": {"id": "ok"}, "surprise": 1}, "surprise"),
])
def test_bad_start_requests_get_422_naming_the_field_and_create_nothing(
    api: Any, services: Services, body: dict[str, Any], field: str
) -> None:
    before = conversation_count(services)
    response = api.post("/v1/conversations", json=body)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "invalid_request" and field in error["fields"]
    assert conversation_count(services) == before


def test_unknown_flow_gets_422_listing_the_flows(api: Any, services: Services) -> None:
    before = conversation_count(services)
    response = api.post("/v1/conversations", json={"contact": {"id": "x"}, "flow": "nope"})
    assert response.status_code == 422
    assert "responses" in response.get_json()["error"]["fields"]["flow"]
    assert conversation_count(services) == before


def test_a_body_that_is_not_json_gets_400(api: Any) -> None:
    response = api.post("/v1/conversations", data="hello", content_type="text/plain")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_json"


@pytest.mark.parametrize(("body", "field"), [
    ({}, "text"), ({"text": ""}, "text"), ({"text": "   "}, "text"),
    ({"text": "x" * 51}, "text"), ({"text": "hi", "client_message_id": "a b"},
                                   "client_message_id"),
])
def test_bad_messages_get_422_and_reach_neither_transcript_nor_worker(
    api: Any, services: Services, queue: RecordingQueue, body: dict[str, Any], field: str
) -> None:
    conversation_id = start(api)
    response = api.post(f"/v1/conversations/{conversation_id}/messages", json=body)
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]
    assert len(services.store.transcript(conversation_id)) == 1
    assert services.store.mailbox(conversation_id) == []
    assert services.store.wake_of(conversation_id) is None


def test_message_to_an_unknown_conversation_gets_404(api: Any, services: Services) -> None:
    holding_a_token_for_a_missing_conversation(api, services)
    response = api.post("/v1/conversations/conv-missing/messages", json={"text": "hi"})
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "conversation_not_found"
    assert services.store.wake_of("conv-missing") is None


def test_a_message_is_kept_and_the_same_id_again_is_a_duplicate(
    api: Any, services: Services, queue: RecordingQueue
) -> None:
    conversation_id = start(api)
    url = f"/v1/conversations/{conversation_id}/messages"
    first = api.post(url, json={"text": "hi", "client_message_id": "m1"})
    second = api.post(url, json={"text": "hi", "client_message_id": "m1"})
    assert first.status_code == second.status_code == 202
    assert (first.get_json()["duplicate"], second.get_json()["duplicate"]) == (False, True)
    assert [m.text for m in services.store.mailbox(conversation_id)] == ["hi"]
    services.scheduler.run_once()  # the message woke the conversation, once
    assert queue.drains == [conversation_id]


def test_messages_after_a_cursor_and_bad_cursors(api: Any, services: Services) -> None:
    conversation_id = start(api)
    url = f"/v1/conversations/{conversation_id}/messages"
    for text in ("one", "two"):
        api.post(url, json={"text": text})
    page = api.get(f"{url}?after=1").get_json()
    assert [m["text"] for m in page["messages"]] == ["one", "two"]
    assert page["next_cursor"] == 3
    assert api.get(f"{url}?after=3").get_json()["messages"] == []
    assert api.get(f"{url}?after=-1").status_code == 422
    assert api.get(f"{url}?limit=abc").status_code == 422
    holding_a_token_for_a_missing_conversation(api, services)
    assert api.get("/v1/conversations/conv-missing/messages").status_code == 404


def test_openapi_document_lists_the_widget_api(api: Any) -> None:
    document = api.get("/openapi.json").get_json()
    assert "/v1/conversations/{conversation_id}/messages" in document["paths"]
    assert "StartConversation" in document["components"]["schemas"]
    schemas = document["components"]["schemas"]
    # One declared limit (max_message_chars, 50 here) for every route that takes a message.
    for schema, field in (("PostMessage", "text"), ("AgentMessage", "text"),
                          ("InboundText", "text")):
        assert schemas[schema]["properties"][field]["maxLength"] == 50, schema


def test_health_and_readiness_on_a_durable_redis(api: Any) -> None:
    assert api.get("/healthz").status_code == 200
    ready = api.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["warnings"] == []


def test_unknown_route_and_method_get_json_errors(api: Any) -> None:
    assert api.get("/v1/nowhere").get_json()["error"]["code"] == "not_found"
    assert api.delete("/v1/conversations").status_code == 405
