"""The agents' board on Redis: atomic claims, message-id checks, the handoff announcements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import redis

from supportflow.domain.model import is_conversation_id
from supportflow.services.ports import ClaimOutcome

# KEYS: record, claims; ARGV: conversation id, agent.
# Returns {code, holder}: 1 won, 2 already the agent's, 0 held by another,
# -1 unknown conversation, -2 not handed off. One script, so of two racing agents one wins.
CLAIM = """
local raw = redis.call('GET', KEYS[1])
if not raw then return {-1, ''} end
if cjson.decode(raw)['state'] ~= 'handed_off' then return {-2, ''} end
local holder = redis.call('HGET', KEYS[2], ARGV[1])
if holder then
  if holder == ARGV[2] then return {2, holder} end
  return {0, holder}
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return {1, ARGV[2]}
"""

OUTCOMES = {1: ClaimOutcome.WON, 2: ClaimOutcome.ALREADY_YOURS, 0: ClaimOutcome.TAKEN,
            -1: ClaimOutcome.UNKNOWN, -2: ClaimOutcome.NOT_HANDED_OFF}


class RedisAgentBoard:
    """Implements the AgentBoard port on the same keys as RedisConversationStore."""

    def __init__(self, client: redis.Redis, *, prefix: str = "sf") -> None:
        self.redis = client
        self.prefix = prefix
        self.claims_key = f"{prefix}:handoffs:claims"
        self.log_key = f"{prefix}:handoffs:log"
        self._claim = client.register_script(CLAIM)

    def claim(self, conversation_id: str, agent: str) -> tuple[ClaimOutcome, str | None]:
        """Claim a handed-off conversation for `agent`; the outcome and the holder."""
        if not is_conversation_id(conversation_id):
            return ClaimOutcome.UNKNOWN, None
        code, holder = self._claim(
            keys=[f"{self.prefix}:conv:{conversation_id}", self.claims_key],
            args=[conversation_id, agent],
        )
        return OUTCOMES[int(code)], (holder.decode() if holder else None)

    def claimant(self, conversation_id: str) -> str | None:
        raw = cast(bytes | None, self.redis.hget(self.claims_key, conversation_id))
        return raw.decode() if raw else None

    def claimants(self, conversation_ids: Sequence[str]) -> dict[str, str | None]:
        if not conversation_ids:
            return {}
        raw = cast(list[bytes | None], self.redis.hmget(self.claims_key, list(conversation_ids)))
        return {cid: (value.decode() if value else None)
                for cid, value in zip(conversation_ids, raw, strict=True)}

    def release(self, conversation_id: str) -> None:
        self.redis.hdel(self.claims_key, conversation_id)

    def has_message(self, conversation_id: str, message_id: str) -> bool:
        key = f"{self.prefix}:conv:{conversation_id}:ids"
        return bool(self.redis.sismember(key, f"transcript:{message_id}"))

    def latest_handoff_id(self) -> str:
        """The id of the newest handoff announcement ("0-0" when there is none)."""
        raw = cast(list[tuple[bytes, Any]], self.redis.xrevrange(self.log_key, count=1))
        return raw[0][0].decode() if raw else "0-0"

    def handoffs_after(self, after: str, count: int = 100) -> list[tuple[str, dict[str, Any]]]:
        """Handoff announcements newer than stream id `after`, oldest first."""
        raw = cast(list[tuple[bytes, dict[bytes, bytes]]],
                   self.redis.xrange(self.log_key, min=f"({after}", max="+", count=count))
        return [(entry_id.decode(), {
            "conversation_id": fields[b"conversation"].decode(),
            "reason": fields[b"reason"].decode() or None,
            "at": float(fields[b"at"]),
        }) for entry_id, fields in raw]
