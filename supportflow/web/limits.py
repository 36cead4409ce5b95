"""Rate limits of the public widget routes (Flask-Limiter), counted in Redis by every web process.

Every widget route shares one limit per client address; starting conversations has its own,
per address (trusted servers, with a widget-role token, are exempt); a visitor's reads (state,
messages, events, token renewal) share one limit and its posts have another, both keyed by the
conversation its token opens. A refused request gets 429 with `Retry-After` (seconds). Each
limit costs one Redis round trip per request.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request
from flask_limiter import Limiter, RateLimitExceeded
from limits import parse_many

from supportflow.bootstrap import Services
from supportflow.settings import env_name

from .auth import is_trusted_server
from .errors import error_response
from .visitors import current_visitor

STRATEGY = "fixed-window"


def client_address() -> str:
    """The caller's address (behind trusted proxies: the one they forwarded)."""
    return request.remote_addr or "unknown"


def visitor_key() -> str:
    visitor = current_visitor()
    return visitor.conversation_id if visitor else ""


def without_visitor() -> bool:
    """No valid token: the route answers 401/403 anyway, and the address limit still counts."""
    return current_visitor() is None


def checked(setting: str, value: str) -> str:
    """The limit as configured, or a ValueError naming the setting."""
    try:
        parse_many(value)
    except ValueError as error:
        raise ValueError(f"{env_name(setting)}={value!r} is not a rate limit "
                         "(e.g. '30 per minute' or '30/minute;500/day')") from error
    return value


def install_rate_limits(app: Flask, services: Services) -> Limiter | None:
    """Wrap the widget routes in their limits (none when rate limits are off)."""
    settings = services.settings
    if not settings.rate_limits_enabled:
        return None
    limiter = Limiter(
        client_address, app=app, strategy=STRATEGY, headers_enabled=False,
        # Only the scheme matters with a pool given: "redis://" makes limits use the pool as it
        # is, so the limits follow a Sentinel failover like every other client (a
        # redis+sentinel:// URI would make limits build a Sentinel client of its own).
        storage_uri="redis://",
        # One connection pool per process: the limits share the services' Redis client.
        storage_options={"connection_pool": services.redis.connection_pool,  # type: ignore[dict-item]
                         "key_prefix": f"{settings.key_prefix}:ratelimit"},
    )
    per_address = limiter.shared_limit(checked("rate_limit_address", settings.rate_limit_address),
                                       scope="widget", key_func=client_address)
    # A trusted server (widget-role token) starts conversations for many people from one address.
    starts = limiter.limit(checked("rate_limit_start", settings.rate_limit_start),
                           key_func=client_address, exempt_when=is_trusted_server)
    reads = limiter.shared_limit(checked("rate_limit_reads", settings.rate_limit_reads),
                                 scope="visitor-reads", key_func=visitor_key,
                                 exempt_when=without_visitor)
    posts = limiter.limit(checked("rate_limit_messages", settings.rate_limit_messages),
                          key_func=visitor_key, exempt_when=without_visitor)
    routes: dict[str, list[Callable[[Any], Any]]] = {
        "widget.start_conversation": [starts, per_address],
        "widget.post_message": [posts, per_address],
        "widget.get_conversation": [reads, per_address],
        "widget.list_messages": [reads, per_address],
        "widget.renew_token": [reads, per_address],
        "streams.conversation_events": [reads, per_address],
    }
    for endpoint, decorators in routes.items():
        view = app.view_functions[endpoint]
        for decorate in decorators:
            view = decorate(view)
        app.view_functions[endpoint] = view

    @app.errorhandler(RateLimitExceeded)
    def too_many_requests(error: RateLimitExceeded) -> Response:
        breached = limiter.current_limit
        # The window's own reset time (RequestLimit.reset_at rounds a second up).
        wait = max(1, math.ceil(breached.window.reset_time - time.time())) if breached else 1
        response = error_response(429, "rate_limited",
                                  f"too many requests (at most {error.description}); "
                                  f"try again in {wait} s")
        response.headers["Retry-After"] = str(wait)
        return response

    return limiter
