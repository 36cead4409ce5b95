"""Fixed-window rate limits counted in Redis: every limit a request is held to, in one trip.

A limit is a counter per (scope, identity, limit) whose key lives for the limit's window from
its first hit; a request counts against each of its limits at once, and is refused when one of
them is past its amount (refused requests count too, so a flood stays limited). Every web
process shares the counters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import redis

from supportflow.services.ports import Limit, Refusal

# Counts the request against the limits whose counters are KEYS[first], KEYS[first + 1], ...
# to the last key, with each one's amount and window (ms) in ARGV from `arg` on, two apiece.
# Every counter counts (a refused request too); returns 0, 0 when every limit holds, else the
# first one past its amount (1-based among these keys) and its ms left. The accept script
# (redis_scripts.ACCEPT_MESSAGE) runs it before keeping a message.
COUNT_LIMITS = """
local function count_limits(first, arg)
  local refused, left = 0, 0
  for i = first, #KEYS do
    local n = i - first + 1
    local count = redis.call('INCR', KEYS[i])
    local window = tonumber(ARGV[arg + 2 * n - 1])
    if count == 1 then redis.call('PEXPIRE', KEYS[i], window) end
    if refused == 0 and count > tonumber(ARGV[arg + 2 * n - 2]) then
      refused = n
      left = redis.call('PTTL', KEYS[i])
      if left < 0 then left = window end
    end
  end
  return refused, left
end
"""

# KEYS: the counters; ARGV: for each, its amount and its window in ms.
HIT = COUNT_LIMITS + """
local refused, left = count_limits(1, 1)
return {refused, left}
"""


def limit_keys(prefix: str, limits: Sequence[Limit]) -> list[str]:
    """The counters of `limits` under the key prefix, one per (scope, identity, limit)."""
    return [f"{prefix}:ratelimit:{lim.scope}:{lim.identity}:{lim.amount}/{lim.window_s:g}"
            for lim in limits]


def limit_args(limits: Sequence[Limit]) -> list[Any]:
    """Each limit's amount and window in ms, as COUNT_LIMITS reads them."""
    args: list[Any] = []
    for lim in limits:
        args += [lim.amount, int(lim.window_s * 1000)]
    return args


def refusal_of(limits: Sequence[Limit], refused: int, left_ms: int) -> Refusal | None:
    """The Refusal COUNT_LIMITS reported, if any."""
    if not refused:
        return None
    return Refusal(limits[int(refused) - 1], int(left_ms) / 1000)


class RedisRateLimits:
    """Counts requests against their limits in one round trip."""

    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self.prefix = prefix
        self._hit = client.register_script(HIT)

    def hit(self, limits: Sequence[Limit]) -> Refusal | None:
        """Count one request against each limit; the first it goes past, if any."""
        if not limits:
            return None
        refused, left_ms = cast(list[int], self._hit(keys=limit_keys(self.prefix, limits),
                                                     args=limit_args(limits)))
        return refusal_of(limits, refused, left_ms)
