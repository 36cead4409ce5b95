"""Retention and erasure on Redis: find what has expired, erase a conversation or a contact with
every key and index entry that refers to it. Keys come from the one key layout (redis_keys)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Collection
from typing import cast

import redis

from supportflow.domain.model import State
from supportflow.services.retention import ConversationErased

from .redis_keys import ConversationKeys

# KEYS: 1-8 indexes (conversations, activity, closed, wakeups, handoffs, the scheduler's queued marks, claims,
#       dead letters), 9 record, 10 lease, 11 transcript, 12 notes, 13 deliveries, then the
#       conversation's other keys
# ARGV: conversation id, lease token, key prefix, then every state name
# Returns {-1} when the lease is not ours; else {1, messages, notes, deliveries, contact,
# last activity}. Idempotent: a second run finds nothing.
ERASE_CONVERSATION = """
local id, prefix = ARGV[1], ARGV[3]
if redis.call('GET', KEYS[10]) ~= ARGV[2] then return {-1} end
local messages = redis.call('LLEN', KEYS[11])
local notes = redis.call('HLEN', KEYS[12])
local deliveries = redis.call('SMEMBERS', KEYS[13])
for _, delivery in ipairs(deliveries) do
  redis.call('DEL', prefix .. ':delivery:' .. delivery)
  redis.call('ZREM', KEYS[8], delivery)
end
local activity = redis.call('ZSCORE', KEYS[2], id) or ''
local contact = ''
local raw = redis.call('GET', KEYS[9])
if raw then
  local record = cjson.decode(raw)
  contact = record['contact_id']
  redis.call('SREM', prefix .. ':contact:' .. contact .. ':conversations', id)
  -- The helpdesk's conversation maps to this one ("webhook:<inbox>", "chatwoot:<inbox>").
  -- The OpenAI response index of its run in progress (adapters/redis_responses.py).
  if type(record['run_id']) == 'string' then
    redis.call('DEL', prefix .. ':response:' .. record['run_id'],
               prefix .. ':response:' .. record['run_id'] .. ':woken')
  end
  local inbox = string.match(record['channel'], '^[%w_-]+:(.+)$')
  if inbox and type(record['external_id']) == 'string' then
    local map = prefix .. ':inbox:' .. inbox .. ':conv:' .. record['external_id']
    if redis.call('GET', map) == id then redis.call('DEL', map) end
  end
