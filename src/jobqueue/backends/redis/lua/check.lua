-- Whether each job is still PROCESSING under the token given: a worker's look for its jobs that
-- were cancelled or recovered meanwhile. Reads only. ARGV: id, token per lease.
-- Returns 1 (held) or 0 per lease.
local out = {}
for i = 1, #ARGV, 2 do
  local v = redis.call('HMGET', job_key(ARGV[i]), 'state', 'lease_token')
  out[#out + 1] = (v[1] == 'PROCESSING' and v[2] == ARGV[i + 1]) and 1 or 0
end
return out
