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
    runs_if_parents_fail boolean,                -- a child's on_parent_failure is "run"
    rate_key         text COLLATE "C"            -- the key of its queue's per-key limits, or NULL
);

-- Claim walks this index in order. Only waiting jobs are in it, so a claim reads the first few
-- entries whether the table holds a thousand jobs or ten million.
CREATE INDEX jobs_waiting ON jobs (queue, priority DESC, seq)
    WHERE state IN ('PENDING', 'SCHEDULED', 'FAILED');
CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE state = 'PROCESSING';
-- A limited claim counts the running jobs of each rate key it meets (key_concurrency); jobs
-- without a key are not in it, so they cost it nothing.
CREATE INDEX jobs_running_keys ON jobs (queue, rate_key) WHERE state = 'PROCESSING' AND rate_key IS NOT NULL;
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

-- Rate and concurrency limits (limits.py): a row per queue whose limits were ever set. The limits
-- in force are numbers (a rate is jobqueue.limits.Rate's count, per and burst; NULL: none), the
-- queue's token bucket is tat, and configured holds the limits last configured from code, as the
-- same eight numbers (NULL: never). A claim of queues none of which is limited probes
-- queue_limits_limited only (empty while no queue has limits); a completion probes the primary
-- key for holds_slots, to wake waiting workers when it frees a slot.
CREATE TABLE queue_limits (
    queue           text COLLATE "C" PRIMARY KEY,
    rate_count      integer,
    rate_per        double precision,
    rate_burst      integer,
    concurrency     integer,
    key_rate_count  integer,
    key_rate_per    double precision,
    key_rate_burst  integer,
    key_concurrency integer,
    tat             double precision,
    configured      double precision[],
    limited         boolean GENERATED ALWAYS AS (rate_count IS NOT NULL OR concurrency IS NOT NULL
                                                 OR key_rate_count IS NOT NULL OR key_concurrency IS NOT NULL) STORED,
    holds_slots     boolean GENERATED ALWAYS AS (concurrency IS NOT NULL OR key_concurrency IS NOT NULL) STORED,
    -- The last limited claim of the queue was held back by a slot limit (it got fewer jobs than it
    -- asked for): only then does a job leaving PROCESSING wake waiting workers (FREED, sql.py).
    slot_waited     boolean NOT NULL DEFAULT false
);
CREATE INDEX queue_limits_limited ON queue_limits (queue) WHERE limited;

-- The bucket of each (queue, rate key) that a key_rate has spent from; prune deletes those full
-- again (tat in the past, the same as never used). due_in seeks the emptiest by (queue, tat).
CREATE TABLE rate_buckets (
    queue    text COLLATE "C" NOT NULL,
    rate_key text COLLATE "C" NOT NULL,
    tat      double precision NOT NULL,
    PRIMARY KEY (queue, rate_key)
);
CREATE INDEX rate_buckets_due ON rate_buckets (queue, tat);

-- The tokens of a bucket in state tat (NULL: never used) at now, for a rate of count per per
-- seconds and burst: jobqueue.limits.Rate.available, in the same float operations, so that every
-- backend admits the same jobs at the same times. A plain SQL function: inlined where it is used.
CREATE FUNCTION bucket_tokens(tat double precision, now double precision, per double precision,
                              count integer, burst integer)
    RETURNS integer
    LANGUAGE sql IMMUTABLE
AS $$
    SELECT CASE WHEN tat IS NULL OR tat <= now THEN burst
                ELSE GREATEST(0, LEAST(burst, floor(burst - (tat - now) / (per / count) + 1e-9::float8)))::integer
           END
$$;

-- What each limited queue of budget_queues lets a claim take now by its own limits: concurrency
-- minus its PROCESSING jobs, and the tokens of its bucket (the least of those it has). Locks the
-- queues' limits rows first, in queue order, so the limited claims of a queue run one at a time;
-- being VOLATILE, it then reads with a fresh snapshot, which sees what the claim before committed
-- (as lock_waiting does for capacity). The claim statement calls it for queues without per-key
-- limits, scans each queue up to its budget, and spends the tokens in the same statement; its own
-- older snapshot still sees jobs claimed meanwhile as waiting, but FOR UPDATE re-checks the latest
-- version of each row (PROCESSING: skipped), so together the claims never exceed a limit.
CREATE FUNCTION queue_budgets(budget_queues text[], budget_now double precision)
    RETURNS TABLE (budget_queue text, budget integer, budget_slots integer)
    LANGUAGE plpgsql VOLATILE
    SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM FROM queue_limits l WHERE l.queue = ANY (budget_queues) AND l.limited ORDER BY l.queue FOR UPDATE;
    RETURN QUERY
        WITH b AS MATERIALIZED (
            SELECT l.queue,
                   CASE WHEN l.concurrency IS NOT NULL THEN l.concurrency - (
                       SELECT COALESCE(sum(c.n), 0) FROM queue_counts c
                       WHERE c.queue = l.queue AND c.state = 'PROCESSING') END AS slots,
                   CASE WHEN l.rate_count IS NOT NULL
                        THEN bucket_tokens(l.tat, budget_now, l.rate_per, l.rate_count, l.rate_burst) END AS tokens
            FROM queue_limits l WHERE l.queue = ANY (budget_queues) AND l.limited
        )
        SELECT b.queue, GREATEST(0, LEAST(b.slots, b.tokens))::integer, b.slots::integer FROM b;
END
$$;

-- The claim when a queue of claim_queues has per-key limits (the claim statement calls it instead
-- of its own scan): takes what the limits admit, in the claim's order (priority, then age) across
-- all its queues, up to claim_limit jobs, and spends their tokens. The limited queues' rows are
-- locked first, in queue order, as queue_budgets does; every query after the lock takes a fresh
-- snapshot (VOLATILE), so it sees the jobs, counts and buckets that the claim before committed:
-- together the claims never exceed a limit. Each round scans as claim does, each queue up to what
-- its own limits allow now (concurrency minus PROCESSING jobs, the tokens of its bucket), and
-- takes every candidate its key admits (key_concurrency minus the key's PROCESSING jobs, the
-- tokens of the key's bucket; a job without a key always); a key that is full is skipped by the
-- rounds after, which go on down the queue, so the jobs of one busy key never hide those of the
-- others behind them. A round in which no job was held back took all there was. Jobs held back
-- stay as they were. The counts go to shard pg_backend_pid() % 16 (queries.sql).
CREATE FUNCTION claim_limited(claim_queues text[], claim_limit integer, claim_worker text,
                              claim_lease double precision, claim_now double precision)
    RETURNS SETOF jobs
    LANGUAGE plpgsql VOLATILE
    SET search_path FROM CURRENT
AS $$
DECLARE
    full_keys jsonb := '{}';  -- {queue: {rate key: true}}: the keys the rounds skip
    taken jobs[] := '{}';
    round_taken jobs[];
    held_back boolean;
BEGIN
    PERFORM FROM queue_limits WHERE queue = ANY (claim_queues) AND limited ORDER BY queue FOR UPDATE;
    LOOP
        WITH lim AS MATERIALIZED (
            SELECT q.name, l.key_rate_count, l.key_rate_per, l.key_rate_burst, l.key_concurrency,
                   COALESCE(l.key_rate_count IS NOT NULL OR l.key_concurrency IS NOT NULL, false) AS keyed,
                   CASE WHEN l.concurrency IS NOT NULL OR l.rate_count IS NOT NULL THEN GREATEST(0, LEAST(
                       CASE WHEN l.concurrency IS NOT NULL THEN l.concurrency - (
                           SELECT COALESCE(sum(c.n), 0) FROM queue_counts c
                           WHERE c.queue = q.name AND c.state = 'PROCESSING') END,
                       CASE WHEN l.rate_count IS NOT NULL
                            THEN bucket_tokens(l.tat, claim_now, l.rate_per, l.rate_count, l.rate_burst) END))
                   END AS budget
            FROM unnest(claim_queues) AS q(name)
            LEFT JOIN queue_limits l ON l.queue = q.name AND l.limited
            WHERE NOT EXISTS (SELECT 1 FROM queue_pauses p WHERE p.queue = q.name AND p.paused)
        ),
        candidates AS MATERIALIZED (
            SELECT j.id, j.queue, j.rate_key, j.state, j.priority, j.seq, lim.keyed
            FROM lim CROSS JOIN LATERAL (
                SELECT id, queue, rate_key, state, priority, seq FROM jobs
                WHERE queue = lim.name AND state IN ('PENDING', 'SCHEDULED', 'FAILED') AND run_at <= claim_now
                  AND (rate_key IS NULL OR NOT lim.keyed OR NOT COALESCE((full_keys -> lim.name) ? rate_key, false))
                ORDER BY priority DESC, seq
                LIMIT LEAST(claim_limit - cardinality(taken), lim.budget)
                FOR UPDATE SKIP LOCKED
            ) AS j
            ORDER BY j.priority DESC, j.seq
            LIMIT claim_limit - cardinality(taken)
        ),
        keys AS (
            SELECT c.queue, c.rate_key, count(*) AS seen FROM candidates c
            WHERE c.keyed AND c.rate_key IS NOT NULL GROUP BY c.queue, c.rate_key
        ),
        allowed AS MATERIALIZED (
            SELECT k.queue, k.rate_key, k.seen, b.tat, GREATEST(0, LEAST(
                       CASE WHEN lim.key_concurrency IS NOT NULL THEN lim.key_concurrency - (
                           SELECT count(*) FROM jobs r
                           WHERE r.queue = k.queue AND r.rate_key = k.rate_key AND r.rate_key IS NOT NULL
                             AND r.state = 'PROCESSING') END,
                       CASE WHEN lim.key_rate_count IS NOT NULL
                            THEN bucket_tokens(b.tat, claim_now, lim.key_rate_per, lim.key_rate_count,
                                               lim.key_rate_burst) END)) AS n
            FROM keys k
            JOIN lim ON lim.name = k.queue
            LEFT JOIN rate_buckets b ON b.queue = k.queue AND b.rate_key = k.rate_key
        ),
        ranked AS MATERIALIZED (
            SELECT c.id, c.state, a.n AS allowance,
                   row_number() OVER (PARTITION BY c.queue, c.rate_key ORDER BY c.priority DESC, c.seq) AS rank
            FROM candidates c LEFT JOIN allowed a ON a.queue = c.queue AND a.rate_key = c.rate_key
        ),
        claimed AS (
            UPDATE jobs j
            SET state = 'PROCESSING', lease_token = j.lease_token + 1, lease_expires_at = claim_now + claim_lease,
                worker_id = claim_worker, last_attempt = claim_now, started_at = COALESCE(j.started_at, claim_now),
                next_retry_at = NULL
            FROM ranked r
            WHERE j.id = r.id AND (r.allowance IS NULL OR r.rank <= r.allowance)
            RETURNING j AS job, j.queue, j.rate_key, r.state AS old_state
        ),
        counted AS (
            INSERT INTO queue_counts AS c (queue, state, shard, n)
            SELECT queue, state, pg_backend_pid() % 16, sum(n) FROM (
                SELECT queue, old_state AS state, -1 AS n FROM claimed
                UNION ALL SELECT queue, 'PROCESSING', 1 FROM claimed
            ) AS d GROUP BY queue, state ORDER BY queue, state
            ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n
        ),
        spent AS (
            UPDATE queue_limits l
            SET tat = GREATEST(COALESCE(l.tat, claim_now), claim_now) + s.n * (l.rate_per / l.rate_count)
            FROM (SELECT queue, count(*) AS n FROM claimed GROUP BY queue) AS s
            WHERE l.queue = s.queue AND l.rate_count IS NOT NULL
        ),
        spent_by_key AS (
            INSERT INTO rate_buckets AS b (queue, rate_key, tat)
            SELECT s.queue, s.rate_key,
                   GREATEST(COALESCE(a.tat, claim_now), claim_now) + s.n * (lim.key_rate_per / lim.key_rate_count)
            FROM (SELECT queue, rate_key, count(*) AS n FROM claimed WHERE rate_key IS NOT NULL
                  GROUP BY queue, rate_key) AS s
            JOIN lim ON lim.name = s.queue
            JOIN allowed a ON a.queue = s.queue AND a.rate_key = s.rate_key
            WHERE lim.key_rate_count IS NOT NULL
            ORDER BY s.queue, s.rate_key
            ON CONFLICT (queue, rate_key) DO UPDATE SET tat = EXCLUDED.tat
        )
        SELECT COALESCE((SELECT array_agg(c.job) FROM claimed c), '{}'),
               EXISTS (SELECT 1 FROM ranked r WHERE r.rank > r.allowance),
               full_keys || COALESCE((
                   SELECT jsonb_object_agg(f.queue, COALESCE(full_keys -> f.queue, '{}') || f.keys)
                   FROM (SELECT a.queue, jsonb_object_agg(a.rate_key, true) AS keys FROM allowed a
                         WHERE a.seen >= a.n GROUP BY a.queue) AS f), '{}')
        INTO round_taken, held_back, full_keys;
        taken := taken || round_taken;
        EXIT WHEN NOT held_back OR cardinality(taken) >= claim_limit;
    END LOOP;
    UPDATE queue_limits SET slot_waited = cardinality(taken) < claim_limit
    WHERE queue = ANY (claim_queues) AND holds_slots AND slot_waited IS DISTINCT FROM (cardinality(taken) < claim_limit);
    RETURN QUERY SELECT * FROM unnest(taken);
END
$$;

-- One row per failed attempt, written by the statement that failed it (fail, fail_parents), which
-- also trims the job's rows to the latest MAX_ATTEMPT_ERRORS; prune and delete remove a job's rows
-- with it. token is the attempt's lease_token: bumped by every claim and never reset (a replay
-- resets only the attempt number), so it orders a job's attempts, replays included.
CREATE TABLE attempt_errors (
    job_id     text COLLATE "C" NOT NULL,
    token      bigint NOT NULL,
    attempt    integer NOT NULL,
    started_at double precision,
    failed_at  double precision NOT NULL,
    error      text NOT NULL,
    traceback  text,
    worker_id  text,
    PRIMARY KEY (job_id, token)
);

-- Each worker's last report (JSON text), until expires_at by the store's clock; listing them
-- deletes the expired ones (a worker that crashed never removes its own).
CREATE TABLE worker_reports (
    worker_id  text COLLATE "C" PRIMARY KEY,
    report     text NOT NULL,
    expires_at double precision NOT NULL
);
