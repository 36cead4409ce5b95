"""Malformed input on every route: a clear JSON 4xx, never a 500, and nothing changes in Redis."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from supportflow.adapters.redis_store import RedisConversationStore
from supportflow.domain.access import Role
from supportflow.domain.inbox import InboxKind
from supportflow.domain.model import Conversation
from supportflow.web import create_app
from tests.helpers import free_port
from tests.isolated import Isolated, signed_chatwoot, signed_webhook

BODIES: dict[str, tuple[bytes, int]] = {
    "5000 nested [": (b"[" * 5000, 400),
    "objects nested 100 deep": (b'{"a":' * 100 + b"1" + b"}" * 100, 400),
    "not JSON": (b"hello", 400),
    "an array": (b'["text"]', 400),
    "a string": (b'"text"', 400),
    "invalid UTF-8": (b'{"text": "\xff\xfe"}', 400),
    "NaN": (b'{"text": NaN}', 400),
    "too large": (b'{"text": "' + b"x" * 300_000 + b'"}', 413),
    "wrong types": (b'{"text": 5, "contact": [], "message": 1, "event": 2}', 422),
}
Route = Callable[[Isolated, bytes], tuple[str, dict[str, str]]]


def _widget_start(iso: Isolated, body: bytes) -> tuple[str, dict[str, str]]:
    return "/v1/conversations", {}


def _widget_message(iso: Isolated, body: bytes) -> tuple[str, dict[str, str]]:
    conversation = iso.start()
    return f"/v1/conversations/{conversation}/messages", iso.visitor[conversation]


def _agent_message(iso: Isolated, body: bytes) -> tuple[str, dict[str, str]]:
    return f"/v1/agent/conversations/{iso.start()}/messages", iso.token(Role.AGENT)


def _webhook(iso: Isolated, body: bytes) -> tuple[str, dict[str, str]]:
    inbox = iso.inbox(InboxKind.WEBHOOK)
    return f"/v1/webhooks/{inbox.name}", signed_webhook(inbox, body)


def _chatwoot(iso: Isolated, body: bytes) -> tuple[str, dict[str, str]]:
    inbox = iso.inbox(InboxKind.CHATWOOT)
    return f"/v1/integrations/chatwoot/{inbox.name}", signed_chatwoot(body)


ROUTES: dict[str, Route] = {"start": _widget_start, "widget message": _widget_message,
                            "agent message": _agent_message, "webhook": _webhook,
                            "chatwoot": _chatwoot}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("kind", BODIES)
def test_a_malformed_body_gets_a_json_4xx_and_changes_nothing(
        isolated: Isolated, route: str, kind: str) -> None:
    body, status = BODIES[kind]
    path, headers = ROUTES[route](isolated, body)
    before = isolated.snapshot()
    response = isolated.api.post(path, data=body, headers={"content-type": "application/json",
                                                           **headers})
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"]["message"]
    assert isolated.snapshot() == before
    assert isolated.queue.drains == []


def test_a_body_that_is_not_declared_json_gets_400(isolated: Isolated) -> None:
    response = isolated.api.post("/v1/conversations", data='{"contact": {"id": "a"}}',
                                 content_type="text/plain")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_json"


@pytest.mark.parametrize(("query", "field"), [
    ("after=99999999999999999999999", "after"), ("after=-1", "after"), ("after=1.5", "after"),
    ("limit=0", "limit"), ("limit=501", "limit"), ("limit=abc", "limit"), ("after=", "after"),
])
def test_out_of_range_cursors_and_limits_get_422_naming_the_parameter(
        isolated: Isolated, query: str, field: str) -> None:
    conversation = isolated.start()
    response = isolated.api.get(f"/v1/conversations/{conversation}/messages?{query}",
                                headers=isolated.visitor[conversation])
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]


def test_unknown_query_parameters_are_ignored(isolated: Isolated) -> None:
    conversation = isolated.start()
    response = isolated.api.get(f"/v1/conversations/{conversation}/messages?after=0&_=1234&x=y",
                                headers=isolated.visitor[conversation])
    assert response.status_code == 200
    assert len(response.get_json()["messages"]) == 1


@pytest.mark.parametrize(("header", "query"), [
    ("99999999999999999999999", ""), ("\u00b2", ""), ("-1", ""), ("12abc", ""),
    ("", "after=99999999999999999999999"),
])
def test_an_absurd_last_event_id_or_cursor_gets_422_before_the_stream_starts(
        isolated: Isolated, header: str, query: str) -> None:
    conversation = isolated.start()
    headers = {"Last-Event-ID": header} if header else {}
    headers.update(isolated.visitor[conversation])
    response = isolated.api.get(f"/v1/conversations/{conversation}/events?{query}", headers=headers)
    assert response.status_code == 422
    assert response.content_type == "application/json"
    assert ("Last-Event-ID" if header else "after") in response.get_json()["error"]["fields"]


@pytest.mark.parametrize("cursor", ["99999999999999999999-0", "1-99999999999999999999", "1-1-1",
                                    "abc"])
def test_an_absurd_handoff_stream_id_gets_422(isolated: Isolated, cursor: str) -> None:
    agent = isolated.token(Role.AGENT)
    by_header = isolated.api.get("/v1/agent/handoffs/stream",
                                 headers={**agent, "Last-Event-ID": cursor})
    by_query = isolated.api.get(f"/v1/agent/handoffs/stream?after={cursor}", headers=agent)
    assert by_header.status_code == by_query.status_code == 422


@pytest.mark.parametrize(("path", "field"), [
    ("/v1/ops/dead-letters?limit=abc", "limit"), ("/v1/ops/dead-letters?limit=0", "limit"),
    ("/v1/ops/timeseries?minutes=nan", "minutes"), ("/v1/ops/timeseries?minutes=0", "minutes"),
])
def test_bad_ops_parameters_get_422(isolated: Isolated, path: str, field: str) -> None:
    response = isolated.api.get(path, headers=isolated.token(Role.OPS))
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]


def test_ids_that_are_not_conversation_ids_name_no_conversation(isolated: Isolated) -> None:
    conversation = isolated.start()
    agent = isolated.token(Role.AGENT)
    for suffix in (":transcript", ":ids", ":mailbox"):
        seen = isolated.api.get(f"/v1/conversations/{conversation}{suffix}",
                                headers=isolated.visitor[conversation])
        assert seen.status_code in (403, 404)  # the token opens its conversation only
        claim = isolated.api.post(f"/v1/agent/conversations/{conversation}{suffix}/claim",
                                  headers=agent)
        assert claim.status_code == 404


def test_every_405_carries_allow_and_a_json_body(isolated: Isolated) -> None:
    methods: dict[str, set[str]] = {}
    for rule in isolated.app.url_map.iter_rules():  # a path may be served by several rules
        methods.setdefault(rule.rule, set()).update(set(rule.methods or ()) - {"HEAD", "OPTIONS"})
    for rule, allowed in methods.items():
        wrong = next(m for m in ("DELETE", "PUT", "PATCH", "POST") if m not in allowed)
        path = re.sub(r"<(?:\w+:)?\w+>", "x", rule)
        response = isolated.api.open(path, method=wrong)
        assert response.status_code == 405, (rule, wrong, response.status_code)
        assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}
        assert response.get_json()["error"]["code"] == "method_not_allowed"


def test_an_unknown_route_gets_a_json_404(isolated: Isolated) -> None:
    response = isolated.api.get("/v1/nowhere")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


# What each route is sent while Redis is down: a well-formed request (OAuth's are forms), so
# that it gets as far as needing Redis.
OAUTH_CLIENT = {"client_id": "c", "client_secret": "s"}
DOWN_REQUESTS: dict[str, dict[str, Any]] = {
    "/v1/conversations": {"json": {"contact": {"id": "a"}}},
    "/oauth/token": {"data": {"grant_type": "authorization_code", "code": "x",
                              "redirect_uri": "https://x.example/cb", **OAUTH_CLIENT}},
    "/oauth/revoke": {"data": {"token": "t", **OAUTH_CLIENT}},
    "/oauth/authorize": {"query_string": {"response_type": "code", "client_id": "c",
                                          "redirect_uri": "https://x.example/cb", "state": "s",
                                          "scope": "notes:write"}},
}


def test_while_redis_is_down_every_route_answers_503_with_retry_after(flows_dir: Path) -> None:
    # Errors outside the views (the session) are handled, not raised, as in production.
    app = create_app({"TESTING": True, "PROPAGATE_EXCEPTIONS": False, "SUPPORTFLOW_SETTINGS": {
        "redis_url": f"redis://127.0.0.1:{free_port()}/0", "flows_dir": flows_dir}})
    # Pages without a session redirect to sign-in, and these need no Redis at all.
    api, needs_no_redis = app.test_client(), ("/healthz", "/openapi.json", "/v1/actions/openapi.json",
                                             "/static", "/demo", "/agent", "/ops")
    for rule in app.url_map.iter_rules():
        if rule.rule == "/" or rule.rule.startswith(needs_no_redis):
            continue
        path = re.sub(r"<(?:\w+:)?\w+>", "x",
                      rule.rule.replace("<conversation_id>", "conv-" + "0" * 32))
        for method in sorted(set(rule.methods or ()) - {"HEAD", "OPTIONS"}):
            request = DOWN_REQUESTS.get(rule.rule, {"json": {"text": "hi"}})
            response = api.open(path, method=method, headers={"Authorization": "Bearer sft_x"},
                                **request)
            if (method, rule.rule) == ("POST", "/oauth/authorize"):
                assert response.status_code == 400  # no CSRF token: refused before any read
                continue
            # Chatwoot's route answers 429, so that Chatwoot tries again (README: Chatwoot).
            expected = 429 if "chatwoot" in rule.rule else 503
            assert response.status_code == expected, (method, rule.rule, response.status_code)
            assert response.headers["Retry-After"].isdigit()
            assert response.get_json()["error" if rule.rule != "/readyz" else "status"]
    assert api.get("/readyz").get_json()["status"] == "unavailable"


class BrokenStore(RedisConversationStore):
    """A store with a bug: reading a conversation fails."""

    def get(self, conversation_id: str) -> Conversation | None:
        raise RuntimeError("a bug")


def test_a_bug_is_a_json_500_logged_with_the_request_id(
        isolated: Isolated, caplog: pytest.LogCaptureFixture) -> None:
    conversation = isolated.start()
    isolated.services.store = BrokenStore(isolated.redis, prefix=isolated.prefix)
    with caplog.at_level(logging.ERROR, logger="supportflow.web"):
        response = isolated.api.get(f"/v1/conversations/{conversation}",
                                    headers={"X-Request-Id": "req-4242",
                                             **isolated.visitor[conversation]})
    assert response.status_code == 500
    error = response.get_json()["error"]
    assert error["code"] == "internal_error" and "req-4242" in error["message"]
    assert "a bug" not in error["message"]
    [record] = [r for r in caplog.records if "req-4242" in r.getMessage()]
    assert record.exc_info is not None


class StoreLosingRedis(RedisConversationStore):
    """A store whose Redis goes away once a stream has started."""

    def transcript(self, conversation_id: str, after: int = 0, limit: int = 100) -> Any:
        raise redis.ConnectionError("Connection refused")


def test_a_stream_ends_cleanly_when_redis_goes_away_mid_stream(isolated: Isolated) -> None:
    conversation = isolated.start()
    isolated.services.store = StoreLosingRedis(isolated.redis, prefix=isolated.prefix)
    response = isolated.api.get(f"/v1/conversations/{conversation}/events?after=0",
                                headers=isolated.visitor[conversation])
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert body.startswith("retry: 1000\n\n")
    assert body.endswith(": store unavailable; reconnect with Last-Event-ID\n\n")
