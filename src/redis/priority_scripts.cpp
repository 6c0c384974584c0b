// src/redis/priority_scripts.cpp — the Lua of a Redis priority queue (see
// the header for the keys and the ids). Replies are flat arrays whose first
// element says what happened.
#include "priority_scripts.hpp"

#include <string>

namespace ipckit::redis::detail {

// What every script but open starts with: the keys, the queue's state, and
// the helpers that keep the counters (written back by save()).
const char* const kPrelude = R"lua(
local m, ready, data, leases, deliv, dead, prod, wake, holds = unpack(KEYS)
local st = redis.call('HMGET', m, 'closed', 'vis_ms', 'max_deliveries', 'kind', 'scan_at', 'queued', 'qbytes',
                      'max_items', 'max_bytes', 'unfinished')
if not st[1] then return {'gone'} end
local closed, vis, maxdel = st[1], tonumber(st[2]), tonumber(st[3])
local joinable = st[4] == 'joinable_priority'
local queued, qbytes, unfinished = tonumber(st[6]), tonumber(st[7]), tonumber(st[10] or 0)
local function save() redis.call('HSET', m, 'queued', queued, 'qbytes', qbytes, 'unfinished', unfinished) end
local function be8(n)
  local t = {}
  for i = 8, 1, -1 do
    t[i] = string.char(n % 256)
    n = math.floor(n / 256)
  end
  return table.concat(t)
end
local function hex(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end
local function wake_getters() redis.call('XADD', wake, 'MAXLEN', 1, '*', 'w', 1) end
local function task_finished() if joinable and unfinished > 0 then unfinished = unfinished - 1 end end
local function info_of(id)
  local v = redis.call('HGET', deliv, id)
  if not v then return 0, '' end
  local n, owner = string.match(v, '^(%d+)|(.*)$')
  return tonumber(n), owner
end
-- Each consumer's leased ids, concatenated (16 bytes each): what it recovers after a lost reply.
local function hold(owner, id)
  local l = redis.call('HGET', holds, owner)
  redis.call('HSET', holds, owner, (l or '') .. id)
end
local function unhold(owner, id)
  if owner == '' then return end
  local l = redis.call('HGET', holds, owner)
  if not l then return end
  for i = 1, #l, 16 do
    if string.sub(l, i, i + 15) == id then
      l = string.sub(l, 1, i - 1) .. string.sub(l, i + 16)
      if l == '' then redis.call('HDEL', holds, owner) else redis.call('HSET', holds, owner, l) end
      return
    end
  end
end
-- Acknowledges `id` wherever it is (leased, or ready again after its lease): 1 if it was there.
local function finish(id)
  if redis.call('ZREM', leases, id) == 0 then
    if redis.call('ZREM', ready, id) == 0 then return 0 end
    local d = redis.call('HGET', data, id)
    queued = math.max(0, queued - 1)
    qbytes = math.max(0, qbytes - #(d or ''))
  end
  local _, owner = info_of(id)
  unhold(owner, id)
  redis.call('HDEL', data, id)
  redis.call('HDEL', deliv, id)
  task_finished()
  return 1
end
)lua";

const Script kPriorityOpenScript{"priority open", R"lua(
local m = KEYS[1]
local names = {'layout', 'kind', 'type', 'max_items', 'max_bytes', 'max_message', 'vis_ms', 'max_deliveries'}
if redis.call('EXISTS', m) == 0 then
  for i = 1, 8 do redis.call('HSET', m, names[i], ARGV[i]) end
  redis.call('HSET', m, 'closed', 0, 'queued', 0, 'qbytes', 0, 'unfinished', 0, 'seq', 0, 'scan_at', 0)
  -- What a queue of this name left behind when its meta hash went.
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[8], KEYS[9])
  return {'created'}
end
local v = redis.call('HMGET', m, unpack(names))
for i = 1, 8 do
  if v[i] ~= ARGV[i] then return {'mismatch', names[i], v[i] or '(none)'} end
end
return {'opened'}
)lua"};

// Each script's text: the prelude, then its own. Script keeps a pointer to
// it: these strings live as long as the program, made (in this order)
// before the Script that points at them.
static const std::string kPutText = std::string(kPrelude) + R"lua(
local seen = redis.call('HGET', prod, ARGV[1])
if seen then
  local seq, done, why = string.match(seen, '^(%d+):(%d+):(%a+)$')
  if seq == ARGV[2] then return {why, tonumber(done)} end
end
local why, done = 'ok', 0
if closed ~= '0' then
  why = 'closed'
else
  local maxi, maxb = tonumber(st[8]), tonumber(st[9])
  -- A getter blocks only after it found nothing ready: only the put that ends that wakes them.
  local was_empty = redis.call('ZCARD', ready) == 0
  for i = 3, #ARGV - 1, 2 do
    local d = ARGV[i + 1]
    if (maxi > 0 and queued + 1 > maxi) or (maxb > 0 and qbytes + #d > maxb) then
      why = 'full'
      break
    end
    local id = ARGV[i] .. be8(redis.call('HINCRBY', m, 'seq', 1))
    redis.call('ZADD', ready, 0, id)
    redis.call('HSET', data, id, d)
    queued = queued + 1
    qbytes = qbytes + #d
    done = done + 1
  end
  if done > 0 then
    if joinable then unfinished = unfinished + done end
    save()
    if was_empty then wake_getters() end
  end
end
redis.call('HSET', prod, ARGV[1], ARGV[2] .. ':' .. done .. ':' .. why)
return {why, done}
)lua";
const Script kPriorityPutScript{"priority put", kPutText.c_str()};

// Acknowledges, then takes: what a lost reply delivered to this consumer
// (recover: the ids it holds that its handle does not), expired leases back into the ready set or to the dead
// letters (at most every scan period), then the lowest ids.
static const std::string kGetText = std::string(kPrelude) + R"lua(
local consumer, max, recover, nacks = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
for i = 5, 4 + nacks do finish(ARGV[i]) end
if closed == '2' then
  save()
  return {'closed'}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out, got, more = {'items'}, 0, false
local function give(id, n)
  redis.call('ZADD', leases, now + vis, id)
  redis.call('HSET', deliv, id, n .. '|' .. consumer)
  out[#out + 1] = id
  out[#out + 1] = n
  out[#out + 1] = redis.call('HGET', data, id)
  got = got + 1
end
if recover == '1' then
  -- What this consumer holds but its handle does not know of: a lost reply's.
  local held = {}
  for i = 5 + nacks, #ARGV do held[ARGV[i]] = true end
  local l = redis.call('HGET', holds, consumer) or ''
  for i = 1, #l, 16 do
    local id = string.sub(l, i, i + 15)
    if not held[id] then
      if got < max then give(id, (info_of(id))) else more = true end
    end
  end
end
if got < max and now >= tonumber(st[5] or 0) then
  local batch = 100
  local r = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, batch)
  for _, id in ipairs(r) do
    redis.call('ZREM', leases, id)
    local n, owner = info_of(id)
    unhold(owner, id)
    local d = redis.call('HGET', data, id) or ''
    if n >= maxdel then
      redis.call('XADD', dead, '*', 'id', hex(id), 'n', n, 'k', id, 'd', d)
      redis.call('HDEL', data, id)
      redis.call('HDEL', deliv, id)
      task_finished()
    else
      redis.call('ZADD', ready, 0, id)
      redis.call('HSET', deliv, id, n .. '|')
      queued = queued + 1
      qbytes = qbytes + #d
    end
  end
  if #r < batch then redis.call('HSET', m, 'scan_at', now + math.max(5, math.min(math.floor(vis / 4), 250))) end
end
if got < max then
  local r = redis.call('ZPOPMIN', ready, max - got)
  for i = 1, #r, 2 do
    local id = r[i]
    local d = redis.call('HGET', data, id)
    if d then
      queued = math.max(0, queued - 1)
      qbytes = math.max(0, qbytes - #d)
      give(id, info_of(id) + 1)
      hold(consumer, id)
    end
  end
end
save()
if got > 0 then
  -- 'items+': this consumer holds more a lost reply delivered: its next get recovers them too.
  if more then out[1] = 'items+' end
  return out
end
if closed == '1' and queued == 0 then return {'closed'} end
local w = redis.call('XREVRANGE', wake, '+', '-', 'COUNT', 1)
if w[1] then return {'empty', w[1][1]} end
return {'empty', '0-0'}
)lua";
const Script kPriorityGetScript{"priority get", kGetText.c_str()};

static const std::string kAckText = std::string(kPrelude) + R"lua(
local n = 0
for i = 1, #ARGV do n = n + finish(ARGV[i]) end
save()
return {'ok', n}
)lua";
const Script kPriorityAckScript{"priority ack", kAckText.c_str()};

// close (ARGV[1] 0): no more puts, gets drain; shutdown (1): also drops the
// undelivered items. Either way the wake stream wakes every blocked get.
static const std::string kCloseText = std::string(kPrelude) + R"lua(
if ARGV[1] == '1' then
  redis.call('HSET', m, 'closed', 2)
  while true do
    local r = redis.call('ZRANGE', ready, 0, 999)
    if #r == 0 then break end
    for _, id in ipairs(r) do
      redis.call('HDEL', data, id)
      redis.call('HDEL', deliv, id)
      task_finished()
    end
    redis.call('ZREMRANGEBYRANK', ready, 0, #r - 1)
  end
  queued, qbytes = 0, 0
elseif closed == '0' then
  redis.call('HSET', m, 'closed', 1)
end
save()
wake_getters()
return {'ok'}
)lua";
const Script kPriorityCloseScript{"priority close", kCloseText.c_str()};

static const std::string kRequeueText = std::string(kPrelude) + R"lua(
if closed ~= '0' then return {'closed'} end
local r = redis.call('XRANGE', dead, '-', '+', 'COUNT', tonumber(ARGV[1]))
local n = 0
for _, e in ipairs(r) do
  local k, d
  for i = 1, #e[2], 2 do
    if e[2][i] == 'k' then k = e[2][i + 1] end
    if e[2][i] == 'd' then d = e[2][i + 1] end
  end
  if k and d and #k == 16 then
    -- Its priority, behind the items of that priority already queued.
    local id = string.sub(k, 1, 8) .. be8(redis.call('HINCRBY', m, 'seq', 1))
    redis.call('ZADD', ready, 0, id)
    redis.call('HSET', data, id, d)
    queued = queued + 1
    qbytes = qbytes + #d
    if joinable then unfinished = unfinished + 1 end
    n = n + 1
  end
  redis.call('XDEL', dead, e[1])
end
save()
if n > 0 then wake_getters() end
return {'ok', n}
)lua";
const Script kPriorityRequeueScript{"priority requeue", kRequeueText.c_str()};

}  // namespace ipckit::redis::detail
