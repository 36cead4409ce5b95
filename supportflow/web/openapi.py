"""The OpenAPI document, generated from the same marshmallow schemas that validate requests.

Each route documents what is its own (its bodies, its 404 or 409); `complete()` adds what every
route shares, where it applies: 400/413/422 for bodies, 422 for parameters, 401/403 for tokens,
503 with Retry-After while Redis is unavailable. A test holds the served app to the document
with schemathesis (tests/integration/test_schemathesis.py).

Over 300 lines on purpose: the widget, helpdesk and ops routes' entries live beside
`complete()`, whose shared answers they leave out.
"""

from __future__ import annotations

import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response, jsonify

from supportflow import __version__
from supportflow.settings import Settings

from .action_spec import build_actions_spec, security_scheme
from .agent_schemas import AGENT_ROUTES, AGENT_SCHEMAS, StreamQuerySchema, last_event_id
from .contacts import CONTACT_ROUTES, ErasureSchema
from .deps import services
from .doc_schemas import DOC_SCHEMAS, sse
from .inputs import MAX_DEPTH
from .knowledge_schemas import KNOWLEDGE_ROUTES, ArticleInputSchema, ArticleSchema, ArticlesSchema
from .oauth import OAUTH_ROUTES
from .openai_webhooks import OpenAIEventSchema
from .ops import TimeseriesQuerySchema
from .schemas import ErrorSchema, MessagesQuerySchema, message_text_length
from .webhooks import ChatwootEventSchema, DeadLettersQuerySchema, InboundWebhookSchema
from .widget import SCHEMAS

bp = Blueprint("openapi", __name__)


def _json(schema: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, **_json("Error")}


def _ok(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, **_json(schema)}


# Path parameters whose values have a known shape (anything else is a 404).
PATH_PATTERNS = {"conversation_id": "^conv-[0-9a-f]{32}$", "inbox_name": "^[a-z0-9][a-z0-9_-]{0,63}$",
                 "contact_id": "^[A-Za-z0-9._:@-]{1,128}$"}
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})
RETRY_AFTER = {"required": True, "schema": {"type": "integer", "minimum": 0},
               "description": "seconds to wait before trying again"}
SHARED_RESPONSES: dict[str, dict[str, Any]] = {
    "BadBody": _error(f"The body is not a JSON object (invalid JSON, not an object, not UTF-8, "
                      f"or nested deeper than {MAX_DEPTH} levels): invalid_json"),
    "TooLarge": _error("The body is larger than the service takes (256 KiB)"),
    "Invalid": _error("Invalid fields or parameters: fields says which and why"),
    "Unauthenticated": _error("No token, or an unknown or revoked one"),
    "Forbidden": _error("The token's role may not do this"),
    "Unavailable": {**_error("Redis (or the broker) is unavailable for a moment (a failover, "
                             "an outage), or the conversation is busy: try again after "
                             "Retry-After seconds"),
                    "headers": {"Retry-After": RETRY_AFTER}},
    "NotReplicated": {**_error("Not confirmed by a Redis replica in time (not_replicated), or "
                               "Redis out of reach (unavailable): send it again with the same id"),
                      "headers": {"Retry-After": RETRY_AFTER}},
}


_VISITOR: list[dict[str, list[str]]] = [{"visitorToken": []}]
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before trying again",
                                "schema": {"type": "integer"}}}
_CORS = ("Cross-origin requests (and their preflights) are answered for the sites the flow lists "
         "in `widget.allowed_origins`; a preflight, which carries no body or token, for the sites "
         "any flow lists.")


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


def _start() -> dict[str, Any]:
    """Starting a conversation: public, and also for trusted servers (a widget-role token)."""
    operation = _widget("Start a conversation (returns its visitor token)", {
        "201": {"description": "Started", **_json("StartedConversation")},
        "422": _error("Invalid fields, or a flow this deployment does not have "
                      "(unknown_flow; the document lists the flows it has)")}, token=False,
        requestBody={"required": True, **_json("StartConversation")},
        # No token (browsers), or a widget-role API token (trusted servers name contacts).
        security=[{}, {"bearerAuth": []}])
    operation["description"] = (
        "Browsers send no token: they get an anonymous contact (kept with contact_token), or "
        "the contact they name with a valid contact.id_hash. A widget-role (or admin) API token "
        "may name any contact. " + _CORS)
    operation["responses"].update({
        "401": _error("An API token that is unknown or revoked"),
        "403": _error("contact.id_hash wrong (identity_invalid), missing where the flow requires "
                      "it (identity_required) or uncheckable (identity_not_configured); an API "
                      "token of another role (forbidden); or a site the flow does not list")})
    return operation


def _preflight() -> dict[str, Any]:
    return {"summary": "CORS preflight", "description": _CORS, "x-never-503": True,
            "parameters": [{"in": "header", "name": "Access-Control-Request-Method",
                            "schema": {"type": "string"}}],
            "responses": {"204": {"description": "Preflight answered for a listed site"},
                          "200": {"description": "Not a preflight: the methods, in Allow"},
                          "403": _error("Preflight from a site no flow lists")}}


