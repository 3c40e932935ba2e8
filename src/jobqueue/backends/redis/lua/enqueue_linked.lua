-- Store new jobs of which some have parents (depends_on); a batch without any goes to enqueue.lua.
-- ARGV: now, key_grace, then 11 values per job as store_jobs takes them, then 3 values per job
--   with parents: the ARGV index of its first value, '1' if it runs when a parent fails ('0'
--   otherwise), its parents as a JSON array; last, how many jobs have parents.
-- Returns {now, outcome...} as enqueue.lua, with for a job with parents: 1 due (PENDING or
-- SCHEDULED), 2 BLOCKED, the error text of a job dead-lettered at once because of a parent, or
-- -k when its k-th parent is not stored (nothing of it stored).
local count = tonumber(ARGV[#ARGV])
local links_from = #ARGV - 3 * count
local links = {}
for i = links_from, #ARGV - 1, 3 do
  links[tonumber(ARGV[i])] = {anyway = ARGV[i + 1] == '1', json = ARGV[i + 2]}
end
return store_jobs(clock(ARGV[1]), ARGV[2], ARGV, 3, links_from - 1, nil, links)
