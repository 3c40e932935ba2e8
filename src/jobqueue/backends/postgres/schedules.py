"""Periodic schedules in the ``schedules`` table: one job per tick, however many schedulers fire it.

A tick is fired in one transaction: ``fire_tick`` moves the schedule's ``last_tick`` forward (its
row lock makes racing schedulers wait, and each loser then finds the tick spent), the job is stored
by the ``enqueue`` statement and its rounds, as :meth:`PostgresBackend.enqueue_in` stores jobs
(the same keys, capacity lock, counts and NOTIFY, delivered at commit), and a job other than the
tick's own (the holder of its key, or none when the queue was full) is written back to the row.
The transaction runs on the pool of accepting commits, so it is as durable as an enqueue.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from jobqueue.backends.core import NUL, BackendBase
from jobqueue.backends.params import Tick
from jobqueue.backends.postgres.driver import Runner
from jobqueue.backends.postgres.enqueue import enqueue_rounds
from jobqueue.backends.postgres.sql import Queries
from jobqueue.backends.wakeup import Wakeup
from jobqueue.outcomes import Accepted, Duplicate, EnqueueOutcome, StoredSchedule


class PostgresSchedules(BackendBase, ABC):
    """The schedule operations of :class:`~jobqueue.backends.base.Backend`, for PostgresBackend."""

    q: Queries
    _wakeup: Wakeup

    @abstractmethod
    def _now(self) -> float | None: ...

    @abstractmethod
    def _runners(self) -> tuple[Runner, Runner]: ...

    @abstractmethod
    async def _run(self, name: str, *args: Any, accept: bool = False) -> list[asyncpg.Record]: ...

    async def _register_schedules(self, schedules: Sequence[StoredSchedule]) -> None:
        # One row per name, as registering them one by one would leave it (ON CONFLICT cannot
        # touch a row twice), sorted so that nodes registering together lock rows in one order.
        rows: dict[str, StoredSchedule] = {}
        for schedule in schedules:
            first = rows.get(schedule.name)
            rows[schedule.name] = schedule if first is None else dataclasses.replace(first, spec=schedule.spec)
        ordered = [rows[name] for name in sorted(rows)]
        await self._run(
            "register_schedules",
            [s.name for s in ordered],
            [s.spec for s in ordered],
            [s.paused for s in ordered],
            [s.last_tick for s in ordered],
            [s.last_job_id for s in ordered],
        )

    async def _schedules(self) -> list[StoredSchedule]:
        return [StoredSchedule(*row) for row in await self._run("schedules")]

    async def _pause_schedule(self, name: str, paused: bool) -> StoredSchedule | None:
        # Committed as a cancel is: a pause that a server crash undid would let jobs run again.
        rows = await self._run("pause_schedule", name, paused, accept=True)
        return StoredSchedule(*rows[0]) if rows else None

    async def _fire(self, tick: Tick, capacity: int | None) -> EnqueueOutcome | None:
        if NUL in tick.schedule:
            return None  # no stored name holds one: PostgreSQL text cannot
        accept, _ = self._runners()
        caps = None if capacity is None else {tick.job.queue: capacity}
        q = self.q

        async def fire_in(conn: PoolConnectionProxy) -> EnqueueOutcome | None:
            if not await conn.fetch(q["fire_tick"], tick.schedule, tick.at, tick.job.id):
                return None  # unknown, paused, or this tick (or a later one) was fired already

            async def execute(statement: str, args: tuple[Any, ...]) -> tuple[list[asyncpg.Record], bool]:
                return await conn.fetch(q[statement], *args), False

            (outcome,) = await enqueue_rounds([tick.job], caps, execute, self._now, q.channel)
            job_id = outcome.job.id if isinstance(outcome, Accepted | Duplicate) else None
            if job_id != tick.job.id:
                await conn.execute(q["set_last_job"], tick.schedule, job_id)
            return outcome

        outcome = await accept.transaction(fire_in)
        if type(outcome) is Accepted:
            self._wakeup.wake()  # waiters in this process; other processes heard the NOTIFY
        return outcome
