"""What the dashboard reads from PostgreSQL: failed attempts, lookups by key, the arrival counter
and worker reports (the statements of ``insight.sql``).

Failed attempts: a row of ``attempt_errors`` per attempt, inserted by the statement that fails it
(``fail``, and ``fail_parents`` for jobs a child has named), which also trims the job's rows to the
latest :data:`~jobqueue.backends.params.MAX_ATTEMPT_ERRORS` (RECORD_ERRORS, sql.py): one insert per
failure and no round trip more; a stale failure updates no job and so records nothing. ``prune``
and ``delete_jobs`` delete a job's rows with it. Claims and completions do not touch the table.

The arrival counter is the identity sequence of ``jobs.seq``, which every insert already takes a
value from: nothing is written to count, and deletes cannot lower it. Worker reports are rows of
``worker_reports`` with an expiry by the store's clock; listing them deletes the expired ones.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import asyncpg

from jobqueue.backends.core import BackendBase
from jobqueue.backends.params import Failure
from jobqueue.backends.postgres.dependencies import lock_order
from jobqueue.backends.postgres.rows import job_of
from jobqueue.job import Job
from jobqueue.outcomes import AttemptError


def fail_columns(failures: Sequence[Failure]) -> Sequence[list[Any]]:
    """The parameters of ``fail`` and ``fail_parents`` (after the time), in lock order: ids, tokens,
    errors, retry delays, if_expired and tracebacks."""
    return lock_order(
        [f.lease.job_id for f in failures],
        [f.lease.token for f in failures],
        [f.error for f in failures],
        [None if f.retry_delay is None else float(f.retry_delay) for f in failures],
        [f.if_expired for f in failures],
        [f.traceback for f in failures],
    )


class PostgresInsight(BackendBase, ABC):
    """The insight operations of :class:`~jobqueue.backends.base.Backend`, for PostgresBackend."""

    @abstractmethod
    async def _run(self, name: str, *args: Any, accept: bool = False) -> list[asyncpg.Record]: ...

    async def _attempt_errors(self, job_id: str) -> list[AttemptError]:
        return [AttemptError(*row) for row in await self._run("attempt_errors", job_id)]

    async def _find_by_key(self, key: str) -> Job | None:
        rows = await self._run("find_by_key", key)
        return job_of(rows[0]) if rows else None

    async def _enqueued_total(self) -> int:
        ((total,),) = await self._run("enqueued_total")
        return int(total)

    async def _report_worker(self, worker_id: str, report: str, ttl: float) -> None:
        await self._run("report_worker", worker_id, report, ttl)

    async def _worker_reports(self) -> list[str]:
        return [row[0] for row in await self._run("worker_reports")]

    async def _remove_worker_report(self, worker_id: str) -> None:
        await self._run("remove_worker_report", worker_id)
