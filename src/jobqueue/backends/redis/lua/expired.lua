-- PROCESSING jobs whose lease has expired, oldest expiry first (then by id).
-- ARGV: now, limit. Returns the jobs' fields.
local now = clock(ARGV[1])
local ids = redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', fmt(now), 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
  out[#out + 1] = read_job(id)
end
return out
