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
from jobqueue.backends.params import Failure, ListParams
from jobqueue.backends.postgres.dependencies import lock_order
from jobqueue.backends.postgres.rows import job_of
from jobqueue.backends.postgres.sql import listing_name
from jobqueue.job import Job, JobState
from jobqueue.outcomes import AttemptError, Page


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


#: The states listed by a small index of their own (see queries.sql), not by walking every id.
OWN_INDEX = {JobState.DEAD_LETTERED: "list_dead_jobs", JobState.PROCESSING: "list_running_jobs"}


class PostgresInsight(BackendBase, ABC):
    """The insight operations of :class:`~jobqueue.backends.base.Backend`, for PostgresBackend."""

    @abstractmethod
    async def _run(self, name: str, *args: Any, accept: bool = False) -> list[asyncpg.Record]: ...

    async def _list_jobs(self, params: ListParams) -> Page:
        base = OWN_INDEX.get(params.state, "list_jobs") if params.state is not None else "list_jobs"
        state = params.state.value if params.state is not None and base == "list_jobs" else None
        filters = [(name, value) for name, value in (("state", state), ("queue", params.queue),
                                                     ("task", params.task)) if value is not None]  # fmt: skip
        name = listing_name(base, tuple(n for n, _ in filters))
        rows = await self._run(name, params.cursor or "", params.limit + 1, *(v for _, v in filters))
        jobs = [job_of(row) for row in rows[: params.limit]]
        return Page(jobs, jobs[-1].id if len(rows) > params.limit else None)

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
