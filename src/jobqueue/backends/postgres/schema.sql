-- jobqueue PostgreSQL schema: the current full schema. A fresh schema is created from this file; an
-- existing one is brought here by migrations/NNNN_*.sql. tests/integration/test_postgres_schema.py
-- proves the two agree. Both run with search_path set to the app's schema (default "jobqueue"),
-- so that two apps can share one database under two schema names.

CREATE TABLE schema_version (
    version integer NOT NULL
);

CREATE TABLE jobs (
    id               text COLLATE "C" PRIMARY KEY,  -- UUIDv7; byte order is time order
    seq              bigint GENERATED ALWAYS AS IDENTITY,  -- arrival order: FIFO within a priority
    queue            text COLLATE "C" NOT NULL,
    task             text NOT NULL,
    payload          json NOT NULL,              -- json, not jsonb: stored as sent, \u0000 allowed
    priority         integer NOT NULL,
    state            text NOT NULL,
    retry_count      integer NOT NULL DEFAULT 0,
    max_retries      integer NOT NULL,
    idempotency_key  text COLLATE "C",
    created_at       double precision NOT NULL,  -- POSIX seconds, from the server's clock
    run_at           double precision NOT NULL,  -- not claimable before this
    started_at       double precision,
    finished_at      double precision,
    last_attempt     double precision,
    next_retry_at    double precision,
    error            text,
    result           json,
    timeout          double precision,
    lease_expires_at double precision,
    worker_id        text,
    lease_token      bigint NOT NULL DEFAULT 0   -- bumped by every claim: fences stale workers
);

-- Claim walks this index in order. Only waiting jobs are in it, so a claim reads the first few
-- entries whether the table holds a thousand jobs or ten million.
CREATE INDEX jobs_waiting ON jobs (queue, priority DESC, seq)
    WHERE state IN ('PENDING', 'SCHEDULED', 'FAILED');
CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE state = 'PROCESSING';
-- An idle worker's wait ends when the earliest delayed or retried job of its queues comes due
-- (due_in): one seek here, however many jobs wait.
CREATE INDEX jobs_due ON jobs (queue, run_at) WHERE state IN ('SCHEDULED', 'FAILED');
CREATE INDEX jobs_finished ON jobs (state, finished_at)
    WHERE state IN ('COMPLETED', 'DEAD_LETTERED', 'CANCELLED');
-- The dead-letter queue, listed oldest first (list_dead_jobs): dead jobs are few, so it is small.
CREATE INDEX jobs_dead ON jobs (id) WHERE state = 'DEAD_LETTERED';

-- A key row outlives its job until its TTL; prune frees it early by clearing job_id, so that a
-- key whose job is gone can be taken over in one ON CONFLICT step that sees the latest row.
CREATE TABLE idempotency_keys (
    key        text COLLATE "C" PRIMARY KEY,
    job_id     text COLLATE "C",
    expires_at double precision NOT NULL
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

-- Job counts by queue and state, as sums over shards. Every statement that adds, removes or moves
-- jobs adds its net change to the row of its connection's shard (pg_backend_pid() % 16) in the
-- same statement, so producers and workers on different connections rarely touch the same row.
-- The capacity check and stats read a few rows instead of counting the jobs table.
CREATE TABLE queue_counts (
    queue text COLLATE "C" NOT NULL,
    state text NOT NULL,
    shard integer NOT NULL,
    n     bigint NOT NULL,
    PRIMARY KEY (queue, state, shard)
);

-- Serialises the producers of one capped queue (a transaction-scoped advisory lock, keyed by schema
-- and queue) and returns its waiting count. Being VOLATILE, its query takes a fresh snapshot after
-- the lock is granted, so it sees every job the previous lock holder committed: the capacity check
-- and the insert that follows are exact under any number of concurrent producers.
CREATE FUNCTION lock_waiting(queue_name text) RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(current_schema()), hashtext(queue_name));
    RETURN (SELECT COALESCE(sum(n), 0) FROM queue_counts
            WHERE queue = queue_name AND state IN ('PENDING', 'SCHEDULED', 'FAILED'));
END
$$;

-- Each task's job defaults as its workers registered them (RegisteredTask.to_json), so that a job
-- submitted by task name from anywhere gets them.
CREATE TABLE tasks (
    name     text COLLATE "C" PRIMARY KEY,
    defaults text NOT NULL,
    updated  double precision NOT NULL
);

-- Periodic schedules, one row per name, shared by every scheduler. A tick is fired by moving
-- last_tick forward under the row's lock, in the transaction that enqueues its job (fire_tick):
-- one tick becomes one job however many schedulers fire it.
CREATE TABLE schedules (
    name        text COLLATE "C" PRIMARY KEY,
    spec        text NOT NULL,                 -- what it runs and when: JSON text of jobqueue.periodic
    paused      boolean NOT NULL DEFAULT false,
    last_tick   double precision,              -- POSIX seconds of the last tick fired, exact as sent
    last_job_id text COLLATE "C"               -- the job it became: NULL if none, or the queue was full
);
