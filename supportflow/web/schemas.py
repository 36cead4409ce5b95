"""Request and response schemas, declared once: they validate input and feed the OpenAPI doc."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from supportflow.domain.contacts import Identity

from .deps import services
from .fields import Pattern, Text

ID = Pattern(r"^[A-Za-z0-9._:@\-]{1,128}$", error="use 1-128 letters, digits or ._:@-")
# Widget contacts have no ':' in their ids: helpdesk contacts are "<inbox>:<their id>" and
# anonymous visitors "_v:<random>", so no one can name another's contact (its attributes, its
# contact-scope thread).
WIDGET_CONTACT_ID = Pattern(r"^[A-Za-z0-9._@\-]{1,128}$",
                            error="use 1-128 letters, digits or ._@- (':' is for helpdesk contacts)")
ATTRIBUTE_NAME = Pattern(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$",
                         error="use a letter or _, then up to 63 letters, digits or _")
# Transcript positions: far beyond any transcript, and small enough for every store.
MAX_CURSOR = 2**31 - 1
CURSOR = validate.Range(min=0, max=MAX_CURSOR)


def message_limit() -> int:
    """The longest message text this deployment accepts (SUPPORTFLOW_MAX_MESSAGE_CHARS)."""
    return services().settings.max_message_chars


class MessageText(Text):
    """The text of a message someone writes: valid text, not blank, at most `message_limit()`
    characters.

    Every route that takes a message uses this field, so the limit is declared here once; the
    OpenAPI document shows it as maxLength (web/openapi.py).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(not_blank=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        limit = message_limit()
        if len(text) > limit:
            raise ValidationError(f"at most {limit} characters")
        return text


def message_text_length(limit: int) -> Callable[..., dict[str, Any]]:
    """An apispec attribute function that shows MessageText's bounds (`limit`) in a document."""

    def attributes(converter: Any, field: Any, **_: Any) -> dict[str, Any]:
        return {"minLength": 1, "maxLength": limit} if isinstance(field, MessageText) else {}

    return attributes


class ContactProfileSchema(Schema):
    name = Text(max_length=200)
    email = fields.Email(validate=validate.Length(max=254))
    attributes = fields.Dict(
        keys=fields.String(validate=ATTRIBUTE_NAME),
        values=Text(max_length=2000),
        load_default=dict,
    )


class ContactSchema(ContactProfileSchema):
    id = fields.String(validate=WIDGET_CONTACT_ID, metadata={
        "description": "your user's id: taken with a valid id_hash, or from a widget-role API "
                       "token; from a browser without id_hash it is ignored (anonymous)"})
    id_hash = fields.String(validate=Pattern(r"^[0-9A-Fa-f]{64}$", error="64 hex digits"),
                            metadata={"description": "hex HMAC-SHA256 of id under the flow's "
                                                     "identity secret, computed by your server"})

    @validates_schema
    def check_hash(self, data: dict[str, Any], **_: Any) -> None:
        if "id_hash" in data and "id" not in data:
            raise ValidationError("id_hash signs contact.id: send both", "id_hash")


class StartConversationSchema(Schema):
    contact = fields.Nested(ContactSchema, load_default=dict)
    flow = fields.String(validate=Pattern(r"^[A-Za-z0-9_\-]{1,64}$"))
    contact_token = fields.String(validate=validate.Length(min=1, max=1024), metadata={
        "description": "the contact_token an earlier start returned: the same anonymous contact "
                       "again (an invalid one gives a new anonymous contact)"})


class MessageSchema(Schema):
    seq = fields.Integer(required=True)
    id = fields.String(required=True)
    author = fields.String(required=True)
    text = fields.String(required=True)
    at = fields.Float(required=True)
    turn = fields.Integer(allow_none=True)
    agent = fields.String(metadata={"description": "the agent who wrote it (agent messages)"})


class ConversationSchema(Schema):
    conversation_id = fields.String(required=True)
    contact_id = fields.String(required=True)
    flow = fields.String(required=True)
    state = fields.String(required=True)
    turn = fields.Integer(required=True)
    handoff_reason = fields.String(allow_none=True)
    failure_reason = fields.String(allow_none=True)


class VisitorTokenSchema(Schema):
    conversation_id = fields.String(required=True)
    visitor_token = fields.String(required=True, metadata={
        "description": "send it as `Authorization: Bearer <visitor_token>` on this conversation's "
                       "routes; renew it before it expires"})
    visitor_token_expires_in = fields.Integer(required=True, metadata={"description": "seconds"})


class StartedConversationSchema(VisitorTokenSchema):
    state = fields.String(required=True)
    welcome = fields.Nested(MessageSchema, required=True)
    contact_id = fields.String(required=True)
    identity = fields.String(required=True, validate=validate.OneOf([i.value for i in Identity]),
                             metadata={"description": "anonymous (the server made the contact), "
                                       "verified (by id_hash) or trusted (an API token named it)"})
    contact_token = fields.String(metadata={
        "description": "anonymous contacts only: keep it and send it with the next start to be "
                       "the same contact again"})
    contact_token_expires_in = fields.Integer(metadata={"description": "seconds"})


class PostMessageSchema(Schema):
    text = MessageText(required=True)
    client_message_id = fields.String(validate=ID)


class ReceiptSchema(Schema):
    conversation_id = fields.String(required=True)
    message_id = fields.String(required=True)
    duplicate = fields.Boolean(required=True)


class MessagesQuerySchema(Schema):
    after = fields.Integer(load_default=0, validate=CURSOR)
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class MessagePageSchema(Schema):
    conversation_id = fields.String(required=True)
    state = fields.String(required=True)
    messages = fields.List(fields.Nested(MessageSchema), required=True)
    next_cursor = fields.Integer(required=True)


class ErrorBodySchema(Schema):
    code = fields.String(required=True, metadata={"description": "machine-readable, e.g. invalid_request"})
    message = fields.String(required=True, metadata={"description": "for people"})
    # "fields" in JSON (a Schema's own `fields` attribute takes the Python name).
    problems = fields.Raw(data_key="fields",
                          metadata={"description": "what is wrong with which field or parameter"})


class ErrorSchema(Schema):
    """Every 4xx and 5xx answer: {"error": {"code", "message", "fields"?}}."""

    error = fields.Nested(ErrorBodySchema, required=True)
