-- Move a DEAD_LETTERED job back to PENDING with a fresh attempt budget.
-- ARGV: now, id, capacity ('' unbounded).
-- Returns {'OK', fields}, {'NOTFOUND'}, {'STATE', state} or {'FULL', queue}.
local now = clock(ARGV[1])
local id = ARGV[2]
local key = job_key(id)
local v = redis.call('HMGET', key, 'state', 'queue', 'rank')
if not v[1] then
  return {'NOTFOUND'}
end
if v[1] ~= 'DEAD_LETTERED' then
  return {'STATE', v[1]}
end
if ARGV[3] ~= '' and waiting(v[2]) >= tonumber(ARGV[3]) then
  return {'FULL', v[2]}
end
redis.call('HSET', key, 'state', 'PENDING', 'retry_count', 0, 'run_at', fmt(now))
redis.call('HDEL', key, 'finished_at', 'next_retry_at')
local ch = changes()
ch:remove(P .. 'done:DEAD_LETTERED', id)
schedule(ch, v[2], id, v[3], now, now)
ch:move(v[2], id, 'DEAD_LETTERED', 'PENDING')
ch:wake(v[2])
ch:write()
return {'OK', read_job(id)}
