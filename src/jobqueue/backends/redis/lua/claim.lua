-- Lease up to `limit` due jobs of the given queues, highest priority first, then oldest.
-- ARGV: now, lease seconds, worker id, limit, queue...
-- Returns the claimed jobs' fields, in claim order.
local now = clock(ARGV[1])
local expires = fmt(now + tonumber(ARGV[2]))
local worker, limit = ARGV[3], tonumber(ARGV[4])
local stamp = fmt(now)
-- Due delayed jobs join the ready set first (at most PROMOTE per queue per call, so that one call
-- never blocks Redis for long; a larger backlog is promoted over the next calls).
local PROMOTE = 1000
local candidates = {}
for q = 5, #ARGV do
  local queue = ARGV[q]
  local delayed = P .. 'delayed:' .. queue
  local ready = P .. 'ready:' .. queue
  local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', stamp, 'LIMIT', 0, PROMOTE)
  for _, id in ipairs(due) do
    local v = redis.call('HMGET', job_key(id), 'priority', 'seq')
    redis.call('ZADD', ready, fmt(ready_score(v[1], v[2])), id)
  end
  if #due > 0 then
    redis.call('ZREM', delayed, unpack(due))
  end
  local top = redis.call('ZRANGE', ready, 0, limit - 1, 'WITHSCORES')
  for i = 1, #top, 2 do
    candidates[#candidates + 1] = {tonumber(top[i + 1]), top[i], ready}
  end
end
-- The sequence is global, so scores compare across queues.
if #ARGV > 5 then
  table.sort(candidates, function(a, b) return a[1] < b[1] end)
end
local out = {}
for i = 1, math.min(limit, #candidates) do
  local id, ready = candidates[i][2], candidates[i][3]
  local key = job_key(id)
  redis.call('ZREM', ready, id)
  local v = redis.call('HMGET', key, 'state', 'queue', 'started_at')
  redis.call('HINCRBY', key, 'lease_token', 1)
  redis.call('HSET', key, 'state', 'PROCESSING', 'lease_expires_at', expires, 'worker_id', worker,
    'last_attempt', stamp)
  if not v[3] then
    redis.call('HSET', key, 'started_at', stamp)
  end
  redis.call('HDEL', key, 'next_retry_at')
  redis.call('ZADD', P .. 'leases', expires, id)
  move(v[2], id, v[1], 'PROCESSING')
  out[#out + 1] = read_job(id)
end
return out
