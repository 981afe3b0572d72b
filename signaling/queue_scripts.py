"""The queue's Lua scripts: every change two signaling nodes could race on, atomic.

Each script names its KEYS and ARGV in a comment; `signaling.queue_store` is the only
caller. Scripts return whether they applied, so a caller that loses a race re-reads.
"""

from __future__ import annotations

from core import keys

HANDLE_TIMES_KEPT = 50

# A ticket unless the terminal holds a live one (then that ticket's id is returned).
# KEYS: ticket, waiting(item), terminal_ticket, waiting_items, counters, ticket key prefix
# ARGV: ticket_id, score, field, value, ..., item_code
JOIN = """
local existing = redis.call('GET', KEYS[3])
if existing and redis.call('EXISTS', KEYS[6] .. existing) == 1 then return existing end
redis.call('HSET', KEYS[1], unpack(ARGV, 3, #ARGV - 1))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('SET', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[#ARGV])
redis.call('HINCRBY', KEYS[5], 'joined', 1)
return ARGV[1]
"""

# Nobody is offered a terminal that is not connected anywhere (its presence key is gone).
# KEYS: ticket, clerk, clerks_ready, offer, offers_expiry, counters
# ARGV: offer_id, username, ticket_id, now, expires_at, presence key prefix
RESERVE = """
if redis.call('HGET', KEYS[1], 'state') ~= 'waiting' then return 0 end
if redis.call('EXISTS', ARGV[6] .. redis.call('HGET', KEYS[1], 'terminal_id')) == 0 then
  return 0
end
local st = redis.call('HMGET', KEYS[2], 'status', 'state')
if st[1] ~= 'ready' or st[2] ~= 'idle' then return -1 end
redis.call('HSET', KEYS[1], 'state', 'offered', 'offer_id', ARGV[1])
redis.call('HSET', KEYS[2], 'state', 'offered', 'offer_id', ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('HSET', KEYS[4], 'offer_id', ARGV[1], 'clerk', ARGV[2], 'ticket_id', ARGV[3],
           'created_at', ARGV[4], 'expires_at', ARGV[5])
redis.call('ZADD', KEYS[5], ARGV[5], ARGV[1])
redis.call('HINCRBY', KEYS[6], 'offers_made', 1)
return 1
"""

# Lua shared by the two scripts below: reserve for clerk KEYS[1] the first ticket still
# waiting among KEYS[6..] (ticket ids from ARGV[first_tid]) whose terminal is connected
# (presence key prefix in ARGV[first_tid - 1]), setting `got` to its 1-based index or
# leaving it 0. KEYS 2-5 and ARGV 1-4 are as both scripts name them.
TAKE_FIRST_WAITING = """
local presence = ARGV[first_tid - 1]
for i = 6, #KEYS do
  if redis.call('HGET', KEYS[i], 'state') == 'waiting' and redis.call('EXISTS',
      presence .. redis.call('HGET', KEYS[i], 'terminal_id')) == 1 then
    local tid = ARGV[first_tid + i - 6]
    redis.call('HSET', KEYS[i], 'state', 'offered', 'offer_id', ARGV[1])
    redis.call('HSET', KEYS[1], 'state', 'offered', 'offer_id', ARGV[1])
    redis.call('ZREM', KEYS[2], ARGV[2])
    redis.call('HSET', KEYS[3], 'offer_id', ARGV[1], 'clerk', ARGV[2], 'ticket_id', tid,
               'created_at', ARGV[3], 'expires_at', ARGV[4])
    redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
    redis.call('HINCRBY', KEYS[5], 'offers_made', 1)
    got = i - 5
    break
  end
end
"""

