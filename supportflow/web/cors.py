"""CORS for the public widget routes: each flow lists the sites (origins) that may embed it.

A request without `Origin` (a server, curl) or from the app's own origin (the /demo page) needs no
CORS. Any other origin must be listed by a flow: for a conversation, by the conversation's flow
(named in its visitor token); for starting one, by the requested or default flow. A preflight
carries no body and no token, so it is answered for origins that any flow lists; the request
that follows is then checked against its own flow. Refusals are a JSON 403 without CORS headers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, request

from supportflow.domain.flow import Flow

from .deps import services
from .errors import ApiError, error_response

F = TypeVar("F", bound=Callable[..., Any])
PUBLIC_WIDGET = "supportflow_public_widget_route"
ALLOW_HEADERS = "Authorization, Content-Type, Last-Event-ID, X-Request-Id"
EXPOSE_HEADERS = "Retry-After, Location, X-Request-Id"
PREFLIGHT_MAX_AGE_S = 600


def widget_route(view: F) -> F:
    """Mark a view as a public widget route: CORS by flow, visitor token, rate limits."""
    setattr(view, PUBLIC_WIDGET, True)
    return view


def is_widget_route() -> bool:
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(view, PUBLIC_WIDGET, False))


def own_origin() -> str:
    return f"{request.scheme}://{request.host}".lower()


def listed_by_any_flow(origin: str) -> bool:
    flows = services().flows
    return any(flows.get(name).widget.allows(origin) for name in flows.names())


def refusal(origin: str) -> Response:
    return error_response(403, "origin_not_allowed",
                          f"pages from {origin} may not use this chat widget; list the site in "
                          "the flow's widget.allowed_origins")


def require_flow_origin(flow: Flow | None) -> None:
    """403 when the request comes from a site that `flow` does not list (no CORS headers)."""
    origin = g.get("cors_origin")
    if origin and (flow is None or not flow.widget.allows(origin)):
        g.pop("cors_origin")
        raise ApiError(403, "origin_not_allowed",
                       f"pages from {origin} may not use this flow's chat widget")


def check_origin() -> Response | None:
    """Before a widget route: answer preflights, refuse unlisted origins, note allowed ones."""
    if not is_widget_route():
        return None
    origin = request.headers.get("Origin")
    if request.method == "OPTIONS":
        return preflight(origin)
    if origin is None or origin == own_origin():
        return None
    if not listed_by_any_flow(origin):
        return refusal(origin)
    g.cors_origin = origin
    return None


def preflight(origin: str | None) -> Response | None:
    method = request.headers.get("Access-Control-Request-Method")
    if origin is None or method is None:
        return None  # a plain OPTIONS: Flask answers it with Allow
    adapter = current_app.create_url_adapter(request)
    allowed = set(adapter.allowed_methods() if adapter else []) - {"OPTIONS", "HEAD"}
    if method not in allowed or not (origin == own_origin() or listed_by_any_flow(origin)):
        return refusal(origin)
    response = Response(status=204)
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Allow-Methods"] = ", ".join(sorted(allowed))
    response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
    response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_S)
    return response


def add_cors_headers(response: Response) -> Response:
    """After a widget route: CORS headers for an allowed origin (errors included)."""
    if is_widget_route():
        response.vary.add("Origin")
        origin = g.get("cors_origin")
        if origin and "Access-Control-Allow-Origin" not in response.headers:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
    return response


def install_cors(app: Flask) -> None:
    """Check origins before every other request hook, and add CORS headers to the answers."""
    app.before_request(check_origin)
    app.after_request(add_cors_headers)
