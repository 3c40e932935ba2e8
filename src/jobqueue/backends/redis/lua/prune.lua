-- Delete finished jobs that finished before the given times, and expired idempotency keys, at
-- most `limit` of each kind per call (the caller repeats while more remain), and rate buckets
-- full again.
-- ARGV: now, completed_before, dead_before, cancelled_before ('' keeps), limit.
-- Returns {jobs deleted, keys deleted, more (1/0)}.
local now = clock(ARGV[1])
local limit = tonumber(ARGV[5])
local jobs, more = 0, 0
local cutoffs = {{'COMPLETED', ARGV[2]}, {'DEAD_LETTERED', ARGV[3]}, {'CANCELLED', ARGV[4]}}
for _, c in ipairs(cutoffs) do
  if c[2] ~= '' then
    local n = sweep_jobs(c[1], tonumber(c[2]), limit)
    jobs = jobs + n
    if n == limit then more = 1 end
  end
end
local keys = sweep_keys(now, limit)
if keys == limit then more = 1 end
-- Rate buckets full again (tat <= now) are the same as none: dropped, so that the state of keys
-- comes and goes with them. A queue's key buckets are looked for only while it may have some.
local function drop_full(zset)
  local full = redis.call('ZRANGEBYSCORE', zset, '-inf', fmt(now), 'LIMIT', 0, limit)
  variadic('ZREM', zset, full)
  if #full == limit then more = 1 end
end
drop_full(P .. 'rate')
for _, queue in ipairs(redis.call('SMEMBERS', P .. 'key_rated')) do
  local zset = P .. 'key_rate:' .. queue
  drop_full(zset)
  if redis.call('EXISTS', zset) == 0 then
    local limits = parse_limits(redis.call('HGET', P .. 'limits', queue))
    if not (limits and limits.key_rate) then
      redis.call('SREM', P .. 'key_rated', queue)
    end
  end
end
return {jobs, keys, more}
