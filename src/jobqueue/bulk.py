"""Acting on many jobs at once: cancel with children or by filter, replay and purge the DLQ.

``JobQueue`` takes these methods from :class:`BulkActions`. Each walks the matching jobs a page at
a time (:data:`BATCH` jobs) and acts on one page before it reads the next, so no store lock is
held for longer than one small step and a million-job DLQ is handled as well as ten; the cost is
that a bulk action is not one atomic step (a job that changes meanwhile is acted on as it is then,
or skipped).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Coroutine, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from jobqueue.backends.base import Backend
from jobqueue.backends.params import ListParams
from jobqueue.errors import InvalidTransition, JobNotFound, QueueFull, ValidationError
from jobqueue.job import WAITING_STATES, Job, JobState, check_name

T = TypeVar("T")
S = JobState
#: Jobs read (and acted on) per step.
BATCH = 500
#: The most children of one job a cancel with children walks (the store lists them in one read).
MAX_CHILDREN = 1_000_000
#: The states a job can be cancelled in.
CANCELLABLE = frozenset({*WAITING_STATES, S.PROCESSING})


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which jobs a bulk action takes: every field given must match (none given: all jobs).

    ``error``: a piece of the job's last error, ignoring case. ``finished_after`` /
    ``finished_before``: when the job finished (for the DLQ: was dead-lettered), as POSIX seconds or
    an aware ``datetime``; after is inclusive, before exclusive.
    """

    queue: str | None = None
    task: str | None = None
    error: str | None = None
    finished_after: float | datetime | None = None
    finished_before: float | datetime | None = None

    def __post_init__(self) -> None:
        for name in ("queue", "task"):
            if (value := getattr(self, name)) is not None:
                check_name(name, value)
        if self.error is not None and (not isinstance(self.error, str) or not self.error):
            raise ValidationError("error", "must be a non-empty piece of text")
        for name in ("finished_after", "finished_before"):
            value = getattr(self, name)
            if isinstance(value, datetime):
                if value.tzinfo is None:
                    raise ValidationError(name, "must say its time zone (an aware datetime, or ISO 8601 with Z)")
                object.__setattr__(self, name, value.timestamp())
            elif value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise ValidationError(name, "must be a time (POSIX seconds or a datetime)")

    @property
    def is_everything(self) -> bool:
        return all(getattr(self, name) is None for name in self.__slots__)

    def matches(self, job: Job) -> bool:
        if self.error is not None and (job.error is None or self.error.lower() not in job.error.lower()):
            return False
        finished = job.finished_at
        after, before = self.finished_after, self.finished_before
        if after is not None and (finished is None or finished < _seconds(after)):
            return False
        return before is None or (finished is not None and finished < _seconds(before))


def _seconds(value: float | datetime) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What a bulk replay did: jobs moved back to their queues, and matching jobs that stayed in
    the DLQ because their queue was full (``full_queues``)."""

    replayed: int
    stayed: int
    full_queues: tuple[str, ...] = ()


class BulkActions:
    """The bulk methods of :class:`~jobqueue.app.JobQueue`."""

    backend: Backend

    async def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        raise NotImplementedError

    def capacity_for(self, queue: str) -> int | None:
        raise NotImplementedError

    async def cancel(self, job_id: str, *, with_children: bool = False) -> Job:
        """Cancel a waiting or running job (a running one is stopped by its worker within about
        half a second). ``with_children``: its descendants still waiting are cancelled too, the
        deepest first, rather than dead-lettered for their parent's sake; a job that has finished
        is refused before any descendant is touched."""
        if with_children:
            job = await self._run(self.backend.get(job_id))
            if job is None:
                raise JobNotFound(job_id)
            if job.state not in CANCELLABLE:
                raise InvalidTransition(job_id, job.state, "cancel")
            for child in reversed(await self._descendants(job_id)):
                # One finished meanwhile, or pruned, has nothing left to cancel.
                with contextlib.suppress(InvalidTransition, JobNotFound):
                    await self._run(self.backend.cancel(child))
        return await self._run(self.backend.cancel(job_id))

    async def cancel_jobs(self, filter: JobFilter | None = None, *, states: Iterable[JobState] = CANCELLABLE) -> int:
        """Cancel every job in ``states`` (by default all that can be) matching ``filter``; the
        number cancelled."""
        wanted = frozenset(states)
        if not wanted <= CANCELLABLE:
            raise ValidationError("states", "only waiting or running jobs can be cancelled")
        state = next(iter(wanted)) if len(wanted) == 1 else None
        cancelled = 0
        async for page in self._pages(filter or JobFilter(), state):
            for job in page:
                if job.state in wanted:
                    try:
                        await self._run(self.backend.cancel(job.id))
                        cancelled += 1
                    except (InvalidTransition, JobNotFound):
                        pass
        return cancelled

    async def replay_dead_letters(self, filter: JobFilter | None = None) -> ReplayResult:
        """Move every dead-lettered job matching ``filter`` back to its queue. A queue at its
        capacity takes no more; its jobs stay in the DLQ and are counted in ``stayed``."""
        replayed, stayed, full = 0, 0, set[str]()
        async for page in self._pages(filter or JobFilter(), S.DEAD_LETTERED):
            for job in page:
                if job.queue in full:
                    stayed += 1
                    continue
                try:
                    await self._run(self.backend.replay_dead(job.id, self.capacity_for(job.queue)))
                    replayed += 1
                except QueueFull:
                    full.add(job.queue)
                    stayed += 1
                except (InvalidTransition, JobNotFound):
                    pass  # replayed or purged by someone else meanwhile
        return ReplayResult(replayed, stayed, tuple(sorted(full)))

    async def purge_dead_letters(self, filter: JobFilter | None = None) -> int:
        """Delete every dead-lettered job matching ``filter``; the number deleted."""
        purged = 0
        async for page in self._pages(filter or JobFilter(), S.DEAD_LETTERED):
            purged += sum(await self._run(self.backend.delete([job.id for job in page])))
        return purged

    async def delete(self, job_ids: list[str]) -> list[bool]:
        """Delete finished jobs (COMPLETED, DEAD_LETTERED, CANCELLED); ``False`` for any other."""
        return await self._run(self.backend.delete(job_ids))

    async def _pages(self, filter: JobFilter, state: JobState | None) -> AsyncIterator[list[Job]]:
        """The matching jobs, a page at a time; each page is read after the last was acted on."""
        cursor: str | None = None
        while True:
            page = await self._run(self.backend.list_jobs(ListParams(state, filter.queue, filter.task, cursor, BATCH)))
            matching = [job for job in page.jobs if filter.matches(job)]
            if matching:
                yield matching
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def _descendants(self, job_id: str) -> list[str]:
        """Every job below ``job_id`` in the dependency graph, nearest first, each once."""
        seen: dict[str, None] = {}
        level = [job_id]
        while level:
            next_level: list[str] = []
            for parent in level:
                for child in await self._run(self.backend.children(parent, MAX_CHILDREN)):
                    if child not in seen and child != job_id:
                        seen[child] = None
                        next_level.append(child)
            level = next_level
        return list(seen)
