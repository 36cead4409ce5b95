"""Lua scripts: each changes several keys of one conversation atomically, in one round trip."""

from supportflow.domain.fsm import TAKES_TURNS, WORKING_STATES


def _lua_set(name: str, states: frozenset[str]) -> str:
    return f"local {name} = {{{', '.join(f'{s} = true' for s in sorted(states))}}}\n"


# States in which customer messages wait in the mailbox for the next turn, and states a
# worker is in the middle of (a drain goes on with them).
_STATES = _lua_set("takes_turns", frozenset(TAKES_TURNS)) + _lua_set("working",
                                                                    frozenset(WORKING_STATES))

# KEYS: record, ids, mailbox, transcript, mailboxes index, replication fence, activity index
# ARGV: message id, mailbox entry, transcript entry, now, conversation id, '1' when the caller
#       waits for replicas
# Returns 1 accepted, 0 duplicate, -1 unknown conversation. While an agent has the
# conversation (or it is closed) the message only joins the transcript: the bot stays silent.
# A duplicate is usually a retry after a 503: with the replica wait on it writes the fence, so
# that WAIT, which only covers this connection's own writes, also covers the first attempt's
# (replication is one ordered stream).
ACCEPT_MESSAGE = _STATES + """
local raw = redis.call('GET', KEYS[1])
if not raw then return -1 end
if redis.call('SADD', KEYS[2], 'customer:' .. ARGV[1]) == 0 then
  if ARGV[6] == '1' then redis.call('INCR', KEYS[6]) end
  return 0
end
redis.call('SADD', KEYS[2], 'transcript:' .. ARGV[1])
redis.call('RPUSH', KEYS[4], ARGV[3])
redis.call('ZADD', KEYS[7], ARGV[4], ARGV[5])
local state = cjson.decode(raw)['state']
if state ~= 'handed_off' and state ~= 'closed' then
  redis.call('RPUSH', KEYS[3], ARGV[2])
  if takes_turns[state] then redis.call('ZADD', KEYS[5], 'NX', ARGV[4], ARGV[5]) end
end
return 1
"""

# A response's entry in the response index (its conversation) and the mark an OpenAI event
# leaves on it (adapters/redis_responses.py): '1' fresh, '0' once a commit acted on it.
_RESPONSE_KEYS = """
local function response_key(prefix, run) return prefix .. ':response:' .. run end
"""
RESPONSE_INDEX_TTL_S = 7200  # longer than any run's deadline (at most 3600 s)
WOKEN_TTL_S = 600  # how long an event's mark waits for a commit of its response

# KEYS: lease, record, mailbox
# ARGV: lease token, lease ttl ms, purpose (drain | poll | any), poll id, key prefix
# Returns {'taken', record, woken, mailbox entries...} or {'busy' | 'missing' | 'stale' |
# 'idle'}: a task that finds nothing to do takes nothing, so it costs this one round trip.
# `woken` is '1' when an OpenAI event announced the end of the run being polled.
TAKE = _STATES + _RESPONSE_KEYS + """
if redis.call('EXISTS', KEYS[1]) == 1 then return {'busy'} end
local raw = redis.call('GET', KEYS[2])
if not raw then return {'missing'} end
local record = cjson.decode(raw)
local state, purpose = record['state'], ARGV[3]
if purpose == 'poll' then
  if state ~= 'poll' or tonumber(record['poll_id']) ~= tonumber(ARGV[4]) then return {'stale'} end
elseif purpose == 'drain' then
  if takes_turns[state] then
    if redis.call('LLEN', KEYS[3]) == 0 then return {'idle'} end
  elseif not working[state] then
    return {'idle'}
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local woken = '0'
if state == 'poll' and type(record['run_id']) == 'string'
    and redis.call('EXISTS', response_key(ARGV[5], record['run_id']) .. ':woken') == 1 then
  woken = '1'
end
local taken = {'taken', raw, woken}
if takes_turns[state] then
  for _, entry in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do table.insert(taken, entry) end
end
return taken
"""

