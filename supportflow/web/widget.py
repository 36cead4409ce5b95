"""The widget API: start a conversation, post a customer message, read messages."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, url_for

from supportflow.services.intake import (
    Contact,
    ConversationClosed,
    UnknownConversation,
    UnknownFlow,
)

from .deps import find_conversation, json_body, message_dict, services
from .errors import ApiError
from .schemas import (
    ConversationSchema,
    MessagePageSchema,
    MessageSchema,
    MessagesQuerySchema,
    PostMessageSchema,
    ReceiptSchema,
    StartConversationSchema,
    StartedConversationSchema,
)

bp = Blueprint("widget", __name__, url_prefix="/v1")


@bp.post("/conversations")
def start_conversation() -> tuple[Response, int]:
    """Start a conversation for a helpdesk contact; returns its id and the welcome question."""
    data = StartConversationSchema().load(json_body())
    contact = Contact(**data["contact"])
    try:
        conversation, welcome = services().intake.start_conversation(contact, data.get("flow"))
    except UnknownFlow as error:
        raise ApiError(422, "unknown_flow", f"no flow named {error.args[0]!r}",
                       {"flow": services().flows.names()}) from error
    body = StartedConversationSchema().dump({
        "conversation_id": conversation.id,
        "state": conversation.state.value,
        "welcome": message_dict(1, welcome),
    })
    response = jsonify(body)
    response.headers["Location"] = url_for(".get_conversation", conversation_id=conversation.id)
    return response, 201


@bp.get("/conversations/<conversation_id>")
def get_conversation(conversation_id: str) -> Response:
    """The conversation's state and turn."""
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


@bp.post("/conversations/<conversation_id>/messages")
def post_message(conversation_id: str) -> tuple[Response, int]:
    """Accept a customer message (202); the same client_message_id twice counts once."""
    data = PostMessageSchema().load(json_body())
    try:
        receipt = services().intake.receive_message(
            conversation_id, data.get("client_message_id"), data["text"]
        )
    except UnknownConversation as error:
        raise ApiError(404, "conversation_not_found", f"no conversation {conversation_id!r}") \
            from error
    except ConversationClosed as error:
        raise ApiError(409, "conversation_closed",
                       "this conversation is closed; start a new one") from error
    return jsonify(ReceiptSchema().dump(receipt.__dict__)), 202


@bp.get("/conversations/<conversation_id>/messages")
def list_messages(conversation_id: str) -> Response:
    """Messages after a cursor (`after`, the last `seq` seen), oldest first."""
    query = MessagesQuerySchema().load(request.args.to_dict())
    conversation = find_conversation(conversation_id)
    page = services().store.transcript(conversation_id, query["after"], query["limit"])
    return jsonify(MessagePageSchema().dump({
        "conversation_id": conversation_id,
        "state": conversation.state.value,
        "messages": [message_dict(seq, message) for seq, message in page],
        "next_cursor": page[-1][0] if page else query["after"],
    }))


# Nested schemas first, so the document refers to them by these names.
SCHEMAS = {
    "Message": MessageSchema,
    "StartConversation": StartConversationSchema,
    "StartedConversation": StartedConversationSchema,
    "Conversation": ConversationSchema,
    "PostMessage": PostMessageSchema,
    "Receipt": ReceiptSchema,
    "MessagePage": MessagePageSchema,
}
