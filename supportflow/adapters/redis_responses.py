"""Response wake-ups on Redis: a response's event wakes the conversation waiting on it.

The response index (`<prefix>:response:<id>` -> conversation id) is written and removed by the
unit of work's commit, with the record that holds the run id. An event leaves a mark
(`<prefix>:response:<id>:woken`) that a commit reads too: a conversation whose worker was busy
when the event came (or that had not yet recorded the response) is checked at once instead of
at its next planned poll, so an event is never lost to a race.
"""

from __future__ import annotations

from typing import cast

import redis

from supportflow.services.openai_events import Outcome, Wake

from .redis_keys import ConversationKeys
from .redis_scripts import WOKEN_TTL_S

# A delivery's webhook-id is remembered well past the signature's 5-minute tolerance.
SEEN_TTL_S = 3600

# KEYS: seen (the delivery), response index, woken mark, wakeups
# ARGV: seen ttl s, mark ttl s, now, key prefix, response id
# Returns {'replayed'}, {'unknown'} or {'woke', conversation id, poll id}.
WAKE_RESPONSE = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return {'replayed'} end
redis.call('SET', KEYS[3], '1', 'EX', ARGV[2])
local id = redis.call('GET', KEYS[2])
if not id then return {'unknown'} end
local raw = redis.call('GET', ARGV[4] .. ':conv:' .. id)
if not raw then return {'unknown'} end
local record = cjson.decode(raw)
if record['state'] ~= 'poll' or record['run_id'] ~= ARGV[5] then return {'unknown'} end
redis.call('ZADD', KEYS[4], 'XX', ARGV[3], id)
return {'woke', id, tostring(record['poll_id'])}
"""


class RedisResponseWakeups:
    """Implements ResponseWakeups: one round trip per event."""

    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self.keys = ConversationKeys(prefix)
        self._wake = client.register_script(WAKE_RESPONSE)

    def wake(self, response_id: str, delivery: str, now: float) -> Wake:
        """Once per delivery: wake the conversation waiting on the response, if one does."""
        index = self.keys.response(response_id)
        reply = cast(list[bytes], self._wake(
            keys=[self.keys.key("openai", "seen", delivery), index, f"{index}:woken",
                  self.keys.wakeups],
            args=[SEEN_TTL_S, WOKEN_TTL_S, repr(now), self.keys.prefix, response_id]))
        outcome = Outcome(reply[0].decode())
        if outcome is not Outcome.WOKE:
            return Wake(outcome)
        return Wake(outcome, reply[1].decode(), int(reply[2]))
