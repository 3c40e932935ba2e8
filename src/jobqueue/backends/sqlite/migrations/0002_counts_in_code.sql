-- 0002: queue_counts are kept by the write paths, once per batch (a trigger per row cost ~12 us
-- per insert); and jobs_state goes: no query needs it, every state change paid for it, and it
-- lured the planner away from the partial indexes jobs_leases and jobs_finished.

DROP TRIGGER IF EXISTS jobs_count_insert;
DROP TRIGGER IF EXISTS jobs_count_update;
DROP TRIGGER IF EXISTS jobs_count_delete;
DROP INDEX IF EXISTS jobs_state;
