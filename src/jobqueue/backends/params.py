"""What the backend operations take and return (besides jobs and the outcomes of
:mod:`jobqueue.outcomes`): one small frozen dataclass per kind of argument."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jobqueue.errors import ValidationError
from jobqueue.job import JobState, NewJob, check_name

DEFAULT_LEASE = 30.0
#: The most jobs one ``list_jobs`` page may hold.
MAX_PAGE = 10_000
#: The failed attempts a store keeps for each job (the latest ones), and the longest traceback
#: kept with one (its last characters, where the exception was raised).
MAX_ATTEMPT_ERRORS = 20
MAX_TRACEBACK = 8_000


# ---- claim and its results ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaimParams:
    """Claim up to ``limit`` due jobs from ``queues`` for ``worker_id``, leased for ``lease`` seconds."""

    queues: Sequence[str]
    worker_id: str
    limit: int
    lease: float = DEFAULT_LEASE


@dataclass(frozen=True, slots=True)
class Lease:
    """Identifies one attempt: the job and the token its claim received."""

    job_id: str
    token: int


@dataclass(frozen=True, slots=True)
class Completion:
    """A successful attempt and its JSON result."""

    lease: Lease
    result: Any = None


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed attempt.

    ``retry_delay`` is the wait before the next attempt in seconds, or ``None`` to dead-letter.
    The attempt is counted (``retry_count`` + 1) either way. ``if_expired`` (the reaper's) applies
    the failure only while the lease is still expired: a heartbeat that renewed it in the meantime
    wins, and the worker keeps its job. ``traceback``: the handler's, kept with the attempt's error
    (:meth:`~jobqueue.backends.base.Backend.attempt_errors`).
    """

    lease: Lease
    error: str
    retry_delay: float | None
    if_expired: bool = False
    traceback: str | None = None


# ---- reading --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListParams:
    """Filter and page for ``Backend.list_jobs``; jobs come oldest first (by id)."""

    state: JobState | None = None
    queue: str | None = None
    task: str | None = None
    #: Return jobs whose id sorts after this one (the ``next_cursor`` of the previous page).
    cursor: str | None = None
    limit: int = 100

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or not 1 <= self.limit <= MAX_PAGE:
            raise ValidationError("limit", f"must be an integer from 1 to {MAX_PAGE}")
        # Filters are checked as names are at enqueue (a bad one could match nothing anyway);
        # the cursor is a job id, which never holds a NUL (nor can PostgreSQL text).
        for name in ("queue", "task"):
            value = getattr(self, name)
            if value is not None:
                check_name(name, value)
        if self.cursor is not None and (not isinstance(self.cursor, str) or "\x00" in self.cursor):
            raise ValidationError("cursor", "not a cursor this API returned (use next_cursor)")


@dataclass(frozen=True, slots=True)
class PruneParams:
    """Delete finished jobs that finished before these times (``None`` keeps them), and expired keys."""

    completed_before: float | None = None
    dead_before: float | None = None
    cancelled_before: float | None = None


@dataclass(frozen=True, slots=True)
class Tick:
    """One tick of the schedule ``schedule``, due at ``at`` (POSIX seconds), to become ``job``."""

    schedule: str
    at: float
    job: NewJob
