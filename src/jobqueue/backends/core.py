"""``BackendBase``: what every backend shares, so that a backend implements storage alone.

The public operations of :class:`~jobqueue.backends.base.Backend` are defined here once. Each
refuses to run before :meth:`~BackendBase.open` (a clear :class:`ConfigurationError` rather than
a driver's ``NoneType`` error), answers an empty batch without a store call, and makes the checks
every store needs (results are JSON), then calls the backend's own ``_operation``. A backend sets
``name`` and ``capabilities`` and implements ``_open``, ``_close`` and those operations, each on
arguments already checked.
"""

from __future__ import annotations

import asyncio
import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

from jobqueue.backends.base import Capabilities
from jobqueue.backends.insight import InsightOperations
from jobqueue.backends.params import (
    DEFAULT_LEASE,
    MAX_TRACEBACK,
    ClaimParams,
    Completion,
    Failure,
    Lease,
    ListParams,
    PruneParams,
    Tick,
)
from jobqueue.errors import ConfigurationError, JobNotFound, ValidationError
from jobqueue.job import Job, NewJob, RegisteredTask, check_name, dump_json
from jobqueue.lifecycle import OpenClose
from jobqueue.limits import QueueLimits
from jobqueue.outcomes import EnqueueOutcome, Page, PruneResult, Stats, StoredSchedule

#: No job id holds it (ids are generated, and PostgreSQL text cannot): a lookup by an id that does
#: is answered "not found" without asking the store, alike on every backend.
NUL = "\x00"

#: Seconds a wait for a due job lasts past its due time, so that the claim after it finds the job
#: due however the clocks round (a claim a moment early finds nothing and waits again).
DUE_MARGIN = 0.001


def _storable(failure: Failure) -> Failure:
    """An error message and traceback are text for people; a NUL in them (from a payload, say)
    would make PostgreSQL refuse the whole batch, on every try. A traceback keeps its end, where
    the exception was raised."""
    traceback = failure.traceback
    if traceback is not None:
        traceback = traceback[-MAX_TRACEBACK:].replace(NUL, "\\x00")
    return dataclasses.replace(failure, error=failure.error.replace(NUL, "\\x00"), traceback=traceback)


