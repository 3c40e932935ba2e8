"""Jobs handed to a waiting worker: the bookkeeping of the receiving process.

A worker whose claim found nothing (and that will wait for work) registers in
``waiting_workers``. An enqueue that finds it there stores its job already claimed for it, in the
same transaction, and after the commit sends the job to the worker's process over the wake
channel: the worker starts it without a claim of its own, which would be a second write
transaction on the enqueue-to-start path.

Each handed job reaches the worker exactly once, by one of two paths: the message, or (should the
message be late or lost) the worker's next claim, which removes its registration and takes every
job handed since. Whichever path comes second finds the job's id in ``seen`` and drops it. All of
this runs on the event loop's thread; the database side lives in :mod:`.claims`.

A hand-off is a claim, and keeps to the queue's limits as a claim does, in the enqueue's own
transaction (:class:`.limited.Handing`): a job of a limited queue is handed only if they admit
it and no due job they hold back is ahead of it (that one starts first, through a claim);
otherwise it is stored waiting, and the enqueue wakes workers for it as for any job not handed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from jobqueue.job import Job


@dataclass(frozen=True, slots=True)
class Handed:
    """A job stored claimed for a waiting worker, to be sent to its process after the commit."""

    worker_id: str
    address: str
    job: Job


class Handoffs:
    def __init__(self) -> None:
        #: Workers of this process that may be handed jobs (they claimed with ``wait``).
        self.local: set[str] = set()
        self._inbox: dict[str, list[Job]] = {}
        #: Per worker: ids that one path has delivered and the other has not seen yet.
        self._seen: dict[str, set[str]] = {}
        #: Per registered worker: [slots registered, jobs delivered by message since, signals then].
        self._registrations: dict[str, list[int]] = {}
        #: Per worker: what to call when a job delivered for it arrives (Handoff.watch_handed).
        self._watchers: dict[str, Callable[[], None]] = {}

    def watch(self, worker_id: str, callback: Callable[[], None]) -> None:
        self._watchers[worker_id] = callback

    def unwatch(self, worker_id: str) -> None:
        self._watchers.pop(worker_id, None)

    def deliver(self, worker_id: str, job: Job) -> bool:
        """A message brought ``job``: ``True`` if it is new and now waits for the worker's claim."""
        if worker_id not in self.local:
            return False  # a worker that has stopped: its registration released the job
        seen = self._seen.setdefault(worker_id, set())
        if job.id in seen:
            seen.discard(job.id)  # its claim took it already
            return False
        seen.add(job.id)
        self._inbox.setdefault(worker_id, []).append(job)
        if (watcher := self._watchers.get(worker_id)) is not None:
            watcher()
        return True

    def take(self, worker_id: str, limit: int) -> list[Job]:
        """Jobs delivered by message and not yet claimed, at most ``limit``."""
        inbox = self._inbox.get(worker_id)
        if not inbox:
            return []
        jobs = inbox[:limit]
        del inbox[:limit]
        registration = self._registrations.get(worker_id)
        if registration is not None:
            registration[1] += len(jobs)
        return jobs

    def waiting(self, worker_id: str) -> bool:
        """Jobs delivered by message wait for the worker's claim."""
        return bool(self._inbox.get(worker_id))

    def delivered(self, worker_id: str, job_id: str) -> bool:
        """A message has brought this job already (read from the writer thread too: a set lookup)."""
        seen = self._seen.get(worker_id)
        return seen is not None and job_id in seen

    def registered(self, worker_id: str, slots: int, signals: int) -> None:
        """A claim transaction left the worker registered with ``slots`` (0: not registered)."""
        if slots:
            self._registrations[worker_id] = [slots, 0, signals]
        else:
            self._registrations.pop(worker_id, None)

    def still_waiting(self, worker_id: str, free: int, signals: int) -> bool:
        """Whether a claim may skip the database: the worker is registered, at least half its free
        slots are still offered (else registering again offers them all), and no hint of other
        work (``signals``, counted by the backend) came since it registered."""
        registration = self._registrations.get(worker_id)
        if registration is None:
            return False
        slots, delivered, since = registration
        return since == signals and slots - delivered >= max(1, (free + 1) // 2)

    def settle(self, worker_id: str, handed_ids: Iterable[str], still_leased: Iterable[Job]) -> list[Job]:
        """A claim removed the worker's registration: of the jobs handed since (``handed_ids``;
        ``still_leased`` those still leased to it), those no message has delivered."""
        seen = self._seen.setdefault(worker_id, set())
        fresh = set()
        for job_id in handed_ids:
            if job_id in seen:
                seen.discard(job_id)
            else:
                seen.add(job_id)  # its message, if it comes, is dropped
                fresh.add(job_id)
        return [job for job in still_leased if job.id in fresh]

    def forget(self, worker_id: str) -> set[str]:
        """The worker stops: ids of the handed jobs it took, which are not to be given back."""
        self.local.discard(worker_id)
        self._registrations.pop(worker_id, None)
        waiting = {job.id for job in self._inbox.pop(worker_id, [])}
        return self._seen.pop(worker_id, set()) - waiting
