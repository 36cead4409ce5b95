"""The OpenAPI document, generated from the same marshmallow schemas that validate requests."""

from __future__ import annotations

import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response, jsonify

from supportflow import __version__
from supportflow.settings import Settings

from .action_spec import build_actions_spec, security_scheme
from .agent_schemas import AGENT_ROUTES, AGENT_SCHEMAS
from .deps import services
from .knowledge_schemas import KNOWLEDGE_ROUTES, ArticleInputSchema, ArticleSchema, ArticlesSchema
from .oauth import OAUTH_ROUTES
from .openai_webhooks import OpenAIEventSchema
from .schemas import ErrorSchema, MessagesQuerySchema, MessageText
from .webhooks import InboundWebhookSchema
from .widget import SCHEMAS

bp = Blueprint("openapi", __name__)


def _json(schema: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, **_json("Error")}


_VISITOR: list[dict[str, list[str]]] = [{"visitorToken": []}]
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before trying again",
                                "schema": {"type": "integer"}}}
_CORS = ("Cross-origin requests (and their preflights) are answered for the sites the flow lists "
         "in `widget.allowed_origins`; a preflight, which carries no body or token, for the sites "
         "any flow lists.")
_SSE = {"content": {"text/event-stream": {"schema": {"type": "string"}}}}


def _widget(summary: str, responses: dict[str, Any], *, token: bool = True,
            **more: Any) -> dict[str, Any]:
    """A public widget route: origins per flow, a visitor token, rate limits."""
    refusals: dict[str, Any] = {
        "403": _error("Another conversation's visitor token, or a site the flow does not list"
                      if token else "A site the flow does not list"),
        "429": {"description": "Too many requests; retry after Retry-After",
                "headers": _RETRY_AFTER, **_json("Error")},
    }
    if token:
        refusals["401"] = _error("No visitor token, or an invalid or expired one")
    operation = {"summary": summary, "description": _CORS, "responses": {**responses, **refusals},
                 **more}
    if token:
        operation["security"] = _VISITOR
    return operation


def _preflight() -> dict[str, Any]:
    return {"summary": "CORS preflight", "description": _CORS,
            "parameters": [{"in": "header", "name": "Access-Control-Request-Method",
                            "schema": {"type": "string"}}],
            "responses": {"204": {"description": "Preflight answered for a listed site"},
                          "200": {"description": "Not a preflight: the methods, in Allow"},
                          "403": _error("Preflight from a site no flow lists")}}


ROUTES: dict[str, dict[str, Any]] = {
    "/v1/conversations": {
        "post": _widget("Start a conversation for a contact (returns its visitor token)", {
            "201": {"description": "Started", **_json("StartedConversation")},
            "400": _error("Body is not JSON"), "422": _error("Invalid fields")}, token=False,
            requestBody={"required": True, **_json("StartConversation")}),
        "options": _preflight()},
    "/v1/conversations/{conversation_id}": {
        "get": _widget("A conversation's state", {
            "200": {"description": "Found", **_json("Conversation")},
            "404": _error("Unknown conversation")}),
        "options": _preflight()},
    "/v1/conversations/{conversation_id}/messages": {
        "post": _widget("Post a customer message", {
            "202": {"description": "Accepted", **_json("Receipt")},
            "404": _error("Unknown conversation"), "409": _error("Conversation closed"),
            "422": _error("Invalid fields")},
            requestBody={"required": True, **_json("PostMessage")}),
        "get": _widget("Messages after a cursor", {
            "200": {"description": "A page", **_json("MessagePage")},
            "404": _error("Unknown conversation")},
            parameters=[{"in": "query", "schema": MessagesQuerySchema}]),
        "options": _preflight()},
    "/v1/conversations/{conversation_id}/events": {
        "get": _widget("The conversation's new messages as server-sent events", {
            "200": {"description": "message events, id = seq", **_SSE},
            "404": _error("Unknown conversation"), "422": _error("Bad cursor")},
            parameters=[{"in": "query", "name": "after", "schema": {"type": "integer"}},
                        {"in": "header", "name": "Last-Event-ID", "schema": {"type": "string"}}]),
        "options": _preflight()},
    "/v1/conversations/{conversation_id}/token": {
        "post": _widget("A fresh visitor token for a conversation that is not closed", {
            "200": {"description": "Renewed", **_json("VisitorToken")},
            "404": _error("Unknown conversation"), "409": _error("Conversation closed")}),
        "options": _preflight()},
}


