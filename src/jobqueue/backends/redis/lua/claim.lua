-- Lease up to `limit` due jobs of the given queues, highest priority first, then oldest, that
-- the queues' limits admit (limiter.lua): the check, the spending and the lease are this one step.
-- ARGV: now, lease seconds, worker id, limit, queue...
-- Returns the claimed jobs' fields, in claim order.
local now = clock(ARGV[1])
local expires = fmt(now + tonumber(ARGV[2]))
local worker, limit = ARGV[3], tonumber(ARGV[4])
local stamp = fmt(now)
local ch = changes()
-- Due delayed jobs join the ready set first (at most PROMOTE per queue per call, so that one call
-- never blocks Redis for long; a larger backlog is promoted over the next calls).
local PROMOTE = 1000
local candidates = {}
-- Paused queues (queues.lua) give nothing, checked here so that no claim after a pause sees stale
-- state; their due jobs stay delayed until the resume. With no queue ever paused this is one HMGET
-- of a missing key.
local paused = #ARGV >= 5 and redis.call('HMGET', P .. 'paused', unpack(ARGV, 5)) or {}
-- Limits likewise: a queue without any costs a field missing from this one HMGET, no more.
local limited = #ARGV >= 5 and redis.call('HMGET', P .. 'limits', unpack(ARGV, 5)) or {}
local plans = {} -- by ready key, for the limited queues
local slot_limited = {} -- the queues claimed from that have a concurrency limit
for q = 5, #ARGV do
  local queue = ARGV[q]
  if paused[q - 4] ~= '1' then
    local delayed = P .. 'delayed:' .. queue
    local ready = P .. 'ready:' .. queue
    local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', stamp, 'LIMIT', 0, PROMOTE)
    if #due > 0 then
      local promoted = {}
      for _, id in ipairs(due) do
        promoted[#promoted + 1] = redis.call('HGET', job_key(id), 'rank')
        promoted[#promoted + 1] = id
      end
      variadic('ZADD', ready, promoted)
      variadic('ZREM', delayed, due)
    end
    if limited[q - 4] then
      local limits = parse_limits(limited[q - 4])
      if limits and (limits.concurrency or limits.key_concurrency) then
        slot_limited[#slot_limited + 1] = queue
      end
      plans[ready] = admit(queue, ready, limits, limit, now, candidates, #ARGV > 5)
    else
      local top = redis.call('ZRANGE', ready, 0, limit - 1, 'WITHSCORES')
      for i = 1, #top, 2 do
        candidates[#candidates + 1] = {tonumber(top[i + 1]), top[i], ready}
      end
    end
  end
end
-- The sequence is global, so scores compare across queues.
if #ARGV > 5 then
  table.sort(candidates, function(a, b) return a[1] < b[1] end)
end
local out = {}
local leases = P .. 'leases'
for i = 1, math.min(limit, #candidates) do
  local id, ready = candidates[i][2], candidates[i][3]
  local key = job_key(id)
  -- One read of the whole job, changed here and returned: no second read after the write.
  local v = redis.call('HMGET', key, unpack(JOB_FIELDS))
  local old = v[4]
  local token = (tonumber(v[16]) or 0) + 1
  if v[8] then
    redis.call('HSET', key, 'state', 'PROCESSING', 'lease_expires_at', expires, 'worker_id', worker,
      'last_attempt', stamp, 'lease_token', token)
  else
    redis.call('HSET', key, 'state', 'PROCESSING', 'lease_expires_at', expires, 'worker_id', worker,
      'last_attempt', stamp, 'lease_token', token, 'started_at', stamp)
    v[8] = stamp
  end
  if v[11] then
    redis.call('HDEL', key, 'next_retry_at')
    v[11] = false
  end
  v[4], v[10], v[14], v[15], v[16] = 'PROCESSING', stamp, expires, worker, tostring(token)
  ch:remove(ready, id)
  ch:add(leases, expires, id)
  ch:move(v[2], id, old, 'PROCESSING')
  if v[18] then
    ch:run(v[2], v[18], 1)
  end
  local plan = plans[ready]
  if plan then
    plan.taken[#plan.taken + 1] = candidates[i][4]
  end
  out[#out + 1] = v
end
for _, plan in pairs(plans) do
  spend_plan(plan, now)
end
-- Whether this claim of a queue with a slot limit got fewer jobs than it asked for: only then does
-- a job leaving PROCESSING there wake waiting workers (leave, common.lua). Written when it changes.
local short = #out < limit
for _, queue in ipairs(slot_limited) do
  local was = redis.call('HEXISTS', P .. 'slot_waited', queue) == 1
  if short and not was then
    redis.call('HSET', P .. 'slot_waited', queue, '1')
  elseif was and not short then
    redis.call('HDEL', P .. 'slot_waited', queue)
  end
end
ch:write()
return out
