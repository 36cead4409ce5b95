"""Lua scripts: each changes several keys of one conversation atomically, in one round trip.

Over 300 lines on purpose: the scripts share one key layout and the FSM's state sets, and
reading accept, take, commit, release and the scheduler's claim side by side is how one checks
that they agree on every key.
"""

from supportflow.domain.fsm import TAKES_TURNS, WORKING_STATES

from .redis_limits import COUNT_LIMITS


def _lua_set(name: str, states: frozenset[str]) -> str:
    return f"local {name} = {{{', '.join(f'{s} = true' for s in sorted(states))}}}\n"


# States in which customer messages wait in the mailbox for the next turn, and states a
# worker is in the middle of (a drain goes on with them).
_STATES = _lua_set("takes_turns", frozenset(TAKES_TURNS)) + _lua_set("working",
                                                                    frozenset(WORKING_STATES))

# The accepting of a customer message, shared by the scripts below. The conversation's keys
# come from the prefix and its id (the helpdesk path learns the id inside its script).
# Returns 1 accepted, 0 duplicate, -1 unknown conversation, -2 closed, -3 agents have it and
# the caller wants the bot only (Chatwoot). While an agent has the conversation the message only
# joins the transcript: the bot stays silent. The activity index (retention) notes the time. One waiting for
# the customer gets a wake-up now unless one is pending, so the scheduler hands it to a
# worker: accepting publishes nothing. Accepted messages count in supportflow_messages_in
# (its hash: one field per channel kind, as RedisMetrics writes a one-label counter).
# With the replica wait on (`fence` not ''), a duplicate (usually a retry after a 503) writes
# the fence, so that WAIT, which only covers this connection's own writes, also covers the
# first attempt's (replication is one ordered stream).
_ACCEPT = _STATES + """
local function accept(prefix, id, message_id, mailbox_entry, transcript_entry, now, metric, fence,
                      bot_only)
  local conv = prefix .. ':conv:' .. id
  local raw = redis.call('GET', conv)
  if not raw then return -1 end
  local record = cjson.decode(raw)
  local state = record['state']
  if state == 'closed' then return -2 end
  if bot_only and state == 'handed_off' then return -3 end
  if redis.call('SADD', conv .. ':ids', 'customer:' .. message_id) == 0 then
    if fence ~= '' then redis.call('INCR', fence) end
    return 0
  end
  redis.call('SADD', conv .. ':ids', 'transcript:' .. message_id)
  redis.call('RPUSH', conv .. ':transcript', transcript_entry)
  redis.call('ZADD', prefix .. ':activity', now, id)
  if state ~= 'handed_off' then
    redis.call('RPUSH', conv .. ':mailbox', mailbox_entry)
    if takes_turns[state] then redis.call('ZADD', prefix .. ':wakeups', 'NX', now, id) end
  end
  local channel = string.match(record['channel'] or 'widget', '^[^:]*')
  redis.call('HINCRBYFLOAT', metric, channel, 1)
  return 1
end
"""

# KEYS: the messages_in metric's hash, the replication fence, then the request's rate-limit
#       counters (none, or as many as it has limits)
# ARGV: key prefix, conversation id, message id, mailbox entry, transcript entry, now, '1' when
#       the caller waits for replicas, '1' when only the bot may take it, then each limit's
#       amount and window in ms
# The request counts against its limits first, whatever becomes of the message; past one of
# them it returns {'limited', which (1-based), ms left} and keeps nothing. Else as accept().
ACCEPT_MESSAGE = _ACCEPT + COUNT_LIMITS + """
local refused, left = count_limits(3, 9)
if refused > 0 then return {'limited', refused, left} end
local fence = ARGV[7] == '1' and KEYS[2] or ''
return accept(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], KEYS[1], fence, ARGV[8] == '1')
"""

# A helpdesk's message in one round trip, when its conversation is known and open.
# KEYS: the delivery's seen mark, the helpdesk conversation's map entry, messages_in's hash,
#       the replication fence
# ARGV: key prefix, seen ttl s, message id, mailbox entry, transcript entry, now, '1' when
#       the delivery has an id (its seen mark is checked and set), '1' when the caller waits
#       for replicas, '1' when only the bot may take it (then {'not_with_the_bot', id})
# Returns {'replayed'}, {'unmapped'} (no conversation yet, or the mapped one is gone),
# {'closed', id}, or {'accepted' | 'duplicate', id}; the seen mark is set only with the latter.
ACCEPT_HELPDESK_MESSAGE = _ACCEPT + """
local delivered, fence = ARGV[7] == '1', ARGV[8] == '1' and KEYS[4] or ''
if delivered and redis.call('EXISTS', KEYS[1]) == 1 then
  if fence ~= '' then redis.call('INCR', fence) end
  return {'replayed'}
end
local id = redis.call('GET', KEYS[2])
if not id then return {'unmapped'} end
local result = accept(ARGV[1], id, ARGV[3], ARGV[4], ARGV[5], ARGV[6], KEYS[3], fence,
                      ARGV[9] == '1')
if result == -1 then return {'unmapped'} end
if result == -2 then return {'closed', id} end
if result == -3 then return {'not_with_the_bot', id} end
if delivered then redis.call('SET', KEYS[1], '1', 'EX', ARGV[2]) end
return {result == 1 and 'accepted' or 'duplicate', id}
"""