# The first still-waiting ticket of a clerk's candidates, reserved in one step: clerks
# freeing up together then take different applicants instead of racing for the head.
# KEYS: clerk, clerks_ready, offer, offers_expiry, counters, ticket_1..ticket_n
# ARGV: offer_id, username, now, expires_at, presence prefix, ticket_id_1..ticket_id_n
RESERVE_FIRST = """
local st = redis.call('HMGET', KEYS[1], 'status', 'state')
if st[1] ~= 'ready' or st[2] ~= 'idle' then return -1 end
local first_tid, got = 6, 0
""" + TAKE_FIRST_WAITING + """
return got
"""

# A clerk goes ready and, if idle, takes the first still-waiting of its candidates: one
# round trip for the routing's hottest intent, as atomic as set-status then reserve-first.
# KEYS: clerk, clerks_ready, offer, offers_expiry, counters, ticket_1..ticket_n
# ARGV: offer_id, username, now, expires_at, reason, presence prefix, ticket_id_1..n
# Returns {0} without a clerk record, else {1, candidate index or 0, clerk hash (flat)}.
READY_FIRST = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local cur = redis.call('HMGET', KEYS[1], 'status', 'state')
redis.call('HSET', KEYS[1], 'status', 'ready', 'reason', ARGV[5])
if cur[1] ~= 'ready' then redis.call('HSET', KEYS[1], 'idle_since', ARGV[3]) end
local first_tid, got = 7, 0
if cur[2] == 'idle' then
""" + TAKE_FIRST_WAITING + """
  if got == 0 then
    redis.call('ZADD', KEYS[2], redis.call('HGET', KEYS[1], 'idle_since'), ARGV[2])
  end
