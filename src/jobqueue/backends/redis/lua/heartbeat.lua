-- Extend held leases to now + lease. ARGV: now, lease seconds, then id, token per lease.
-- Returns 1 (still held) or 0 (lost) per lease.
local now = clock(ARGV[1])
local expires = fmt(now + tonumber(ARGV[2]))
local ch = changes()
local out = {}
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  local key = job_key(id)
  local v = redis.call('HMGET', key, 'state', 'lease_token')
  local held = v[1] == 'PROCESSING' and v[2] == ARGV[i + 1]
  if held then
    redis.call('HSET', key, 'lease_expires_at', expires)
    ch:add(P .. 'leases', expires, id)
  end
  out[#out + 1] = held and 1 or 0
end
ch:write()
return out
