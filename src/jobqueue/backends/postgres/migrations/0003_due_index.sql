-- 0003: an idle worker's wait ends when the earliest delayed or retried job comes due (due_in).
CREATE INDEX jobs_due ON jobs (queue, run_at) WHERE state IN ('SCHEDULED', 'FAILED');
