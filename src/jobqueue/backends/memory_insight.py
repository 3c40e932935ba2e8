"""The memory backend's insight operations: failed attempts, lookups by key, the arrival counter
and worker reports. A mixin of :class:`~jobqueue.backends.memory.MemoryBackend`, on its state."""

from __future__ import annotations

from abc import ABC

from jobqueue.backends.core import BackendBase
from jobqueue.backends.params import MAX_ATTEMPT_ERRORS, Failure
from jobqueue.clock import Clock
from jobqueue.job import Job
from jobqueue.outcomes import AttemptError


class MemoryInsight(BackendBase, ABC):
    """What a dashboard reads from the memory backend."""

    clock: Clock
    _jobs: dict[str, Job]
    _keys: dict[str, tuple[str, float]]

    def __init__(self) -> None:
        self._errors: dict[str, list[AttemptError]] = {}
        self._reports: dict[str, tuple[str, float]] = {}  # worker id -> (report, expires at)
        self._last_seq = 0

    def _record_error(self, job: Job, failure: Failure, now: float) -> None:
        """Called by ``fail`` before the attempt's lease ends (the worker id is still on the job)."""
        errors = self._errors.setdefault(job.id, [])
        errors.append(
            AttemptError(job.retry_count + 1, job.last_attempt, now, failure.error, failure.traceback, job.worker_id)
        )
        del errors[:-MAX_ATTEMPT_ERRORS]

    async def _attempt_errors(self, job_id: str) -> list[AttemptError]:
        return list(self._errors.get(job_id, ()))

    async def _find_by_key(self, key: str) -> Job | None:
        held = self._keys.get(key)
        job = None if held is None else self._jobs.get(held[0])
        # A key left by a deleted job may name an id a later job took: that job does not hold it.
        return None if job is None or job.idempotency_key != key else job.copy()

    async def _enqueued_total(self) -> int:
        return self._last_seq

    async def _report_worker(self, worker_id: str, report: str, ttl: float) -> None:
        self._reports[worker_id] = (report, self.clock.time() + ttl)

    async def _worker_reports(self) -> list[str]:
        now = self.clock.time()
        for worker_id in [w for w, (_, expires) in self._reports.items() if expires <= now]:
            del self._reports[worker_id]
        return [report for _, (report, _) in sorted(self._reports.items())]

    async def _remove_worker_report(self, worker_id: str) -> None:
        self._reports.pop(worker_id, None)
