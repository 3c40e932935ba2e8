"""Rate and concurrency limits of queues, kept in the database for every claim of every process.

Storage (schema.sql): a row of ``queue_limits`` per queue whose limits were ever set, holding the
limits in force as numbers (a rate as its count, period and burst), the queue's token bucket
(``tat``, the GCRA state of :mod:`jobqueue.limits`) and the limits last configured from code; a
row of ``rate_buckets`` per (queue, rate key) whose key rate has spent tokens; a job's
``rate_key`` in its own column, and the partial index ``jobs_running_keys`` of the PROCESSING
jobs that have one, which a claim counts for ``key_concurrency``.

Claim: the ``claim`` statement (queries.sql) first probes ``queue_limits_limited`` for its
queues. None limited (the index is empty while no queue has limits): it claims as it always did,
in one statement. Queue-level limits only (rate, concurrency): the same statement calls
``queue_budgets`` (schema.sql), which locks the queues' limits rows (``FOR UPDATE``, in queue
order) and, with a fresh snapshot, answers what each may give now; the scan takes no more and the
statement spends the tokens, so the limited claims of a queue run one after another and see each
other's commits: concurrent claims never exceed a limit together. Per-key limits: the statement
calls ``claim_limited`` instead, which takes the same locks and claims in rounds, each a query
with a fresh snapshot; a rate key at its limit is skipped by the rounds after, so a claim goes on
down the queue to the jobs of other keys (a claim where no key holds a job back is one round).

Wake-ups: a job of a queue with a concurrency limit that leaves PROCESSING (complete, fail and
the reaper's fail, cancel; a release wakes for any queue) is answered with its queue
(``freed``), and the backend wakes waiting workers as after an enqueue: at once in this process,
by NOTIFY elsewhere. A change of limits notifies in its own statement, as a resume does. An idle
worker's wait ends when the next token of an empty bucket comes (``due_in``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import asyncpg

from jobqueue.backends.core import BackendBase
from jobqueue.backends.postgres.sql import Queries
from jobqueue.backends.wakeup import Wakeup
from jobqueue.limits import QueueLimits, Rate


class PostgresLimits(BackendBase, ABC):
    """The limit operations of :class:`~jobqueue.backends.base.Backend`, for PostgresBackend."""

    q: Queries
    _wakeup: Wakeup

    @abstractmethod
    async def _run(self, name: str, *args: Any, accept: bool = False) -> list[asyncpg.Record]: ...

    async def _set_queue_limits(self, queue: str, limits: QueueLimits, configured: bool) -> QueueLimits:
        numbers = limit_numbers(limits)
        # Committed as a pause is (the accepting pool): limits that a server crash undid would let
        # a queue run faster than its operator set it to.
        rows = await self._run("set_queue_limits", queue, *numbers, configured, numbers, self.q.channel, accept=True)
        if not rows:
            return limits  # inserted meanwhile by a node configuring these same limits (see queries.sql)
        if rows[0][0] == "set":
            self._wakeup.wake()  # waiters in this process; other processes hear the NOTIFY
        return limits_of(rows[0], 1)

    async def _queue_limits(self) -> dict[str, QueueLimits]:
        return {row[0]: limits_of(row, 1) for row in await self._run("queue_limits")}

    async def _due_in(self, queues: Sequence[str]) -> float | None:
        # Delayed and retried jobs, and (here because of limits) the next token of empty buckets.
        ((due_in,),) = await self._run("due_in", list(queues))
        return None if due_in is None else float(due_in)


def limit_numbers(limits: QueueLimits) -> list[Any]:
    """The eight numbers a queue_limits row stores for ``limits`` (``None``: no such limit)."""
    rate, key_rate = limits.rate, limits.key_rate
    return [
        *((None, None, None) if rate is None else (rate.count, rate.per, rate.burst)),
        limits.concurrency,
        *((None, None, None) if key_rate is None else (key_rate.count, key_rate.per, key_rate.burst)),
        limits.key_concurrency,
    ]


def limits_of(row: asyncpg.Record, at: int = 0) -> QueueLimits:
    """The limits of :func:`limit_numbers`' eight columns, from column ``at`` of ``row``."""
    count, per, burst, concurrency, key_count, key_per, key_burst, key_concurrency = row[at : at + 8]
    return QueueLimits(
        None if count is None else Rate(count, per, burst),
        concurrency,
        None if key_count is None else Rate(key_count, key_per, key_burst),
        key_concurrency,
    )
