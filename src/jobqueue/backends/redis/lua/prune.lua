-- Delete finished jobs that finished before the given times, and expired idempotency keys, at
-- most `limit` of each kind per call (the caller repeats while more remain).
-- ARGV: now, completed_before, dead_before, cancelled_before ('' keeps), limit.
-- Returns {jobs deleted, keys deleted, more (1/0)}.
local now = clock(ARGV[1])
local limit = tonumber(ARGV[5])
local jobs, more = 0, 0
local cutoffs = {{'COMPLETED', ARGV[2]}, {'DEAD_LETTERED', ARGV[3]}, {'CANCELLED', ARGV[4]}}
for _, c in ipairs(cutoffs) do
  if c[2] ~= '' then
    local n = sweep_jobs(c[1], tonumber(c[2]), limit)
    jobs = jobs + n
    if n == limit then more = 1 end
  end
end
local keys = sweep_keys(now, limit)
if keys == limit then more = 1 end
return {jobs, keys, more}
