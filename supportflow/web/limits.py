"""Rate limits of the public widget routes, counted in Redis by every web process.

Every widget route shares one limit per client address; starting conversations has its own,
per address (trusted servers, with a widget-role token, are exempt); a visitor's reads (state,
messages, events, token renewal) share one limit and its posts have another, both keyed by the
conversation its token opens. A refused request gets 429 with `Retry-After` (seconds) and
changes nothing else. All the limits of a request are one Redis round trip
(adapters/redis_limits.py); settings use the `limits` syntax ("30 per minute", "30/minute;500/day").
A customer's message carries its request's limits into the accept script instead (one round
trip for both); when the route answers before accepting (a bad body, a bad token), the limits
are counted on their own, so every request counts once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from flask import Flask, Response, g, request
from limits import RateLimitItem, parse_many

from supportflow.adapters.redis_limits import RedisRateLimits
from supportflow.bootstrap import Services
from supportflow.services.ports import Limit, LimitExceeded, Refusal
from supportflow.settings import env_name

from .auth import is_trusted_server
from .errors import error_response
from .visitors import current_visitor


def client_address() -> str:
    """The caller's address (behind trusted proxies: the one they forwarded)."""
    return request.remote_addr or "unknown"


def visitor_key() -> str:
    visitor = current_visitor()
    return visitor.conversation_id if visitor else ""


def without_visitor() -> bool:
    """No valid token: the route answers 401/403 anyway, and the address limit still counts."""
    return current_visitor() is None


def checked(setting: str, value: str) -> list[RateLimitItem]:
    """The limit as configured, or a ValueError naming the setting."""
    try:
        return list(parse_many(value))
    except ValueError as error:
        raise ValueError(f"{env_name(setting)}={value!r} is not a rate limit "
                         "(e.g. '30 per minute' or '30/minute;500/day')") from error


@dataclass(frozen=True)
class Rule:
    """Limits counted per identity in a scope (routes naming the same rule share its counts)."""

    scope: str
    items: list[RateLimitItem]
    identity: Callable[[], str]
    exempt: Callable[[], bool] | None = None

    def limits(self) -> list[Limit]:
        """This request's limits under the rule (none when it is exempt)."""
        if self.exempt is not None and self.exempt():
            return []
        who = self.identity()
        return [Limit(self.scope, who, item.amount, float(item.get_expiry()), str(item))
                for item in self.items]


def install_rate_limits(app: Flask, services: Services) -> None:
    """Wrap the widget routes in their limits (none when rate limits are off)."""
    settings = services.settings
    if not settings.rate_limits_enabled:
        return
    counts = RedisRateLimits(services.redis, prefix=settings.key_prefix)
    per_address = Rule("widget", checked("rate_limit_address", settings.rate_limit_address),
                       client_address)
    # A trusted server (widget-role token) starts conversations for many people from one address.
    starts = Rule("starts", checked("rate_limit_start", settings.rate_limit_start),
                  client_address, exempt=is_trusted_server)
    reads = Rule("visitor-reads", checked("rate_limit_reads", settings.rate_limit_reads),
                 visitor_key, exempt=without_visitor)
    posts = Rule("visitor-posts", checked("rate_limit_messages", settings.rate_limit_messages),
                 visitor_key, exempt=without_visitor)
    routes: dict[str, list[Rule]] = {
        "widget.start_conversation": [starts, per_address],
        "widget.post_message": [posts, per_address],
        "widget.get_conversation": [reads, per_address],
        "widget.list_messages": [reads, per_address],
        "widget.renew_token": [reads, per_address],
        "streams.conversation_events": [reads, per_address],
    }
    for endpoint, rules in routes.items():
        wrap = _carried if endpoint in CARRIED else _limited
        app.view_functions[endpoint] = wrap(app.view_functions[endpoint], rules, counts)


# Routes whose view hands the request's limits to the accept script (take_limits()).
CARRIED = frozenset({"widget.post_message"})


def take_limits() -> list[Limit]:
    """The limits this request is still to be counted against; the caller now counts them."""
    limits: list[Limit] = g.pop("pending_limits", [])
    return limits


def _limited(view: Callable[..., Any], rules: list[Rule],
             counts: RedisRateLimits) -> Callable[..., Any]:
    @wraps(view)
    def limited(*args: Any, **kwargs: Any) -> Any:
        refusal = counts.hit([limit for rule in rules for limit in rule.limits()])
        if refusal is not None:
            return too_many_requests(refusal)
        return view(*args, **kwargs)

    return limited


def _carried(view: Callable[..., Any], rules: list[Rule],
             counts: RedisRateLimits) -> Callable[..., Any]:
    @wraps(view)
    def carried(*args: Any, **kwargs: Any) -> Any:
        g.pending_limits = [limit for rule in rules for limit in rule.limits()]
        try:
            return view(*args, **kwargs)
        except LimitExceeded as exceeded:
            return too_many_requests(exceeded.refusal)
        except Exception:
            # Refused before it was accepted: it still counts, and past a limit it is a 429.
            refusal = counts.hit(take_limits())
            if refusal is not None:
                return too_many_requests(refusal)
            raise
        finally:
            # Answered without taking them (no path does today): count them all the same.
            counts.hit(take_limits())

    return carried


def too_many_requests(refusal: Refusal) -> Response:
    """429 with the limit and `Retry-After`: the seconds left in the limit's window."""
    wait = max(1, math.ceil(refusal.retry_after_s))
    response = error_response(429, "rate_limited",
                              f"too many requests (at most {refusal.limit.text}); "
                              f"try again in {wait} s")
    response.headers["Retry-After"] = str(wait)
    return response
