-- 0003: workers waiting for work, to which an enqueue hands its jobs directly (backend.py, handoff).

CREATE TABLE waiting_workers (
    worker_id TEXT PRIMARY KEY,
    address   TEXT NOT NULL,
    queues    TEXT NOT NULL,
    slots     INTEGER NOT NULL,
    lease     REAL NOT NULL,
    handed    TEXT NOT NULL DEFAULT '[]'
) WITHOUT ROWID;
