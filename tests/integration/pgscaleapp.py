"""The app of the PostgreSQL scale-out test (``tests/integration/test_postgres_scaleout.py``).

Its one task writes ``(job id, attempt, pid)`` to the ``ledger`` table of the test's schema, over
a small pool of its own, before returning: the ledger is the handlers' own record of every attempt
they ran, independent of what the queue says.
"""

from __future__ import annotations

import os

import asyncpg

from jobqueue import JobQueue
from jobqueue.task import current_job

app = JobQueue()  # JOBQUEUE_URL names the database and schema

_pool: asyncpg.Pool | None = None


async def _ledger_pool() -> asyncpg.Pool:
    global _pool
    if _pool is None:
        _pool = await asyncpg.create_pool(os.environ["JOBQUEUE_TEST_LEDGER_DSN"], min_size=1, max_size=2)
    return _pool


@app.task(name="ledger")
async def ledger(payload: int) -> int:
    job = current_job()
    pool = await _ledger_pool()
    await pool.execute(
        f'INSERT INTO "{os.environ["JOBQUEUE_TEST_SCHEMA"]}".ledger (job_id, attempt, pid) VALUES ($1, $2, $3)',
        job.id,
        job.attempt,
        os.getpid(),
    )
    return payload


def serve_api(port: int) -> None:
    """Serve the HTTP API for ``app`` on 127.0.0.1:``port`` (no workers in this process)."""
    import uvicorn

    from jobqueue.api import create_app

    uvicorn.run(create_app(app), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    import sys

    serve_api(int(sys.argv[1]))
