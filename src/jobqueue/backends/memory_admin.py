"""The memory backend's administration: listing, counting, deleting and pruning jobs, and the
queue settings (pauses and limits). A mixin of :class:`~jobqueue.backends.memory.MemoryBackend`,
on its state; like the rest of it, each operation runs to its end without awaiting.
"""

from __future__ import annotations

import bisect
import itertools
from abc import ABC
from collections.abc import Sequence

from jobqueue.backends.core import BackendBase
from jobqueue.backends.dependents import Dependents
from jobqueue.backends.limiter import Limiter
from jobqueue.backends.params import ListParams, PruneParams
from jobqueue.backends.wakeup import Wakeup
from jobqueue.clock import Clock
from jobqueue.job import FINISHED_STATES, Job, JobState
from jobqueue.limits import QueueLimits
from jobqueue.outcomes import AttemptError, Page, PruneResult, Stats, StatsBuilder

S = JobState


class MemoryAdministration(BackendBase, ABC):
    """Operations of the memory backend that look after jobs rather than run them."""

    clock: Clock
    _jobs: dict[str, Job]
    _seq: dict[str, int]
    _version: dict[str, int]
    _ids: list[str]
    _keys: dict[str, tuple[str, float]]
    _counts: dict[str, dict[JobState, int]]
    _wakeup: Wakeup
    _dependents: Dependents
    _paused: dict[str, bool]
    _limiter: Limiter
    _errors: dict[str, list[AttemptError]]

    def _count(self, queue: str, state: JobState, delta: int) -> None:
        self._counts[queue][state] += delta

    async def _list_jobs(self, params: ListParams) -> Page:
        start = 0 if params.cursor is None else bisect.bisect_right(self._ids, params.cursor)
        page: list[Job] = []
        for job_id in itertools.islice(self._ids, start, None):
            job = self._jobs[job_id]
            if (
                (params.state is None or job.state is params.state)
                and (params.queue is None or job.queue == params.queue)
                and (params.task is None or job.task == params.task)
            ):
                if len(page) == params.limit:
                    return Page(page, page[-1].id)
                page.append(job.copy())
        return Page(page, None)

    async def _stats(self) -> Stats:
        builder = StatsBuilder()
        for queue, counts in self._counts.items():
            for state, n in counts.items():
                builder.add(queue, state, n)
        return builder.build(len(self._keys))

    async def _pause_queue(self, queue: str, paused: bool, initial: bool) -> bool:
        if not (initial and queue in self._paused):
            if self._paused.get(queue) and not paused:
                self._wakeup.wake()
            self._paused[queue] = paused
        return self._paused[queue]

    async def _paused_queues(self) -> list[str]:
        return [queue for queue, paused in self._paused.items() if paused]

    async def _set_queue_limits(self, queue: str, limits: QueueLimits, configured: bool) -> QueueLimits:
        was_holding = self._limiter.of(queue)
        now_in_force = self._limiter.set(queue, limits, configured)
        if now_in_force != was_holding:
            self._wakeup.wake()  # a raised limit may admit jobs that were held back
        return now_in_force

    async def _queue_limits(self) -> dict[str, QueueLimits]:
        return self._limiter.all()

    async def _delete(self, job_ids: Sequence[str]) -> list[str]:
        doomed = [job_id for job_id in job_ids if (job := self._jobs.get(job_id)) and job.state in FINISHED_STATES]
        self._forget(doomed)
        return doomed

    def _forget(self, doomed: list[str]) -> None:
        for job_id in doomed:
            job = self._jobs.pop(job_id)
            self._count(job.queue, job.state, -1)
            del self._seq[job_id], self._version[job_id]
            self._errors.pop(job_id, None)
            self._dependents.forget(job_id, job.parents)
        if len(doomed) == 1:
            del self._ids[bisect.bisect_left(self._ids, doomed[0])]
        elif doomed:
            gone = set(doomed)
            self._ids = [i for i in self._ids if i not in gone]

    async def _prune(self, params: PruneParams) -> PruneResult:
        now = self.clock.time()
        cutoffs = {
            S.COMPLETED: params.completed_before,
            S.DEAD_LETTERED: params.dead_before,
            S.CANCELLED: params.cancelled_before,
        }
        doomed = [
            job.id
            for job in self._jobs.values()
            if job.state in FINISHED_STATES
            and (cutoff := cutoffs[job.state]) is not None
            and job.finished_at is not None
            and job.finished_at < cutoff
        ]
        self._forget(doomed)
        self._limiter.forget_spent(now)
        expired_keys = [k for k, (_, expires) in self._keys.items() if expires <= now]
        for key in expired_keys:
            del self._keys[key]
        return PruneResult(jobs=len(doomed), keys=len(expired_keys))