_OPS: list[dict[str, list[str]]] = [{"bearerAuth": []}]
_SIGNED = "Signed per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature)."

# Helpdesk, ops and health routes: their bodies are documented where the API defines them.
MORE_ROUTES: dict[str, dict[str, Any]] = {
    "/v1/webhooks/{inbox_name}": {"post": {
        "summary": "A helpdesk posts a customer message", "description": _SIGNED,
        "requestBody": {"required": True, **_json("InboundWebhook")},
        "responses": {"202": {"description": "Accepted"},
                      "200": {"description": "A replayed webhook-id: no effect"},
                      "401": _error("Forged, tampered or stale signature"),
                      "404": _error("Unknown inbox"), "422": _error("Invalid fields")}}},
    "/v1/integrations/chatwoot/{inbox_name}": {"post": {
        "summary": "Chatwoot's agent-bot events (message_created)",
        "responses": {"202": {"description": "Taken"}, "200": {"description": "Ignored"},
                      "401": _error("Bad X-Chatwoot-Signature"),
                      "404": _error("Unknown inbox")}}},
    "/v1/integrations/openai/{connector}": {"post": {
        "summary": "OpenAI's response events for a vault connector (`default`: OPENAI_API_KEY)",
        "description": _SIGNED + " The signing secret is the connector's webhook secret. "
        "response.completed, .failed, .cancelled and .incomplete wake the conversation waiting "
        "on that response; other events are acknowledged and ignored.",
        "requestBody": {"required": True, **_json("OpenAIEvent")},
        "responses": {"200": {"description": "Verified: outcome woke, unknown, replayed (a "
                                             "webhook-id seen before: no effect) or ignored"},
                      "400": _error("Body is not JSON"),
                      "401": _error("Forged, tampered or stale signature"),
                      "404": _error("The connector has no webhook secret"),
                      "422": _error("Not an event"),
                      "503": _error("The vault cannot be read")}}},
    "/v1/ops/dead-letters": {"get": {
        "summary": "Deliveries given up on", "security": _OPS,
        "responses": {"200": {"description": "Dead letters"}, "401": _error("No token"),
                      "403": _error("Not an ops token")}}},
    "/v1/ops/dead-letters/{delivery_id}/replay": {"post": {
        "summary": "Send a dead delivery again, same webhook-id", "security": _OPS,
        "responses": {"202": {"description": "Scheduled"}, "404": _error("No such dead letter"),
                      "401": _error("No token"), "403": _error("Not an ops token")}}},
    "/v1/ops/overview": {"get": {
        "summary": "What waits on what: states, queues, polls, workers, failures",
        "security": _OPS, "responses": {"200": {"description": "The overview"},
                                        "401": _error("No token"),
                                        "403": _error("Not an ops token")}}},
    "/v1/ops/timeseries": {"get": {
        "summary": "Reply latency and queue depth samples (?minutes=60)", "security": _OPS,
        "responses": {"200": {"description": "Points, oldest first"},
                      "401": _error("No token"), "403": _error("Not an ops token")}}},
    "/metrics": {"get": {
        "summary": "Prometheus metrics", "security": _OPS,
        "responses": {"200": {"description": "Prometheus text format"},
                      "401": _error("No token"), "403": _error("Not an ops token")}}},
    "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "Up"}}}},
    "/readyz": {"get": {"summary": "Redis reachable as master, durable, with the replicas the "
                                   "replica wait needs; a worker seen recently. The body shows "
                                   "the Redis topology and the active beat",
                        "responses": {"200": {"description": "Ready"},
                                      "503": {"description": "Not ready, with the reasons"}}}},
}


_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying",
                                "schema": {"type": "integer"}}}
