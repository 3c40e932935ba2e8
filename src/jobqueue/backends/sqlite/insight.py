"""What a dashboard reads from the SQLite backend: failed attempts, lookups by key, the arrival
counter and worker reports. A mixin of :class:`~jobqueue.backends.sqlite.backend.SQLiteBackend`,
on its connections; and the pieces of the fail, delete and prune transactions that keep them.

Failed attempts: ``fail`` records each attempt it counts (:func:`record_error`) in the statement
before the one that changes the job, on the same lease check, in the same transaction: one insert
more per failure, and a stale failure writes nothing. The latest
:data:`~jobqueue.backends.params.MAX_ATTEMPT_ERRORS` are kept: ``n`` numbers a job's rows
(``jobs.failed_attempts``), and only a job past that many failures pays a trim, of the one row
that falls out. ``delete`` and ``prune`` remove the rows of the jobs they delete
(:func:`forget_errors`), looked for only for jobs that ever failed.

The arrival counter is ``max(seq) + arrivals.freed`` (see schema.sql): the enqueue writes nothing
for it, and the paths that delete jobs keep it from going down (:func:`keep_arrivals`).

Worker reports: a row per worker with its expiry by the store's clock; the listing leaves out the
expired ones, and each report drops them (a write anyway, on a table of a row per worker).
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TypeVar

from jobqueue.backends.core import BackendBase
from jobqueue.backends.params import MAX_ATTEMPT_ERRORS
from jobqueue.backends.sqlite.rows import job_of
from jobqueue.backends.sqlite.sql import Q
from jobqueue.clock import Clock
from jobqueue.job import Job, dump_json
from jobqueue.outcomes import AttemptError

T = TypeVar("T")

#: Job ids whose attempts are deleted per statement.
FORGET_BATCH = 2000

# ---- in the transactions of fail, delete and prune -----------------------------------------


def record_error(conn: sqlite3.Connection, args: dict[str, object]) -> bool:
    """Record the failed attempt of ``args`` (the fail statement's, with ``traceback``) if its
    lease holds, before the job changes; whether it held (the fail is to be applied then)."""
    row = conn.execute(Q["record_error"], args).fetchone()
    if row is None:
        return False
    if row[0] > MAX_ATTEMPT_ERRORS:
        conn.execute(Q["trim_errors"], (args["id"], row[0] - MAX_ATTEMPT_ERRORS))
    return True


def forget_errors(conn: sqlite3.Connection, job_ids: Sequence[str]) -> None:
    """Delete the attempts of these deleted jobs."""
    for start in range(0, len(job_ids), FORGET_BATCH):
        conn.execute(Q["forget_errors"], (dump_json(list(job_ids[start : start + FORGET_BATCH])).decode(),))


def last_seq(conn: sqlite3.Connection) -> int:
    """The highest seq of jobs (one seek), read before a delete for :func:`keep_arrivals`."""
    seq: int = conn.execute(Q["last_seq"]).fetchone()[0]
    return seq


def keep_arrivals(conn: sqlite3.Connection, before: int) -> None:
    """After deleting jobs: if the last ones went, the seqs freed at the end (which SQLite gives
    out again) are added to ``arrivals``, so that the arrival counter stays where it was."""
    freed = before - last_seq(conn)
    if freed > 0:
        conn.execute(Q["add_freed"], (freed,))


def put_report(conn: sqlite3.Connection, worker_id: str, report: str, now: float, expires: float) -> None:
    conn.execute(Q["drop_expired_reports"], (now,))
    conn.execute(Q["put_worker_report"], (worker_id, expires, report))


def remove_report(conn: sqlite3.Connection, worker_id: str) -> None:
    conn.execute(Q["remove_worker_report"], (worker_id,))


# ---- the operations ------------------------------------------------------------------------


class SQLiteInsight(BackendBase, ABC):
    """The insight operations of the SQLite backend: reads on the reader, small writes."""

    clock: Clock

    @abstractmethod
    async def _write(
        self, body: Callable[[sqlite3.Connection], T], *, durable: bool = False, inline: bool = True
    ) -> T: ...

    @abstractmethod
    async def _read(self, body: Callable[[sqlite3.Connection], T]) -> T: ...

    async def _attempt_errors(self, job_id: str) -> list[AttemptError]:
        rows = await self._read(lambda conn: conn.execute(Q["attempt_errors"], (job_id,)).fetchall())
        return [AttemptError(*row) for row in rows]

    async def _find_by_key(self, key: str) -> Job | None:
        row = await self._read(lambda conn: conn.execute(Q["find_by_key"], (key,)).fetchone())
        return None if row is None else job_of(row)

    async def _enqueued_total(self) -> int:
        total: int = await self._read(lambda conn: conn.execute(Q["enqueued_total"]).fetchone()[0])
        return total

    async def _report_worker(self, worker_id: str, report: str, ttl: float) -> None:
        # Not fsynced: a report lost to a power loss is replaced by the worker's next one.
        now = self.clock.time()
        await self._write(lambda conn: put_report(conn, worker_id, report, now, now + ttl))

    async def _worker_reports(self) -> list[str]:
        now = self.clock.time()
        rows = await self._read(lambda conn: conn.execute(Q["worker_reports"], (now,)).fetchall())
        return [text for (text,) in rows]

    async def _remove_worker_report(self, worker_id: str) -> None:
        await self._write(lambda conn: remove_report(conn, worker_id))
