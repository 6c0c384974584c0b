// src/redis/stream_scripts.cpp — the Lua of a Redis queue (see the header
// for the keys). Replies are flat arrays whose first element says what
// happened.
#include "stream_scripts.hpp"

namespace ipckit::redis::detail {

const Script kOpenScript{"open", R"lua(
local m, s = KEYS[1], KEYS[2]
local names = {'layout', 'kind', 'type', 'max_items', 'max_bytes', 'max_message', 'vis_ms', 'max_deliveries'}
if redis.call('EXISTS', m) == 0 then
  for i = 1, 8 do redis.call('HSET', m, names[i], ARGV[i]) end
  redis.call('HSET', m, 'closed', 0, 'queued', 0, 'qbytes', 0, 'unfinished', 0)
  if redis.call('EXISTS', s) == 1 then redis.call('DEL', s) end
  redis.call('XGROUP', 'CREATE', s, 'ipckit', '$', 'MKSTREAM')
  return {'created'}
end
local v = redis.call('HMGET', m, unpack(names))
for i = 1, 8 do
  if v[i] ~= ARGV[i] then return {'mismatch', names[i], v[i] or '(none)'} end
end
return {'opened'}
)lua"};

const Script kPutScript{"put", R"lua(
local m, s, prod = KEYS[1], KEYS[2], KEYS[3]
local st = redis.call('HMGET', m, 'closed', 'queued', 'qbytes', 'max_items', 'max_bytes', 'kind')
if not st[1] then return {'gone'} end
local last = redis.call('HGET', prod, ARGV[1])
if last then
  local seq, done, why = string.match(last, '^(%d+):(%d+):(%a+)$')
  if seq == ARGV[2] then return {why, tonumber(done)} end
end
local why = 'ok'
local done = 0
if st[1] ~= '0' then
  why = 'closed'
else
  local queued, qbytes = tonumber(st[2]), tonumber(st[3])
  local maxi, maxb = tonumber(st[4]), tonumber(st[5])
  for i = 3, #ARGV do
    local len = #ARGV[i]
    if (maxi > 0 and queued + 1 > maxi) or (maxb > 0 and qbytes + len > maxb) then
      why = 'full'
      break
    end
    redis.call('XADD', s, '*', 'd', ARGV[i])
    queued = queued + 1
    qbytes = qbytes + len
    done = done + 1
  end
  if done > 0 then
    redis.call('HSET', m, 'queued', queued, 'qbytes', qbytes)
    if st[6] == 'joinable' then redis.call('HINCRBY', m, 'unfinished', done) end
  end
end
redis.call('HSET', prod, ARGV[1], ARGV[2] .. ':' .. done .. ':' .. why)
return {why, done}
)lua"};

// Acknowledges, then takes: the consumer's own entries whose reply was lost
// (recover), expired leases of other consumers (at most every scan period),
// then new items. An item past max_deliveries goes to the dead letters.
const Script kGetScript{"get", R"lua(
local m, s, dead = KEYS[1], KEYS[2], KEYS[3]
local consumer, max, recover, nacks = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local st = redis.call('HMGET', m, 'closed', 'vis_ms', 'max_deliveries', 'kind', 'scan_at', 'scan_from',
                     'queued', 'qbytes')
if not st[1] then return {'gone'} end
-- One XACK and one XDEL per 512 ids, not one each per item (the calls, not
-- the ids, cost most). Deleting an id no longer pending is harmless: it was
-- done (acknowledged by a consumer that took it over, or dead-lettered).
for i = 5, 4 + nacks, 512 do
  local last = math.min(i + 511, 4 + nacks)
  redis.call('XACK', s, 'ipckit', unpack(ARGV, i, last))
  redis.call('XDEL', s, unpack(ARGV, i, last))
end
if st[1] == '2' then return {'closed'} end
local vis, maxdel, joinable = tonumber(st[2]), tonumber(st[3]), st[4] == 'joinable'
local out = {'items'}
local got = 0
local marker = false
local function deliveries(id)
  local p = redis.call('XPENDING', s, 'ipckit', id, id, 1)
  if p[1] then return tonumber(p[1][4]) end
  return 1
end
local function take(id, fields, n)
  if fields == nil or fields == false then  -- deleted meanwhile (shut down)
    redis.call('XACK', s, 'ipckit', id)
    return
  end
  if fields[1] == 'c' then
    redis.call('XACK', s, 'ipckit', id)
    redis.call('XDEL', s, id)
    marker = true
    return
  end
  if n > maxdel then
    redis.call('XADD', dead, '*', 'id', id, 'n', n - 1, 'd', fields[2])
    redis.call('XACK', s, 'ipckit', id)
    redis.call('XDEL', s, id)
    if joinable then redis.call('HINCRBY', m, 'unfinished', -1) end
    return
  end
  out[#out + 1] = id
  out[#out + 1] = n
  out[#out + 1] = fields[2]
  got = got + 1
end
if recover == '1' then
  -- From the pending list, not by reading history (which would count a delivery).
  local held = {}
  for i = 5 + nacks, #ARGV do held[ARGV[i]] = true end
  local p = redis.call('XPENDING', s, 'ipckit', '-', '+', max + #ARGV, consumer)
  for _, e in ipairs(p) do
    if got < max and not held[e[1]] then
      local r = redis.call('XRANGE', s, e[1], e[1])
      if r[1] then redis.call('XCLAIM', s, 'ipckit', consumer, 0, e[1], 'JUSTID') end
      take(e[1], r[1] and r[1][2], tonumber(e[4]))
    end
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if got < max and now >= tonumber(st[5] or 0) then
  local from = st[6] or '0-0'
  local r = redis.call('XAUTOCLAIM', s, 'ipckit', consumer, vis, from, 'COUNT', max - got)
  local period = math.max(5, math.min(math.floor(vis / 4), 250))
  if r[1] == '0-0' then
    redis.call('HSET', m, 'scan_at', now + period, 'scan_from', '0-0')
  else
    redis.call('HSET', m, 'scan_from', r[1])
  end
  for _, e in ipairs(r[2]) do take(e[1], e[2], deliveries(e[1])) end
end
if got < max then
  local r = redis.call('XREADGROUP', 'GROUP', 'ipckit', consumer, 'COUNT', max - got, 'STREAMS', s, '>')
  if r and r[1] then
    local queued, qbytes = tonumber(st[7]), tonumber(st[8])
    for _, e in ipairs(r[1][2]) do
      if e[2] and e[2][1] == 'd' then
        queued = queued - 1
        qbytes = qbytes - #e[2][2]
      end
      take(e[1], e[2], 1)
    end
    if queued < 0 then queued = 0 end
    if qbytes < 0 then qbytes = 0 end
    redis.call('HSET', m, 'queued', queued, 'qbytes', qbytes)
  end
end
if marker then redis.call('XADD', s, '*', 'c', '1') end
if got > 0 then return out end
if st[1] == '1' and tonumber(redis.call('HGET', m, 'queued')) == 0 then return {'closed'} end
local last = redis.call('XREVRANGE', s, '+', '-', 'COUNT', 1)
if last[1] then return {'empty', last[1][1]} end
return {'empty', '0-0'}
)lua"};

const Script kTaskDoneScript{"task_done", R"lua(
local m, s = KEYS[1], KEYS[2]
if redis.call('EXISTS', m) == 0 then return {'gone'} end
if redis.call('XACK', s, 'ipckit', ARGV[1]) == 0 then return {'lost'} end
redis.call('XDEL', s, ARGV[1])
if tonumber(redis.call('HGET', m, 'unfinished')) > 0 then redis.call('HINCRBY', m, 'unfinished', -1) end
return {'done'}
)lua"};

// close (ARGV[1] 0): no more puts, gets drain; shutdown (1): also drops the
// undelivered items. Either way a marker wakes every blocked get.
const Script kCloseScript{"close", R"lua(
local m, s = KEYS[1], KEYS[2]
local st = redis.call('HMGET', m, 'closed', 'kind')
if not st[1] then return {'gone'} end
if ARGV[1] == '1' then
  redis.call('HSET', m, 'closed', 2)
  local last = '0-0'
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', s)) do
    for i = 1, #g, 2 do
      if g[i] == 'last-delivered-id' then last = g[i + 1] end
    end
  end
  local dropped = 0
  while true do
    local r = redis.call('XRANGE', s, '(' .. last, '+', 'COUNT', 1000)
    if #r == 0 then break end
    for _, e in ipairs(r) do
      redis.call('XDEL', s, e[1])
      if e[2][1] == 'd' then dropped = dropped + 1 end
      last = e[1]
    end
  end
  redis.call('HSET', m, 'queued', 0, 'qbytes', 0)
  if st[2] == 'joinable' and dropped > 0 then
    local u = tonumber(redis.call('HGET', m, 'unfinished')) - dropped
    if u < 0 then u = 0 end
    redis.call('HSET', m, 'unfinished', u)
  end
elseif st[1] == '0' then
  redis.call('HSET', m, 'closed', 1)
end
redis.call('XADD', s, '*', 'c', '1')
return {'ok'}
)lua"};

const Script kRequeueScript{"requeue", R"lua(
local m, s, dead = KEYS[1], KEYS[2], KEYS[3]
local st = redis.call('HMGET', m, 'closed', 'kind')
if not st[1] then return {'gone'} end
if st[1] ~= '0' then return {'closed'} end
local r = redis.call('XRANGE', dead, '-', '+', 'COUNT', tonumber(ARGV[1]))
local n, bytes = 0, 0
for _, e in ipairs(r) do
  local d
  for i = 1, #e[2], 2 do if e[2][i] == 'd' then d = e[2][i + 1] end end
  if d then
    redis.call('XADD', s, '*', 'd', d)
    n = n + 1
    bytes = bytes + #d
  end
  redis.call('XDEL', dead, e[1])
end
redis.call('HINCRBY', m, 'queued', n)
redis.call('HINCRBY', m, 'qbytes', bytes)
if st[2] == 'joinable' then redis.call('HINCRBY', m, 'unfinished', n) end
return {'ok', n}
)lua"};

}  // namespace ipckit::redis::detail
