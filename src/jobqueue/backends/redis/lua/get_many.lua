-- The fields of each job named (all absent for a job not stored), in the order given.
-- ARGV: id...
local out = {}
for i, id in ipairs(ARGV) do
  out[i] = read_job(id)
end
return out
