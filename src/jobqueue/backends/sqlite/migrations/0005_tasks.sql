-- 0005: each task's job defaults as its workers registered them (backend.py, register_tasks).
CREATE TABLE tasks (
    name     TEXT PRIMARY KEY,
    defaults TEXT NOT NULL,
    updated  REAL NOT NULL
) WITHOUT ROWID;
