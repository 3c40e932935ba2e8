-- Worker reports for the dashboard: P.."workers" (worker id -> its last report) beside
-- P.."workers:expiry" (worker id -> when that report expires, by the store's clock), so that a
-- worker that stops reporting drops out without a cleaner. One script keeps the two in step.
-- ARGV: 'put', now, ttl, id, report (replaces the worker's report) -> 0;
--       'remove', id -> 0;
--       'all', now -> {id, report, ...} of the live reports, the expired ones deleted on the way.
local reports, expiry = P .. 'workers', P .. 'workers:expiry'
local op = ARGV[1]
if op == 'put' then
  redis.call('HSET', reports, ARGV[4], ARGV[5])
  redis.call('ZADD', expiry, fmt(clock(ARGV[2]) + tonumber(ARGV[3])), ARGV[4])
  return 0
end
if op == 'remove' then
  redis.call('HDEL', reports, ARGV[2])
  redis.call('ZREM', expiry, ARGV[2])
  return 0
end
local gone = redis.call('ZRANGEBYSCORE', expiry, '-inf', fmt(clock(ARGV[2])))
if #gone > 0 then
  variadic('HDEL', reports, gone)
  variadic('ZREM', expiry, gone)
end
return redis.call('HGETALL', reports)
