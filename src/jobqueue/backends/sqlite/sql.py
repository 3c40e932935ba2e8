"""Loads the named statements of ``queries.sql``, the schema and the migrations."""

from __future__ import annotations

import functools
from pathlib import Path

from jobqueue.backends.sqlfiles import SqlFiles

JOB_COLUMNS = (
    "id, queue, task, payload, priority, state, retry_count, max_retries, idempotency_key, "
    "created_at, run_at, started_at, finished_at, last_attempt, next_retry_at, error, result, "
    "timeout, lease_expires_at, worker_id, lease_token, parents, rate_key"
)
#: Where a row of ``{job_columns}, seq`` holds ``seq``.
SEQ_COLUMN = 23

FILES = SqlFiles(Path(__file__).parent)
read = FILES.read
migrations = FILES.migrations
#: ``{name: statement}`` of queries.sql.
Q = FILES.named(read("queries.sql").replace("{job_columns}", JOB_COLUMNS))


@functools.cache
def multi_row(name: str, rows: int) -> str:
    """The named single-row ``INSERT ... VALUES (...)`` widened to ``rows`` rows in one statement.

    One statement of many rows costs SQLite about half as much per row as ``executemany`` of the
    one-row form (the per-statement overhead is paid once).
    """
    head, _, values = Q[name].rstrip(";").rpartition("VALUES")
    return f"{head}VALUES {', '.join([values.strip()] * rows)}"


def chunk_sizes(n: int, largest: int = 512) -> list[int]:
    """Split ``n`` rows into powers of two up to ``largest``, so few distinct statements are built."""
    sizes = []
    size = largest
    while n:
        while size > n:
            size //= 2
        sizes.append(size)
        n -= size
    return sizes
