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
    lease_token      bigint NOT NULL DEFAULT 0,  -- bumped by every claim: fences stale workers
    parents          text[],                     -- depends_on, in order; NULL for a job without
    has_children     boolean NOT NULL DEFAULT false,  -- a child named it: finishing resolves edges
    blocking_parents integer,                    -- a child's edges not yet resolved
    runs_if_parents_fail boolean                 -- a child's on_parent_failure is "run"
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
            WHERE queue = queue_name AND state IN ('PENDING', 'BLOCKED', 'SCHEDULED', 'FAILED'));
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

-- The edges of depends_on, one row per (parent, child); children() lists a parent's by child id.
-- resolved: the parent finished and its edge was applied to the child, once (a parent replayed
-- and completed again changes nothing). Prune deletes a job's edges with it.
CREATE TABLE job_dependencies (
    parent_id text COLLATE "C" NOT NULL,
    child_id  text COLLATE "C" NOT NULL,
    resolved  boolean NOT NULL,
    PRIMARY KEY (parent_id, child_id)
);
CREATE INDEX job_dependencies_child ON job_dependencies (child_id);

-- Resolves the unresolved edges of jobs just finished (finished_ids, in finished_states), called
-- by the statement that finished them while it holds their row locks. A BLOCKED child whose last
-- edge resolves becomes PENDING (due from then), or SCHEDULED while its run_at is later; one whose
-- parent was dead-lettered or cancelled is dead-lettered (unless it runs anyway), and then its
-- own children are resolved the same way (the cascade). VOLATILE: each query takes a fresh
-- snapshot, so it sees the edges a child's enqueue committed while the finishing statement
-- waited for a parent's lock, which that statement's own snapshot (READ COMMITTED) cannot.
-- Children are changed in id order, so that two parents releasing the same children lock them in
-- one order. Returns the changes to queue_counts, for the caller to add with its own in one
-- sorted write.
CREATE FUNCTION resolve_children(finished_ids text[], finished_states text[], resolved_at double precision)
    RETURNS TABLE (moved_queue text, moved_state text, delta bigint)
    LANGUAGE plpgsql VOLATILE
    SET search_path FROM CURRENT
AS $$
DECLARE
    parent_ids text[] := finished_ids;
    parent_states text[] := finished_states;
    child_ids text[];
    resolved_counts bigint[];
    failures text[];
    queues text[] := '{}';
    states text[] := '{}';
BEGIN
    WHILE cardinality(parent_ids) > 0 LOOP
        WITH resolved AS (
            UPDATE job_dependencies d SET resolved = true
            FROM unnest(parent_ids, parent_states) AS f(id, state)
            WHERE d.parent_id = f.id AND NOT d.resolved
            RETURNING d.child_id, d.parent_id, f.state
        ),
        per_child AS (
            SELECT r.child_id, count(*) AS n,
                   (array_agg('parent job ' || r.parent_id || ' was ' || replace(lower(r.state), '_', '-')
                              ORDER BY r.parent_id) FILTER (WHERE r.state <> 'COMPLETED'))[1] AS failure
            FROM resolved r GROUP BY r.child_id
        )
        SELECT array_agg(p.child_id ORDER BY p.child_id), array_agg(p.n ORDER BY p.child_id),
               array_agg(p.failure ORDER BY p.child_id)
        INTO child_ids, resolved_counts, failures
        FROM per_child p;

        WITH changed AS (
            UPDATE jobs c
            SET blocking_parents = c.blocking_parents - p.n,
                state = CASE WHEN p.failure IS NOT NULL AND NOT c.runs_if_parents_fail THEN 'DEAD_LETTERED'
                             WHEN c.blocking_parents > p.n THEN 'BLOCKED'
                             WHEN c.run_at > resolved_at THEN 'SCHEDULED'
                             ELSE 'PENDING' END,
                error = CASE WHEN p.failure IS NOT NULL AND NOT c.runs_if_parents_fail THEN p.failure
                             ELSE c.error END,
                finished_at = CASE WHEN p.failure IS NOT NULL AND NOT c.runs_if_parents_fail THEN resolved_at
                                   ELSE c.finished_at END,
                -- A child released now is due from now: its wait for a worker starts then.
                run_at = CASE WHEN (p.failure IS NOT NULL AND NOT c.runs_if_parents_fail)
                                   OR c.blocking_parents > p.n THEN c.run_at
                              ELSE GREATEST(c.run_at, resolved_at) END
            FROM unnest(child_ids, resolved_counts, failures) AS p(id, n, failure)
            WHERE c.id = p.id AND c.state = 'BLOCKED'
            RETURNING c.id, c.queue, c.state, c.has_children
        )
        SELECT COALESCE(array_agg(ch.id) FILTER (WHERE ch.state = 'DEAD_LETTERED' AND ch.has_children), '{}'),
               queues || COALESCE(array_agg(ch.queue) FILTER (WHERE ch.state <> 'BLOCKED'), '{}'),
               states || COALESCE(array_agg(ch.state) FILTER (WHERE ch.state <> 'BLOCKED'), '{}')
        INTO parent_ids, queues, states
        FROM changed ch;
        parent_states := array_fill('DEAD_LETTERED'::text, ARRAY[cardinality(parent_ids)]);
    END LOOP;
    RETURN QUERY
        SELECT m.queue, m.state, count(*) FROM unnest(queues, states) AS m(queue, state)
        GROUP BY m.queue, m.state
        UNION ALL
        SELECT m.queue, 'BLOCKED', -count(*) FROM unnest(queues) AS m(queue) GROUP BY m.queue;
END
$$;

-- Queues paused for every worker (queues.py): a row per queue whose state was ever set, so that a
-- queue configured to start paused is paused once, not again after it was resumed. Claims and
-- due_in probe queue_pauses_paused per queue inside their own statement; it holds only the paused
-- queues, so while none is paused the probe finds an empty index.
CREATE TABLE queue_pauses (
    queue  text COLLATE "C" PRIMARY KEY,
    paused boolean NOT NULL
);
CREATE INDEX queue_pauses_paused ON queue_pauses (queue) WHERE paused;