# KEYS: record, lease, mailbox, transcript, ids, wakeups, handoffs, mailboxes, attributes,
#       notes, handoffs log, then the keys of the metric entries
# ARGV: 1 lease token, 2 expected version, 3 new record, 4 consumed, 5 conversation id,
#       6 wake_at or '', 7 now, 8 lease ttl ms, 9 key prefix, 10 new state, 11 handoff reason,
#       12 release (1/0), 13 keep if waiting (1/0), 14-17 how many transcript messages,
#       attributes, notes and metric entries, 18 the record's run id or '', then (id, entry)
#       pairs of messages, (name, value) pairs of attributes, (id, entry) pairs of notes,
#       (key index, field, amount) of metrics
# Returns {1, waiting, woken, handed-back entries...}, {-1} lease lost, {-2} version moved.
# The response index follows the record's run id. A poll planned for a run whose end an
# OpenAI event announced meanwhile (the holder was busy) is moved to now: woken 1, once.
COMMIT = _STATES + _RESPONSE_KEYS + """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {-1} end
local current = cjson.decode(redis.call('GET', KEYS[1]))
if tostring(current['version']) ~= ARGV[2] then return {-2} end
local id, now, state, run = ARGV[5], ARGV[7], ARGV[10], ARGV[18]
redis.call('SET', KEYS[1], ARGV[3])
local consumed = tonumber(ARGV[4])
if consumed > 0 then redis.call('LTRIM', KEYS[3], consumed, -1) end
local old_run, woken, wake_at = current['run_id'], 0, ARGV[6]
if type(old_run) == 'string' and old_run ~= run then
  redis.call('DEL', response_key(ARGV[9], old_run))
end
if run ~= '' then
  local index = response_key(ARGV[9], run)
  if old_run ~= run then redis.call('SET', index, id, 'EX', """ + str(RESPONSE_INDEX_TTL_S) + """) end
  if state == 'poll' and wake_at ~= '' and redis.call('GET', index .. ':woken') == '1' then
    redis.call('SET', index .. ':woken', '0', 'EX', """ + str(WOKEN_TTL_S) + """)
    woken, wake_at = 1, now
  end
end
local at = 19
for _ = 1, tonumber(ARGV[14]) do
  if redis.call('SADD', KEYS[5], 'transcript:' .. ARGV[at]) == 1 then
    redis.call('RPUSH', KEYS[4], ARGV[at + 1])
  end
  at = at + 2
end
for _ = 1, tonumber(ARGV[15]) do
  redis.call('HSET', KEYS[9], ARGV[at], ARGV[at + 1])
  at = at + 2
end
for _ = 1, tonumber(ARGV[16]) do
  redis.call('HSETNX', KEYS[10], ARGV[at], ARGV[at + 1])
  at = at + 2
end
for _ = 1, tonumber(ARGV[17]) do
  redis.call('HINCRBYFLOAT', KEYS[tonumber(ARGV[at])], ARGV[at + 1], ARGV[at + 2])
  at = at + 3
end
if wake_at ~= '' then redis.call('ZADD', KEYS[6], wake_at, id) else redis.call('ZREM', KEYS[6], id) end
if state == 'handed_off' then
  if redis.call('ZADD', KEYS[7], 'NX', now, id) == 1 then
    -- Announce the new handoff on the agents' stream (read by /v1/agent/handoffs/stream).
    redis.call('XADD', KEYS[11], 'MAXLEN', '~', '10000', '*',
               'conversation', id, 'reason', ARGV[11], 'at', now)
  end
else
  redis.call('ZREM', KEYS[7], id)
end
if current['state'] ~= state then
  redis.call('SREM', ARGV[9] .. ':state:' .. current['state'], id)
  redis.call('SADD', ARGV[9] .. ':state:' .. state, id)
end
-- Retention reads these two: the last activity, and when the conversation was closed.
redis.call('ZADD', ARGV[9] .. ':activity', now, id)
if state == 'closed' then redis.call('ZADD', ARGV[9] .. ':closed', 'NX', now, id) end
local waiting = takes_turns[state] and redis.call('LLEN', KEYS[3]) > 0
if waiting then redis.call('ZADD', KEYS[8], 'NX', now, id) else redis.call('ZREM', KEYS[8], id) end
if ARGV[12] == '1' and not (waiting and ARGV[13] == '1') then
  redis.call('DEL', KEYS[2])
  return {1, waiting and 1 or 0, woken}
end
redis.call('PEXPIRE', KEYS[2], ARGV[8])
local result = {1, waiting and 1 or 0, woken}
if waiting and ARGV[12] == '1' then
  for _, entry in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do table.insert(result, entry) end
end
return result
"""

# KEYS: lease, then the keys of the metric entries
# ARGV: lease token, how many metric entries, then (key index, field, amount) of each
RELEASE = """
local released = 0
if redis.call('GET', KEYS[1]) == ARGV[1] then released = redis.call('DEL', KEYS[1]) end
local at = 3
for _ = 1, tonumber(ARGV[2]) do
  redis.call('HINCRBYFLOAT', KEYS[tonumber(ARGV[at])], ARGV[at + 1], ARGV[at + 2])
  at = at + 3
end
return released
"""

# KEYS: leases held by this process; ARGV: ttl ms, then each lease's token
# Returns how many are still held (the others were lost: their holders find out at commit).
RENEW = """
local kept = 0
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i + 1] then
    redis.call('PEXPIRE', key, ARGV[1])
    kept = kept + 1
  end
end
return kept
"""

# KEYS: wakeups, mailboxes (both by due time)
# ARGV: now, grace s, most to wake per index, key prefix
# A conversation gets its score set to now as it is woken, so it is woken at most once per
# grace period however late it is; one held by a worker is skipped (its holder commits a new
# wake-up, or its lease runs out and a later round wakes it). At most 4 x limit are looked at.
# Returns {id, state, poll id} of each to wake (state 'mailbox' for waiting messages).
WAKE_OVERDUE = """
local now, limit, prefix = tonumber(ARGV[1]), tonumber(ARGV[3]), ARGV[4]
local due = now - tonumber(ARGV[2])
local wake, seen = {}, {}
for index = 1, 2 do
  local woken = 0
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[index], '-inf', due, 'LIMIT', 0, 4 * limit)) do
    if woken >= limit then break end
    local conv = prefix .. ':conv:' .. id
    if not seen[id] and redis.call('EXISTS', conv .. ':lease') == 0 then
      seen[id] = true
      local raw = redis.call('GET', conv)
      if not raw then
        redis.call('ZREM', KEYS[index], id)
      else
        redis.call('ZADD', KEYS[index], 'XX', now, id)
        woken = woken + 1
        if index == 1 then
          local record = cjson.decode(raw)
          table.insert(wake, {id, record['state'], tostring(record['poll_id'])})
        else
          table.insert(wake, {id, 'mailbox', '0'})
        end
      end
    end
  end
end
return wake
"""