class BackendBase(InsightOperations, OpenClose, ABC):
    """The lifecycle, guards and shared checks of a backend; subclasses store."""

    #: Short name used in URLs and reports ("memory", "sqlite", ...).
    name: str
    capabilities: Capabilities
    _is_open: bool = False
    _local_tasks: dict[str, RegisteredTask]

    # ---- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect and prepare the store (create or migrate the schema). Idempotent."""
        if not self._is_open:
            await self._open()
            self._is_open = True

    async def close(self) -> None:
        """Release connections and threads. Idempotent, and safe after a failed open."""
        self._is_open = False
        await self._close()

    def _require_open(self) -> None:
        if not self._is_open:
            raise ConfigurationError(f"the {self.name} backend is not open; call `await backend.open()` first")

    @abstractmethod
    async def _open(self) -> None: ...

    @abstractmethod
    async def _close(self) -> None: ...

    # ---- the operations, checked ----------------------------------------------------------

    async def enqueue(self, jobs: Sequence[NewJob], capacity: Mapping[str, int] | None = None) -> list[EnqueueOutcome]:
        if not jobs:
            return []
        self._require_open()
        return await self._enqueue(jobs, capacity)

    async def claim(self, params: ClaimParams) -> list[Job]:
        if params.limit <= 0:
            return []
        self._require_open()
        return await self._claim(params)

    async def complete(self, completions: Sequence[Completion]) -> list[bool]:
        if not completions:
            return []
        self._require_open()
        try:  # every result checked before any job changes
            results = [dump_json(c.result) for c in completions]
        except TypeError as exc:
            raise ValidationError("result", f"must be JSON-serializable ({exc})") from None
        return await self._complete(completions, results)

    async def fail(self, failures: Sequence[Failure]) -> list[bool]:
        if not failures:
            return []
        self._require_open()
        if any(NUL in f.error or f.traceback is not None for f in failures):
            failures = [_storable(f) for f in failures]
        return await self._fail(failures)

    async def heartbeat(self, leases: Sequence[Lease], lease: float = DEFAULT_LEASE) -> list[bool]:
        if not leases:
            return []
        self._require_open()
        return await self._heartbeat(leases, lease)

    async def release(self, leases: Sequence[Lease]) -> list[bool]:
        if not leases:
            return []
        self._require_open()
        return await self._release(leases)

    async def expired_leases(self, limit: int = 1000) -> list[Job]:
        self._require_open()
        return await self._expired_leases(limit)

    async def get(self, job_id: str) -> Job | None:
        self._require_open()
        if NUL in job_id:
            return None
        return await self._get(job_id)

    async def get_many(self, job_ids: Sequence[str]) -> list[Job | None]:
        if not job_ids:
            return []
        self._require_open()
        wanted = [job_id for job_id in dict.fromkeys(job_ids) if NUL not in job_id]
        found = {job.id: job for job in await self._get_many(wanted) if job is not None} if wanted else {}
        return [found.get(job_id) for job_id in job_ids]

    async def children(self, job_id: str, limit: int = 1000) -> list[str]:
        self._require_open()
        if NUL in job_id or limit <= 0:
            return []
        return await self._children(job_id, limit)

    async def list_jobs(self, params: ListParams) -> Page:
        self._require_open()
        return await self._list_jobs(params)

    async def replay_dead(self, job_id: str, capacity: int | None = None) -> Job:
        self._require_open()
        if NUL in job_id:
            raise JobNotFound(job_id)
        return await self._replay_dead(job_id, capacity)

    async def cancel(self, job_id: str) -> Job:
        self._require_open()
        if NUL in job_id:
            raise JobNotFound(job_id)
        return await self._cancel(job_id)

    async def check_leases(self, leases: Sequence[Lease]) -> list[bool]:
        if not leases:
            return []
        self._require_open()
        return await self._check_leases(leases)

    async def delete(self, job_ids: Sequence[str]) -> list[bool]:
        if not job_ids:
            return []
        self._require_open()
        wanted = [job_id for job_id in dict.fromkeys(job_ids) if NUL not in job_id]
        deleted = set(await self._delete(wanted)) if wanted else set()
        return [job_id in deleted for job_id in job_ids]

    async def stats(self) -> Stats:
        self._require_open()
        return await self._stats()

    async def wait_for_work(self, queues: Sequence[str], timeout: float) -> bool:
        self._require_open()
        # A delayed or retried job must start at its time, not at the next poll: the wait ends
        # when the earliest one comes due. Work enqueued meanwhile wakes the wait, and the next
        # wait looks again.
        # Shielded: a waiter is often cancelled (a slot freed), and a store call cut off midway
        # would cost its connection; the answer is simply dropped.
        due_in = await asyncio.shield(self._due_in(queues))
        if due_in is None or due_in >= timeout:
            return await self._wait_for_work(queues, timeout)
        await self._wait_for_work(queues, max(due_in, 0.0) + DUE_MARGIN)
        return True  # woken, or the job came due: work either way

    async def prune(self, params: PruneParams) -> PruneResult:
        self._require_open()
        return await self._prune(params)

    async def check_writes(self) -> None:
        self._require_open()
        await self._check_writes()

    async def register_tasks(self, tasks: Sequence[RegisteredTask]) -> None:
        if not tasks:
            return
        self._require_open()
        await self._register_tasks(tasks)

    async def registered_tasks(self) -> list[RegisteredTask]:
        self._require_open()
        return await self._registered_tasks()

    async def pause_queue(self, queue: str, paused: bool, *, initial: bool = False) -> bool:
        check_name("queue", queue)
        self._require_open()
        return await self._pause_queue(queue, paused, initial)

    async def paused_queues(self) -> list[str]:
        self._require_open()
        return sorted(await self._paused_queues())

    async def set_queue_limits(self, queue: str, limits: QueueLimits, *, configured: bool = False) -> QueueLimits:
        check_name("queue", queue)
        if not isinstance(limits, QueueLimits):
            raise ValidationError("limits", "must be a QueueLimits")
        self._require_open()
        return await self._set_queue_limits(queue, limits, configured)

    async def queue_limits(self) -> dict[str, QueueLimits]:
        self._require_open()
        return {queue: limits for queue, limits in sorted((await self._queue_limits()).items()) if limits}

    async def register_schedules(self, schedules: Sequence[StoredSchedule]) -> None:
        if not schedules:
            return
        self._require_open()
        await self._register_schedules(schedules)

    async def schedules(self) -> list[StoredSchedule]:
        self._require_open()
        return sorted(await self._schedules(), key=lambda schedule: schedule.name)

    async def pause_schedule(self, name: str, paused: bool) -> StoredSchedule | None:
        self._require_open()
        return None if NUL in name else await self._pause_schedule(name, paused)

    async def fire(self, tick: Tick, capacity: int | None = None) -> EnqueueOutcome | None:
        self._require_open()
        return None if NUL in tick.schedule else await self._fire(tick, capacity)

    # ---- what a backend implements (see Backend for what each must do) --------------------

    @abstractmethod
    async def _enqueue(self, jobs: Sequence[NewJob], capacity: Mapping[str, int] | None) -> list[EnqueueOutcome]: ...

    @abstractmethod
    async def _claim(self, params: ClaimParams) -> list[Job]: ...

    @abstractmethod
    async def _complete(self, completions: Sequence[Completion], results: list[bytes]) -> list[bool]:
        """``results``: each completion's result as JSON, in order."""

    @abstractmethod
    async def _fail(self, failures: Sequence[Failure]) -> list[bool]: ...

    @abstractmethod
    async def _heartbeat(self, leases: Sequence[Lease], lease: float) -> list[bool]: ...

    @abstractmethod
    async def _release(self, leases: Sequence[Lease]) -> list[bool]: ...

    @abstractmethod
    async def _expired_leases(self, limit: int) -> list[Job]: ...

    @abstractmethod
    async def _get(self, job_id: str) -> Job | None: ...

    async def _get_many(self, job_ids: Sequence[str]) -> list[Job | None]:
        """Distinct ids without NUL, in any order; a store with a cheaper bulk read overrides it."""
        return list(await asyncio.gather(*(self._get(job_id) for job_id in job_ids)))

    @abstractmethod
    async def _children(self, job_id: str, limit: int) -> list[str]: ...

    @abstractmethod
    async def _list_jobs(self, params: ListParams) -> Page: ...

    @abstractmethod
    async def _replay_dead(self, job_id: str, capacity: int | None) -> Job: ...

    @abstractmethod
    async def _cancel(self, job_id: str) -> Job: ...

    @abstractmethod
    async def _check_leases(self, leases: Sequence[Lease]) -> list[bool]: ...

    @abstractmethod
    async def _delete(self, job_ids: Sequence[str]) -> list[str]:
        """Distinct ids without NUL; answers the ids it deleted, in any order."""

    @abstractmethod
    async def _stats(self) -> Stats: ...

    @abstractmethod
    async def _wait_for_work(self, queues: Sequence[str], timeout: float) -> bool: ...

    async def _check_writes(self) -> None:
        """Nothing to check for a store that takes every write it can hold (memory); an embedded
        file store's write errors reach the caller of each write (SQLite)."""

    async def _register_tasks(self, tasks: Sequence[RegisteredTask]) -> None:
        """A backend that shares its store across processes keeps these there. This default keeps
        them in the process, which is all an unshared store (memory) needs."""
        if not hasattr(self, "_local_tasks"):
            self._local_tasks = {}
        self._local_tasks.update({task.name: task for task in tasks})

    async def _registered_tasks(self) -> list[RegisteredTask]:
        return list(getattr(self, "_local_tasks", {}).values())

    @abstractmethod
    async def _pause_queue(self, queue: str, paused: bool, initial: bool) -> bool: ...

    @abstractmethod
    async def _paused_queues(self) -> list[str]: ...

    @abstractmethod
    async def _set_queue_limits(self, queue: str, limits: QueueLimits, configured: bool) -> QueueLimits: ...

    @abstractmethod
    async def _queue_limits(self) -> dict[str, QueueLimits]: ...

    @abstractmethod
    async def _register_schedules(self, schedules: Sequence[StoredSchedule]) -> None: ...

    @abstractmethod
    async def _schedules(self) -> list[StoredSchedule]: ...

    @abstractmethod
    async def _pause_schedule(self, name: str, paused: bool) -> StoredSchedule | None: ...

    @abstractmethod
    async def _fire(self, tick: Tick, capacity: int | None) -> EnqueueOutcome | None: ...

    async def _due_in(self, queues: Sequence[str]) -> float | None:
        """Seconds until the earliest delayed or retried job of ``queues`` is due, or the next
        token of an empty rate bucket of theirs comes (<= 0: now), or ``None`` when there is
        neither. Without this, such jobs start at the next poll."""
        return None

    @abstractmethod
    async def _prune(self, params: PruneParams) -> PruneResult: ...
