-- Give held jobs back (graceful shutdown): PENDING again, the attempt not counted.
-- ARGV: now, then id, token per lease. Returns 1 (released) or 0 (stale lease) per lease.
local now = clock(ARGV[1])
local ch = changes()
local out = {}
local woken = {}
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  local key = job_key(id)
  local v = redis.call('HMGET', key, 'state', 'lease_token', 'queue', 'rank')
  if v[1] == 'PROCESSING' and v[2] == ARGV[i + 1] then
    redis.call('HSET', key, 'state', 'PENDING', 'run_at', fmt(now))
    ch:remove(P .. 'leases', id)
    schedule(ch, v[3], id, v[4], now, now)
    ch:move(v[3], id, 'PROCESSING', 'PENDING')
    woken[v[3]] = true
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
ch:write()
for queue in pairs(woken) do
  wake(queue)
end
return out