# A response's entry in the response index (its conversation) and the mark an OpenAI event
# leaves on it (adapters/redis_responses.py): '1' fresh, '0' once a commit acted on it.
_RESPONSE_KEYS = """
local function response_key(prefix, run) return prefix .. ':response:' .. run end
"""
RESPONSE_INDEX_TTL_S = 7200  # longer than any run's deadline (at most 3600 s)
WOKEN_TTL_S = 600  # how long an event's mark waits for a commit of its response

# KEYS: lease, record, mailbox, queued (the scheduler's marks), wakeups, ids
# ARGV: lease token, lease ttl ms, purpose (drain | poll | any), poll id, key prefix,
#       conversation id, the task's dispatch token or ''
# Returns {'taken', record, woken, recovering, mailbox entries...} or {'busy' | 'missing' |
# 'stale' | 'idle'}: a task that finds nothing to do takes nothing, so it costs this one round
# trip. A task the scheduler published clears its mark, whatever it finds: it came out of the
# broker. `woken` is '1' when an OpenAI event announced the end of the run being polled.
# `recovering` is 1 when the step may have run before without its commit: a step under way
# (a retry, or its worker died), or a turn whose messages were taken before (marked in ids).
TAKE = _STATES + _RESPONSE_KEYS + """
local id = ARGV[6]
if ARGV[7] ~= '' and redis.call('HGET', KEYS[4], id) == ARGV[7] then redis.call('HDEL', KEYS[4], id) end
if redis.call('EXISTS', KEYS[1]) == 1 then return {'busy'} end
local raw = redis.call('GET', KEYS[2])
if not raw then
  redis.call('ZREM', KEYS[5], id)
  return {'missing'}
end
local record = cjson.decode(raw)
local state, purpose = record['state'], ARGV[3]
if purpose == 'poll' then
  if state ~= 'poll' or tonumber(record['poll_id']) ~= tonumber(ARGV[4]) then return {'stale'} end
elseif purpose == 'drain' then
  local idle = false
  if takes_turns[state] then
    idle = redis.call('LLEN', KEYS[3]) == 0
  elseif not working[state] then
    idle = true
  end
  if idle then
    -- Nothing to do: a wake-up left on a conversation that waits for the customer or an agent
    -- goes (one waiting on a run keeps its poll).
    if state ~= 'poll' then redis.call('ZREM', KEYS[5], id) end
    return {'idle'}
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local woken = '0'
if state == 'poll' and type(record['run_id']) == 'string'
    and redis.call('EXISTS', response_key(ARGV[5], record['run_id']) .. ':woken') == 1 then
  woken = '1'
end
local recovering = working[state] and 1 or 0
local entries = {}
if takes_turns[state] then
  entries = redis.call('LRANGE', KEYS[3], 0, -1)
  if #entries > 0 and purpose ~= 'any' then
    local turn = 'turn:' .. tostring(tonumber(record['turn']) + 1)
    if redis.call('SADD', KEYS[6], turn) == 0 then recovering = 1 end
  end
end
local taken = {'taken', raw, woken, recovering}
for _, entry in ipairs(entries) do table.insert(taken, entry) end
return taken
"""

# KEYS: record, lease, mailbox, transcript, ids, wakeups, handoffs, attributes, notes,
#       handoffs log, then the keys of the metric entries
# ARGV: 1 lease token, 2 expected version, 3 new record, 4 consumed, 5 conversation id,
#       6 wake_at or '', 7 now, 8 lease ttl ms, 9 key prefix, 10 new state, 11 handoff reason,
#       12 release (1/0), 13 keep if waiting (1/0), 14-17 how many transcript messages,
#       attributes, notes and metric entries, 18 the record's run id or '', then (id, entry)
#       pairs of messages, (name, value) pairs of attributes, (id, entry) pairs of notes,
#       (key index, field, amount) of metrics
# Returns {1, waiting, woken, handed-back entries...}, {-1} lease lost, {-2} version moved.
# The response index follows the record's run id. A poll planned for a run whose end an
# OpenAI event announced meanwhile (the holder was busy) is moved to now: woken 1, once.
# The wake-up written here is the schedule (scheduler.py publishes what is due): the next
# poll or retry, now for a step under way, now for customer messages waiting, else none.
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
  redis.call('HSET', KEYS[8], ARGV[at], ARGV[at + 1])
  at = at + 2
