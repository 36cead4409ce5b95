"""Deliveries in Redis: one JSON record each, and the dead-letter list (a sorted set by time)."""

from __future__ import annotations

import json
import time
from typing import cast

import redis

from supportflow.services.deliveries import Delivery

DELIVERED_TTL_S = 7 * 24 * 3600


class RedisDeliveryStore:
    """Implements the DeliveryStore port."""

    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self.redis = client
        self.prefix = prefix
        self.dead_key = f"{prefix}:deliveries:dead"

    def _key(self, delivery_id: str) -> str:
        return f"{self.prefix}:delivery:{delivery_id}"

    def add(self, delivery: Delivery) -> bool:
        return bool(self.redis.set(self._key(delivery.id), json.dumps(delivery.to_dict()), nx=True))

    def get(self, delivery_id: str) -> Delivery | None:
        raw = cast(bytes | None, self.redis.get(self._key(delivery_id)))
        return Delivery.from_dict(json.loads(raw)) if raw is not None else None

    def save(self, delivery: Delivery) -> None:
        ttl = DELIVERED_TTL_S if delivery.status == "delivered" else None
        self.redis.set(self._key(delivery.id), json.dumps(delivery.to_dict()), ex=ttl)

    def bury(self, delivery: Delivery) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(self._key(delivery.id), json.dumps(delivery.to_dict()))
        pipe.zadd(self.dead_key, {delivery.id: delivery.updated_at or time.time()})
        pipe.execute()

    def dead(self, limit: int = 100) -> list[Delivery]:
        ids = [i.decode() for i in cast(list[bytes], self.redis.zrange(self.dead_key, 0, limit - 1))]
        return [d for i in ids if (d := self.get(i)) is not None]

    def unbury(self, delivery_id: str) -> bool:
        return bool(self.redis.zrem(self.dead_key, delivery_id))
