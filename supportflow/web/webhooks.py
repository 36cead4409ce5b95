"""Helpdesk endpoints: signed webhooks in, the Chatwoot agent bot, and ops' dead letters."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Blueprint, Response, jsonify, request
from marshmallow import EXCLUDE, Schema, fields, validate

from supportflow.domain.access import Role
from supportflow.domain.inbox import Inbox, InboxKind
from supportflow.services.deliveries import Delivery
from supportflow.services.helpdesk import InboundMessage
from supportflow.services.intake import Contact, NotWithTheBot, Receipt, UnknownFlow
from supportflow.services.ports import NotReplicated
from supportflow.webhooks.signing import SignatureError, verify, verify_chatwoot

from .auth import require_role
from .deps import json_body, json_response, services
from .errors import RETRY_AFTER_S, ApiError, is_transient, unavailable
from .fields import Text
from .inputs import query
from .ops import timed
from .schemas import ID, ContactProfileSchema, MessageText

bp = Blueprint("webhooks", __name__, url_prefix="/v1")


class ExternalConversationSchema(Schema):
    id = fields.String(required=True, validate=ID)


class InboundTextSchema(Schema):
    id = fields.String(required=True, validate=ID)
    text = MessageText(required=True)


class HelpdeskContactSchema(ContactProfileSchema):
    """A helpdesk's contact: stored as "<inbox>:<id>", so its id may hold ':' too."""

    id = fields.String(required=True, validate=ID)


class InboundWebhookSchema(Schema):
    conversation = fields.Nested(ExternalConversationSchema, required=True)
    contact = fields.Nested(HelpdeskContactSchema, required=True)
    message = fields.Nested(InboundTextSchema, required=True)


# Built once: the hot route's schema.
INBOUND_WEBHOOK = InboundWebhookSchema()


def find_inbox(name: str, kind: InboxKind, *, fresh: bool = False) -> Inbox:
    """The named inbox of this kind (as this process read it lately), or a 404."""
    inbox = services().inboxes.cached(name, fresh=fresh)
    if inbox is None or inbox.kind is not kind:
        raise ApiError(404, "inbox_not_found", f"no {kind.value} inbox named {name!r}")
    return inbox


def verified(name: str, body: bytes) -> tuple[Inbox, str]:
    """The inbox and the webhook-id of a request signed with one of its inbound secrets; a
    signature the cached secrets refuse is checked again against the inbox read now (a secret
    rotated a moment ago). 401 when neither passes."""
    headers = dict(request.headers.items())
    inbox = find_inbox(name, InboxKind.WEBHOOK)
    try:
        return inbox, verify(inbox.inbound_secrets, headers, body, time.time())
    except SignatureError:
        inbox = find_inbox(name, InboxKind.WEBHOOK, fresh=True)
    try:
        return inbox, verify(inbox.inbound_secrets, headers, body, time.time())
    except SignatureError as error:
        raise ApiError(401, "invalid_signature", str(error)) from error


def accept(inbox: Inbox, message: InboundMessage, delivery_id: str | None) -> Receipt | None:
    """Hand the message to the inbound use case; a bad flow name is the inbox's fault (409)."""
    try:
        return services().inbound.receive(inbox, message, delivery_id)
    except UnknownFlow as error:
        raise ApiError(409, "unknown_flow", f"inbox {inbox.name!r} names no known flow "
                       f"{error.args[0]!r}") from error
    except NotWithTheBot as error:
        raise ApiError(409, "not_with_the_bot", "SupportFlow's agents have this conversation; "
                       "the bot does not take its messages") from error
    except TimeoutError as error:  # another request holds this helpdesk conversation's lock
        raise unavailable("this helpdesk conversation is busy; try again", code="busy") from error


F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def _chatwoot_retries() -> Iterator[None]:
    try:
        yield
    except ApiError as error:
        if error.status != 503:
            raise
        raise ApiError(429, error.code, error.message, error.fields, error.headers) from error
    except NotReplicated as error:
        raise ApiError(429, "not_replicated", "not confirmed by a Redis replica yet; try again",
                       headers={"Retry-After": str(RETRY_AFTER_S)}) from error
    except Exception as error:
        if not is_transient(error):
            raise
        raise ApiError(429, "unavailable", "the service's store is unavailable; try again",
                       headers={"Retry-After": str(RETRY_AFTER_S)}) from error


def chatwoot_answers(view: F) -> F:
    """Answer what Chatwoot should do (its lib/webhooks/trigger.rb): it tries again after 429
    and 500 (three attempts, 3 s apart) and hands the conversation to a person, at once, after
    any other refusal. So what may pass (Redis unavailable, a busy conversation) is a 429 with
    Retry-After; what will not (a bad signature, body, text, inbox or flow) keeps its 4xx."""

    @wraps(view)
    def answered(*args: Any, **kwargs: Any) -> Any:
        with _chatwoot_retries():
            return view(*args, **kwargs)

    return cast(F, answered)