end
for _ = 1, tonumber(ARGV[16]) do
  redis.call('HSETNX', KEYS[9], ARGV[at], ARGV[at + 1])
  at = at + 2
end
for _ = 1, tonumber(ARGV[17]) do
  redis.call('HINCRBYFLOAT', KEYS[tonumber(ARGV[at])], ARGV[at + 1], ARGV[at + 2])
  at = at + 3
end
if state == 'handed_off' then
  if redis.call('ZADD', KEYS[7], 'NX', now, id) == 1 then
    -- Announce the new handoff on the agents' stream (read by /v1/agent/handoffs/stream).
    redis.call('XADD', KEYS[10], 'MAXLEN', '~', '10000', '*',
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
if wake_at ~= '' then
  redis.call('ZADD', KEYS[6], wake_at, id)
elseif waiting then
  redis.call('ZADD', KEYS[6], now, id)
else
  redis.call('ZREM', KEYS[6], id)
end
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

# KEYS: wakeups, queued (conversation -> dispatch token of the task waiting in the broker),
#       the Celery queue's list, the dispatch counter's hash
# ARGV: now, grace s, most to look at, queue bound (conversations), key prefix, lost after s,
#       conversations a task carries at most
# The scheduler's one round trip (services/scheduler.py). Back-pressure first: the broker's
# queue holds `bound` conversations at most (each task counted as full: `per_task`), so
# nothing is claimed while it is full, and no more than fits, and the backlog waits here, in
# due order, where an early wake-up (an OpenAI event, a message) is not stuck behind it.
# Then each due conversation (at most `limit` looked at):
# - gone: its wake-up goes;
# - held by a worker: left alone until its lease would run out (its holder commits a new
#   wake-up first; if it died, the lease runs out and it is claimed then);
# - its task still waits in the broker (a mark younger than `lost after`, or younger than
#   the grace period while the queue is empty): a backlog, not lost work; looked at again a
#   grace period from now;
# - else claimed: marked queued, due again a grace period from now (so a task that never
#   runs brings it back, at most once per grace period), and returned to be published.
# Returns {queue depth, {kind, id, poll id, token}...} with kind 'poll' or 'drain'.
CLAIM_DUE = _STATES + """
local now, grace, limit, bound = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local prefix, lost_after, per_task = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local depth = redis.call('LLEN', KEYS[3])
local result = {depth}
local room = bound - depth * per_task
if room <= 0 then return result end
local later = tostring(now + grace)
local token = ARGV[1]
local claimed, requeued = {poll = 0, drain = 0}, 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)) do
  if room <= 0 then break end
  local conv = prefix .. ':conv:' .. id
  local raw = redis.call('GET', conv)
  local mark = redis.call('HGET', KEYS[2], id)
  local age = mark and (now - tonumber(mark)) or nil
  if not raw then
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
  elseif redis.call('PTTL', conv .. ':lease') > 0 then
    -- Looked at again when the lease would run out, unless its holder commits first.
    local held = now + redis.call('PTTL', conv .. ':lease') / 1000
    redis.call('ZADD', KEYS[1], 'XX', tostring(held), id)
  elseif age and age < lost_after and (depth > 0 or age < grace) then
    redis.call('ZADD', KEYS[1], 'XX', later, id)
  else
    local record = cjson.decode(raw)
    local state, kind = record['state'], nil
    if state == 'poll' then
      kind = 'poll'
    elseif working[state] or (takes_turns[state] and redis.call('LLEN', conv .. ':mailbox') > 0) then
      kind = 'drain'
    end
    if kind then
      if age then requeued = requeued + 1 end
      redis.call('HSET', KEYS[2], id, token)
      redis.call('ZADD', KEYS[1], 'XX', later, id)
      table.insert(result, {kind, id, tostring(record['poll_id']), token})
      claimed[kind] = claimed[kind] + 1
      room = room - 1
    else
      redis.call('ZREM', KEYS[1], id)
      redis.call('HDEL', KEYS[2], id)
    end
  end
end
for kind, count in pairs(claimed) do
  if count > 0 then redis.call('HINCRBYFLOAT', KEYS[4], kind, count) end
end
if requeued > 0 then redis.call('HINCRBYFLOAT', KEYS[4], 'requeued', requeued) end
return result
"""