end
return {1, got, redis.call('HGETALL', KEYS[1])}
"""

# Read-only: a clerk's record and, per item queue it is skilled for, up to `want` tickets
# still waiting among at most `scan` entries from that queue's start (offered applicants
# keep their place at the head). With only_if_free=1 a clerk not ready and idle gets no
# heads. KEYS: clerk, waiting(item_1)..waiting(item_n) ; ARGV: ticket key prefix, scan,
# want, only_if_free, item_1, start_1, .., item_n, start_n.
# Returns {clerk hash, {item, next start, more (0/1), ticket hash...}...}.
CLERK_HEADS = """
local h = redis.call('HGETALL', KEYS[1])
local out = {h}
local c = {}
for i = 1, #h, 2 do c[h[i]] = h[i + 1] end
if ARGV[4] == '1' and (c.status ~= 'ready' or c.state ~= 'idle') then return out end
local skills = {}
for _, s in ipairs(cjson.decode(c.skills or '[]')) do skills[s] = true end
local scan, want = tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 2, #KEYS do
  local item, start = ARGV[3 + 2 * (i - 1)], tonumber(ARGV[4 + 2 * (i - 1)])
  if skills[item] then
    local ids = redis.call('ZRANGE', KEYS[i], start, start + scan - 1)
    local row = {item, start + #ids, #ids == scan and 1 or 0}
    for n, tid in ipairs(ids) do
      if redis.call('HGET', ARGV[1] .. tid, 'state') == 'waiting' then
        row[#row + 1] = redis.call('HGETALL', ARGV[1] .. tid)
        if #row - 3 == want then
          row[2] = start + n
          row[3] = 1
          break
        end
      end
    end
    out[#out + 1] = row
  end
end
return out
"""

# Read-only: one item queue in order with each ticket's state, for position updates.
# KEYS: waiting(item) ; ARGV: ticket key prefix. Returns {ticket_id, state, ...}.
QUEUE_VIEW = """
local out = {}
for _, tid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  out[#out + 1] = tid
  out[#out + 1] = redis.call('HGET', ARGV[1] .. tid, 'state') or ''
end
return out
"""

# Read-only: every clerk's name, status, skills and whether its presence key is alive.
# KEYS: clerks_all ; ARGV: clerk key prefix, clerk presence key prefix.
ROSTER = """
local out = {}
for _, u in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local c = redis.call('HMGET', ARGV[1] .. u, 'status', 'skills')
  if c[1] or c[2] then
    out[#out + 1] = {u, c[1] or 'offline', c[2] or '[]',
                     redis.call('EXISTS', ARGV[2] .. u)}
  end
end
return out
"""

# KEYS: offer, offers_expiry, ticket, clerk, waiting(item), terminal_ticket, call, counters
ACCEPT = """
local o = redis.call('HMGET', KEYS[1], 'clerk', 'ticket_id', 'expires_at')
if not o[1] or o[1] ~= ARGV[2] or o[2] ~= ARGV[3] then return 0 end
if tonumber(ARGV[5]) > tonumber(o[3]) then return -2 end
-- The applicant may have left (ticket gone) before its offer was withdrawn.
if redis.call('HGET', KEYS[3], 'offer_id') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[3])
redis.call('HSET', KEYS[3], 'state', 'in_call', 'offer_id', '', 'call_id', ARGV[4])
redis.call('HSET', KEYS[4], 'state', 'in_call', 'offer_id', '', 'call_id', ARGV[4])
redis.call('HSET', KEYS[7], unpack(ARGV, 6))
redis.call('HINCRBY', KEYS[8], 'offers_accepted', 1)
return 1
"""

# KEYS: offer, offers_expiry, ticket, clerk, clerks_ready, counters
# ARGV: offer_id, counter, clerk_to_not_ready(0/1), reason, now
RELEASE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[3], 'offer_id') == ARGV[1] then
  redis.call('HSET', KEYS[3], 'state', 'waiting', 'offer_id', '')
end
if redis.call('HGET', KEYS[4], 'offer_id') == ARGV[1] then
  redis.call('HSET', KEYS[4], 'state', 'idle', 'offer_id', '')
  local username = redis.call('HGET', KEYS[4], 'username')
  if ARGV[3] == '1' then
    redis.call('HSET', KEYS[4], 'status', 'not_ready', 'reason', ARGV[4])
    redis.call('ZREM', KEYS[5], username)
  elseif redis.call('HGET', KEYS[4], 'status') == 'ready' then
    redis.call('ZADD', KEYS[5], redis.call('HGET', KEYS[4], 'idle_since') or ARGV[5], username)
  end
end
redis.call('HINCRBY', KEYS[6], ARGV[2], 1)
return 1
"""

# KEYS: clerk, clerks_ready ; ARGV: status, reason, now
SET_STATUS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local cur = redis.call('HMGET', KEYS[1], 'status', 'state', 'username')
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'reason', ARGV[2])
if ARGV[1] == 'ready' then
  if cur[1] ~= 'ready' then redis.call('HSET', KEYS[1], 'idle_since', ARGV[3]) end
  if cur[2] == 'idle' then
    redis.call('ZADD', KEYS[2], redis.call('HGET', KEYS[1], 'idle_since'), cur[3])
  end
else
  redis.call('ZREM', KEYS[2], cur[3])
end
return 1
"""

# KEYS: clerk, clerks_ready, presence ; ARGV: conn_id (or '' to require absence)
CLERK_GONE = """
local p = redis.call('GET', KEYS[3])
if ARGV[1] == '' then
  if p then return 0 end
elseif p ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[3])
local username = redis.call('HGET', KEYS[1], 'username')
if not username then return 0 end
redis.call('HSET', KEYS[1], 'status', 'offline', 'reason', '')
redis.call('ZREM', KEYS[2], username)
return 1
"""

# KEYS: clerk, wrapups, call, ticket, terminal_ticket, handle_times, counters
# ARGV: call_id, now, wrapup_until, reason
END_CALL = f"""
if redis.call('HGET', KEYS[3], 'state') ~= 'active' then return 0 end
local started = tonumber(redis.call('HGET', KEYS[3], 'started_at'))
redis.call('HSET', KEYS[3], 'state', 'ended', 'ended_at', ARGV[2], 'end_reason', ARGV[4])
redis.call('EXPIRE', KEYS[3], {keys.ENDED_CALL_TTL_S})
if redis.call('HGET', KEYS[1], 'call_id') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'state', 'wrap_up', 'call_id', '', 'wrapup_until', ARGV[3])
  redis.call('ZADD', KEYS[2], ARGV[3], redis.call('HGET', KEYS[1], 'username'))
end
if redis.call('HGET', KEYS[4], 'call_id') == ARGV[1] then
  redis.call('DEL', KEYS[4])
  redis.call('DEL', KEYS[5])
end
redis.call('LPUSH', KEYS[6], tostring(tonumber(ARGV[2]) - started))
redis.call('LTRIM', KEYS[6], 0, {HANDLE_TIMES_KEPT - 1})
redis.call('HINCRBY', KEYS[7], 'calls_ended', 1)
return 1
"""

# KEYS: clerk, clerks_ready, wrapups ; ARGV: now, only_if_due(0/1)
WRAPUP_DONE = """
local c = redis.call('HMGET', KEYS[1], 'state', 'wrapup_until', 'username', 'status')
if c[1] ~= 'wrap_up' then return 0 end
if ARGV[2] == '1' and tonumber(c[2]) > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'state', 'idle', 'wrapup_until', '', 'idle_since', ARGV[1])
redis.call('ZREM', KEYS[3], c[3])
if c[4] == 'ready' then redis.call('ZADD', KEYS[2], ARGV[1], c[3]) end
return 1
"""

# KEYS: ticket, waiting(item), terminal_ticket, counters, disconnected, abandoned note
# ARGV: ticket_id, counter, terminal_id, only_if_absent_presence_key, note ttl (s)
# An abandoned ticket leaves a note, so the terminal is told when it comes back.
REMOVE_TICKET = """
local st = redis.call('HGET', KEYS[1], 'state')
if not st or st == 'in_call' then return false end
if ARGV[4] ~= '' and redis.call('EXISTS', ARGV[4]) == 1 then
  -- Connected again somewhere: not absent any more (a later absence is marked anew).
  redis.call('ZREM', KEYS[5], ARGV[3])
  return false
