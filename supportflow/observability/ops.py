"""What operators read, kept in Redis: worker heartbeats, failed turns, the sampled time series."""

from __future__ import annotations

import json
import time
from typing import Any, cast

import redis

from .redis_metrics import RedisMetrics, histogram_buckets, quantile

LATENCY = "supportflow_reply_latency_seconds"
FAILURES_KEPT = 100
SERIES_KEPT_S = 2 * 3600.0
BEAT_LOG_KEPT = 1000
# kombu's Redis transport: a list per queue (and per priority step), reserved tasks in a hash.
KOMBU_PRIORITY_SEP = "\x06\x16"
KOMBU_PRIORITY_STEPS = (3, 6, 9)
KOMBU_UNACKED = "unacked"


class OpsStore:
    """Reads and records the operator's view; one per process, shared by web and workers."""

    def __init__(self, client: redis.Redis, *, prefix: str, metrics: RedisMetrics,
                 queue: str = "supportflow") -> None:
        self.redis, self.prefix, self.metrics, self.queue = client, prefix, metrics, queue

    def key(self, name: str) -> str:
        return f"{self.prefix}:ops:{name}"

    # ----- failures -----

    def record_failure(self, conversation_id: str, reason: str, at: float) -> None:
        """Keep a failed turn at the head of a capped list."""
        entry = json.dumps({"conversation_id": conversation_id, "reason": reason, "at": at})
        pipe = self.redis.pipeline(transaction=True)
        pipe.lpush(self.key("failures"), entry)
        pipe.ltrim(self.key("failures"), 0, FAILURES_KEPT - 1)
        pipe.execute()

    def failures(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest failed turns, newest first."""
        raw = cast(list[bytes], self.redis.lrange(self.key("failures"), 0, limit - 1))
        return [json.loads(item) for item in raw]

    # ----- workers -----

    def heartbeat(self, hostname: str, at: float | None = None) -> None:
        """Say that this worker is alive."""
        self.redis.hset(self.key("workers"), hostname, at if at is not None else time.time())

    def forget_worker(self, hostname: str) -> None:
        self.redis.hdel(self.key("workers"), hostname)

    def workers(self, now: float, within_s: float) -> list[dict[str, Any]]:
        """Workers seen in the last `within_s` seconds, most recently seen first."""
        raw = cast(dict[bytes, bytes], self.redis.hgetall(self.key("workers")))
        seen = [(name.decode(), now - float(at)) for name, at in raw.items()]
        return [{"name": name, "last_seen_s_ago": round(max(0.0, ago), 3)}
                for name, ago in sorted(seen, key=lambda item: item[1]) if ago <= within_s]

    # ----- beat -----

    def record_dispatch(self, task: str, beat: str, at: float) -> None:
        """Note that this beat sent a periodic task (a capped trail: who is active, and when)."""
        self.redis.xadd(self.key("beat"), {"task": task, "beat": beat, "at": repr(at)},
                        maxlen=BEAT_LOG_KEPT, approximate=True)

    def record_run(self, task: str, at: float) -> None:
        """Note that a worker ran this periodic task (the watchdog's pulse, for ops and tests)."""
        self.redis.hset(self.key("periodic"), task, repr(at))

    def last_runs(self) -> dict[str, float]:
        """When each periodic task last ran."""
        raw = cast(dict[bytes, bytes], self.redis.hgetall(self.key("periodic")))
        return {name.decode(): float(at) for name, at in raw.items()}

    def dispatches(self, limit: int = 100) -> list[dict[str, Any]]:
        """The latest periodic task dispatches, oldest first: task, beat, at."""
        raw = cast(list[tuple[bytes, dict[bytes, bytes]]],
                   self.redis.xrevrange(self.key("beat"), count=limit))
        found = [{"task": fields[b"task"].decode(), "beat": fields[b"beat"].decode(),
                  "at": float(fields[b"at"])} for _, fields in raw]
        return found[::-1]

    # ----- the Celery queue -----

    def queue_depth(self) -> dict[str, int]:
        """Tasks waiting in the queue list, and tasks reserved by workers (countdowns included)."""
        names = [self.queue, *(f"{self.queue}{KOMBU_PRIORITY_SEP}{step}" for step in KOMBU_PRIORITY_STEPS)]
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.llen(name)
        pipe.hlen(KOMBU_UNACKED)
        *ready, reserved = pipe.execute()
        return {"ready": int(sum(ready)), "reserved": int(reserved)}

    def dead_letters(self) -> int:
        return int(self.redis.zcard(f"{self.prefix}:deliveries:dead"))

    # ----- the time series -----

    def sample(self, now: float, handoff_queue: int) -> dict[str, Any]:
        """Record one point: the reply latency median since the last point, and queue depths."""
        buckets = histogram_buckets(self.metrics, LATENCY)
        previous_raw = cast(bytes | None, self.redis.getset(self.key("latency_snapshot"),
                                                            json.dumps(buckets)))
        previous = {bound: count for bound, count in json.loads(previous_raw)} if previous_raw else {}
        delta = [(bound, count - previous.get(bound, 0.0)) for bound, count in buckets]
        depth = self.queue_depth()
        point = {"at": round(now, 3), "reply_latency_p50_s": quantile(delta, 0.5),
                 "queue_depth": depth["ready"] + depth["reserved"], "handoff_queue": handoff_queue}
        pipe = self.redis.pipeline(transaction=True)
        pipe.zadd(self.key("timeseries"), {json.dumps(point): now})
        pipe.zremrangebyscore(self.key("timeseries"), "-inf", now - SERIES_KEPT_S)
        pipe.execute()
        return point

    def points(self, since: float) -> list[dict[str, Any]]:
        """Recorded points since `since`, oldest first."""
        raw = cast(list[bytes], self.redis.zrangebyscore(self.key("timeseries"), since, "+inf"))
        return [json.loads(item) for item in raw]
