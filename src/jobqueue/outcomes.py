"""What the store answers: enqueue outcomes, pages of jobs, counts by queue and state, prunes,
and the stored state of periodic schedules.

Backends build these and the app hands them to its callers unchanged, so they live below both:
the HTTP API reads them without knowing any backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from jobqueue.job import Job, JobState

# ---- enqueue -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Accepted:
    """The job was stored."""

    job: Job


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A live job already holds this idempotency key; nothing was stored. ``job`` is that job."""

    job: Job


@dataclass(frozen=True, slots=True)
class Rejected:
    """The queue was at capacity; nothing was stored."""

    queue: str
    capacity: int


@dataclass(frozen=True, slots=True)
class MissingParent:
    """The job names in ``depends_on`` a job that is not stored (``parent``); nothing was stored."""

    parent: str


EnqueueOutcome = Accepted | Duplicate | Rejected | MissingParent


# ---- reading -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing, oldest job first."""

    jobs: list[Job]
    #: Pass as the cursor of the next call for the next page; ``None`` when this was the last one.
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Job counts of one queue by state (every state present, zero when none)."""

    counts: Mapping[JobState, int]

    @property
    def waiting(self) -> int:
        """Jobs that count against capacity: PENDING + BLOCKED + SCHEDULED + FAILED awaiting retry."""
        counts = self.counts
        return (
            counts[JobState.PENDING] + counts[JobState.BLOCKED] + counts[JobState.SCHEDULED] + counts[JobState.FAILED]
        )


@dataclass(frozen=True, slots=True)
class Stats:
    """Job counts of every queue that holds jobs, and the idempotency keys reserved."""

    queues: Mapping[str, QueueStats]
    #: Idempotency keys currently reserved (including expired ones not yet pruned).
    idempotency_keys: int


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What a prune deleted: finished jobs, and expired idempotency keys."""

    jobs: int
    keys: int


@dataclass(frozen=True, slots=True)
class AttemptError:
    """One failed attempt of a job, as the store recorded it when the attempt was failed."""

    #: The attempt's number (1 for the first; counting starts again after a replay).
    attempt: int
    #: When the attempt started and when it was failed (POSIX seconds, the store's clock).
    started_at: float | None
    failed_at: float
    error: str
    #: The handler's traceback, when the failure came from an exception it raised.
    traceback: str | None = None
    worker_id: str | None = None


def empty_counts() -> dict[JobState, int]:
    return dict.fromkeys(JobState, 0)


@dataclass(slots=True)
class StatsBuilder:
    """Accumulates (queue, state, count) rows into :class:`Stats`."""

    counts: dict[str, dict[JobState, int]] = field(default_factory=dict)

    def add(self, queue: str, state: JobState | str, n: int) -> None:
        per_queue = self.counts.get(queue)
        if per_queue is None:
            per_queue = self.counts[queue] = empty_counts()
        per_queue[JobState(state)] += n

    def build(self, keys: int) -> Stats:
        return Stats({q: QueueStats(c) for q, c in sorted(self.counts.items())}, keys)


# ---- periodic schedules ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredSchedule:
    """A periodic schedule as the store keeps it, shared by every scheduler: pausing it, or firing
    one of its ticks, holds for every node and across restarts."""

    name: str
    #: What it runs and when, as JSON text (:mod:`jobqueue.periodic` writes and reads it).
    spec: str
    paused: bool = False
    #: The time (POSIX seconds) of the last tick fired; ``None`` before the first.
    last_tick: float | None = None
    #: The job the last fired tick became (``None`` if none, or if the queue was full then).
    last_job_id: str | None = None
