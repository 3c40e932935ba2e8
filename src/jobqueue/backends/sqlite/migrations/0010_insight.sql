-- 0010: what the dashboard reads (insight.py): failed attempts, worker reports, the arrival counter.
ALTER TABLE jobs ADD COLUMN failed_attempts INTEGER NOT NULL DEFAULT 0;

CREATE TABLE attempt_errors (
    job_id     TEXT NOT NULL,
    n          INTEGER NOT NULL,
    attempt    INTEGER NOT NULL,
    started_at REAL,
    failed_at  REAL NOT NULL,
    worker_id  TEXT,
    error      TEXT NOT NULL,
    traceback  TEXT,
    PRIMARY KEY (job_id, n)
) WITHOUT ROWID;

CREATE TABLE worker_reports (
    worker_id  TEXT PRIMARY KEY,
    expires_at REAL NOT NULL,
    report     TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE arrivals (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    freed INTEGER NOT NULL
);
