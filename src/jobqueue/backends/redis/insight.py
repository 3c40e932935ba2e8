"""What a dashboard reads (failed attempts, lookups by idempotency key, the arrival counter and
worker reports): a mixin of :class:`~jobqueue.backends.redis.RedisBackend`.

- Failed attempts: the fail script pushes one record per attempt it fails onto the job's list
  ``errors:<id>`` (``lua/fail.lua``), in the same script, and trims it to the latest
  :data:`~jobqueue.backends.params.MAX_ATTEMPT_ERRORS`; deleting a job deletes its list
  (``forget_jobs`` in ``lua/common.lua``).
- The arrival counter is ``seq``, which every enqueue raises by its batch size and nothing lowers.
- Worker reports: ``lua/workers.lua``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from jobqueue.backends.params import MAX_ATTEMPT_ERRORS
from jobqueue.backends.redis.codec import job_of
from jobqueue.job import Job
from jobqueue.outcomes import AttemptError

if TYPE_CHECKING:
    from jobqueue.backends.redis.wire import Arg

#: The fail script's argument that says how many failed attempts it keeps per job.
KEEP_ERRORS = str(MAX_ATTEMPT_ERRORS)


def traceback_arg(traceback: str | None) -> bytes:
    """A failure's traceback as the fail script takes it: JSON, which the script splices into
    the attempt's record as it is (a traceback is long; escaping it in Lua would cost more)."""
    return b"null" if traceback is None else orjson.dumps(traceback)


def attempt_of(record: bytes) -> AttemptError:
    """One record of ``errors:<id>``: ``[attempt, started_at, failed_at, worker_id, error, traceback]``."""
    attempt, started, failed, worker, error, traceback = orjson.loads(record)
    return AttemptError(attempt, None if started is None else float(started), float(failed), error, traceback, worker)


class RedisInsight:
    """``_attempt_errors``, ``_find_by_key``, ``_enqueued_total`` and the worker reports."""

    if TYPE_CHECKING:
        namespace: str

        def _now(self) -> str: ...

        async def _call(self, *args: Arg) -> Any: ...

        async def _run(self, script: str, *args: Arg) -> Any: ...

    async def _attempt_errors(self, job_id: str) -> list[AttemptError]:
        records = await self._call("LRANGE", f"{self.namespace}errors:{job_id}", 0, -1)
        return [attempt_of(record) for record in records]

    async def _find_by_key(self, key: str) -> Job | None:
        row = await self._run("find", key)
        job = None if row is None else job_of(row)
        # A key row left by a deleted job may name an id a later job took: that job does not hold it.
        return job if job is not None and job.idempotency_key == key else None

    async def _enqueued_total(self) -> int:
        seq = await self._call("GET", f"{self.namespace}seq")
        return 0 if seq is None else int(seq)

    async def _report_worker(self, worker_id: str, report: str, ttl: float) -> None:
        await self._run("workers", "put", self._now(), repr(ttl), worker_id, report)

    async def _worker_reports(self) -> list[str]:
        flat = await self._run("workers", "all", self._now())
        reports = sorted((flat[i].decode(), flat[i + 1]) for i in range(0, len(flat), 2))
        return [report.decode() for _, report in reports]

    async def _remove_worker_report(self, worker_id: str) -> None:
        await self._run("workers", "remove", worker_id)
