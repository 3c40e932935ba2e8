"""The Backend protocol: the atomic storage operations every store provides.

A backend stores jobs and keeps each operation atomic; it holds no policy. Whether a failed job is
retried and after how long is decided above it (:mod:`jobqueue.retry`) and passed down as a delay.
Every backend passes the shared conformance suite, :mod:`jobqueue.testing`.

Time: delays are seconds relative to the backend's clock (its injected :class:`~jobqueue.clock.Clock`
for memory and SQLite, the server's clock for PostgreSQL and Redis), so the clocks of producers and
workers may disagree without harm.

Fencing: :meth:`Backend.claim` gives each attempt a fresh ``lease_token``. ``complete``, ``fail``,
``heartbeat`` and ``release`` take a :class:`Lease` and change nothing unless the job is still
PROCESSING under that token; they answer ``False`` for such a stale lease.

Dependencies: a job enqueued ``depends_on`` parents waits BLOCKED (a waiting state: it counts
against capacity) while any parent is unfinished, and is never claimed then. Each parent
resolves its edge to the child once, the first time it finishes, in the same atomic step that
finishes it (``complete``, a ``fail`` that dead-letters, ``cancel``, a child dead-lettered by its
own parent): COMPLETED resolves it; DEAD_LETTERED or CANCELLED resolves it for a child enqueued
``on_parent_failure="run"`` and otherwise dead-letters the child at once, with the error
:func:`~jobqueue.job.parent_failed_error` and no attempt counted, which in turn resolves the
child's own children (a cascade). A child whose last edge resolves becomes PENDING (SCHEDULED
while its own ``run_at`` is later), and waiting workers are woken as for an enqueue. At enqueue,
a parent already finished counts as it would have then; a parent not stored makes the outcome
:class:`~jobqueue.outcomes.MissingParent`. A replayed parent does not revive its children; a
replayed child runs whatever its parents' states.

Limits (:mod:`jobqueue.limits`): a queue's stored :class:`~jobqueue.limits.QueueLimits` bound
what every claim takes from it, across all workers. ``concurrency``: the claim returns at most
that many minus the queue's PROCESSING jobs. ``key_concurrency``: likewise among the queue's jobs
of one ``rate_key`` (jobs without a key are not held by the per-key limits). ``rate``: the queue's
token bucket (:class:`~jobqueue.limits.Rate`, its state a ``tat``) must hold a token for each job
the claim returns, which spends it; ``key_rate``: the same for one bucket per ``rate_key``. A job
held back stays waiting, untouched (no attempt counted); the claim goes on down the queue in its
usual order and takes the next job the limits admit (one of another key), so a claim returns
``min(limit, what the limits admit)`` jobs. The check, the spending and the claim are one atomic
step, so concurrent claims never together exceed a limit. A token spent is spent (a job failed or
released gives none back). :meth:`Backend.wait_for_work` ends when the next token of an empty
bucket comes (a queue or key that has waiting jobs); a job of a queue with a concurrency limit
that leaves PROCESSING (complete, fail, release, cancel, the reaper) wakes waiting workers as an
enqueue does, so the job waiting for its slot starts at once, whenever the queue's last claim got
fewer jobs than it asked for (a store need not wake anyone while its slots hold no claim back).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from jobqueue.backends.params import (
    DEFAULT_LEASE,
    ClaimParams,
    Completion,
    Failure,
    Lease,
    ListParams,
    PruneParams,
    Tick,
)
from jobqueue.job import Job, NewJob, RegisteredTask
from jobqueue.limits import QueueLimits
from jobqueue.outcomes import AttemptError, EnqueueOutcome, Page, PruneResult, Stats, StoredSchedule


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend can and cannot do; declared, never faked."""

    #: Several processes (or machines) can share the store.
    shared: bool
    #: An accepted job survives a crash of the process that accepted it.
    durable: bool
    #: ``wait_for_work`` is woken by enqueues made in *other* processes (not only by polling).
    cross_process_wakeup: bool
    #: The store's own clock decides leases and due times (clock skew between workers is harmless).
    server_clock: bool


