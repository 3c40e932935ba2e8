-- The job an idempotency key points to (live or past its TTL, until the key is swept or its job
-- deleted: a key whose job is gone is free). ARGV: key. Returns the job's fields, or nil.
local id = redis.call('HGET', P .. 'keys', ARGV[1])
if not id then
  return false
end
local v = read_job(id)
if not v[1] then
  return false
end
return v
