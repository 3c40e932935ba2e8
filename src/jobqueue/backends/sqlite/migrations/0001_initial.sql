-- 0001: the first schema.

CREATE TABLE jobs (
    seq              INTEGER PRIMARY KEY,       -- arrival order: FIFO within a priority
    id               TEXT NOT NULL UNIQUE,      -- UUIDv7
    queue            TEXT NOT NULL,
    task             TEXT NOT NULL,
    payload          TEXT NOT NULL,             -- JSON
    priority         INTEGER NOT NULL,
    state            TEXT NOT NULL,
    retry_count      INTEGER NOT NULL DEFAULT 0,
    max_retries      INTEGER NOT NULL,
    idempotency_key  TEXT,
    created_at       REAL NOT NULL,             -- POSIX seconds
    run_at           REAL NOT NULL,             -- not claimable before this
    started_at       REAL,
    finished_at      REAL,
    last_attempt     REAL,
    next_retry_at    REAL,
    error            TEXT,
    result           TEXT,                      -- JSON
    timeout          REAL,
    lease_expires_at REAL,
    worker_id        TEXT,
    lease_token      INTEGER NOT NULL DEFAULT 0 -- bumped by every claim: fences stale workers
);

-- Claim walks this index in order: only waiting jobs are in it, so it stays small however many
-- finished jobs the table holds.
CREATE INDEX jobs_waiting ON jobs (queue, priority DESC, seq, run_at)
    WHERE state IN ('PENDING', 'SCHEDULED', 'FAILED');
CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE state = 'PROCESSING';
CREATE INDEX jobs_finished ON jobs (finished_at)
    WHERE state IN ('COMPLETED', 'DEAD_LETTERED', 'CANCELLED');
CREATE INDEX jobs_state ON jobs (state, id);

-- Keys outlive neither their TTL nor prune; kept apart from jobs so that job retention and key
-- retention are independent.
CREATE TABLE idempotency_keys (
    key        TEXT PRIMARY KEY,
    job_id     TEXT NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;

-- Job counts by queue and state, kept exact by triggers: the capacity check and stats read one
-- row instead of counting the table.
CREATE TABLE queue_counts (
    queue TEXT NOT NULL,
    state TEXT NOT NULL,
    n     INTEGER NOT NULL,
    PRIMARY KEY (queue, state)
) WITHOUT ROWID;

CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs BEGIN
    INSERT INTO queue_counts (queue, state, n) VALUES (new.queue, new.state, 1)
        ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER jobs_count_update AFTER UPDATE OF state ON jobs WHEN old.state <> new.state BEGIN
    UPDATE queue_counts SET n = n - 1 WHERE queue = old.queue AND state = old.state;
    INSERT INTO queue_counts (queue, state, n) VALUES (new.queue, new.state, 1)
        ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs BEGIN
    UPDATE queue_counts SET n = n - 1 WHERE queue = old.queue AND state = old.state;
END;
