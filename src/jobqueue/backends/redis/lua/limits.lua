-- Queue limits, in P.."limits" (queue -> the limits in force, as parse_limits reads them; no field:
-- none) and P.."configured_limits" (queue -> the limits last configured from code, '' for none; no
-- field: never configured). claim.lua reads the first in the step that leases jobs.
-- ARGV: "set", queue, limits ('' none), configured ('1'/'0'): returns {the limits in force after
--   ('' none), 1 if they changed (the queue's waiters were told: a raised limit may admit jobs
--   held back), else 0}. Configured limits equal to the last configured change nothing (so that
--   a restart keeps a change made at run time);
-- or "all": returns {queue, limits, ...}.
local key = P .. 'limits'
if ARGV[1] == 'set' then
  local queue, want = ARGV[2], ARGV[3]
  local was = redis.call('HGET', key, queue) or ''
  if ARGV[4] == '1' then
    local configured = P .. 'configured_limits'
    if redis.call('HGET', configured, queue) == want then
      return {was, 0}
    end
    redis.call('HSET', configured, queue, want)
  end
  if want == was then
    return {was, 0}
  end
  if want == '' then
    redis.call('HDEL', key, queue)
  else
    redis.call('HSET', key, queue, want)
    if parse_limits(want).key_rate then
      redis.call('SADD', P .. 'key_rated', queue) -- its key buckets are pruned from now on
    end
  end
  redis.call('PUBLISH', P .. 'wake:' .. queue, '1')
  return {want, 1}
end
return redis.call('HGETALL', key)