end
local offer = redis.call('HGET', KEYS[1], 'offer_id') or ''
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
redis.call('ZREM', KEYS[5], ARGV[3])
redis.call('HINCRBY', KEYS[4], ARGV[2], 1)
if ARGV[2] == 'abandoned' then redis.call('SET', KEYS[6], ARGV[1], 'EX', ARGV[5]) end
return {offer}
"""

# A terminal's connection closed: its presence goes if it is still this connection's, and
# unless a newer connection (on any node) holds the presence, a waiting ticket starts its
# grace period. Returns 1 when the grace started.
# KEYS: presence, terminal_ticket, disconnected ; ARGV: conn_id, terminal_id, deadline,
# ticket key prefix
TERMINAL_GONE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local tid = redis.call('GET', KEYS[2])
if not tid then return 0 end
local st = redis.call('HGET', ARGV[4] .. tid, 'state')
if st ~= 'waiting' and st ~= 'offered' then return 0 end
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
return 1
"""

# Read-only: every waiting ticket of the given queues whose terminal has no live presence,
# with the deadline of its grace if one was set: {terminal_id, deadline or '', ...}.
# KEYS: disconnected, waiting(item_1)..waiting(item_n) ; ARGV: ticket prefix, presence prefix
ABSENT_TERMINALS = """
local out = {}
for i = 2, #KEYS do
  for _, tid in ipairs(redis.call('ZRANGE', KEYS[i], 0, -1)) do
    local terminal = redis.call('HGET', ARGV[1] .. tid, 'terminal_id')
    if terminal and redis.call('EXISTS', ARGV[2] .. terminal) == 0 then
      out[#out + 1] = terminal
      out[#out + 1] = redis.call('ZSCORE', KEYS[1], terminal) or ''
    end
  end
end
return out
"""
