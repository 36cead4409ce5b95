"""Lua scripts that change several keys of one conversation atomically."""

# States in which customer messages wait in the mailbox for the next turn.
_TAKES_TURNS = "local takes_turns = {ask = true, wait_for_user = true}\n"

# KEYS: record, ids, mailbox, transcript, mailboxes index
# ARGV: message id, mailbox entry, transcript entry, now, conversation id
# Returns 1 accepted, 0 duplicate, -1 unknown conversation. While an agent has the
# conversation (or it is closed) the message only joins the transcript: the bot stays silent.
ACCEPT_MESSAGE = _TAKES_TURNS + """
local raw = redis.call('GET', KEYS[1])
if not raw then return -1 end
if redis.call('SADD', KEYS[2], 'customer:' .. ARGV[1]) == 0 then return 0 end
redis.call('SADD', KEYS[2], 'transcript:' .. ARGV[1])
redis.call('RPUSH', KEYS[4], ARGV[3])
local state = cjson.decode(raw)['state']
if state ~= 'handed_off' and state ~= 'closed' then
  redis.call('RPUSH', KEYS[3], ARGV[2])
  if takes_turns[state] then redis.call('ZADD', KEYS[5], 'NX', ARGV[4], ARGV[5]) end
end
return 1
"""

# KEYS: record, lease, mailbox, transcript, ids, wakeups, handoffs, mailboxes
# ARGV: lease token, expected version, new record, consumed, conversation id, wake_at or '',
#       now, lease ttl ms, key prefix, then (id, entry) pairs of transcript messages
# Returns 1 written, -1 lease lost, -2 version moved.
COMMIT = _TAKES_TURNS + """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
local current = cjson.decode(redis.call('GET', KEYS[1]))
if tostring(current['version']) ~= ARGV[2] then return -2 end
local new = cjson.decode(ARGV[3])
local id = ARGV[5]
redis.call('SET', KEYS[1], ARGV[3])
local consumed = tonumber(ARGV[4])
if consumed > 0 then redis.call('LTRIM', KEYS[3], consumed, -1) end
for i = 10, #ARGV, 2 do
  if redis.call('SADD', KEYS[5], ARGV[i]) == 1 then redis.call('RPUSH', KEYS[4], ARGV[i + 1]) end
end
if ARGV[6] ~= '' then redis.call('ZADD', KEYS[6], ARGV[6], id) else redis.call('ZREM', KEYS[6], id) end
if new['state'] == 'handed_off' then
  if redis.call('ZADD', KEYS[7], 'NX', ARGV[7], id) == 1 then
    -- Announce the new handoff on the agents' stream (read by /v1/agent/handoffs/stream).
    local reason = new['handoff_reason']
    if type(reason) ~= 'string' then reason = '' end
    redis.call('XADD', ARGV[9] .. ':handoffs:log', 'MAXLEN', '~', '10000', '*',
               'conversation', id, 'reason', reason, 'at', ARGV[7])
  end
else
  redis.call('ZREM', KEYS[7], id)
end
if takes_turns[new['state']] and redis.call('LLEN', KEYS[3]) > 0 then
  redis.call('ZADD', KEYS[8], 'NX', ARGV[7], id)
else
  redis.call('ZREM', KEYS[8], id)
end
if current['state'] ~= new['state'] then
  redis.call('SREM', ARGV[9] .. ':state:' .. current['state'], id)
  redis.call('SADD', ARGV[9] .. ':state:' .. new['state'], id)
end
redis.call('PEXPIRE', KEYS[2], ARGV[8])
return 1
"""

RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
