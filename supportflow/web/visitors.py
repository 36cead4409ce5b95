"""The visitor token on the public widget routes: `Authorization: Bearer <visitor_token>`.

Tokens travel in a header, never in a URL, so they stay out of access logs and browser history.
"""

from __future__ import annotations

from flask import g, request

from supportflow.adapters.visitor_tokens import Visitor, WidgetTokenError
from supportflow.domain.flow import Flow

from .cors import require_flow_origin
from .deps import services
from .errors import ApiError


def bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def checked_token() -> Visitor | WidgetTokenError | None:
    """The request's visitor token checked once per request: the visitor, why it is refused,
    or None without one (the rate limits and the route both ask)."""
    if "visitor" not in g:
        token = bearer_token()
        try:
            g.visitor = services().visitors.verify(token) if token else None
        except WidgetTokenError as error:
            g.visitor = error
    found: Visitor | WidgetTokenError | None = g.visitor
    return found


def current_visitor() -> Visitor | None:
    """The request's valid visitor token, if any (rate limits key on it); never raises."""
    found = checked_token()
    return found if isinstance(found, Visitor) else None


def require_visitor(conversation_id: str) -> Visitor:
    """The visitor of this conversation, or a 401 (no, bad or expired token) or 403 (another
    conversation's token, or a site the conversation's flow does not list)."""
    visitor = checked_token()
    if visitor is None:
        raise ApiError(401, "visitor_token_required",
                       "send the conversation's visitor token: Authorization: Bearer <visitor_token>")
    if isinstance(visitor, WidgetTokenError):
        if visitor.reason == "expired":
            raise ApiError(401, "visitor_token_expired",
                           "the visitor token has expired; start a new conversation") from visitor
        raise ApiError(401, "visitor_token_invalid", "the visitor token is not valid") from visitor
    if visitor.conversation_id != conversation_id:
        raise ApiError(403, "visitor_token_mismatch",
                       "this visitor token belongs to another conversation")
    try:
        flow: Flow | None = services().flows.get(visitor.flow)
    except KeyError:  # the flow was removed since: only its own origin may go on
        flow = None
    require_flow_origin(flow)
    return visitor
