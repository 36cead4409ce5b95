"""Who may use a conversation through the public widget routes: its visitor token, from the sites
its flow lists. Every refusal is checked to change nothing in Redis."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from supportflow.adapters.visitor_tokens import VisitorTokens
from supportflow.bootstrap import Services, bootstrap
from supportflow.settings import load_settings
from supportflow.web import create_app
from tests.conftest import WIDGET_SITE
from tests.fakes import RecordingQueue

PREFIX = "accesstest"
SECRET = "widget-secret-for-the-access-tests"
OTHER_SITE = "https://elsewhere.example"


@pytest.fixture
def queue() -> RecordingQueue:
    return RecordingQueue()


@pytest.fixture
def services(redis_url: str, flows_dir: Path, queue: RecordingQueue) -> Services:
    settings = load_settings({"redis_url": redis_url, "flows_dir": flows_dir, "key_prefix": PREFIX,
                              "widget_secret": SECRET, "rate_limits_enabled": False})
    return bootstrap(settings, queue=queue, assistants=object())  # type: ignore[arg-type]


@pytest.fixture
def api(services: Services) -> Iterator[Any]:
    yield create_app({"TESTING": True, "SUPPORTFLOW_SERVICES": services}).test_client()


def start(api: Any, flow: str = "default", **headers: str) -> Any:
    return api.post("/v1/conversations", json={"contact": {"id": "v-1"}, "flow": flow},
                    headers=headers)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def snapshot(services: Services, conversation_id: str) -> tuple[int, Any, Any]:
    """Every key under the test prefix, the transcript and the mailbox."""
    client: redis.Redis = services.redis
    keys = sum(1 for _ in client.scan_iter(f"{PREFIX}:*", count=1000))
    return keys, services.store.transcript(conversation_id), services.store.mailbox(conversation_id)


ROUTES: dict[str, Callable[[Any, str, dict[str, str]], Any]] = {
    "state": lambda api, cid, h: api.get(f"/v1/conversations/{cid}", headers=h),
    "read": lambda api, cid, h: api.get(f"/v1/conversations/{cid}/messages", headers=h),
    "post": lambda api, cid, h: api.post(f"/v1/conversations/{cid}/messages", headers=h,
                                         json={"text": "let me in", "client_message_id": "x-1"}),
    "events": lambda api, cid, h: api.get(f"/v1/conversations/{cid}/events", headers=h),
    "renew": lambda api, cid, h: api.post(f"/v1/conversations/{cid}/token", headers=h),
}


def expired_token(conversation_id: str) -> str:
    past = VisitorTokens(lambda: [SECRET], ttl_s=60, clock=lambda: time.time() - 3600)
    return past.issue(conversation_id, "default").token


CREDENTIALS: dict[str, tuple[Callable[[str, str], dict[str, str]], int, str]] = {
    "no token": (lambda mine, other: {}, 401, "visitor_token_required"),
    "a wrong token": (lambda mine, other: bearer("sfv_" + "A" * 40), 401, "visitor_token_invalid"),
    "a forged token": (lambda mine, other: bearer(VisitorTokens(
        lambda: ["not-our-secret"], ttl_s=60).issue(mine, "default").token), 401,
        "visitor_token_invalid"),
    "an API token": (lambda mine, other: bearer("sft_" + "A" * 43), 401, "visitor_token_invalid"),
    "another conversation's token": (lambda mine, other: bearer(other), 403,
                                     "visitor_token_mismatch"),
    "an expired token": (lambda mine, other: bearer(expired_token(mine)), 401,
                         "visitor_token_expired"),
}


@pytest.mark.parametrize("route", sorted(ROUTES))
@pytest.mark.parametrize("credential", list(CREDENTIALS))
def test_a_conversation_opens_only_to_its_own_unexpired_token_and_refusals_change_nothing(
    api: Any, services: Services, queue: RecordingQueue, route: str, credential: str
) -> None:
    mine = start(api).get_json()["conversation_id"]
    other = start(api).get_json()["visitor_token"]
    make_headers, status, code = CREDENTIALS[credential]
    before = snapshot(services, mine)
    response = ROUTES[route](api, mine, make_headers(mine, other))
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == code
    assert snapshot(services, mine) == before
    assert services.store.wake_of(mine) is None  # nobody was woken


def test_the_right_token_opens_every_route_and_renewal_gives_a_working_token(
    api: Any, services: Services, queue: RecordingQueue
) -> None:
    started = start(api).get_json()
    cid, headers = started["conversation_id"], bearer(started["visitor_token"])
    assert ROUTES["post"](api, cid, headers).status_code == 202
    assert ROUTES["state"](api, cid, headers).get_json()["state"] == "ask"
    assert [m["text"] for m in ROUTES["read"](api, cid, headers).get_json()["messages"]] == [
        "Hello! How can I help?", "let me in"]
    renewed = ROUTES["renew"](api, cid, headers)
    assert renewed.status_code == 200
    body = renewed.get_json()
    assert body["conversation_id"] == cid and body["visitor_token_expires_in"] == 7200
    assert ROUTES["state"](api, cid, bearer(body["visitor_token"])).status_code == 200
    services.scheduler.run_once()  # the message woke the conversation
    assert queue.drains == [cid]


def test_a_token_never_travels_in_a_url_so_a_query_parameter_opens_nothing(api: Any) -> None:
    started = start(api).get_json()
    url = f"/v1/conversations/{started['conversation_id']}?visitor_token={started['visitor_token']}"
    assert api.get(url).status_code == 401


def test_preflight_is_answered_for_origins_a_flow_lists_and_refused_for_others(api: Any) -> None:
    asked = {"Origin": WIDGET_SITE, "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization, content-type"}
    for path in ("/v1/conversations", "/v1/conversations/conv-any/messages"):
        answer = api.options(path, headers=asked)
        assert answer.status_code == 204
        assert answer.headers["Access-Control-Allow-Origin"] == WIDGET_SITE
        assert "POST" in answer.headers["Access-Control-Allow-Methods"]
        assert "Authorization" in answer.headers["Access-Control-Allow-Headers"]
        assert "Last-Event-ID" in answer.headers["Access-Control-Allow-Headers"]
        assert int(answer.headers["Access-Control-Max-Age"]) > 0
    refused = api.options("/v1/conversations", headers={**asked, "Origin": OTHER_SITE})
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in refused.headers
    wrong_method = api.options("/v1/conversations", headers={
        **asked, "Access-Control-Request-Method": "DELETE"})
    assert wrong_method.status_code == 403


def test_a_listed_site_starts_and_uses_a_conversation_and_reads_the_errors(api: Any) -> None:
    started = start(api, Origin=WIDGET_SITE)
    assert started.status_code == 201
    assert started.headers["Access-Control-Allow-Origin"] == WIDGET_SITE
    assert "Retry-After" in started.headers["Access-Control-Expose-Headers"]
    assert "Origin" in started.headers["Vary"]
    body = started.get_json()
    cid, headers = body["conversation_id"], {**bearer(body["visitor_token"]), "Origin": WIDGET_SITE}
    events = ROUTES["events"](api, cid, headers)
    assert events.status_code == 200 and events.headers["Access-Control-Allow-Origin"] == WIDGET_SITE
    events.close()
    # Errors reach the widget too, so it can tell a lost conversation from a network failure.
    refused = ROUTES["state"](api, cid, {"Origin": WIDGET_SITE})
    assert refused.status_code == 401
    assert refused.headers["Access-Control-Allow-Origin"] == WIDGET_SITE


def test_a_site_no_flow_lists_is_refused_without_cors_headers_and_creates_nothing(
    api: Any, services: Services
) -> None:
    client: redis.Redis = services.redis
    before = client.zcard(services.store.key("conversations"))
    for origin in (OTHER_SITE, WIDGET_SITE.replace("localhost", "127.0.0.1"), "null"):
        refused = start(api, Origin=origin)
        assert refused.status_code == 403, origin
        assert refused.get_json()["error"]["code"] == "origin_not_allowed"
        assert "Access-Control-Allow-Origin" not in refused.headers
    assert client.zcard(services.store.key("conversations")) == before


def test_each_flow_decides_for_its_own_conversations(api: Any, services: Services) -> None:
    client: redis.Redis = services.redis
    before = client.zcard(services.store.key("conversations"))
    # The site is listed by the default flow only: it may not start the "responses" flow...
    refused = start(api, flow="responses", Origin=WIDGET_SITE)
    assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused.headers
    assert client.zcard(services.store.key("conversations")) == before
    # ... nor use a "responses" conversation started elsewhere, even with its token.
    body = start(api, flow="responses").get_json()
    headers = {**bearer(body["visitor_token"]), "Origin": WIDGET_SITE}
    for route in ("state", "read", "post", "events", "renew"):
        answer = ROUTES[route](api, body["conversation_id"], headers)
        assert answer.status_code == 403, route
        assert "Access-Control-Allow-Origin" not in answer.headers
    assert len(services.store.transcript(body["conversation_id"])) == 1


def test_requests_without_origin_or_from_the_apps_own_origin_need_no_cors(api: Any) -> None:
    for headers in ({}, {"Origin": "http://localhost"}):
        started = start(api, flow="responses", **headers)
        assert started.status_code == 201
        assert "Access-Control-Allow-Origin" not in started.headers


def test_the_openapi_document_lists_every_refusal_of_the_widget_routes(api: Any) -> None:
    document = api.get("/openapi.json").get_json()
    assert document["components"]["securitySchemes"]["visitorToken"]["scheme"] == "bearer"
    for path in ("/v1/conversations/{conversation_id}", "/v1/conversations/{conversation_id}/messages",
                 "/v1/conversations/{conversation_id}/events",
                 "/v1/conversations/{conversation_id}/token"):
        for method, operation in document["paths"][path].items():
            if method in ("parameters", "options"):
                continue
            assert {"401", "403", "429"} <= set(operation["responses"]), (method, path)
            assert operation["security"] == [{"visitorToken": []}]
            assert "Retry-After" in operation["responses"]["429"]["headers"]
        assert {"204", "403"} <= set(document["paths"][path]["options"]["responses"])
    assert {"403", "429"} <= set(document["paths"]["/v1/conversations"]["post"]["responses"])
