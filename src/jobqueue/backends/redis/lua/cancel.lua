-- Cancel a waiting job (PENDING, SCHEDULED or FAILED).
-- ARGV: now, id, cancelled retention ('' keeps). Returns {'OK', fields}, {'NOTFOUND'} or {'STATE', state}.
local now = clock(ARGV[1])
local id = ARGV[2]
local key = job_key(id)
local v = redis.call('HMGET', key, 'state', 'queue')
if not v[1] then
  return {'NOTFOUND'}
end
if v[1] ~= 'PENDING' and v[1] ~= 'SCHEDULED' and v[1] ~= 'FAILED' then
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
ch:write()
retain('CANCELLED', now, ARGV[3], 1)
return {'OK', read_job(id)}
