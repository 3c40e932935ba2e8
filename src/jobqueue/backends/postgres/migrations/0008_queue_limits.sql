-- 0008: rate and concurrency limits (limits.py; claim calls claim_limited for a limited queue),
-- the rate_key of jobs, and their index of running jobs by key.
ALTER TABLE jobs ADD COLUMN rate_key text COLLATE "C";
CREATE INDEX jobs_running_keys ON jobs (queue, rate_key) WHERE state = 'PROCESSING' AND rate_key IS NOT NULL;

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