@bp.post("/webhooks/<inbox_name>")
@timed("webhook")
def inbound_webhook(inbox_name: str) -> Response:
    """A signed customer message from a helpdesk: 202 accepted, 200 for a replayed webhook-id."""
    inbox, webhook_id = verified(inbox_name, request.get_data(cache=True))
    data = INBOUND_WEBHOOK.load(json_body())
    message = InboundMessage(
        external_id=data["conversation"]["id"], contact=Contact(**data["contact"]),
        message_id=data["message"]["id"], text=data["message"]["text"])
    receipt = accept(inbox, message, webhook_id)
    if receipt is None:
        return json_response({"replayed": True, "webhook_id": webhook_id}, 200)
    return json_response({"conversation_id": receipt.conversation_id,
                          "message_id": receipt.message_id, "duplicate": receipt.duplicate}, 202)


class ChatwootSenderSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    id = fields.Integer(required=True, strict=True)
    name = Text(allow_none=True, max_length=200)
    email = Text(allow_none=True, max_length=254)


class ChatwootConversationSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    id = fields.Integer(required=True)
    status = fields.String(required=True)


class ChatwootEventSchema(Schema):
    """The parts of Chatwoot's agent-bot `message_created` event SupportFlow reads."""

    class Meta:
        unknown = EXCLUDE

    event = fields.String(required=True)
    id = fields.Integer(strict=True, load_default=None)
    content = Text(allow_none=True, load_default=None)
    message_type = fields.Raw(load_default=None)
    private = fields.Boolean(load_default=False)
    sender = fields.Nested(ChatwootSenderSchema, load_default=None, allow_none=True)
    conversation = fields.Nested(ChatwootConversationSchema, load_default=None, allow_none=True)


class ChatwootTextSchema(Schema):
    """The content of a customer's message the bot takes (other events may carry none)."""

    content = MessageText(required=True)


def chatwoot_message(data: dict[str, Any]) -> InboundMessage | None:
    """The customer's message of a bot-owned conversation; None for events to ignore."""
    conversation, sender = data.get("conversation"), data.get("sender") or {}
    if data["event"] != "message_created" or conversation is None or data["private"]:
        return None
    if data["message_type"] not in ("incoming", 0) or conversation["status"] != "pending":
        return None
    if not (data.get("content") or "").strip() or data.get("id") is None or "id" not in sender:
        return None
    contact = Contact(id=str(sender["id"]), name=sender.get("name") or None)
    return InboundMessage(external_id=str(conversation["id"]), contact=contact,
                          message_id=str(data["id"]), text=data["content"])


@bp.post("/integrations/chatwoot/<inbox_name>")
@chatwoot_answers
@timed("chatwoot")
def chatwoot_event(inbox_name: str) -> tuple[Response, int]:
    """Chatwoot's agent-bot events: incoming messages of pending conversations go to the bot."""
    inbox = find_inbox(inbox_name, InboxKind.CHATWOOT)
    headers, body = dict(request.headers.items()), request.get_data(cache=True)
    for fresh in (False, True):  # a secret changed a moment ago: read the inbox again, once
        if fresh:
            inbox = find_inbox(inbox_name, InboxKind.CHATWOOT, fresh=True)
        if not inbox.hmac_secret:
            break
        try:
            verify_chatwoot(inbox.hmac_secret, headers, body, time.time())
            break
        except SignatureError as error:
            if fresh:
                raise ApiError(401, "invalid_signature", str(error)) from error
    message = chatwoot_message(ChatwootEventSchema().load(json_body()))
    if message is None:
        return jsonify({"ignored": True}), 200
    ChatwootTextSchema().load({"content": message.text})
    receipt = accept(inbox, message, None)
    assert receipt is not None
    return jsonify({"conversation_id": receipt.conversation_id, "message_id": receipt.message_id,
                    "duplicate": receipt.duplicate}), 202


def dead_letter(delivery: Delivery) -> dict[str, Any]:
    event = delivery.event
    return {"id": delivery.id, "target": delivery.target, "webhook_id": event.id,
            "type": event.type.value, "conversation_id": event.conversation_id,
            "reason": delivery.last_error, "attempts": delivery.attempts_made,
            "at": delivery.updated_at}


class DeadLettersQuerySchema(Schema):
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


@bp.get("/ops/dead-letters")
@require_role(Role.OPS)
def list_dead_letters() -> Response:
    """Deliveries that were given up on, oldest first."""
    limit = query(DeadLettersQuerySchema())["limit"]
    letters = services().deliveries.dead_letters(limit)
    return jsonify({"dead_letters": [dead_letter(d) for d in letters]})


@bp.post("/ops/dead-letters/<delivery_id>/replay")
@require_role(Role.OPS)
def replay_dead_letter(delivery_id: str) -> tuple[Response, int]:
    """Send a dead delivery again from its first attempt, with the same webhook-id."""
    if not services().deliveries.replay(delivery_id):
        raise ApiError(404, "dead_letter_not_found", f"no dead letter {delivery_id!r}")
    return jsonify({"replayed": delivery_id}), 202