_UNAVAILABLE = {**_error("Redis is out of reach for a moment (a failover): retry after Retry-After"),
                "headers": _RETRY_AFTER}
# Accept paths: 202 only once a replica confirmed the message (when replicas are configured).
_NOT_REPLICATED = {**_error("Not confirmed by a Redis replica in time (not_replicated), or Redis "
                            "out of reach (unavailable): send it again with the same id"),
                   "headers": _RETRY_AFTER}
_ACCEPT_PATHS = {("/v1/conversations/{conversation_id}/messages", "post"),
                 ("/v1/webhooks/{inbox_name}", "post"),
                 ("/v1/integrations/chatwoot/{inbox_name}", "post")}


def _with_unavailable(path: str, operations: dict[str, Any], *, resolved: bool = False
                      ) -> dict[str, Any]:
    """Every operation that reads or writes Redis may answer 503 while Redis fails over.

    `resolved`: for paths added after apispec ran, so schemas are given as $refs."""
    if path == "/healthz":
        return operations
    done: dict[str, Any] = {}
    for method, operation in operations.items():
        if not isinstance(operation, dict) or "responses" not in operation:
            done[method] = operation  # path-level fields such as parameters
            continue
        extra = _NOT_REPLICATED if (path, method) in _ACCEPT_PATHS else _UNAVAILABLE
        if resolved:
            extra = {**extra, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Error"}}}}
        done[method] = {**operation, "responses": {"503": extra, **operation["responses"]}}
    return done


def _path_parameters(path: str) -> list[dict[str, Any]]:
    return [{"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"{(\w+)}", path)]


def build_spec(max_message_chars: int | None = None,
               public_url: str = "http://127.0.0.1:5000") -> dict[str, Any]:
    """The OpenAPI 3.0 document of the HTTP API, the GPT's actions included (message texts
    limited as the settings say)."""
    limit = Settings().max_message_chars if max_message_chars is None else max_message_chars

    def message_text_length(converter: Any, field: Any, **_: Any) -> dict[str, Any]:
        return {"minLength": 1, "maxLength": limit} if isinstance(field, MessageText) else {}

    plugin = MarshmallowPlugin()
    spec = APISpec("SupportFlow", __version__, "3.0.3", plugins=[plugin])
    assert plugin.converter is not None
    plugin.converter.add_attribute_function(message_text_length)  # type: ignore[no-untyped-call]
    spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme("sessionCookie", {"type": "apiKey", "in": "cookie",
                                                      "name": "sf_session"})
    spec.components.security_scheme("oauth2", security_scheme(public_url))
    spec.components.security_scheme("visitorToken", {
        "type": "http", "scheme": "bearer", "bearerFormat": "sfv_...",
        "description": "The visitor token a conversation's start returned (renew it with "
                       "POST .../token); it opens that conversation only."})
    schemas = {**SCHEMAS, **AGENT_SCHEMAS, "Error": ErrorSchema,
               "InboundWebhook": InboundWebhookSchema, "ArticleInput": ArticleInputSchema,
               "Article": ArticleSchema, "Articles": ArticlesSchema,
               "OpenAIEvent": OpenAIEventSchema}
    for name, schema in schemas.items():
        spec.components.schema(name, schema=schema)
    routes = {**ROUTES, **AGENT_ROUTES, **MORE_ROUTES, **KNOWLEDGE_ROUTES, **OAUTH_ROUTES}
    for path, operations in routes.items():
        spec.path(path=path, operations=_with_unavailable(path, operations),
                  parameters=_path_parameters(path))
    document: dict[str, Any] = spec.to_dict()
    actions = build_actions_spec(public_url, "3.0.3")
    document["paths"].update({path: _with_unavailable(path, operations, resolved=True)
                              for path, operations in actions["paths"].items()})
    for name, schema in actions["components"]["schemas"].items():
        document["components"]["schemas"].setdefault(name, schema)
    return document


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """Serve the OpenAPI document."""
    settings = services().settings
    return jsonify(build_spec(settings.max_message_chars, settings.public_url))
