-- Queues paused for every worker of the namespace, in P.."paused": a hash queue -> '1' (paused)
-- or '0' (resumed). A queue whose state was never set has no field, which is what `initial`
-- asks about. claim.lua and next_due.lua read the same hash.
-- ARGV: "set", queue, paused ('1'/'0'), initial ('1'/'0'): returns {state after ('1'/'0'), 1 if
--   this call resumed a paused queue, else 0}; a resume publishes on the queue's wake channel as
--   an enqueue does, since its waiting jobs become claimable;
-- or "all": returns the names of the paused queues.
local key = P .. 'paused'
if ARGV[1] == 'set' then
  local queue, want = ARGV[2], ARGV[3]
  local was = redis.call('HGET', key, queue)
  if was and ARGV[4] == '1' then
    return {was, 0}
  end
  if was ~= want then
    redis.call('HSET', key, queue, want)
  end
  if was == '1' and want == '0' then
    redis.call('PUBLISH', P .. 'wake:' .. queue, '1')
    return {want, 1}
  end
  return {want, 0}
end
local out = {}
local flat = redis.call('HGETALL', key)
for i = 1, #flat, 2 do
  if flat[i + 1] == '1' then
    out[#out + 1] = flat[i]
  end
end
return out