@runtime_checkable
class Backend(Protocol):
    """Atomic storage operations. Batch methods answer one result per input, in input order."""

    #: Short name used in URLs and reports ("memory", "sqlite", ...).
    name: str
    capabilities: Capabilities

    async def open(self) -> None:
        """Connect and prepare the store (create or migrate the schema). Idempotent."""

    async def close(self) -> None:
        """Release connections and threads. Idempotent."""

    async def enqueue(self, jobs: Sequence[NewJob], capacity: Mapping[str, int] | None = None) -> list[EnqueueOutcome]:
        """Store new jobs, each atomically: idempotency check, capacity check, insert.

        For each job in order: if its ``idempotency_key`` is held by a live key (not expired), the
        outcome is :class:`Duplicate` with the holder; else if ``capacity`` names its queue and the
        queue already has that many waiting jobs, :class:`Rejected`; else the job is inserted
        (PENDING, or SCHEDULED when due later) and its key reserved for ``key_ttl`` seconds.
        Later jobs of the batch see earlier ones (two jobs with one key: the second is a Duplicate;
        a job may name an earlier one as a parent). A job whose ``id`` is already stored (the same
        NewJob sent again, say after a lost answer) is a Duplicate of the stored one. A job with
        ``depends_on`` is stored BLOCKED, or as the module docstring says; a parent not stored
        gives :class:`~jobqueue.outcomes.MissingParent` (checked after the key and capacity).
        """
        ...

    async def claim(self, params: ClaimParams) -> list[Job]:
        """Take up to ``limit`` due jobs, highest priority first, then oldest.

        Each becomes PROCESSING with ``worker_id``, a new ``lease_token`` and
        ``lease_expires_at = now + lease``; ``started_at`` is set on the first attempt and
        ``last_attempt`` on every one. Jobs come back in claim order.
        """
        ...

    async def complete(self, completions: Sequence[Completion]) -> list[bool]:
        """Mark attempts COMPLETED with their results. ``False`` for a stale lease (nothing changed)."""
        ...

    async def fail(self, failures: Sequence[Failure]) -> list[bool]:
        """Count failed attempts: FAILED until ``now + retry_delay``, or DEAD_LETTERED when ``None``.

        A retry always re-enters its queue, whatever the capacity. ``False`` for a stale lease.
        """
        ...

    async def heartbeat(self, leases: Sequence[Lease], lease: float = DEFAULT_LEASE) -> list[bool]:
        """Extend leases to ``now + lease``. ``False`` means the lease is lost: stop the work."""
        ...

    async def release(self, leases: Sequence[Lease]) -> list[bool]:
        """Give jobs back (graceful shutdown): PENDING again, the attempt not counted."""
        ...

    async def expired_leases(self, limit: int = 1000) -> list[Job]:
        """PROCESSING jobs whose lease has expired, oldest expiry first.

        The reaper (:func:`jobqueue.recovery.recover_expired`) fails each with the token it holds,
        so that a worker completing at the same moment and the reaper cannot both win.
        """
        ...

    async def get(self, job_id: str) -> Job | None:
        """The job with this id, or ``None``."""
        ...

    async def get_many(self, job_ids: Sequence[str]) -> list[Job | None]:
        """The jobs with these ids, in order (``None`` for one not stored)."""
        ...

    async def children(self, job_id: str, limit: int = 1000) -> list[str]:
        """The ids of up to ``limit`` jobs enqueued ``depends_on`` this one, oldest first."""
        ...

    async def list_jobs(self, params: ListParams) -> Page:
        """Jobs matching the filter, oldest first, one page at a time."""
        ...

    async def replay_dead(self, job_id: str, capacity: int | None = None) -> Job:
        """Move a DEAD_LETTERED job back to PENDING with a fresh attempt budget.

        Raises :class:`~jobqueue.errors.JobNotFound`, :class:`~jobqueue.errors.InvalidTransition`
        when it is not dead-lettered, or :class:`~jobqueue.errors.QueueFull` when its queue holds
        ``capacity`` waiting jobs (the job then stays in the DLQ).
        """
        ...

    async def cancel(self, job_id: str) -> Job:
        """Cancel a waiting or running job (PENDING, BLOCKED, SCHEDULED, FAILED or PROCESSING): it
        becomes CANCELLED, its lease ends (the worker's complete, fail, heartbeat and release of it
        answer ``False``, and :meth:`check_leases` tells the worker), no retry follows, and its
        children are resolved as for any parent that finishes. Raises like :meth:`replay_dead`
        (:class:`~jobqueue.errors.InvalidTransition` for a finished job)."""
        ...

    async def check_leases(self, leases: Sequence[Lease]) -> list[bool]:
        """Whether each job is still PROCESSING under that lease's token. Reads only: a worker
        asks often (every half second) to learn of a cancel or a recovered lease."""
        ...

    async def delete(self, job_ids: Sequence[str]) -> list[bool]:
        """Delete each finished job (COMPLETED, DEAD_LETTERED or CANCELLED) as :meth:`prune` would
        (its edges, its children list and its key's hold go with it); ``False`` for a job not
        stored or not finished, which is left as it is (cancel a waiting one first)."""
        ...

    async def stats(self) -> Stats:
        """Counts by queue and state, and reserved idempotency keys."""
        ...

    async def wait_for_work(self, queues: Sequence[str], timeout: float) -> bool:
        """Wait until a job may be claimable in ``queues`` or ``timeout`` seconds pass.

        A delayed or retried job coming due is work: the wait ends at its due time, not at the
        timeout. A paused queue's jobs are not work until it is resumed. ``True`` when woken by
        new work. A spurious wake-up is allowed; a missed one is not (a job enqueued in this
        process always wakes a waiter at once).
        """
        ...

    async def prune(self, params: PruneParams) -> PruneResult:
        """Delete finished jobs older than the given times, and expired idempotency keys."""
        ...

    async def check_writes(self) -> None:
        """Raise :class:`~jobqueue.errors.BackendUnavailable` if the store would refuse a write now
        (out of memory, read-only, disk full), for readiness probes. Writes nothing a user sees."""
        ...

    async def register_tasks(self, tasks: Sequence[RegisteredTask]) -> None:
        """Store these tasks' job defaults (replacing those stored under the same names)."""
        ...

    async def registered_tasks(self) -> list[RegisteredTask]:
        """Every task's stored job defaults, as workers registered them."""
        ...

    async def pause_queue(self, queue: str, paused: bool, *, initial: bool = False) -> bool:
        """Pause (or resume) ``queue`` for every worker sharing the store, and answer whether it is
        paused now. While paused, no claim returns a job of it (nor does a hand-off to a waiting
        worker); enqueues are still accepted, capacity still holds, and jobs already running
        finish (complete, fail and heartbeat work as ever; a retry waits for the resume). Every
        claim that starts after the call returns sees it; a job handed to a waiting worker before
        the call (:class:`Handoff`) was claimed before it, and reaches that worker. A resume wakes waiting workers as an
        enqueue does. ``initial``: change nothing if the queue's paused state was ever stored (for
        a queue configured to start paused, which a restart must not pause again)."""
        ...

    async def paused_queues(self) -> list[str]:
        """The queues paused now, sorted."""
        ...

    async def set_queue_limits(self, queue: str, limits: QueueLimits, *, configured: bool = False) -> QueueLimits:
        """Store ``queue``'s limits (empty :class:`~jobqueue.limits.QueueLimits`: none) for every
        claim that starts after the call returns, and answer the limits now in force. A limit
        lowered below what is running stops new claims until enough finish; a bucket keeps its
        state across a change of rate. ``configured``: the limits come from code, applied at
        every start: when they equal the limits last configured for the queue, change nothing (so
        a restart keeps a change made at run time); otherwise store them as both the limits in
        force and the last configured."""
        ...

    async def queue_limits(self) -> dict[str, QueueLimits]:
        """The limits in force, by queue (queues without limits left out), sorted by queue."""
        ...

    async def register_schedules(self, schedules: Sequence[StoredSchedule]) -> None:
        """Store schedules by name: a new one as given; one already stored takes the new ``spec``
        and keeps its paused flag and last tick (so a restart or a second node changes neither)."""
        ...

    async def schedules(self) -> list[StoredSchedule]:
        """Every stored schedule, by name."""
        ...

    async def pause_schedule(self, name: str, paused: bool) -> StoredSchedule | None:
        """Pause (or resume) a stored schedule: a paused one fires no tick. ``None`` if unknown."""
        ...

    async def fire(self, tick: Tick, capacity: int | None = None) -> EnqueueOutcome | None:
        """Turn one tick into one job, however many schedulers fire it: atomically, unless the
        schedule is unknown, paused, or its last tick is at or after ``tick.at``, set its last
        tick to ``tick.at`` and enqueue ``tick.job`` as :meth:`enqueue` would (a full queue
        answers :class:`Rejected` and the tick is spent all the same). ``None``: not fired."""
        ...

    # ---- what the dashboard reads (the insight operations) -------------------------------

    async def attempt_errors(self, job_id: str) -> list[AttemptError]:
        """The job's failed attempts, oldest first: each :meth:`fail` that changed the job records
        one (its attempt number, the attempt's start, the error, the ``traceback``, the worker),
        the latest :data:`~jobqueue.backends.params.MAX_ATTEMPT_ERRORS` kept. A replay keeps them;
        they go when the job is deleted or pruned. ``[]`` for a job not stored."""
        ...

    async def find_by_key(self, key: str) -> Job | None:
        """The job that holds idempotency key ``key`` (live or past its TTL, until pruned), or ``None``."""
        ...

    async def enqueued_total(self) -> int:
        """How many jobs the store has accepted since it was created, from its arrival counter: it
        grows by at least one for each job accepted (it may skip numbers), so the difference of
        two readings is the number of jobs enqueued between them, or a little more."""
        ...

    async def report_worker(self, worker_id: str, report: str, ttl: float) -> None:
        """Store a worker's report (JSON text, :class:`~jobqueue.status.WorkerReport`) in place of
        its last one, for ``ttl`` seconds of the store's clock: a worker that stops reporting
        drops out of :meth:`worker_reports` when its last report expires."""
        ...

    async def worker_reports(self) -> list[str]:
        """The reports of every worker whose last report has not expired, by worker id."""
        ...

    async def remove_worker_report(self, worker_id: str) -> None:
        """Forget the worker's report at once (it is stopping)."""
        ...


@runtime_checkable
class Handoff(Protocol):
    """An optional capability: new jobs handed straight to a worker waiting for work.

    A worker that would wait after an empty claim calls :meth:`claim_or_wait` instead of
    :meth:`Backend.claim`. When nothing is due, the backend may remember the worker and store
    jobs enqueued meanwhile already claimed for it; they come back from its next
    ``claim_or_wait``, so no claim of its own lies between their enqueue and their start. A
    worker that stops calls :meth:`forget_worker`. Each job still reaches one worker once.
    """

    async def claim_or_wait(self, params: ClaimParams) -> list[Job]:
        """:meth:`Backend.claim`; when that finds nothing, hand the worker what comes next."""
        ...

    async def forget_worker(self, worker_id: str) -> None:
        """The worker claims no more (it is stopping): hand it nothing more, and give back to the
        queue any job handed to it that its calls have not taken."""
        ...

    def watch_handed(self, worker_id: str, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever a job handed to the worker arrives for its next call: a
        worker busy enough not to be claiming must still take the jobs handed to its free slots."""
        ...

    def handed_waiting(self, worker_id: str) -> bool:
        """Whether jobs handed to the worker wait for its next :meth:`claim_or_wait`."""
        ...
