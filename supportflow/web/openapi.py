"""The OpenAPI document, generated from the same marshmallow schemas that validate requests."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response, jsonify

from supportflow import __version__

from .agent_schemas import AGENT_ROUTES, AGENT_SCHEMAS
from .schemas import ErrorSchema, MessagesQuerySchema
from .widget import SCHEMAS

bp = Blueprint("openapi", __name__)


def _json(schema: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, **_json("Error")}


ROUTES: dict[str, dict[str, Any]] = {
    "/v1/conversations": {"post": {
        "summary": "Start a conversation for a contact",
        "requestBody": {"required": True, **_json("StartConversation")},
        "responses": {"201": {"description": "Started", **_json("StartedConversation")},
                      "400": _error("Body is not JSON"), "422": _error("Invalid fields")}}},
    "/v1/conversations/{conversation_id}": {"get": {
        "summary": "A conversation's state",
        "responses": {"200": {"description": "Found", **_json("Conversation")},
                      "404": _error("Unknown conversation")}}},
    "/v1/conversations/{conversation_id}/messages": {
        "post": {
            "summary": "Post a customer message",
            "requestBody": {"required": True, **_json("PostMessage")},
            "responses": {"202": {"description": "Accepted", **_json("Receipt")},
                          "404": _error("Unknown conversation"),
                          "409": _error("Conversation closed"),
                          "422": _error("Invalid fields")}},
        "get": {
            "summary": "Messages after a cursor",
            "parameters": [{"in": "query", "schema": MessagesQuerySchema}],
            "responses": {"200": {"description": "A page", **_json("MessagePage")},
                          "404": _error("Unknown conversation")}},
    },
}


def build_spec() -> dict[str, Any]:
    """The OpenAPI 3.0 document of the HTTP API."""
    spec = APISpec("SupportFlow", __version__, "3.0.3", plugins=[MarshmallowPlugin()])
    spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    for name, schema in {**SCHEMAS, **AGENT_SCHEMAS, "Error": ErrorSchema}.items():
        spec.components.schema(name, schema=schema)
    for path, operations in {**ROUTES, **AGENT_ROUTES}.items():
        parameters = [{"in": "path", "name": "conversation_id", "required": True,
                       "schema": {"type": "string"}}] if "{" in path else []
        spec.path(path=path, operations=operations, parameters=parameters)
    return spec.to_dict()


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """Serve the OpenAPI document."""
    return jsonify(build_spec())
