"""Knowledge articles on Redis: records, sync state per article, the pending-sync schedule."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, cast

import redis

from supportflow.domain.knowledge import Article, SyncState

# KEYS: pending; ARGV: now, limit, next due. Overdue ids, each postponed to `next due`, so two
# beat processes never send the same sync twice in one round.
TAKE_DUE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[3], id) end
return ids
"""


# KEYS: articles, pending, states; ARGV: id, revision synced ("" when the article was deleted).
# The article leaves the pending set only when nobody saved it again meanwhile.
SYNC_DONE = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if raw then
  if tostring(cjson.decode(raw)['revision']) ~= ARGV[2] then return 0 end
elseif ARGV[2] ~= '' then return 0
else redis.call('HDEL', KEYS[3], ARGV[1]) end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""
# KEYS: lock; ARGV: token. Release the lock only when it is still ours.
UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisArticles:
    """Implements ArticleStore under `<prefix>:kb:`."""

    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self.redis = client
        self.articles = f"{prefix}:kb:articles"
        self.states = f"{prefix}:kb:sync"
        self.pending_key = f"{prefix}:kb:pending"
        self.locks = f"{prefix}:kb:lock"
        self._take_due = client.register_script(TAKE_DUE)
        self._sync_done = client.register_script(SYNC_DONE)
        self._unlock = client.register_script(UNLOCK)

    def put(self, article: Article, *, sync_due_at: float) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.articles, article.id, json.dumps(asdict(article)))
        pipe.zadd(self.pending_key, {article.id: sync_due_at})
        pipe.execute()

    def get(self, article_id: str) -> Article | None:
        raw = cast(bytes | None, self.redis.hget(self.articles, article_id))
        return _article(json.loads(raw)) if raw else None

    def all(self) -> list[Article]:
        raw = cast(dict[bytes, bytes], self.redis.hgetall(self.articles))
        return [_article(json.loads(value)) for value in raw.values()]

    def remove(self, article_id: str, *, sync_due_at: float) -> bool:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(self.articles, article_id)
        pipe.zadd(self.pending_key, {article_id: sync_due_at})
        removed, _ = pipe.execute()
        if not removed:
            self.redis.zrem(self.pending_key, article_id)
        return bool(removed)

    def sync_state(self, article_id: str) -> SyncState:
        raw = cast(bytes | None, self.redis.hget(self.states, article_id))
        if raw is None:
            return SyncState()
        data = json.loads(raw)
        return SyncState(attached=data["attached"], retired=data["retired"])

    def save_sync_state(self, article_id: str, state: SyncState) -> None:
        self.redis.hset(self.states, article_id, json.dumps(asdict(state)))

    def sync_done(self, article_id: str, revision: int | None) -> bool:
        return bool(self._sync_done(keys=[self.articles, self.pending_key, self.states],
                                    args=[article_id, "" if revision is None else revision]))

    def lock(self, article_id: str, ttl_s: float) -> str | None:
        token = secrets.token_hex(8)
        taken = self.redis.set(f"{self.locks}:{article_id}", token, nx=True, px=int(ttl_s * 1000))
        return token if taken else None

    def unlock(self, article_id: str, token: str) -> None:
        self._unlock(keys=[f"{self.locks}:{article_id}"], args=[token])

    def pending(self, article_ids: Sequence[str]) -> set[str]:
        if not article_ids:
            return set()
        scores = cast(list[Any], self.redis.zmscore(self.pending_key, list(article_ids)))
        return {aid for aid, score in zip(article_ids, scores, strict=True) if score is not None}

    def due(self, now: float, limit: int, next_due_at: float) -> list[str]:
        ids = self._take_due(keys=[self.pending_key], args=[now, limit, next_due_at])
        return [raw.decode() for raw in ids]


def _article(data: dict[str, Any]) -> Article:
    data["tags"] = tuple(data.get("tags") or ())
    return Article(**data)