ROUTES: dict[str, dict[str, Any]] = {
    "/v1/conversations": {"post": _start(), "options": _preflight()},
    "/v1/conversations/{conversation_id}": {
        "get": _widget("A conversation's state", {
            "200": {"description": "Found", **_json("Conversation")},
            "404": _error("Unknown conversation")}),
        "options": _preflight()},
    "/v1/conversations/{conversation_id}/messages": {
        "post": _widget("Post a customer message", {
            "202": {"description": "Accepted", **_json("Receipt")},
            "404": _error("Unknown conversation"), "409": _error("Conversation closed")},
            requestBody={"required": True, **_json("PostMessage")}),
        "get": _widget("Messages after a cursor", {
            "200": {"description": "A page", **_json("MessagePage")},
            "404": _error("Unknown conversation")},
            parameters=[{"in": "query", "schema": MessagesQuerySchema}]),
        "options": _preflight()},
    "/v1/conversations/{conversation_id}/events": {
        "get": _widget("The conversation's new messages as server-sent events", {
            "200": sse("message", "^[0-9]+$", "Message",
                       "Messages after the cursor until the stream's time is up"),
            "404": _error("Unknown conversation"),
            "503": {**_error("This server holds as many open streams as it can (`streams_full`), "
                             "or the store is unavailable: retry after Retry-After, or poll "
                             "the messages"), "headers": _RETRY_AFTER}},
            parameters=[{"in": "query", "schema": StreamQuerySchema}, last_event_id("^[0-9]*$")]),
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
        "parameters": [{"in": "header", "name": name, "required": True, "schema": {"type": "string"}}
                       for name in ("webhook-id", "webhook-timestamp", "webhook-signature")],
        "requestBody": {"required": True, **_json("InboundWebhook")},
        "responses": {"202": _ok("Accepted", "Receipt"),
                      "200": _ok("A replayed webhook-id: no effect", "ReplayedWebhook"),
                      "401": _error("Forged, tampered or stale signature"),
                      "404": _error("Unknown inbox"),
                      "409": _error("The inbox names a flow this deployment does not have")}}},
    "/v1/integrations/chatwoot/{inbox_name}": {"post": {
        "summary": "Chatwoot's agent-bot events (message_created)",
        "description": "Chatwoot tries again after 429 (3 attempts, 3 s apart) and hands the "
                       "conversation to a person after any other refusal (README: Chatwoot).",
        "x-never-503": True,
        "parameters": [{"in": "header", "name": name, "required": False,
                        "schema": {"type": "string"}}
                       for name in ("X-Chatwoot-Signature", "X-Chatwoot-Timestamp")],
        "requestBody": {"required": True, **_json("ChatwootEvent")},
        "responses": {"202": _ok("Taken", "Receipt"), "200": _ok("Ignored", "IgnoredEvent"),
                      "401": _error("Bad X-Chatwoot-Signature"),
                      "404": _error("Unknown inbox"),
                      "409": _error("SupportFlow's agents have the conversation "
                                    "(not_with_the_bot), or the inbox names no known flow"),
                      "429": {**_error("Redis unavailable or the conversation busy for a moment: "
                                       "Chatwoot tries again"),
                              "headers": {"Retry-After": RETRY_AFTER}}}}},
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
        "parameters": [{"in": "query", "schema": DeadLettersQuerySchema}],
        "responses": {"200": _ok("Dead letters, oldest first", "DeadLetters")}}},
    "/v1/ops/dead-letters/{delivery_id}/replay": {"post": {
        "summary": "Send a dead delivery again, same webhook-id", "security": _OPS,
        "responses": {"202": _ok("Scheduled", "ReplayScheduled"),
                      "404": _error("No such dead letter")}}},
    "/v1/ops/overview": {"get": {
        "summary": "What waits on what: states, queues, polls, workers, failures",
        "security": _OPS, "responses": {"200": _ok("The overview", "Overview")}}},
    "/v1/ops/timeseries": {"get": {
        "summary": "Reply latency and queue depth samples (?minutes=60)", "security": _OPS,
        "parameters": [{"in": "query", "schema": TimeseriesQuerySchema}],
        "responses": {"200": _ok("Points, oldest first", "Timeseries")}}},
    "/metrics": {"get": {
        "summary": "Prometheus metrics", "security": _OPS,
        "responses": {"200": {"description": "Prometheus text format",
                              "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
    "/healthz": {"get": {"summary": "Liveness", "x-never-503": True,
                         "responses": {"200": _ok("Up", "Health")}}},
    "/readyz": {"get": {"summary": "Redis reachable as master, durable, with the replicas the "
                                   "replica wait needs; a worker seen recently. The body shows "
                                   "the Redis topology and the active beat",
                        "responses": {"200": _ok("Ready", "Readiness"),
                                      "503": {**_ok("Not ready, with the reasons", "Readiness"),
                                              "headers": {"Retry-After": RETRY_AFTER}}}}},
}


# Accept paths: 202 only once a replica confirmed the message (when replicas are configured).
_ACCEPT_PATHS = {("/v1/conversations/{conversation_id}/messages", "post"),
                 ("/v1/webhooks/{inbox_name}", "post")}


def _path_parameters(path: str) -> list[dict[str, Any]]:
    found = []
    for name in re.findall(r"{(\w+)}", path):
        schema = {"type": "string"}
        if name in PATH_PATTERNS:
            schema["pattern"] = PATH_PATTERNS[name]
        found.append({"in": "path", "name": name, "required": True, "schema": schema})
    return found


def _nullable_refs(schemas: dict[str, Any]) -> None:
    """apispec writes a nullable nested schema as anyOf [ref, any nullable object], which lets
    any object through; say "this schema, or null" instead."""
    for schema in schemas.values():
        for prop in schema.get("properties", {}).values():
            options = prop.get("anyOf", [])
            if len(options) == 2 and "$ref" in options[0] and options[1].get("nullable"):
                del prop["anyOf"]
                prop.update({"allOf": [options[0]], "nullable": True})


def complete(paths: dict[str, Any]) -> None:
    """Add the answers every route shares to each operation they apply to."""
    for path, operations in paths.items():
        for method, operation in operations.items():
            if method not in HTTP_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            if method == "options":
                # A preflight answers before looking at the path: any id is fine to it.
                operation.setdefault("parameters", []).extend(
                    {**parameter, "schema": {"type": "string"}}
                    for parameter in operations.get("parameters", []) if parameter["in"] == "path")
            shared = []
            if "requestBody" in operation:
                shared += [("400", "BadBody"), ("413", "TooLarge"), ("422", "Invalid")]
            parameters = [*operations.get("parameters", []), *operation.get("parameters", [])]
            if any(p.get("in") in ("query", "header") for p in parameters):
                shared.append(("422", "Invalid"))
            if "{conversation_id}" in path and method != "options":
                responses.setdefault("404", {
                    "description": "Unknown conversation",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
            if operation.get("security"):
                shared += [("401", "Unauthenticated"), ("403", "Forbidden")]
            if not operation.pop("x-never-503", False):
                accepts = (path, method) in _ACCEPT_PATHS
                shared.append(("503", "NotReplicated" if accepts else "Unavailable"))
            for status, name in shared:
                responses.setdefault(status, {"$ref": f"#/components/responses/{name}"})
            own_503 = responses["503"] if "$ref" not in responses.get("503", {"$ref": ""}) else None
            if own_503 is not None:
                own_503.setdefault("headers", {"Retry-After": RETRY_AFTER})


def build_spec(max_message_chars: int | None = None,
               public_url: str = "http://127.0.0.1:5000", flows: list[str] | None = None
               ) -> dict[str, Any]:
    """The OpenAPI 3.0 document of the HTTP API, the GPT's actions included (message texts
    limited as the settings say, flows the ones this deployment has)."""
    limit = Settings().max_message_chars if max_message_chars is None else max_message_chars
    plugin = MarshmallowPlugin()
    spec = APISpec("SupportFlow", __version__, "3.0.3", plugins=[plugin])
    assert plugin.converter is not None
    plugin.converter.add_attribute_function(  # type: ignore[no-untyped-call]
        message_text_length(limit))
    spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme("sessionCookie", {"type": "apiKey", "in": "cookie",
                                                      "name": "sf_session"})
    spec.components.security_scheme("oauth2", security_scheme(public_url))
    spec.components.security_scheme("visitorToken", {
        "type": "http", "scheme": "bearer", "bearerFormat": "sfv_...",
        "description": "The visitor token a conversation's start returned (renew it with "
                       "POST .../token); it opens that conversation only."})
    schemas = {**SCHEMAS, **AGENT_SCHEMAS, **DOC_SCHEMAS, "Error": ErrorSchema,
               "InboundWebhook": InboundWebhookSchema, "ChatwootEvent": ChatwootEventSchema,
               "ArticleInput": ArticleInputSchema, "Article": ArticleSchema,
               "Articles": ArticlesSchema, "OpenAIEvent": OpenAIEventSchema,
               "Erasure": ErasureSchema}
    for name, schema in schemas.items():
        spec.components.schema(name, schema=schema)
    for name, response in SHARED_RESPONSES.items():
        spec.components.response(name, response)
    routes = {**ROUTES, **AGENT_ROUTES, **MORE_ROUTES, **KNOWLEDGE_ROUTES, **OAUTH_ROUTES,
              **CONTACT_ROUTES}
    for path, operations in routes.items():
        spec.path(path=path, operations=operations, parameters=_path_parameters(path))
    document: dict[str, Any] = spec.to_dict()
    actions = build_actions_spec(public_url, limit, "3.0.3")
    document["paths"].update(actions["paths"])
    for name, schema in actions["components"]["schemas"].items():
        document["components"]["schemas"].setdefault(name, schema)
    _nullable_refs(document["components"]["schemas"])
    complete(document["paths"])
    if flows:
        start = document["components"]["schemas"]["StartConversation"]["properties"]["flow"]
        start["enum"] = sorted(flows)
    return document


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """Serve the OpenAPI document."""
    settings = services().settings
    return jsonify(build_spec(settings.max_message_chars, settings.public_url,
                              services().flows.names()))
