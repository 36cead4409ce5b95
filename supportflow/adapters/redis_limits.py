"""Fixed-window rate limits counted in Redis: every limit a request is held to, in one trip.

A limit is a counter per (scope, identity, limit) whose key lives for the limit's window from
its first hit; a request counts against each of its limits at once, and is refused when one of
them is past its amount (refused requests count too, so a flood stays limited). Every web
process shares the counters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis

# KEYS: the counters; ARGV: for each, its amount and its window in ms.
# Returns {0} when every limit holds, else {the first one past its amount (1-based), its ms left}.
HIT = """
local refused, left = 0, 0
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  local window = tonumber(ARGV[2 * i])
  if count == 1 then redis.call('PEXPIRE', key, window) end
  if refused == 0 and count > tonumber(ARGV[2 * i - 1]) then
    refused = i
    left = redis.call('PTTL', key)
    if left < 0 then left = window end
  end
end
return {refused, left}
"""


@dataclass(frozen=True)
class Limit:
    """At most `amount` requests per `window_s` for one identity in one scope."""

    scope: str
    identity: str
    amount: int
    window_s: float
    text: str  # as configured, e.g. "30 per 1 minute"


@dataclass(frozen=True)
class Refusal:
    """The limit a request went past, and how long until its window ends."""

    limit: Limit
    retry_after_s: float


class RedisRateLimits:
    """Counts requests against their limits in one round trip."""

    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self.prefix = f"{prefix}:ratelimit"
        self._hit = client.register_script(HIT)

    def hit(self, limits: Sequence[Limit]) -> Refusal | None:
        """Count one request against each limit; the first it goes past, if any."""
        if not limits:
            return None
        keys = [f"{self.prefix}:{lim.scope}:{lim.identity}:{lim.amount}/{lim.window_s:g}"
                for lim in limits]
        args: list[Any] = []
        for lim in limits:
            args += [lim.amount, int(lim.window_s * 1000)]
        refused, left_ms = cast(list[int], self._hit(keys=keys, args=args))
        if not refused:
            return None
        return Refusal(limits[int(refused) - 1], int(left_ms) / 1000)
