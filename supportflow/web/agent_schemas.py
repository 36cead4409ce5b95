"""Schemas of the agents' API: they validate bodies and feed the OpenAPI document."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields

from .doc_schemas import sse
from .fields import Pattern
from .schemas import CURSOR, ID, ConversationSchema, MessageSchema, MessageText


class AgentMessageSchema(Schema):
    text = MessageText(required=True)
    client_message_id = fields.String(validate=ID)


class ClaimSchema(Schema):
    conversation_id = fields.String(required=True)
    claimed_by = fields.String(required=True)
    newly_claimed = fields.Boolean(required=True)


class StateChangeSchema(Schema):
    conversation_id = fields.String(required=True)
    state = fields.String(required=True)


class AttributeSchema(Schema):
    name = fields.String(required=True)
    value = fields.String(allow_none=True)


class HandoffSchema(Schema):
    conversation_id = fields.String(required=True)
    contact_id = fields.String(required=True)
    flow = fields.String(required=True)
    channel = fields.String(required=True)
    reason = fields.String(allow_none=True)
    entered_at = fields.Float(required=True)
    waiting_s = fields.Float(required=True)
    attribute = fields.Nested(AttributeSchema, required=True)
    claimed_by = fields.String(allow_none=True)
    transcript_url = fields.String(required=True)
    messages = fields.List(fields.Nested(MessageSchema), required=True)


class HandoffQueueSchema(Schema):
    handoffs = fields.List(fields.Nested(HandoffSchema), required=True)


class NoteSchema(Schema):
    id = fields.String(required=True)
    text = fields.String(required=True)
    at = fields.Float(required=True)
    author = fields.String(allow_none=True, metadata={"description": "The agent who wrote it"})


class AgentConversationSchema(ConversationSchema):
    """What the widget sees of a conversation, and what only agents see."""

    channel = fields.String(required=True)
    claimed_by = fields.String(allow_none=True)
    messages = fields.List(fields.Nested(MessageSchema), required=True)
    attributes = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    notes = fields.List(fields.Nested(NoteSchema), required=True)


class StreamQuerySchema(Schema):
    after = fields.Integer(validate=CURSOR)


class StreamId(Pattern):
    """A Redis stream id, `<ms>-<n>`, each part below 2^64."""

    def __init__(self) -> None:
        super().__init__(r"^[0-9]{1,20}-[0-9]{1,20}$", error="expected <ms>-<n>, e.g. 1718000000000-0")

    def __call__(self, value: Any) -> Any:
        super().__call__(value)
        if any(int(part) >= 2**64 for part in value.split("-")):
            raise ValidationError("each part of a stream id is below 2^64")
        return value


class HandoffStreamQuerySchema(Schema):
    after = fields.String(validate=StreamId())


AGENT_SCHEMAS = {
    "Attribute": AttributeSchema,
    "Note": NoteSchema,
    "Handoff": HandoffSchema,
    "HandoffQueue": HandoffQueueSchema,
    "AgentMessage": AgentMessageSchema,
    "Claim": ClaimSchema,
    "StateChange": StateChangeSchema,
    "AgentConversation": AgentConversationSchema,
}


def _json(schema: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _ok(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, **_json(schema)}


def _errors(*codes: str) -> dict[str, Any]:
    texts = {"401": "No or unknown token", "403": "Token without the agent role",
             "404": "Unknown conversation", "409": "Not handed off, or claimed by another agent",
             "422": "Invalid fields", "503": "Busy; try again",
             "429": "This agent holds as many open streams as one may; retry after Retry-After"}
    return {code: {"description": texts[code], **_json("Error")} for code in ("401", "403", *codes)}


def last_event_id(pattern: str) -> dict[str, Any]:
    return {"in": "header", "name": "Last-Event-ID", "required": False,
            "schema": {"type": "string", "pattern": pattern},
            "description": "resume after this event (browsers send it when they reconnect); "
                           "empty is the same as absent"}


_CONV = "/v1/agent/conversations/{conversation_id}"
# An agent token, or a signed-in agent account's session (changes then need X-CSRFToken).
_AGENT: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"sessionCookie": []}]
AGENT_ROUTES: dict[str, dict[str, Any]] = {
    "/v1/agent/handoffs": {"get": {
        "summary": "The handoff queue, oldest first", "security": _AGENT,
        "responses": {"200": _ok("The queue", "HandoffQueue"), **_errors()}}},
    "/v1/agent/handoffs/stream": {"get": {
        "summary": "New handoffs as server-sent events (Last-Event-ID resumes)",
        "security": _AGENT,
        "parameters": [{"in": "query", "schema": HandoffStreamQuerySchema},
                       last_event_id(r"^([0-9]{1,20}-[0-9]{1,20})?$")],
        "responses": {"200": sse("handoff", r"^[0-9]+-[0-9]+$", "HandoffEvent",
                                 "New handoffs until the stream's time is up (then reconnect)"),
                      **_errors("422", "429")}}},
    _CONV: {"get": {
        "summary": "State, transcript, attributes and notes", "security": _AGENT,
        "responses": {"200": _ok("Found", "AgentConversation"), **_errors("404")}}},
    f"{_CONV}/claim": {"post": {
        "summary": "Claim a handoff (exactly one agent wins)", "security": _AGENT,
        "responses": {"200": _ok("Claimed", "Claim"), **_errors("404", "409")}}},
    f"{_CONV}/messages": {"post": {
        "summary": "Send the customer a message (the claiming agent only)", "security": _AGENT,
        "requestBody": {"required": True, **_json("AgentMessage")},
        "responses": {"201": _ok("Sent", "Receipt"),
                      **_errors("404", "409", "422", "503")}}},
    f"{_CONV}/resolve": {"post": {
        "summary": "Resolve: close it and take it out of the queue", "security": _AGENT,
        "responses": {"200": _ok("Closed", "StateChange"), **_errors("404", "409", "503")}}},
    f"{_CONV}/return": {"post": {
        "summary": "Give it back to the bot", "security": _AGENT,
        "responses": {"200": _ok("Returned", "StateChange"), **_errors("404", "409", "503")}}},
}
