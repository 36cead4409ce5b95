"""The agents' API: the handoff queue, claim, answer, resolve, give back; agent tokens only."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import Blueprint, Response, jsonify, url_for

from supportflow.domain.access import Role
from supportflow.services.agents import (
    ClaimConflict,
    ConversationBusy,
    NotHandedOff,
    QueueEntry,
)
from supportflow.services.intake import UnknownConversation
from supportflow.services.unit_of_work import StaleWrite

from .agent_schemas import (
    AgentConversationSchema,
    AgentMessageSchema,
    ClaimSchema,
    HandoffQueueSchema,
    StateChangeSchema,
)
from .auth import current_principal, require_role
from .deps import json_body, message_dict, services
from .errors import ApiError, unavailable
from .schemas import ReceiptSchema

bp = Blueprint("agents", __name__, url_prefix="/v1/agent")


@contextmanager
def agent_errors(conversation_id: str) -> Iterator[None]:
    """Turn the desk's refusals into 4xx/503 JSON errors (nothing was changed)."""
    try:
        yield
    except UnknownConversation as error:
        raise ApiError(404, "conversation_not_found",
                       f"no conversation {conversation_id!r}") from error
    except NotHandedOff as error:
        raise ApiError(409, "not_handed_off",
                       "the conversation is not handed off to agents") from error
    except ClaimConflict as error:
        code = "not_claimed" if error.holder is None else "claimed_by_other"
        raise ApiError(409, code, str(error), {"claimed_by": error.holder}) from error
    except (ConversationBusy, StaleWrite) as error:
        raise unavailable("the conversation is busy; try again", code="busy") from error


def handoff_dict(entry: QueueEntry) -> dict[str, Any]:
    conversation = entry.conversation
    page = services().store.transcript(conversation.id, 0, 500)
    return {
        "conversation_id": conversation.id, "contact_id": conversation.contact_id,
        "flow": conversation.flow, "channel": conversation.channel,
        "reason": conversation.handoff_reason, "entered_at": entry.entered_at,
        "waiting_s": round(entry.waiting_s, 3),
        "attribute": {"name": entry.attribute, "value": entry.attribute_value},
        "claimed_by": entry.claimed_by,
        "transcript_url": url_for(".get_conversation", conversation_id=conversation.id),
        "messages": [message_dict(seq, message) for seq, message in page],
    }


@bp.get("/handoffs")
@require_role(Role.AGENT)
def list_handoffs() -> Response:
    """Handed-off conversations, oldest first, with wait, reason, attribute and transcript."""
    entries = services().agents.queue()
    return jsonify(HandoffQueueSchema().dump({"handoffs": [handoff_dict(e) for e in entries]}))


@bp.get("/conversations/<conversation_id>")
@bp.get("/conversations/<conversation_id>/")
@require_role(Role.AGENT)
def get_conversation(conversation_id: str) -> Response:
    """Any conversation's state, transcript, contact attributes and notes."""
    with agent_errors(conversation_id):
        view = services().agents.view(conversation_id)
    conversation = view.conversation
    return jsonify(AgentConversationSchema().dump({
        "conversation_id": conversation.id, "contact_id": conversation.contact_id,
        "flow": conversation.flow, "channel": conversation.channel,
        "state": conversation.state.value, "turn": conversation.turn,
        "handoff_reason": conversation.handoff_reason,
        "failure_reason": conversation.failure_reason, "claimed_by": view.claimed_by,
        "messages": [message_dict(seq, message) for seq, message in view.messages],
        "attributes": view.attributes, "notes": view.notes,
    }))


@bp.post("/conversations/<conversation_id>/claim")
@require_role(Role.AGENT)
def claim(conversation_id: str) -> Response:
    """Claim a handoff: of agents racing, exactly one wins; the others get 409."""
    agent = current_principal().name
    with agent_errors(conversation_id):
        won = services().agents.claim(conversation_id, agent)
    return jsonify(ClaimSchema().dump(
        {"conversation_id": conversation_id, "claimed_by": agent, "newly_claimed": won}))


@bp.post("/conversations/<conversation_id>/messages")
@require_role(Role.AGENT)
def send_message(conversation_id: str) -> tuple[Response, int]:
    """The claiming agent's message to the customer (once per client_message_id)."""
    data = AgentMessageSchema().load(json_body())
    with agent_errors(conversation_id):
        receipt = services().agents.send(conversation_id, current_principal().name,
                                         data["text"], data.get("client_message_id"))
    return jsonify(ReceiptSchema().dump(receipt.__dict__)), 201


def _state_change(conversation_id: str, action: Callable[[str, str], Any]) -> Response:
    with agent_errors(conversation_id):
        conversation = action(conversation_id, current_principal().name)
    return jsonify(StateChangeSchema().dump(
        {"conversation_id": conversation.id, "state": conversation.state.value}))


@bp.post("/conversations/<conversation_id>/resolve")
@require_role(Role.AGENT)
def resolve(conversation_id: str) -> Response:
    """Close the conversation and take it out of the queue."""
    return _state_change(conversation_id, services().agents.resolve)


@bp.post("/conversations/<conversation_id>/return")
@require_role(Role.AGENT)
def give_back(conversation_id: str) -> Response:
    """Give the conversation back to the bot, which waits for the customer's next message."""
    return _state_change(conversation_id, services().agents.give_back)
