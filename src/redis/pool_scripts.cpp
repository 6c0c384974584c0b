// src/redis/pool_scripts.cpp — the Lua of a Redis pool (keys in the header).
#include "pool_scripts.hpp"

namespace ipckit::redis::detail {

const Script kPoolOpenScript{"pool open", R"lua(
local m, s = KEYS[1], KEYS[2]
local names = {'layout', 'max_message', 'vis_ms'}
if redis.call('EXISTS', m) == 0 then
  for i = 1, 3 do redis.call('HSET', m, names[i], ARGV[i]) end
  redis.call('HSET', m, 'closed', 0, 'queued', 0, 'done', 0)
  if redis.call('EXISTS', s) == 1 then redis.call('DEL', s) end
  redis.call('XGROUP', 'CREATE', s, 'workers', '$', 'MKSTREAM')
  return {'created'}
end
local v = redis.call('HMGET', m, unpack(names))
for i = 1, 3 do
  if v[i] ~= ARGV[i] then return {'mismatch', names[i], v[i] or '(none)'} end
end
return {'opened'}
)lua"};

const Script kPoolSubmitScript{"pool submit", R"lua(
local m, s, prod = KEYS[1], KEYS[2], KEYS[3]
local closed = redis.call('HGET', m, 'closed')
if not closed then return {'gone', 0} end
local last = redis.call('HGET', prod, ARGV[1])
if last then
  local seq, done, why = string.match(last, '^(%d+):(%d+):(%a+)$')
  if seq == ARGV[2] then return {why, tonumber(done)} end
end
local why, done = 'ok', 0
if closed ~= '0' then
  why = 'closed'
else
  for i = 4, #ARGV do
    redis.call('XADD', s, '*', 'c', ARGV[1], 'r', ARGV[3], 't', ARGV[i])
    done = done + 1
  end
  redis.call('HINCRBY', m, 'queued', done)
end
redis.call('HSET', prod, ARGV[1], ARGV[2] .. ':' .. done .. ':' .. why)
return {why, done}
)lua"};

// Posts the results of the tasks the worker finished, acknowledges them,
// records its heartbeat, then takes up to max tasks: expired leases first
// (rate-limited scans; a task past its retries fails with "died" instead),
// then new ones.
const Script kPoolTakeScript{"pool take", R"lua(
local m, s, dead, workers = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local worker, info, max, nfin = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local st = redis.call('HMGET', m, 'closed', 'vis_ms', 'scan_at', 'scan_from', 'queued')
if not st[1] then return {'gone'} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function post(client, id, status, bytes)
  local r = m .. ':results:' .. client
  redis.call('XADD', r, '*', 'i', id, 's', status, 'd', bytes)
  redis.call('PEXPIRE', r, 86400000)
end
-- The finished tasks: a result entry each (`ipckit ps` counts them), then
-- one PEXPIRE per client and one XACK, XDEL and HINCRBY for all (per 512):
-- the calls, not their arguments, cost most. Deleting a task no longer
-- pending is harmless: it was done (by a worker that took it over) or
-- dead-lettered.
if nfin > 0 then
  local streams, sids = {}, {}
  local at = 5
  for _ = 1, nfin do
    local r = m .. ':results:' .. ARGV[at]
    redis.call('XADD', r, '*', 'i', ARGV[at + 2], 's', ARGV[at + 3], 'd', ARGV[at + 4])
    streams[r] = true
    sids[#sids + 1] = ARGV[at + 1]
    at = at + 5
  end
  for r in pairs(streams) do redis.call('PEXPIRE', r, 86400000) end
  for i = 1, #sids, 512 do
    local last = math.min(i + 511, #sids)
    redis.call('XACK', s, 'workers', unpack(sids, i, last))
    redis.call('XDEL', s, unpack(sids, i, last))
  end
  redis.call('HINCRBY', m, 'done', nfin)
end
-- What the worker's own blocking XREADGROUP delivered since (optional):
-- that many tasks are no longer queued; close markers go back for the others.
local base = 5 + 5 * nfin
local queued = tonumber(st[5]) - tonumber(ARGV[base] or '0')
local marker = false
for i = base + 2, base + 1 + tonumber(ARGV[base + 1] or '0') do
  redis.call('XACK', s, 'workers', ARGV[i])
  redis.call('XDEL', s, ARGV[i])
  marker = true
end
if queued < 0 then queued = 0 end
if queued ~= tonumber(st[5]) then redis.call('HSET', m, 'queued', queued) end
redis.call('HSET', workers, worker, info .. ';seen=' .. now)
if max == 0 then
  if marker then redis.call('XADD', s, '*', 'x', '1') end
  return {'ok'}
end
if st[1] == '2' then return {'closed'} end
local out = {'tasks'}
local got = 0
local function field(fields, name)
  for i = 1, #fields, 2 do if fields[i] == name then return fields[i + 1] end end
  return nil
end
local function take(id, fields, n)
  if not fields then
    redis.call('XACK', s, 'workers', id)
    return
  end
  if field(fields, 'x') then
    redis.call('XACK', s, 'workers', id)
    redis.call('XDEL', s, id)
    marker = true
    return
  end
  local client, retries, record = field(fields, 'c'), tonumber(field(fields, 'r') or '0'), field(fields, 't')
  local task = string.sub(record or '', 1, 8)
  if n > retries + 1 then
    redis.call('XADD', dead, '*', 'id', id, 'c', client, 'n', n - 1, 't', record)
    post(client, task, 'died', tostring(n - 1))
    redis.call('XACK', s, 'workers', id)
    redis.call('XDEL', s, id)
    return
  end
  out[#out + 1] = id
  out[#out + 1] = n
  out[#out + 1] = client
  out[#out + 1] = record
  got = got + 1
end
if now >= tonumber(st[3] or 0) then
  local vis = tonumber(st[2])
  local r = redis.call('XAUTOCLAIM', s, 'workers', worker, vis, st[4] or '0-0', 'COUNT', max)
  local period = math.max(5, math.min(math.floor(vis / 4), 250))
  if r[1] == '0-0' then
    redis.call('HSET', m, 'scan_at', now + period, 'scan_from', '0-0')
  else
    redis.call('HSET', m, 'scan_from', r[1])
  end
  for _, e in ipairs(r[2]) do
    local p = redis.call('XPENDING', s, 'workers', e[1], e[1], 1)
    take(e[1], e[2], p[1] and tonumber(p[1][4]) or 1)
  end
end
if got < max then
  local want = max - got
  local r = redis.call('XREADGROUP', 'GROUP', 'workers', worker, 'COUNT', want, 'STREAMS', s, '>')
  local entries = (r and r[1] and r[1][2]) or {}
  local taken = 0
  for _, e in ipairs(entries) do
    if e[2] and not field(e[2], 'x') then taken = taken + 1 end
    take(e[1], e[2], 1)
  end
  local q = queued - taken
  -- Fewer entries than asked for: none is left undelivered. This also
  -- forgets what a killed worker's blocking read took and never reported.
  if #entries < want or q < 0 then q = 0 end
  if q ~= tonumber(st[5]) then redis.call('HSET', m, 'queued', q) end
end
if marker then redis.call('XADD', s, '*', 'x', '1') end
if got > 0 then return out end
if st[1] == '1' and tonumber(redis.call('HGET', m, 'queued')) == 0 then return {'closed'} end
local last = redis.call('XREVRANGE', s, '+', '-', 'COUNT', 1)
if last[1] then return {'empty', last[1][1]} end
return {'empty', '0-0'}
)lua"};

const Script kPoolCloseScript{"pool close", R"lua(
local m, s = KEYS[1], KEYS[2]
if not redis.call('HGET', m, 'closed') then return {'gone'} end
if redis.call('HGET', m, 'closed') == '0' then redis.call('HSET', m, 'closed', 1) end
redis.call('XADD', s, '*', 'x', '1')
return {'ok'}
)lua"};

}  // namespace ipckit::redis::detail
