-- 0007: jobs that wait for other jobs (depends_on; dependencies.py).
ALTER TABLE jobs ADD COLUMN parents TEXT;
ALTER TABLE jobs ADD COLUMN blocking_parents INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN runs_if_parents_fail INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN has_children INTEGER NOT NULL DEFAULT 0;

CREATE TABLE dependencies (
    parent   TEXT NOT NULL,
    child    TEXT NOT NULL,
    resolved INTEGER NOT NULL,
    PRIMARY KEY (parent, child)
) WITHOUT ROWID;
