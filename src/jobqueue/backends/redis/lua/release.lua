-- Give held jobs back (graceful shutdown): PENDING again, the attempt not counted.
-- ARGV: now, then id, token per lease. Returns 1 (released) or 0 (stale lease) per lease.
local now = clock(ARGV[1])
local ch = changes()
local out = {}
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  local key = job_key(id)
  local v = redis.call('HMGET', key, 'state', 'lease_token', 'queue', 'rank', 'rate_key')
  local held = v[1] == 'PROCESSING' and v[2] == ARGV[i + 1]
  if held then
    redis.call('HSET', key, 'state', 'PENDING', 'run_at', fmt(now))
    ch:remove(P .. 'leases', id)
    if v[5] then
      ch:run(v[3], v[5], -1) -- the queue is woken below whatever its limits
    end
    schedule(ch, v[3], id, v[4], now, now)
    ch:move(v[3], id, 'PROCESSING', 'PENDING')
    ch:wake(v[3])
  end
  out[#out + 1] = held and 1 or 0
end
ch:write()
return out
