"""Deliveries in Redis: one JSON record each, and the dead-letter list (a sorted set by time)."""

from __future__ import annotations

import json
import time
from typing import cast

import redis

from supportflow.services.deliveries import Delivery

from .redis_keys import ConversationKeys

DELIVERED_TTL_S = 7 * 24 * 3600
# KEYS: the delivery, the dead letters; ARGV: record, time, delivery id.
BURY = """
if redis.call('SET', KEYS[1], ARGV[1], 'XX') then redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3]) end
"""


class RedisDeliveryStore:
    """Implements the DeliveryStore port."""

    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self.redis = client
        self.prefix = prefix
        self.keys = ConversationKeys(prefix)
        self.dead_key = self.keys.dead_letters
        self._bury = client.register_script(BURY)

    def _key(self, delivery_id: str) -> str:
        return self.keys.delivery(delivery_id)

    def add(self, delivery: Delivery) -> bool:
        """Keep a new delivery (False when it exists), listed under its conversation so that
        erasing the conversation finds it."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(self._key(delivery.id), json.dumps(delivery.to_dict()), nx=True)
        pipe.sadd(self.keys.of(delivery.event.conversation_id).deliveries, delivery.id)
        created, _ = pipe.execute()
        return bool(created)

    def get(self, delivery_id: str) -> Delivery | None:
        raw = cast(bytes | None, self.redis.get(self._key(delivery_id)))
        return Delivery.from_dict(json.loads(raw)) if raw is not None else None

    def save(self, delivery: Delivery) -> None:
        """Update a delivery that exists (xx: an erased one stays erased)."""
        ttl = DELIVERED_TTL_S if delivery.status == "delivered" else None
        self.redis.set(self._key(delivery.id), json.dumps(delivery.to_dict()), ex=ttl, xx=True)

    def bury(self, delivery: Delivery) -> None:
        """Save a dead delivery and list it, unless it was erased meanwhile."""
        self._bury(keys=[self._key(delivery.id), self.dead_key],
                   args=[json.dumps(delivery.to_dict()), delivery.updated_at or time.time(),
                         delivery.id])

    def dead(self, limit: int = 100) -> list[Delivery]:
        ids = [i.decode() for i in cast(list[bytes], self.redis.zrange(self.dead_key, 0, limit - 1))]
        return [d for i in ids if (d := self.get(i)) is not None]

    def unbury(self, delivery_id: str) -> bool:
        return bool(self.redis.zrem(self.dead_key, delivery_id))
