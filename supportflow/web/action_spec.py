"""The actions' OpenAPI 3.1 document, which the GPT editor imports as it is: every operation
with an operationId and a short description, the public base URL as `servers`, and an `oauth2`
security scheme with the authorization and token URLs and the scopes."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields

from supportflow import __version__
from supportflow.domain.accounts import SCOPE_TEXT, Scope

from .agent_schemas import ClaimSchema
from .knowledge_schemas import ArticleInputSchema, ArticleSchema, ArticlesSchema, SearchQuerySchema
from .schemas import ID, MessageText, ReceiptSchema, message_text_length


class ErrorBodySchema(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    fields_ = fields.Dict(data_key="fields")


class ActionErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)


class HandoffSummarySchema(Schema):
    conversation_id = fields.String(required=True)
    contact_id = fields.String(required=True)
    reason = fields.String(allow_none=True, required=True)
    waiting_s = fields.Float(required=True, metadata={"description": "Seconds since handoff"})
    claimed_by = fields.String(allow_none=True, required=True)
    last_customer_message = fields.String(allow_none=True, required=True)


class HandoffsSchema(Schema):
    waiting = fields.List(fields.Nested(HandoffSummarySchema), required=True, metadata={
        "description": "Handoffs nobody has claimed yet, oldest first"})
    claimed_by_you = fields.List(fields.Nested(HandoffSummarySchema), required=True)


class ActionMessageSchema(Schema):
    seq = fields.Integer(required=True)
    author = fields.String(required=True, metadata={"description": "customer, bot, agent"})
    text = fields.String(required=True)
    at = fields.Float(required=True)
    agent = fields.String(metadata={"description": "The agent who wrote it"})


class NoteSchema(Schema):
    id = fields.String(required=True)
    text = fields.String(required=True)
    at = fields.Float(required=True)
    author = fields.String(allow_none=True, required=True)


class ActionConversationSchema(Schema):
    conversation_id = fields.String(required=True)
    contact_id = fields.String(required=True)
    state = fields.String(required=True)
    handoff_reason = fields.String(allow_none=True, required=True)
    claimed_by = fields.String(allow_none=True, required=True)
    messages = fields.List(fields.Nested(ActionMessageSchema), required=True)
    notes = fields.List(fields.Nested(NoteSchema), required=True)
    attributes = fields.Dict(keys=fields.String(), values=fields.String(), required=True)


class NoteInputSchema(Schema):
    text = MessageText(required=True)


class SavedNoteSchema(Schema):
    conversation_id = fields.String(required=True)
    note = fields.Nested(NoteSchema, required=True)


class ReplyInputSchema(Schema):
    text = MessageText(required=True)
    client_message_id = fields.String(validate=ID, metadata={
        "description": "Makes retries safe: the same id is sent once"})


SCHEMAS: dict[str, type[Schema]] = {
    "ActionError": ActionErrorSchema, "HandoffSummary": HandoffSummarySchema,
    "Handoffs": HandoffsSchema, "ActionMessage": ActionMessageSchema, "SignedNote": NoteSchema,
    "ActionConversation": ActionConversationSchema, "NoteInput": NoteInputSchema,
    "SavedNote": SavedNoteSchema, "ReplyInput": ReplyInputSchema,
    "ReplyReceipt": ReceiptSchema, "Claimed": ClaimSchema,
    "ArticleInput": ArticleInputSchema, "Article": ArticleSchema, "Articles": ArticlesSchema,
}
ERRORS = {
    "400": "The body is not a JSON object",
    "401": "No access token, or it is expired or revoked",
    "403": "The token lacks the scope this action needs (insufficient_scope)",
    "404": "No such conversation", "409": "Not handed off, or claimed by someone else",
    "422": "Invalid fields", "503": "The conversation is busy; try again",
}
_CONV = "/v1/actions/conversations/{conversation_id}"


def _json(schema: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _op(operation_id: str, scope: Scope, summary: str, description: str, ok: tuple[str, str, str],
        errors: str = "", body: str | None = None, query: type[Schema] | None = None
        ) -> dict[str, Any]:
    status, what, schema = ok
    responses = {status: {"description": what, **_json(schema)}}
    for code in ("401", "403", *errors.split()):
        responses[code] = {"description": ERRORS[code], **_json("ActionError")}
    operation: dict[str, Any] = {
        "operationId": operation_id, "summary": summary, "description": description,
        "security": [{"oauth2": [scope.value]}], "responses": responses}
    if body:
        operation["requestBody"] = {"required": True, **_json(body)}
    if query:
        operation["parameters"] = [{"in": "query", "schema": query}]
    return operation


# path -> method -> operation; each action's scope is the one its view requires.
ACTIONS: dict[str, dict[str, dict[str, Any]]] = {
    "/v1/actions/handoffs": {"get": _op(
        "listHandoffs", Scope.HANDOFFS_READ, "Handoffs waiting and claimed",
        "Conversations the bot handed to people: those nobody claimed yet, and yours.",
        ("200", "The handoffs", "Handoffs"))},
    _CONV: {"get": _op(
        "getConversation", Scope.CONVERSATIONS_READ, "Read a conversation",
        "A conversation's state, its latest messages, notes and the contact's attributes.",
        ("200", "The conversation", "ActionConversation"), "404")},
    f"{_CONV}/notes": {"post": _op(
        "saveNote", Scope.NOTES_WRITE, "Save a note on a conversation",
        "Keep a private note for agents on a conversation, signed with your account.",
        ("201", "Saved", "SavedNote"), "400 404 422", body="NoteInput")},
    f"{_CONV}/claim": {"post": _op(
        "claimHandoff", Scope.HANDOFFS_REPLY, "Claim a handoff",
        "Take a handed-off conversation so that you answer it; one agent wins a race.",
        ("200", "Claimed by you", "Claimed"), "404 409")},
    f"{_CONV}/reply": {"post": _op(
        "replyToCustomer", Scope.HANDOFFS_REPLY, "Answer the customer",
        "Send the customer of a conversation you claimed a message, as you.",
        ("201", "Sent", "ReplyReceipt"), "400 404 409 422 503", body="ReplyInput")},
    "/v1/actions/knowledge": {
        "post": _op(
            "saveAnswer", Scope.KNOWLEDGE_WRITE, "Save an answer for the bot (save it)",
            "Store a good answer in the knowledge base; the bot answers customers from it.",
            ("201", "Saved", "Article"), "400 422", body="ArticleInput"),
        "get": _op(
            "searchKnowledge", Scope.KNOWLEDGE_READ, "Search the knowledge base",
            "Articles whose title, tags or text share words with q, best first.",
            ("200", "Matching articles", "Articles"), "422", query=SearchQuerySchema)},
}


def security_scheme(public_url: str) -> dict[str, Any]:
    """OAuth2 authorization code, with this service's URLs and the scopes."""
    base = public_url.rstrip("/")
    return {"type": "oauth2", "flows": {"authorizationCode": {
        "authorizationUrl": f"{base}/oauth/authorize", "tokenUrl": f"{base}/oauth/token",
        "refreshUrl": f"{base}/oauth/token",
        "scopes": {scope.value: text for scope, text in SCOPE_TEXT.items()}}}}


def build_actions_spec(public_url: str, max_message_chars: int,
                       openapi_version: str = "3.1.0") -> dict[str, Any]:
    """The actions' document (3.1 for the GPT editor; 3.0 to merge into /openapi.json), with
    texts bounded as the settings say."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        "SupportFlow agent actions", __version__, openapi_version, plugins=[plugin],
        servers=[{"url": public_url.rstrip("/")}],
        info={"description": "What an agent's own ChatGPT can do in SupportFlow: save answers "
                             "for the bot, keep notes, see handoffs and answer customers."})
    assert plugin.converter is not None
    plugin.converter.add_attribute_function(  # type: ignore[no-untyped-call]
        message_text_length(max_message_chars))
    spec.components.security_scheme("oauth2", security_scheme(public_url))
    for name, schema in SCHEMAS.items():
        spec.components.schema(name, schema=schema)
    for path, operations in ACTIONS.items():
        parameters = [{"in": "path", "name": "conversation_id", "required": True,
                       "schema": {"type": "string"}}] if "{conversation_id}" in path else []
        spec.path(path=path, operations=operations, parameters=parameters)
    return spec.to_dict()
