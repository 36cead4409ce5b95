"""The widget API: start a conversation, post a customer message, read messages."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, url_for

from supportflow.adapters.vault import VaultError
from supportflow.domain.contacts import Identity
from supportflow.domain.flow import Flow
from supportflow.domain.model import Conversation, State
from supportflow.services.identity import ContactClaim, IdentityRefused, ResolvedContact
from supportflow.services.intake import (
    Contact,
    ConversationClosed,
    UnknownConversation,
)

from .auth import trusted_server
from .cors import require_flow_origin, widget_route
from .deps import find_conversation, json_body, json_response, message_dict, services
from .errors import ApiError, unavailable
from .inputs import query
from .limits import take_limits
from .schemas import (
    ConversationSchema,
    MessagePageSchema,
    MessageSchema,
    MessagesQuerySchema,
    PostMessageSchema,
    ReceiptSchema,
    StartConversationSchema,
    StartedConversationSchema,
    VisitorTokenSchema,
)
from .visitors import require_visitor

bp = Blueprint("widget", __name__, url_prefix="/v1")


def token_dict(conversation: Conversation) -> dict[str, Any]:
    issued = services().visitors.issue(conversation.id, conversation.flow)
    return {"conversation_id": conversation.id, "visitor_token": issued.token,
            "visitor_token_expires_in": issued.expires_in}


def requested_flow(name: str | None) -> Flow:
    """The named (or default) flow, or a 422 listing the flows there are."""
    flows = services().flows
    name = name or flows.default
    try:
        return flows.get(name)
    except KeyError as error:
        raise ApiError(422, "unknown_flow", f"no flow named {name!r}",
                       {"flow": flows.names()}) from error


def start_contact(flow: Flow, data: dict[str, Any], trusted: bool) -> ResolvedContact:
    """The contact this start acts as; 403 when a browser cannot prove it is that contact."""
    contact = data["contact"]
    claim = ContactClaim(contact.get("id"), contact.get("id_hash"), data.get("contact_token"))
    try:
        return services().identities.resolve(flow, claim, trusted=trusted)
    except IdentityRefused as error:
        raise ApiError(403, error.code, str(error)) from error
    except VaultError as error:  # e.g. this process lacks SUPPORTFLOW_VAULT_KEY
        raise unavailable("the flow's identity secret cannot be read") from error


def contact_dict(flow: Flow, resolved: ResolvedContact) -> dict[str, Any]:
    """The contact as the start answers it; anonymous ones with a fresh contact token."""
    found: dict[str, Any] = {"contact_id": resolved.id, "identity": resolved.identity.value}
    if resolved.identity is Identity.ANONYMOUS:
        issued = services().contact_tokens.issue(resolved.id, flow.name)
        found.update(contact_token=issued.token, contact_token_expires_in=issued.expires_in)
    return found


@bp.post("/conversations")
@widget_route
def start_conversation() -> tuple[Response, int]:
    """Start a conversation: for an anonymous visitor, a contact the site signed, or any contact
    a trusted server names; its id, visitor token and welcome question."""
    trusted = trusted_server()
    data = StartConversationSchema().load(json_body())
    flow = requested_flow(data.get("flow"))
    require_flow_origin(flow)
    resolved = start_contact(flow, data, trusted)
    profile = data["contact"]
    contact = Contact(resolved.id, profile.get("name"), profile.get("email"),
                      profile.get("attributes", {}))
    conversation, welcome = services().intake.start_conversation(contact, flow.name)
    body = StartedConversationSchema().dump({
        **token_dict(conversation),
        **contact_dict(flow, resolved),
        "state": conversation.state.value,
        "welcome": message_dict(1, welcome),
    })
    response = jsonify(body)
    response.headers["Location"] = url_for(".get_conversation", conversation_id=conversation.id)
    return response, 201


@bp.post("/conversations/<conversation_id>/token")
@widget_route
def renew_token(conversation_id: str) -> Response:
    """A fresh visitor token for a conversation that is still open (send the current one)."""
    require_visitor(conversation_id)
    conversation = find_conversation(conversation_id)
    if conversation.state is State.CLOSED:
        raise ApiError(409, "conversation_closed", "this conversation is closed; start a new one")
    return jsonify(VisitorTokenSchema().dump(token_dict(conversation)))


@bp.get("/conversations/<conversation_id>")
@widget_route
def get_conversation(conversation_id: str) -> Response:
    """The conversation's state and turn."""
    require_visitor(conversation_id)
    conversation = find_conversation(conversation_id)
    return jsonify(ConversationSchema().dump({
        "conversation_id": conversation.id,
        "contact_id": conversation.contact_id,
        "flow": conversation.flow,
        "state": conversation.state.value,
        "turn": conversation.turn,
        "handoff_reason": conversation.handoff_reason,
        "failure_reason": conversation.failure_reason,
    }))


# The hot route's schema, built once (building a marshmallow schema costs more than using it).
POST_MESSAGE = PostMessageSchema()


@bp.post("/conversations/<conversation_id>/messages")
@widget_route
def post_message(conversation_id: str) -> Response:
    """Accept a customer message (202); the same client_message_id twice counts once."""
    require_visitor(conversation_id)
    data = POST_MESSAGE.load(json_body())
    try:
        receipt = services().intake.receive_message(
            conversation_id, data.get("client_message_id"), data["text"], limits=take_limits()
        )
    except UnknownConversation as error:
        raise ApiError(404, "conversation_not_found", f"no conversation {conversation_id!r}") \
            from error
    except ConversationClosed as error:
        raise ApiError(409, "conversation_closed",
                       "this conversation is closed; start a new one") from error
    # The receipt's fields are ReceiptSchema's (the document's); dumping them copied them.
    return json_response(receipt.__dict__, 202)


@bp.get("/conversations/<conversation_id>/messages")
@widget_route
def list_messages(conversation_id: str) -> Response:
    """Messages after a cursor (`after`, the last `seq` seen), oldest first."""
    require_visitor(conversation_id)
    args = query(MessagesQuerySchema())
    conversation = find_conversation(conversation_id)
    page = services().store.transcript(conversation_id, args["after"], args["limit"])
    return jsonify(MessagePageSchema().dump({
        "conversation_id": conversation_id,
        "state": conversation.state.value,
        "messages": [message_dict(seq, message) for seq, message in page],
        "next_cursor": page[-1][0] if page else args["after"],
    }))


# Nested schemas first, so the document refers to them by these names.
SCHEMAS = {
    "Message": MessageSchema,
    "StartConversation": StartConversationSchema,
    "StartedConversation": StartedConversationSchema,
    "Conversation": ConversationSchema,
    "PostMessage": PostMessageSchema,
    "Receipt": ReceiptSchema,
    "VisitorToken": VisitorTokenSchema,
    "MessagePage": MessagePageSchema,
}
