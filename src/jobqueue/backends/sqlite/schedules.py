"""The transaction bodies of periodic schedules: each takes the connection it runs in.

:func:`fire` takes the tick and enqueues its job in one write transaction (``BEGIN IMMEDIATE``,
whichever thread runs it), so the check of ``last_tick`` and its move forward cannot interleave
with another process's: of several schedulers firing one tick, the first to get the write lock
enqueues the job and the others find the tick spent. The job goes through the enqueue's own body
(:func:`.transactions.enqueue`), keys, capacity, counts and the hand-off to waiting workers alike.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from jobqueue.backends.params import Tick
from jobqueue.backends.sqlite.handoff import Handed
from jobqueue.backends.sqlite.queues import QueueSettings
from jobqueue.backends.sqlite.sql import Q
from jobqueue.backends.sqlite.transactions import enqueue
from jobqueue.clock import Clock
from jobqueue.outcomes import Accepted, Duplicate, EnqueueOutcome, StoredSchedule


def schedule_of(row: Sequence[Any]) -> StoredSchedule:
    name, spec, paused, last_tick, last_job_id = row
    return StoredSchedule(name, spec, bool(paused), last_tick, last_job_id)


def register(conn: sqlite3.Connection, schedules: Sequence[StoredSchedule]) -> None:
    rows = [(s.name, s.spec, int(s.paused), s.last_tick, s.last_job_id) for s in schedules]
    conn.executemany(Q["put_schedule"], rows)


def listed(conn: sqlite3.Connection) -> list[StoredSchedule]:
    return [schedule_of(row) for row in conn.execute(Q["get_schedules"])]


def pause(conn: sqlite3.Connection, name: str, paused: bool) -> StoredSchedule | None:
    row = conn.execute(Q["pause_schedule"], {"name": name, "paused": int(paused)}).fetchone()
    return None if row is None else schedule_of(row)


def fire(
    conn: sqlite3.Connection, tick: Tick, capacity: int | None, now: float
) -> tuple[EnqueueOutcome | None, list[Handed]]:
    """Spend ``tick`` and enqueue its job, or do nothing (``None``) if it is not to fire; the jobs
    handed are to be sent to their workers after the commit, as an enqueue's are."""
    # The tick first, naming the job offered: when that job is accepted, as usual, no more is
    # written. An insert failing on a stored id undoes only its own statement (the enqueue
    # answers a Duplicate), so the tick stays spent.
    args = {"name": tick.schedule, "at": tick.at, "job_id": tick.job.id}
    if conn.execute(Q["spend_tick"], args).fetchone() is None:
        return None, []
    limits = None if capacity is None else {tick.job.queue: capacity}
    (outcome,), handed = enqueue(conn, [tick.job], limits, now)
    job_id = outcome.job.id if isinstance(outcome, Accepted | Duplicate) else None
    if job_id != tick.job.id:
        conn.execute(Q["set_tick_job"], (job_id, tick.schedule))
    return outcome, handed


class SQLiteSchedules(QueueSettings, ABC):
    """The periodic-schedule operations of the SQLite backend, on its transactions."""

    clock: Clock

    @abstractmethod
    async def _announce(self, outcomes: Sequence[EnqueueOutcome], handed: Sequence[Handed]) -> None: ...

    async def _register_schedules(self, stored: Sequence[StoredSchedule]) -> None:
        await self._write(lambda conn: register(conn, stored), durable=True)

    async def _schedules(self) -> list[StoredSchedule]:
        return await self._read(listed)

    async def _pause_schedule(self, name: str, paused: bool) -> StoredSchedule | None:
        return await self._write(lambda conn: pause(conn, name, paused), durable=True)

    async def _fire(self, tick: Tick, capacity: int | None) -> EnqueueOutcome | None:
        # Durable as an enqueue is: a fired tick accepts a job.
        outcome, handed = await self._write(lambda conn: fire(conn, tick, capacity, self.clock.time()), durable=True)
        if outcome is not None:
            await self._announce([outcome], handed)
        return outcome
