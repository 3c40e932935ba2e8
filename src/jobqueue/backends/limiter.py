"""Queue limits kept in the process, for an in-process store (memory): the reference the stores
that share their limits across processes (SQLite, PostgreSQL, Redis) are held to by the suite.

Each method runs to its end without awaiting, so a claim's checks and its spending are one
atomic step on the event loop.
"""

from __future__ import annotations

from collections.abc import Iterable

from jobqueue.job import Job
from jobqueue.limits import QueueLimits

_NO_LIMITS = QueueLimits()


class Limiter:
    """The limits of every queue, the state of their token buckets, and the jobs running by key."""

    def __init__(self) -> None:
        self._limits: dict[str, QueueLimits] = {}
        self._configured: dict[str, QueueLimits] = {}
        self._tat: dict[tuple[str, str | None], float] = {}  # (queue, None): the queue's bucket
        self._running: dict[tuple[str, str], int] = {}  # (queue, rate key) -> PROCESSING jobs
        #: Queues whose last claim got fewer jobs than it asked for: a slot freed there may be wanted.
        self._waited: set[str] = set()

    def set(self, queue: str, limits: QueueLimits, configured: bool) -> QueueLimits:
        if configured:
            if self._configured.get(queue) == limits:
                return self.of(queue)
            self._configured[queue] = limits
        if limits:
            self._limits[queue] = limits
        else:
            self._limits.pop(queue, None)
        return limits

    def of(self, queue: str) -> QueueLimits:
        return self._limits.get(queue, _NO_LIMITS)

    def all(self) -> dict[str, QueueLimits]:
        return dict(self._limits)

    def limited(self, queue: str) -> bool:
        return queue in self._limits

    def budget(self, queue: str, running: int, now: float) -> int | None:
        """How many jobs a claim may take from ``queue`` by its own limits (``None``: any)."""
        limits = self._limits.get(queue)
        if limits is None:
            return None
        budget: int | None = None
        if limits.concurrency is not None:
            budget = max(0, limits.concurrency - running)
        if limits.rate is not None:
            tokens = limits.rate.available(self._tat.get((queue, None)), now)
            budget = tokens if budget is None else min(budget, tokens)
        return budget

    def admits_key(self, job: Job, now: float) -> bool:
        """Whether the per-key limits of its queue let ``job`` start now."""
        key = job.rate_key
        limits = self._limits.get(job.queue)
        if key is None or limits is None:
            return True
        if limits.key_concurrency is not None and self._running.get((job.queue, key), 0) >= limits.key_concurrency:
            return False
        return limits.key_rate is None or limits.key_rate.available(self._tat.get((job.queue, key)), now) > 0

    def took(self, job: Job, now: float) -> None:
        """``job`` was claimed: spend its tokens and count it running under its key."""
        if job.rate_key is not None:
            pair = (job.queue, job.rate_key)
            self._running[pair] = self._running.get(pair, 0) + 1
        limits = self._limits.get(job.queue)
        if limits is None:
            return
        if limits.rate is not None:
            self._tat[job.queue, None] = limits.rate.spend(self._tat.get((job.queue, None)), now, 1)
        if limits.key_rate is not None and job.rate_key is not None:
            pair_key = (job.queue, job.rate_key)
            self._tat[pair_key] = limits.key_rate.spend(self._tat.get(pair_key), now, 1)

    def claimed(self, queues: Iterable[str], short: bool) -> None:
        """A claim of ``queues`` got fewer jobs than it asked for (``short``), or not."""
        if not self._limits:
            return
        for queue in queues:
            limits = self._limits.get(queue)
            if limits is not None and limits.holds_slots:
                if short:
                    self._waited.add(queue)
                else:
                    self._waited.discard(queue)

    def left(self, job: Job) -> bool:
        """``job`` left PROCESSING; ``True`` when that frees a slot someone may be waiting for (the
        queue's last claim was held back: else waking idle workers after every job done would
        only make them claim for nothing)."""
        if job.rate_key is not None:
            pair = (job.queue, job.rate_key)
            left = self._running.get(pair, 0) - 1
            if left > 0:
                self._running[pair] = left
            else:
                self._running.pop(pair, None)
        limits = self._limits.get(job.queue)
        return limits is not None and limits.holds_slots and job.queue in self._waited

    def next_token_in(self, queue: str, now: float) -> float | None:
        """Seconds until an empty bucket of ``queue`` (its own, or a key's) holds a token again."""
        limits = self._limits.get(queue)
        if limits is None:
            return None
        soonest: float | None = None
        for (bucket_queue, key), tat in self._tat.items():
            rate = limits.rate if key is None else limits.key_rate
            if bucket_queue != queue or rate is None or rate.available(tat, now) > 0:
                continue
            due = rate.next_token_at(tat) - now
            soonest = due if soonest is None else min(soonest, due)
        return soonest

    def forget_spent(self, now: float) -> None:
        """Drop the buckets that are full again (the same as never used), so keys come and go."""
        for pair in [pair for pair, tat in self._tat.items() if tat <= now]:
            del self._tat[pair]
