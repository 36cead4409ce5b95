"""Actions for the agents' own ChatGPT (a custom GPT), under /v1/actions/.

Every call carries an OAuth2 access token (`Authorization: Bearer`) that acts for the agent who
consented, with that agent's rights and no more, and only within the token's scopes: a missing
scope answers 403 `insufficient_scope` (and `WWW-Authenticate` per RFC 6750).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from authlib.oauth2 import OAuth2Error
from flask import Blueprint, Response, current_app, g, jsonify, request

from supportflow.domain.accounts import Account, Scope
from supportflow.domain.model import Author
from supportflow.services.agents import QueueEntry

from .action_spec import (
    ActionConversationSchema,
    HandoffsSchema,
    NoteInputSchema,
    ReplyInputSchema,
    SavedNoteSchema,
    build_actions_spec,
)
from .agent_schemas import ClaimSchema
from .agents import agent_errors
from .deps import json_body, services
from .errors import ApiError
from .knowledge import article_errors, dump, dump_many
from .knowledge_schemas import ArticleInputSchema, SearchQuerySchema
from .schemas import ReceiptSchema

bp = Blueprint("actions", __name__, url_prefix="/v1/actions")
F = TypeVar("F", bound=Callable[..., Any])
REALM = 'Bearer realm="supportflow"'
RECENT_MESSAGES = 50


def refusal(error: OAuth2Error, scope: Scope) -> ApiError:
    """An OAuth refusal in the API's error format, with RFC 6750's WWW-Authenticate."""
    if error.error == "insufficient_scope":
        return ApiError(403, "insufficient_scope", f"this action needs the scope {scope.value}",
                        headers={"WWW-Authenticate": f'{REALM}, error="insufficient_scope", '
                                                     f'scope="{scope.value}"'})
    if error.error == "invalid_token":
        return ApiError(401, "invalid_token", "the access token is expired, revoked or unknown",
                        headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'})
    return ApiError(401, "unauthenticated", "send an OAuth access token: Authorization: Bearer",
                    headers={"WWW-Authenticate": REALM})


def require_scope(scope: Scope) -> Callable[[F], F]:
    """Only an unexpired, unrevoked access token with `scope`, of an account that exists."""

    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                token = current_app.extensions["oauth_protector"].acquire_token([scope.value])
            except OAuth2Error as error:
                raise refusal(error, scope) from error
            account = services().accounts.get(token.get_user())
            if account is None:
                raise ApiError(401, "invalid_token", "the account of this token no longer exists",
                               headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'})
            g.account = account
            return view(*args, **kwargs)

        return cast(F, guarded)

    return decorate


def me() -> Account:
    account: Account = g.account
    return account


@bp.get("/openapi.json")
def document() -> Response:
    """The actions' OpenAPI 3.1 document, to import into the GPT editor."""
    settings = services().settings
    return jsonify(build_actions_spec(settings.public_url, settings.max_message_chars))


def summary(entry: QueueEntry) -> dict[str, Any]:
    conversation = entry.conversation
    said = [m for _, m in services().store.transcript(conversation.id, 0, 500)
            if m.author is Author.CUSTOMER]
    return {"conversation_id": conversation.id, "contact_id": conversation.contact_id,
            "reason": conversation.handoff_reason, "waiting_s": round(entry.waiting_s, 3),
            "claimed_by": entry.claimed_by, "last_customer_message": said[-1].text if said else None}


@bp.get("/handoffs")
@require_scope(Scope.HANDOFFS_READ)
def list_handoffs() -> Response:
    """Handoffs nobody claimed, and those the agent claimed, oldest first."""
    entries = services().agents.queue()
    return jsonify(HandoffsSchema().dump({
        "waiting": [summary(e) for e in entries if e.claimed_by is None],
        "claimed_by_you": [summary(e) for e in entries if e.claimed_by == me().name]}))


@bp.get("/conversations/<conversation_id>")
@require_scope(Scope.CONVERSATIONS_READ)
def get_conversation(conversation_id: str) -> Response:
    """State, the latest messages, notes and the contact's attributes."""
    with agent_errors(conversation_id):
        view = services().agents.view(conversation_id)
    total = services().store.transcript(conversation_id, 0, 10_000)[-RECENT_MESSAGES:]
    return jsonify(ActionConversationSchema().dump({
        "conversation_id": view.conversation.id, "contact_id": view.conversation.contact_id,
        "state": view.conversation.state.value, "claimed_by": view.claimed_by,
        "handoff_reason": view.conversation.handoff_reason,
        "messages": [{"seq": seq, **m.to_dict()} for seq, m in total],
        "notes": [{"author": None, **note} for note in view.notes],
        "attributes": view.attributes}))


@bp.post("/conversations/<conversation_id>/notes")
@require_scope(Scope.NOTES_WRITE)
def save_note(conversation_id: str) -> tuple[Response, int]:
    """A private note on the conversation, signed with the agent's account."""
    data = NoteInputSchema().load(json_body())
    if not data["text"].strip():
        raise ApiError(422, "invalid_request", "the request has invalid fields",
                       {"text": ["must not be blank"]})
    with agent_errors(conversation_id):
        note = services().agents.add_note(conversation_id, me().name, data["text"].strip())
    return jsonify(SavedNoteSchema().dump({"conversation_id": conversation_id, "note": note})), 201


@bp.post("/conversations/<conversation_id>/claim")
@require_scope(Scope.HANDOFFS_REPLY)
def claim(conversation_id: str) -> Response:
    """Claim a handoff for the agent."""
    with agent_errors(conversation_id):
        won = services().agents.claim(conversation_id, me().name)
    return jsonify(ClaimSchema().dump({"conversation_id": conversation_id,
                                         "claimed_by": me().name, "newly_claimed": won}))


@bp.post("/conversations/<conversation_id>/reply")
@require_scope(Scope.HANDOFFS_REPLY)
def reply(conversation_id: str) -> tuple[Response, int]:
    """The agent answers the customer of a conversation they claimed."""
    data = ReplyInputSchema().load(json_body())
    if not data["text"].strip():
        raise ApiError(422, "invalid_request", "the request has invalid fields",
                       {"text": ["must not be blank"]})
    with agent_errors(conversation_id):
        receipt = services().agents.send(conversation_id, me().name, data["text"],
                                         data.get("client_message_id"))
    return jsonify(ReceiptSchema().dump(receipt.__dict__)), 201


@bp.post("/knowledge")
@require_scope(Scope.KNOWLEDGE_WRITE)
def save_answer() -> tuple[Response, int]:
    """"Save it": the answer becomes an article the bot answers customers from."""
    data = ArticleInputSchema().load(json_body())
    with article_errors():
        article = services().knowledge.save(me().name, data["title"], data["text"], data["tags"])
    return jsonify(dump(article)), 201


@bp.get("/knowledge")
@require_scope(Scope.KNOWLEDGE_READ)
def search_knowledge() -> Response:
    """Articles sharing words with `q`, best first."""
    query = SearchQuerySchema().load(request.args.to_dict())
    return jsonify(dump_many(services().knowledge.search(query["q"], query["limit"])))
