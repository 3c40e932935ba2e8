-- Store new jobs (store_jobs.lua does it, for fire.lua too); jobs with parents go to enqueue_linked.lua.
-- ARGV: now, key_grace, then 11 values per job as store_jobs takes them.
-- Returns {now, outcome...}: 1 accepted, 0 rejected (full), or the holder's fields (duplicate).
return store_jobs(clock(ARGV[1]), ARGV[2], ARGV, 3, #ARGV)