end
for i = 4, #ARGV do redis.call('SREM', prefix .. ':state:' .. ARGV[i], id) end
for i = 9, #KEYS do redis.call('DEL', KEYS[i]) end
for i = 1, 5 do redis.call('ZREM', KEYS[i], id) end
redis.call('HDEL', KEYS[6], id)
redis.call('HDEL', KEYS[7], id)
return {1, messages, notes, #deliveries, contact, activity}
"""


# KEYS: attributes, threads, conversations (the contact's), contacts index
# ARGV: contact id, "force" to erase even while conversations remain
# Returns {erased (1/0), attributes, threads}.
ERASE_CONTACT = """
if ARGV[2] ~= 'force' and redis.call('SCARD', KEYS[3]) > 0 then
  redis.call('ZREM', KEYS[4], ARGV[1])
  return {0, 0, 0}
end
local attributes, threads = redis.call('HLEN', KEYS[1]), redis.call('HLEN', KEYS[2])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
return {1, attributes, threads}
"""

LOG_PAGE = 1000


# KEYS: a lock or lease; ARGV: the holder's token. Lets go only of what the caller holds.
LET_GO = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisEraser:
    """Implements the Eraser port on the conversations' keys."""

    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self.redis, self.keys = client, ConversationKeys(prefix)
        self._erase_conversation = client.register_script(ERASE_CONVERSATION)
        self._erase_contact = client.register_script(ERASE_CONTACT)
        self._let_go = client.register_script(LET_GO)

    def _index(self, name: str) -> str:
        return self.keys.key(name)

    def hold(self, conversation_id: str, ttl_s: float) -> str | None:
        """Take the conversation's lease, as a worker would; None while someone holds it."""
        token = secrets.token_hex(8)
        taken = self.redis.set(self.keys.of(conversation_id).lease, token, nx=True,
                               px=int(ttl_s * 1000))
        return token if taken else None

    def let_go(self, conversation_id: str, token: str) -> None:
        self._let_go(keys=[self.keys.of(conversation_id).lease], args=[token])

    def idle_since(self, before: float, limit: int) -> list[str]:
        """Conversations with no activity after `before`, oldest first."""
        return self._range("activity", before, limit)

    def closed_since(self, before: float, limit: int) -> list[str]:
        """Conversations closed before `before`, oldest first."""
        return self._range("closed", before, limit)

    def _range(self, index: str, before: float, limit: int) -> list[str]:
        raw = cast(list[bytes], self.redis.zrangebyscore(self._index(index), "-inf", before,
                                                         start=0, num=limit))
        return [item.decode() for item in raw]

    def _contact_keys(self, contact_id: str) -> list[str]:
        return [self.keys.attributes(contact_id), self.keys.contact_threads(contact_id),
                self.keys.contact_conversations(contact_id)]

    def contact_conversations(self, contact_id: str) -> list[str]:
        raw = cast(set[bytes], self.redis.smembers(self.keys.contact_conversations(contact_id)))
        return sorted(item.decode() for item in raw)

    def contact_exists(self, contact_id: str) -> bool:
        return bool(self.redis.exists(*self._contact_keys(contact_id)))

    def erase_conversation(self, conversation_id: str, lease: str) -> ConversationErased | None:
        """Erase one conversation held under `lease`; None when the lease is not ours."""
        one, k = self.keys.of(conversation_id), self.keys
        first = [one.record, one.lease, one.transcript, one.notes, one.deliveries]
        result = self._erase_conversation(
            keys=[k.conversations, k.activity, k.closed, k.wakeups, k.handoffs, k.queued,
                  k.handoff_claims, k.dead_letters, *first,
                  *(key for key in one.all() if key not in first)],
            args=[conversation_id, lease, k.prefix, *(state.value for state in State)])
        if int(result[0]) != 1:
            return None
        contact, activity = result[4].decode(), result[5].decode()
        if contact and activity:  # its contact leaves once no conversation is left (sweep)
            self.redis.zadd(self.keys.contacts, {contact: float(activity)}, gt=True)
        return ConversationErased(conversation_id, contact or None, int(result[1]),
                                  int(result[2]), int(result[3]))

    def erase_contact(self, contact_id: str, *, force: bool) -> tuple[bool, int, int]:
        """Erase a contact's attributes and threads (erased?, attributes, threads); unless
        `force`, only when none of its conversations is left."""
        erased, attributes, threads = self._erase_contact(
            keys=[*self._contact_keys(contact_id), self.keys.contacts],
            args=[contact_id, "force" if force else ""])
        return bool(erased), int(attributes), int(threads)

    def idle_contacts(self, before: float, limit: int) -> list[str]:
        """Contacts whose last conversation's activity is older than `before`."""
        return self._range("contacts", before, limit)

    def forget_in_logs(self, conversation_ids: Collection[str]) -> tuple[int, int]:
        """Drop the handoff announcements and failure records of these conversations."""
        wanted = {cid.encode() for cid in conversation_ids}
        if not wanted:
            return 0, 0
        log, announcements, cursor = self.keys.handoffs_log, 0, "-"
        while True:
            page = cast(list[tuple[bytes, dict[bytes, bytes]]],
                        self.redis.xrange(log, min=cursor, max="+", count=LOG_PAGE))
            found = [entry_id for entry_id, fields in page if fields.get(b"conversation") in wanted]
            if found:
                announcements += int(self.redis.xdel(log, *found))
            if len(page) < LOG_PAGE:
                break
            cursor = "(" + page[-1][0].decode()
        failures_key = self.keys.failures
        failures = 0
        for entry in cast(list[bytes], self.redis.lrange(failures_key, 0, -1)):
            if json.loads(entry).get("conversation_id", "").encode() in wanted:
                failures += int(self.redis.lrem(failures_key, 0, entry.decode()))
        return announcements, failures

    def try_lock(self, name: str, ttl_s: float) -> str | None:
        """A lock that one process holds at a time (a sweep on many machines); None if held."""
        token = secrets.token_hex(8)
        taken = self.redis.set(self._index(f"lock:{name}"), token, nx=True, px=int(ttl_s * 1000))
        return token if taken else None

    def unlock(self, name: str, token: str) -> None:
        self._let_go(keys=[self._index(f"lock:{name}")], args=[token])
