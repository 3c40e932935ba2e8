"""``sqlite:///path.db``: the embedded default backend.

Stdlib sqlite3 in WAL mode. A write that needs no fsync runs right on the caller's thread when
the write lock is free at once (see :mod:`.inline`); the others, and those that found the lock
taken, go to one writer thread that commits whatever is waiting as one transaction, one fsync for
the group (see :mod:`.thread`). Reads use a connection on its own thread, which WAL lets run
beside the writers. Several processes may open the same file: ``BEGIN IMMEDIATE`` serialises
their writers, and each check-then-insert runs inside that lock, so the idempotency and capacity
checks hold across processes. A new job can be handed straight to a worker waiting for one (see
:mod:`.handoff`), and the WAL is flushed in the background (see :mod:`.walsync`).

The modules: :mod:`.connection` (connections, schema, checkpoints), :mod:`.thread` (the writer
thread), :mod:`.inline` (writes on the caller's thread), :mod:`.transactions` and :mod:`.claims`
(what each operation does in its transaction), :mod:`.schedules`, :mod:`.dependencies`,
:mod:`.queues` and :mod:`.limited` (those of periodic schedules, ``depends_on``, paused queues
and queue limits), :mod:`.rows` (rows and jobs), :mod:`.handoff` and :mod:`.wake` (the hand-off
and the wake-ups of other processes), :mod:`.handing` (the hand-off capability), :mod:`.insight`
(what the dashboard reads: failed attempts, worker reports, the arrival counter), :mod:`.walsync`.

Durability (``durability=``):

``"full"`` (default)
    A commit that accepts or revives a job (enqueue, replay, cancel) is fsynced before the caller
    hears back, so an accepted job survives power loss. Worker state changes (claim, heartbeat,
    complete, fail, release) are committed with ``synchronous=NORMAL``: they survive a crash of the
    process, and a power loss can only roll one back to an earlier state of an accepted job, which
    the lease then re-runs (at-least-once holds). An fsync there would buy nothing but latency.
``"strict"``
    Every commit is fsynced.
``"normal"``
    No commit waits for fsync; a power loss may lose the last accepted jobs (never a process crash).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from jobqueue.backends.base import Capabilities
from jobqueue.backends.params import ClaimParams, Completion, Failure, Lease, ListParams, PruneParams
from jobqueue.backends.sqlite import dependencies, limited
from jobqueue.backends.sqlite import transactions as tx
from jobqueue.backends.sqlite.connection import DURABILITIES, Checkpointer, Durability, apply_schema, connect
from jobqueue.backends.sqlite.handing import SQLiteHandoff
from jobqueue.backends.sqlite.handoff import Handed, Handoffs
from jobqueue.backends.sqlite.inline import InlineWriter, LockBusy
from jobqueue.backends.sqlite.insight import SQLiteInsight
from jobqueue.backends.sqlite.rows import CLAIMABLE, job_of
from jobqueue.backends.sqlite.schedules import SQLiteSchedules
from jobqueue.backends.sqlite.sql import Q
from jobqueue.backends.sqlite.thread import ConnectionThread
from jobqueue.backends.sqlite.wake import WakeChannel
from jobqueue.backends.sqlite.walsync import WalSyncer
from jobqueue.backends.wakeup import Wakeup
from jobqueue.clock import Clock, SystemClock
from jobqueue.errors import ConfigurationError
from jobqueue.job import Job, NewJob, RegisteredTask, dump_json
from jobqueue.outcomes import Accepted, EnqueueOutcome, Page, PruneResult, Stats

T = TypeVar("T")
Body = Callable[[sqlite3.Connection], T]

#: How often ``wait_for_work`` looks for commits made by other processes.
CROSS_PROCESS_POLL = 0.05


class SQLiteBackend(SQLiteHandoff, SQLiteSchedules, SQLiteInsight):
    """The embedded backend on one database file (created with its directory if missing)."""

    name = "sqlite"
    capabilities = Capabilities(shared=True, durable=True, cross_process_wakeup=False, server_clock=False)

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Clock | None = None,
        durability: Durability = "full",
        busy_timeout: float = 30.0,
    ) -> None:
        if str(path) in ("", ":memory:"):
            raise ConfigurationError("sqlite needs a file path; use memory:// for an in-process queue")
        if durability not in DURABILITIES:
            raise ConfigurationError(f"durability must be 'full', 'strict' or 'normal', not {durability!r}")
        self.path = Path(path)
        self.clock: Clock = clock or SystemClock()
        self.durability = durability
        self.busy_timeout = busy_timeout
        self._connect = functools.partial(connect, self.path, durability, busy_timeout)
        self._writer: ConnectionThread | None = None
        self._reader: ConnectionThread | None = None
        self._inline: InlineWriter | None = None
        self._checkpointer: Checkpointer | None = None
        self._walsync: WalSyncer | None = None
        self._wakeup = Wakeup()
        self._channel = WakeChannel(self.path)
        self._handoffs = Handoffs()
        #: Counts hints that claimable work may exist beyond what was handed (see claim_or_wait).
        self._signals = 0
        self._data_version: int | None = None

    # ---- lifecycle ------------------------------------------------------------------------

    async def _open(self) -> None:
        if self._writer is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        writer = ConnectionThread(
            self._connect, transactional=True, name="jobqueue-sqlite-writer",
            always_full=self.durability == "strict", busy_timeout=self.busy_timeout,
        )  # fmt: skip
        reader = ConnectionThread(self._connect, transactional=False, name="jobqueue-sqlite-reader", always_full=False)
        await asyncio.to_thread(writer.start)
        self._writer = writer
        try:
            await writer.call(apply_schema, durable=True)
            await asyncio.to_thread(reader.start)
        except BaseException:
            self._writer = None
            await asyncio.to_thread(writer.stop)
            raise
        self._reader = reader
        self._checkpointer = Checkpointer(self._connect, writer)
        if self.durability != "strict":  # under strict every commit is fsynced: all go to the writer
            self._inline = InlineWriter(self._connect, self._checkpointer.request)
            self._walsync = WalSyncer(self.path.with_name(self.path.name + "-wal"))

    async def _close(self) -> None:
        if self._writer is not None:
            for worker_id in list(self._handoffs.local):
                with contextlib.suppress(Exception):  # closing anyway; the jobs' leases expire
                    await self._forget(worker_id)
        writer, reader, inline, walsync = self._writer, self._reader, self._inline, self._walsync
        self._writer = self._reader = self._inline = self._walsync = None
        if walsync is not None:
            await asyncio.to_thread(walsync.stop)
        if inline is not None:
            inline.close()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.join)
        for thread in (writer, reader):
            if thread is not None:
                await asyncio.to_thread(thread.stop)
        self._channel.close()
        self._wakeup.wake()

    # ---- where transactions run -----------------------------------------------------------

    async def _write(self, body: Body[T], *, durable: bool = False, inline: bool = True) -> T:
        """Run a write transaction: here and now if it needs no fsync and the lock is free (see
        :mod:`.inline`), else on the writer thread. ``inline=False`` for long ones (prune)."""
        assert self._writer is not None, "opened: see BackendBase"
        durable = durable and self.durability != "normal"
        if self._walsync is not None and not durable:
            self._walsync.touched()  # a commit without fsync: flushed in the background soon
        if inline and not durable and self._inline is not None:
            try:
                return self._inline.run(body)
            except LockBusy:
                pass
        return await self._writer.call(body, durable=durable)

    async def _finish(self, body: Body[tuple[T, int]], *, durable: bool = False) -> T:
        """A write that finishes jobs: the children it released, and the slots of concurrency
        limits it freed that jobs wait for (a count of both), are woken for as new jobs are.
        Without either, nobody is woken (a queue without a concurrency limit pays nothing more)."""
        done, wakes = await self._write(body, durable=durable)
        if wakes:
            self._work_available()
        return done

    async def _read(self, body: Body[T]) -> T:
        assert self._reader is not None, "opened: see BackendBase"
        return await self._reader.call(body)

    def _work_available(self) -> None:
        """Wake waiting claimers: in this process at once, in others through the wake channel."""
        self._wake()
        self._channel.notify()

    def _wake(self) -> None:
        """Work may be claimable that nobody was handed: claims must look in the database."""
        self._signals += 1
        self._wakeup.wake()

    # ---- enqueue --------------------------------------------------------------------------

    async def _enqueue(self, jobs: Sequence[NewJob], capacity: Mapping[str, int] | None) -> list[EnqueueOutcome]:
        outcomes, handed = await self._write(lambda conn: tx.enqueue(conn, jobs, capacity, self.clock.time()),
                                             durable=True)  # fmt: skip
        await self._announce(outcomes, handed)
        return outcomes

    async def _announce(self, outcomes: Sequence[EnqueueOutcome], handed: Sequence[Handed]) -> None:
        """After an enqueue's commit (or a fired tick's): send the handed jobs, wake claimers for the rest."""
        if handed:
            await self._send_handed(handed)
        if any(type(o) is Accepted and o.job.state in CLAIMABLE for o in outcomes):
            self._work_available()  # a job not handed (one BLOCKED or dead at birth needs nobody)

    # ---- claims (and the hand-off: handing.py) ---------------------------------------------

    async def _claim(self, params: ClaimParams) -> list[Job]:
        return await self._claim_for(params, register=False)

    # ---- outcomes of attempts -------------------------------------------------------------

    async def _complete(self, completions: Sequence[Completion], results: list[bytes]) -> list[bool]:
        items = dump_json(
            [[c.lease.job_id, c.lease.token, r.decode()] for c, r in zip(completions, results, strict=True)]
        ).decode()
        done = await self._finish(lambda conn: tx.complete(conn, items, self.clock.time()))
        return [c.lease.job_id in done for c in completions]

    async def _fail(self, failures: Sequence[Failure]) -> list[bool]:
        done = await self._finish(lambda conn: tx.fail(conn, failures, self.clock.time()))
        self._wake()  # a retry may be due at once
        return done

    async def _heartbeat(self, leases: Sequence[Lease], lease: float) -> list[bool]:
        return await self._write(lambda conn: tx.heartbeat(conn, leases, self.clock.time() + lease))

    async def _check_leases(self, leases: Sequence[Lease]) -> list[bool]:
        return await self._read(lambda conn: tx.check_leases(conn, leases))

    async def _release(self, leases: Sequence[Lease]) -> list[bool]:
        released = await self._write(lambda conn: tx.release(conn, leases, self.clock.time()))
        if any(released):
            self._work_available()
        return released

    async def _expired_leases(self, limit: int) -> list[Job]:
        rows = await self._read(lambda conn: conn.execute(Q["expired_leases"], (self.clock.time(), limit)).fetchall())
        return [job_of(row) for row in rows]

    # ---- reading and administration -------------------------------------------------------

    async def _get(self, job_id: str) -> Job | None:
        row = await self._read(lambda conn: conn.execute(Q["get_job"], (job_id,)).fetchone())
        return None if row is None else job_of(row)

    async def _get_many(self, job_ids: Sequence[str]) -> list[Job | None]:
        return await self._read(lambda conn: dependencies.jobs(conn, job_ids))

    async def _children(self, job_id: str, limit: int) -> list[str]:
        return await self._read(lambda conn: dependencies.children(conn, job_id, limit))

    async def _list_jobs(self, params: ListParams) -> Page:
        args = {"cursor": params.cursor or "", "state": None if params.state is None else params.state.value,
                "queue": params.queue, "task": params.task, "limit": params.limit + 1}  # fmt: skip
        rows = await self._read(lambda conn: conn.execute(Q["list_jobs"], args).fetchall())
        jobs = [job_of(row) for row in rows[: params.limit]]
        return Page(jobs, jobs[-1].id if len(rows) > params.limit else None)

    async def _replay_dead(self, job_id: str, capacity: int | None) -> Job:
        job = await self._write(lambda conn: tx.replay(conn, job_id, capacity, self.clock.time()), durable=True)
        self._work_available()
        return job

    async def _cancel(self, job_id: str) -> Job:
        return await self._finish(lambda conn: tx.cancel(conn, job_id, self.clock.time()), durable=True)

    async def _delete(self, job_ids: Sequence[str]) -> list[str]:
        return await self._write(lambda conn: tx.delete(conn, job_ids))

    async def _stats(self) -> Stats:
        return await self._read(tx.stats)

    async def _prune(self, params: PruneParams) -> PruneResult:
        return await self._write(lambda conn: tx.prune(conn, params, self.clock.time()), inline=False)

    async def _register_tasks(self, tasks: Sequence[RegisteredTask]) -> None:
        rows = [(task.name, task.to_json(), self.clock.time()) for task in tasks]
        await self._write(lambda conn: conn.executemany(Q["put_task"], rows), durable=True)

    async def _registered_tasks(self) -> list[RegisteredTask]:
        rows = await self._read(lambda conn: conn.execute(Q["get_tasks"]).fetchall())
        return [RegisteredTask.from_json(name, defaults) for name, defaults in rows]

    # ---- waiting for work -----------------------------------------------------------------

    async def _wait_for_work(self, queues: Sequence[str], timeout: float) -> bool:
        """Woken at once by enqueues in this process, and by those of other processes through the
        wake channel (:mod:`.wake`). Without the channel (no Unix sockets), commits by other
        processes are noticed by polling SQLite's ``data_version`` every ``CROSS_PROCESS_POLL``
        seconds (jittered). With it, only ``timeout`` (the worker's poll interval) bounds what a
        lost wake-up costs: a poll every 50 ms would find a change after every commit of the
        workers' own, and wake them all to claim in a transaction for nothing."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._listen()
        listening = self._channel.address is not None
        if not listening and self._data_version is None:
            self._data_version = await self._data_version_now()
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                self._signals += 1  # a poll: jobs may have come due meanwhile (delayed, retried)
                return False
            step = remaining if listening else min(remaining, CROSS_PROCESS_POLL * random.uniform(0.8, 1.2))
            if await self._wakeup.wait(step):
                return True
            if listening:
                continue
            version = await self._data_version_now()
            if version != self._data_version:
                self._data_version = version
                self._signals += 1
                return True

    async def _due_in(self, queues: Sequence[str]) -> float | None:
        now = self.clock.time()
        due = await self._read(lambda conn: limited.first_due(conn, queues, now))
        return None if due is None else due - self.clock.time()

    def _listen(self) -> None:
        self._channel.listen(self._wake, self._on_handed_message)

    async def _data_version_now(self) -> int:
        version: int = await self._read(lambda conn: conn.execute("PRAGMA data_version").fetchone()[0])
        return version
