-- Cancel a waiting job (PENDING, BLOCKED, SCHEDULED or FAILED); a job with children resolves its
-- open edges to them (dependencies.lua), which dead-letters those that do not run anyway.
-- ARGV: now, id, cancelled retention, dead-lettered retention ('' keeps).
-- Returns {'OK', fields} ({'OK', fields, 1} if children were released), {'NOTFOUND'} or
-- {'STATE', state}.
local now = clock(ARGV[1])
local id = ARGV[2]
local key = job_key(id)
local v = redis.call('HMGET', key, 'state', 'queue', 'children')
if not v[1] then
  return {'NOTFOUND'}
end
if v[1] ~= 'PENDING' and v[1] ~= 'SCHEDULED' and v[1] ~= 'FAILED' and v[1] ~= 'BLOCKED' then
  return {'STATE', v[1]}
end
local stamp = fmt(now)
redis.call('ZREM', P .. 'ready:' .. v[2], id)
redis.call('ZREM', P .. 'delayed:' .. v[2], id)
redis.call('HSET', key, 'state', 'CANCELLED', 'finished_at', stamp)
redis.call('HDEL', key, 'next_retry_at')
local ch = changes()
ch:add(P .. 'done:CANCELLED', stamp, id)
ch:move(v[2], id, v[1], 'CANCELLED')
local dead, released = 0, false
if v[3] then
  dead, released = resolve_children(ch, id, 'CANCELLED', now, stamp)
end
ch:write()
retain('CANCELLED', now, ARGV[3], 1)
retain('DEAD_LETTERED', now, ARGV[4], dead)
if released then
  return {'OK', read_job(id), 1}
end
return {'OK', read_job(id)}
