-- The statements of what the dashboard reads (insight.py), with the placeholders of queries.sql.
-- Failed attempts are written by fail and fail_parents (RECORD_ERRORS, sql.py) and deleted with
-- their jobs by prune and delete_jobs.

-- name: attempt_errors
-- The failed attempts of job $1 that are kept, oldest first (by lease token: a replay restarts
-- the attempt numbers, not the tokens).
SELECT attempt, started_at, failed_at, error, traceback, worker_id FROM {schema}.attempt_errors
WHERE job_id = $1 ORDER BY token;

-- name: find_by_key
-- The job that idempotency key $1 points to, expired or not, until prune deletes or frees the
-- key. The job must still hold the key: a key whose job was deleted may point to a later job of
-- the same id (ids are the caller's to choose).
SELECT {j.job_columns} FROM {schema}.idempotency_keys k
JOIN {schema}.jobs j ON j.id = k.job_id AND j.idempotency_key = k.key
WHERE k.key = $1;

-- name: enqueued_total
-- The last value handed out by the identity sequence of jobs.seq (0 before the first): every
-- insert of a job takes one, and deleting jobs gives none back. Sequences are not transactional,
-- so a value taken by a job whose insert was rolled back or lost to ON CONFLICT counts too. The
-- sequence is named by PostgreSQL's rule for identity columns (table_column_seq).
SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {schema}.jobs_seq_seq;

-- name: report_worker
-- Store worker $2's report $3 in place of its last one, until {now} + $4 seconds.
INSERT INTO {schema}.worker_reports AS r (worker_id, report, expires_at) VALUES ($2, $3, {now} + $4)
ON CONFLICT (worker_id) DO UPDATE SET report = EXCLUDED.report, expires_at = EXCLUDED.expires_at;

-- name: worker_reports
-- The reports not yet expired, by worker id; the expired ones are deleted on the way (the table
-- holds a row per worker, so the scan is short; a DELETE that finds nothing writes nothing). A
-- report renewed meanwhile is kept: the DELETE re-checks the latest version of a row it waited for.
WITH expired AS (
    DELETE FROM {schema}.worker_reports WHERE expires_at <= {now}
)
SELECT report FROM {schema}.worker_reports WHERE expires_at > {now} ORDER BY worker_id;

-- name: remove_worker_report
DELETE FROM {schema}.worker_reports WHERE worker_id = $1;
