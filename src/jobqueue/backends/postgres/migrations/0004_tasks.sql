-- 0004: each task's job defaults as its workers registered them (backend.py, register_tasks).
CREATE TABLE tasks (
    name     text COLLATE "C" PRIMARY KEY,
    defaults text NOT NULL,
    updated  double precision NOT NULL
);
