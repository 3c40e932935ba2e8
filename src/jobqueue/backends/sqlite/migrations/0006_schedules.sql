-- 0006: periodic schedules' shared state, so that a tick fires once however many schedulers run
-- (schedules.py, fire).
CREATE TABLE schedules (
    name        TEXT PRIMARY KEY,
    spec        TEXT NOT NULL,
    paused      INTEGER NOT NULL DEFAULT 0,
    last_tick   REAL,
    last_job_id TEXT
) WITHOUT ROWID;
