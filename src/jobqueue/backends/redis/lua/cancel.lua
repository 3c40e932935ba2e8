-- Cancel a waiting job (PENDING, BLOCKED, SCHEDULED or FAILED) or a running one (PROCESSING: its
-- lease ends, so its worker's token no longer holds it, and a concurrency slot is free); a job
-- with children resolves its open edges to them (dependencies.lua), which dead-letters those that
-- do not run anyway.
-- ARGV: now, id, cancelled retention, dead-lettered retention ('' keeps).
-- Returns {'OK', fields} ({'OK', fields, 1} if children were released or a slot freed: the caller
-- wakes its own waiters), {'NOTFOUND'} or {'STATE', state}.
local now = clock(ARGV[1])
local id = ARGV[2]
local key = job_key(id)
local v = redis.call('HMGET', key, 'state', 'queue', 'children', 'rate_key')
if not v[1] then
  return {'NOTFOUND'}
end
local ch = changes()
local woken = false
if v[1] == 'PROCESSING' then
  -- The lease fields stay, as when a job finishes: a job that is not PROCESSING reads without them.
  ch:remove(P .. 'leases', id)
  woken = leave(ch, v[2], v[4])
elseif v[1] == 'PENDING' or v[1] == 'SCHEDULED' or v[1] == 'FAILED' or v[1] == 'BLOCKED' then
  redis.call('ZREM', P .. 'ready:' .. v[2], id)
  redis.call('ZREM', P .. 'delayed:' .. v[2], id)
else
  return {'STATE', v[1]}
end
local stamp = fmt(now)
redis.call('HSET', key, 'state', 'CANCELLED', 'finished_at', stamp)
redis.call('HDEL', key, 'next_retry_at')
ch:add(P .. 'done:CANCELLED', stamp, id)
ch:move(v[2], id, v[1], 'CANCELLED')
local dead, released = 0, false
if v[3] then
  dead, released = resolve_children(ch, id, 'CANCELLED', now, stamp)
end
ch:write()
retain('CANCELLED', now, ARGV[3], 1)
retain('DEAD_LETTERED', now, ARGV[4], dead)
if released or woken then
  return {'OK', read_job(id), 1}
end
return {'OK', read_job(id)}
