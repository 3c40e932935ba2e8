"""``sqlite:///path.db``: the embedded default backend.

Stdlib sqlite3 in WAL mode. A write that needs no fsync runs right on the caller's thread when
the write lock is free at once (see :mod:`.inline`); the others, and those that found the lock
taken, go to one writer thread that commits whatever is waiting as one transaction, one fsync for
the group (see :mod:`.thread`). Reads use a connection on its own thread, which WAL lets run
beside the writers. Several processes may open the same file: ``BEGIN IMMEDIATE`` serialises
their writers, and each check-then-insert runs inside that lock, so the idempotency and capacity
checks hold across processes. A new job can be handed straight to a worker waiting for one (see
:mod:`.handoff`), and the WAL is flushed in the background (see :mod:`.walsync`).

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
import heapq
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from jobqueue.backends.base import (
    DEFAULT_LEASE,
    Accepted,
    Capabilities,
    ClaimParams,
    Completion,
    Duplicate,
    EnqueueOutcome,
    Failure,
    Lease,
    ListParams,
    Page,
    PruneParams,
    PruneResult,
    Rejected,
    Stats,
    StatsBuilder,
)
from jobqueue.backends.sqlite.handoff import Handoffs
from jobqueue.backends.sqlite.inline import InlineWriter, LockBusy
from jobqueue.backends.sqlite.sql import Q, chunk_sizes, migrations, multi_row, read
from jobqueue.backends.sqlite.thread import ConnectionThread
from jobqueue.backends.sqlite.wake import MAX_MESSAGE, Sent, WakeChannel
from jobqueue.backends.sqlite.walsync import WalSyncer
from jobqueue.backends.wakeup import Wakeup
from jobqueue.clock import Clock, SystemClock
from jobqueue.errors import ConfigurationError, InvalidTransition, JobNotFound, QueueFull, ValidationError
from jobqueue.job import Job, JobState, NewJob, dump_json, load_json

Durability = Literal["full", "strict", "normal"]

_STATES = {s.value: s for s in JobState}
#: How often ``wait_for_work`` looks for commits made by other processes.
CROSS_PROCESS_POLL = 0.05


def _job(row: Sequence[Any]) -> Job:
    result = row[16]
    return Job(
        row[0], row[1], row[2], load_json(row[3]), row[4], _STATES[row[5]], row[6], row[7], row[8],
        row[9], row[10], row[11], row[12], row[13], row[14], row[15],
        None if result is None else load_json(result),
        row[17], row[18], row[19], row[20],
    )  # fmt: skip


class _Counts:
    """Net changes to ``queue_counts`` made by one operation, written once at its end."""

    __slots__ = ("_delta",)

    def __init__(self) -> None:
        self._delta: dict[tuple[str, str], int] = {}

    def add(self, queue: str, state: str, n: int = 1) -> None:
        key = (queue, state)
        self._delta[key] = self._delta.get(key, 0) + n

    def move(self, queue: str, old: str, new: str, n: int = 1) -> None:
        self.add(queue, old, -n)
        self.add(queue, new, n)

    def write(self, conn: sqlite3.Connection) -> None:
        changes = [(queue, state, n) for (queue, state), n in self._delta.items() if n]
        if changes:
            conn.executemany(Q["add_counts"], changes)


def _row(job: Job) -> list[Any]:
    """``job`` as the row :func:`_job` reads (payload and result as JSON text)."""
    return [
        job.id, job.queue, job.task, dump_json(job.payload).decode(), job.priority, job.state.value,
        job.retry_count, job.max_retries, job.idempotency_key, job.created_at, job.run_at, job.started_at,
        job.finished_at, job.last_attempt, job.next_retry_at, job.error,
        None if job.result is None else dump_json(job.result).decode(),
        job.timeout, job.lease_expires_at, job.worker_id, job.lease_token,
    ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Handed:
    """A job stored claimed for a waiting worker, to be sent to its process after the commit."""

    worker_id: str
    address: str
    job: Job


def _statements(script: str) -> list[str]:
    """Split a script into statements (triggers included) without executescript's implicit COMMIT."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    return [s for s in statements if s and not all(ln.lstrip().startswith("--") for ln in s.splitlines())]


def apply_schema(conn: sqlite3.Connection) -> None:
    """Create or migrate the schema; run inside the writer's transaction."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    steps = migrations()
    latest = steps[-1][0]
    if version > latest:
        raise ConfigurationError(
            f"database schema version {version} is newer than this jobqueue ({latest}); upgrade jobqueue"
        )
    if version == latest:
        return
    has_jobs = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'jobs'").fetchone()
    if version == 0 and not has_jobs:
        for statement in _statements(read("schema.sql")):
            conn.execute(statement)
    else:
        for number, script in steps:
            if number > version:
                for statement in _statements(script):
                    conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {latest}")


class SQLiteBackend:
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
        if durability not in ("full", "strict", "normal"):
            raise ConfigurationError(f"durability must be 'full', 'strict' or 'normal', not {durability!r}")
        self.path = Path(path)
        self.clock: Clock = clock or SystemClock()
        self.durability = durability
        self.busy_timeout = busy_timeout
        self._writer: ConnectionThread | None = None
        self._reader: ConnectionThread | None = None
        self._inline: InlineWriter | None = None
        self._checkpointer: threading.Thread | None = None
        self._walsync: WalSyncer | None = None
        self._wakeup = Wakeup()
        self._channel = WakeChannel(self.path)
        self._handoffs = Handoffs()
        #: Counts hints that claimable work may exist beyond what was handed (see claim).
        self._signals = 0
        self._data_version: int | None = None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout)
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        # Switching a new file to WAL answers "locked" at once, without the busy handler, while
        # another process is doing the same: several workers starting together on a fresh file.
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    conn.close()
                    raise
                time.sleep(random.uniform(0.005, 0.05))
        if str(mode).lower() != "wal":
            conn.close()
            raise ConfigurationError(f"{self.path}: SQLite could not use WAL (journal_mode={mode}); use a local disk")
        conn.execute("PRAGMA synchronous = FULL" if self.durability != "normal" else "PRAGMA synchronous = NORMAL")
        return conn

    async def open(self) -> None:
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
        if self.durability != "strict":  # under strict every commit is fsynced: all go to the writer
            self._inline = InlineWriter(self._connect, self._checkpoint_soon)
            self._walsync = WalSyncer(self.path.with_name(self.path.name + "-wal"))

    def _checkpoint_soon(self, done: Callable[[bool], None], hold: bool) -> None:
        """Checkpoint the WAL and start it over, off the event loop (it fsyncs), then
        ``done(started_over)``.

        On a short-lived thread and connections of its own, so that nothing queues behind its
        fsyncs (neither a write falling back to the writer thread nor the reader's polls); with
        ``hold``, on the writer thread, which the held writes then queue on.
        """

        def on_own_connections() -> None:
            try:
                conn, locker = self._connect(), self._connect()
            except sqlite3.Error:
                done(False)
                return
            restarted = False
            try:
                restarted = self._checkpoint_and_restart(conn, locker)
            except sqlite3.Error:
                pass  # the next request tries again
            finally:
                conn.close()
                locker.close()
                done(restarted)

        def on_writer(conn: sqlite3.Connection) -> None:
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                done(True)  # no write came during it: the next one starts the WAL over

        if self._writer is None:
            done(True)
        elif hold:
            self._writer.post(on_writer)
        else:
            self._checkpointer = threading.Thread(target=on_own_connections, name="jobqueue-sqlite-checkpoint")
            self._checkpointer.start()

    @staticmethod
    def _checkpoint_and_restart(conn: sqlite3.Connection, locker: sqlite3.Connection) -> bool:
        """Checkpoint the WAL and start it over; ``True`` if it was started over.

        The first write that begins after a complete checkpoint starts the WAL over and syncs its
        new header while it holds the write lock. Left to whichever enqueue or claim came next,
        that sync flushed every frame written since: a stall of ten milliseconds or more. So right
        after a complete checkpoint, a write that changes nothing (the same ``user_version``)
        starts the WAL over while it is clean, with a short sync. A frame written during the
        checkpoint keeps that from happening this time (the next one tries again; see
        ``inline.HOLD_AFTER``). Holding the write lock here to catch up with such frames instead
        stalled other processes for tens of milliseconds.
        """
        busy, log, moved = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if busy or log != moved:
            return False
        locker.execute("PRAGMA busy_timeout = 0")  # the lock is taken: someone else starts it over
        locker.execute("PRAGMA synchronous = NORMAL")
        locker.execute("BEGIN IMMEDIATE")
        try:
            (version,) = locker.execute("PRAGMA user_version").fetchone()
            locker.execute(f"PRAGMA user_version = {int(version)}")
        except BaseException:
            locker.execute("ROLLBACK")
            raise
        locker.execute("COMMIT")
        # Started over, the WAL holds that one frame and whatever was written since: fewer than
        # before. (This checkpoint takes no lock; it only reads how long the WAL is.)
        _, after, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return bool(0 <= after < log)

    async def close(self) -> None:
        for worker_id in list(self._handoffs.local):
            with contextlib.suppress(Exception):  # closing anyway; the jobs' leases expire
                await self.forget_worker(worker_id)
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

    async def __aenter__(self) -> SQLiteBackend:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _threads(self) -> tuple[ConnectionThread, ConnectionThread]:
        if self._writer is None or self._reader is None:
            raise ConfigurationError("the sqlite backend is not open; call `await backend.open()` first")
        return self._writer, self._reader

    async def _write(self, fn: Any, *, durable: bool = False, inline: bool = True) -> Any:
        """Run a write transaction: here and now if it needs no fsync and the lock is free (see
        :mod:`.inline`), else on the writer thread. ``inline=False`` for long ones (prune)."""
        writer = self._threads()[0]
        durable = durable and self.durability != "normal"
        if self._walsync is not None and not durable:
            self._walsync.touched()  # a commit without fsync: flushed in the background soon
        if inline and not durable and self._inline is not None:
            try:
                return self._inline.run(fn)
            except LockBusy:
                pass
        return await writer.call(fn, durable=durable)

    async def _read(self, fn: Any) -> Any:
        return await self._threads()[1].call(fn)

    def _work_available(self) -> None:
        """Wake waiting claimers: in this process at once, in others through the wake channel."""
        self._wake()
        self._channel.notify()

    def _wake(self) -> None:
        """Work may be claimable that nobody was handed: claims must look in the database."""
        self._signals += 1
        self._wakeup.wake()

    # ---- enqueue --------------------------------------------------------------------------

    async def enqueue(self, jobs: Sequence[NewJob], capacity: Mapping[str, int] | None = None) -> list[EnqueueOutcome]:
        if not jobs:
            return []
        stored: tuple[list[EnqueueOutcome], list[_Handed]] = await self._write(
            lambda conn: self._enqueue(conn, jobs, capacity), durable=True
        )
        outcomes, handed = stored
        if handed:
            await self._send_handed(handed)
        if sum(type(o) is Accepted for o in outcomes) > len(handed):
            self._work_available()
        return outcomes

    def _enqueue(
        self, conn: sqlite3.Connection, jobs: Sequence[NewJob], capacity: Mapping[str, int] | None
    ) -> tuple[list[EnqueueOutcome], list[_Handed]]:
        now = self.clock.time()
        # One job's first write is its own row, so a failed insert has written nothing: only a
        # batch needs the savepoint (two statements fewer on the path of every single enqueue).
        savepoint = len(jobs) > 1
        if savepoint:
            conn.execute("SAVEPOINT enqueue")
        try:
            outcomes, handed = self._insert_new(conn, jobs, capacity, now, stored={})
        except sqlite3.IntegrityError:
            # Some job ids are stored already: the same jobs sent again (a retry after a lost
            # answer). Rare, so found only now, off the fast path: they become Duplicates.
            if savepoint:
                conn.execute("ROLLBACK TO enqueue")
            ids = dump_json([job.id for job in jobs]).decode()
            stored = {row[0]: _job(row) for row in conn.execute(Q["existing_jobs"], (ids,))}
            outcomes, handed = self._insert_new(conn, jobs, capacity, now, stored)
        if savepoint:
            conn.execute("RELEASE enqueue")
        return outcomes, handed

    def _insert_new(
        self,
        conn: sqlite3.Connection,
        jobs: Sequence[NewJob],
        capacity: Mapping[str, int] | None,
        now: float,
        stored: dict[str, Job],
    ) -> tuple[list[EnqueueOutcome], list[_Handed]]:
        """Check keys and capacity, hand due jobs to waiting workers, insert the rest in one go."""
        waiting: dict[str, int] = {}
        nobody_waits: set[str] = set()  # queues no waiting worker has a free slot for (any more)
        handed: list[_Handed] = []
        keys_in_batch: dict[str, Job] = {}
        rows: list[tuple[Any, ...]] = []
        key_rows: list[tuple[str, str, float]] = []
        outcomes: list[EnqueueOutcome] = []
        counts = _Counts()
        for new in jobs:
            refusal = self._refusal(conn, new, now, stored, keys_in_batch, capacity, waiting)
            if refusal is not None:
                outcomes.append(refusal)
                continue
            key = new.idempotency_key
            due = new.due_at(now)
            state = JobState.SCHEDULED if due > now else JobState.PENDING
            payload = new.payload_json.decode()
            taken = None
            if state is JobState.PENDING and len(payload) < MAX_MESSAGE // 2 and new.queue not in nobody_waits:
                taken = self._hand(conn, new, payload, now)
                if taken is None:
                    nobody_waits.add(new.queue)
            if taken is not None:
                handed.append(taken)
                job = taken.job
            else:
                rows.append(
                    (new.id, new.queue, new.task, payload, new.priority, state.value, new.max_retries,
                     key, now, due, new.timeout)
                )  # fmt: skip
                job = Job(
                    new.id, new.queue, new.task, load_json(new.payload_json), new.priority, state, 0,
                    new.max_retries, key, now, due, timeout=new.timeout,
                )  # fmt: skip
            stored[new.id] = job  # the same NewJob twice in one batch: the second is a Duplicate
            counts.add(new.queue, job.state.value)
            if key is not None:
                key_rows.append((key, new.id, now + new.key_ttl))
                keys_in_batch[key] = job
            outcomes.append(Accepted(job))
        start = 0
        for size in chunk_sizes(len(rows)):
            chunk = rows[start : start + size]
            conn.execute(multi_row("insert_job", size), [value for row in chunk for value in row])
            start += size
        if key_rows:
            conn.executemany(Q["put_key"], key_rows)
        counts.write(conn)
        return outcomes, handed

    @staticmethod
    def _refusal(
        conn: sqlite3.Connection,
        new: NewJob,
        now: float,
        stored: dict[str, Job],
        keys_in_batch: dict[str, Job],
        capacity: Mapping[str, int] | None,
        waiting: dict[str, int],
    ) -> Duplicate | Rejected | None:
        """Why ``new`` is not to be stored (its id or key is taken, its queue full), if it is not."""
        same = stored.get(new.id)
        if same is not None:
            return Duplicate(same)
        key = new.idempotency_key
        if key is not None:
            holder = keys_in_batch.get(key)
            if holder is None:
                row = conn.execute(Q["get_key"], (key, now)).fetchone()
                holder = None if row is None else _job(row)
            if holder is not None:
                return Duplicate(holder)
        limit = None if capacity is None else capacity.get(new.queue)
        if limit is not None:
            depth = waiting.get(new.queue)
            if depth is None:
                depth = conn.execute(Q["waiting_count"], (new.queue,)).fetchone()[0]
            if depth >= limit:
                return Rejected(new.queue, limit)
            waiting[new.queue] = depth + 1
        return None

    @staticmethod
    def _hand(conn: sqlite3.Connection, new: NewJob, payload: str, now: float) -> _Handed | None:
        """Store a new due job already claimed by a waiting worker, if one has a free slot."""
        args = {
            "id": new.id, "queue": new.queue, "task": new.task, "payload": payload, "priority": new.priority,
            "max_retries": new.max_retries, "key": new.idempotency_key, "now": now, "timeout": new.timeout,
        }  # fmt: skip
        row = conn.execute(Q["insert_handed_job"], args).fetchone()
        if row is None:
            return None
        worker_id, expires = row
        (address,) = conn.execute(Q["took_handed_job"], {"id": new.id, "worker": worker_id}).fetchone()
        job = Job(
            new.id, new.queue, new.task, load_json(new.payload_json), new.priority, JobState.PROCESSING, 0,
            new.max_retries, new.idempotency_key, now, now, started_at=now, last_attempt=now,
            timeout=new.timeout, lease_expires_at=expires, worker_id=worker_id, lease_token=1,
        )  # fmt: skip
        return _Handed(worker_id, address, job)

    async def _send_handed(self, handed: Sequence[_Handed]) -> None:
        """Send each handed job to its worker's process; give back those of processes gone."""
        gone: set[str] = set()
        for item in handed:
            if item.address == self._channel.address:  # a worker of this very process
                if self._handoffs.deliver(item.worker_id, item.job):
                    self._wakeup.wake()
                continue
            if item.worker_id in gone:
                continue
            sent = self._channel.send_job(item.address, dump_json([item.worker_id, _row(item.job)]))
            if sent is Sent.GONE:
                gone.add(item.worker_id)
            # Sent.FULL: that process is alive but behind; its worker's next claim takes the job.
        if gone:
            released: int = await self._write(lambda conn: sum(self._unregister(conn, w, set()) for w in gone))
            if released:
                self._work_available()

    def _unregister(self, conn: sqlite3.Connection, worker_id: str, taken: set[str]) -> int:
        """Remove a worker's registration and give back the jobs handed to it, but ``taken``."""
        row = conn.execute(Q["unregister_waiting"], (worker_id,)).fetchone()
        ids = [] if row is None else [i for i in load_json(row[0]) if i not in taken]
        if not ids:
            return 0
        counts = _Counts()
        queues = conn.execute(Q["release_handed"], (dump_json(ids).decode(), worker_id)).fetchall()
        for (queue,) in queues:
            counts.move(queue, "PROCESSING", "PENDING")
        counts.write(conn)
        return len(queues)

    def _on_handed_message(self, message: bytes) -> None:
        try:
            worker_id, row = load_json(message)
            job = _job(row)
        except (ValueError, TypeError, KeyError, IndexError):
            return  # not ours to read: its job is still in the worker's registration
        if self._handoffs.deliver(worker_id, job):
            self._wakeup.wake()

    async def forget_worker(self, worker_id: str) -> None:
        if worker_id not in self._handoffs.local:
            return
        taken = self._handoffs.forget(worker_id)  # from now on, messages for it are dropped
        released: int = await self._write(lambda conn: self._unregister(conn, worker_id, taken))
        if released:
            self._work_available()

    # ---- worker operations ----------------------------------------------------------------

    async def claim(self, params: ClaimParams) -> list[Job]:
        if params.limit <= 0:
            return []
        worker_id, handoffs = params.worker_id, self._handoffs
        delivered = handoffs.take(worker_id, params.limit)
        if delivered:
            return delivered  # handed to it and already here: no transaction at all
        if params.wait:
            self._listen()
            handoffs.local.add(worker_id)
            if handoffs.still_waiting(worker_id, params.limit, self._signals):
                # Still registered with slots to spare, and nothing announced work that was not
                # handed: a claim would find nothing (the next poll or wake-up looks again).
                return []
        signals = self._signals
        handed_ids: list[str] = []
        handed: list[Job] = []
        registered_now = False

        def run(conn: sqlite3.Connection) -> list[Job]:
            nonlocal registered_now
            handed_ids.clear()
            handed.clear()
            registered_now = False
            limit = params.limit
            registered = None
            if worker_id in handoffs.local:
                registered = conn.execute(Q["get_waiting"], (worker_id,)).fetchone()
                if registered is not None and registered[1] != "[]":
                    handed_ids.extend(load_json(registered[1]))
                    rows = conn.execute(Q["handed_jobs"], (registered[1], worker_id)).fetchall()
                    handed.extend(_job(r) for r in rows if not handoffs.delivered(worker_id, r[0]))
                    limit -= len(handed)
            jobs = self._claim(conn, params, limit) if limit > 0 else []
            address = self._channel.address
            if not params.wait or jobs or handed or address is None:
                if registered is not None:
                    conn.execute(Q["unregister_waiting"], (worker_id,))
                return jobs
            registered_now = True
            if registered != (params.limit, "[]"):  # unchanged: no write, which would wake our poller
                queues = dump_json(list(dict.fromkeys(params.queues))).decode()
                conn.execute(Q["register_waiting"], (worker_id, address, queues, params.limit, params.lease))
            return jobs

        jobs: list[Job] = await self._write(run)
        handoffs.registered(worker_id, params.limit if registered_now else 0, signals)
        if handed_ids:
            return handoffs.settle(worker_id, handed_ids, handed) + jobs
        return jobs

    def _claim(self, conn: sqlite3.Connection, params: ClaimParams, limit: int) -> list[Job]:
        now = self.clock.time()
        candidates: list[tuple[int, int, str]] = []  # (-priority, seq, state): claim order across queues
        for queue in dict.fromkeys(params.queues):
            rows = conn.execute(Q["claim_candidates"], (queue, now, limit)).fetchall()
            candidates.extend((-priority, seq, state) for seq, priority, state in rows)
        chosen = heapq.nsmallest(limit, candidates) if len(params.queues) > 1 else candidates
        if not chosen:
            return []
        args = {
            "expires": now + params.lease,
            "worker": params.worker_id,
            "now": now,
            "seqs": dump_json([seq for _, seq, _ in chosen]).decode(),
        }
        order = {seq: (i, state) for i, (_, seq, state) in enumerate(chosen)}
        rows = conn.execute(Q["claim_jobs"], args).fetchall()
        rows.sort(key=lambda row: order[row[21]][0])  # RETURNING order is unspecified
        counts = _Counts()
        for row in rows:
            counts.move(row[1], order[row[21]][1], "PROCESSING")
        counts.write(conn)
        return [_job(row) for row in rows]

    async def complete(self, completions: Sequence[Completion]) -> list[bool]:
        if not completions:
            return []
        try:
            items = dump_json(
                [[c.lease.job_id, c.lease.token, dump_json(c.result).decode()] for c in completions]
            ).decode()
        except TypeError as exc:
            raise ValidationError("result", f"must be JSON-serializable ({exc})") from None

        def run(conn: sqlite3.Connection) -> set[str]:
            rows = conn.execute(Q["complete_jobs"], {"items": items, "now": self.clock.time()}).fetchall()
            counts = _Counts()
            for _, queue in rows:
                counts.move(queue, "PROCESSING", "COMPLETED")
            counts.write(conn)
            return {job_id for job_id, _ in rows}

        done: set[str] = await self._write(run)
        return [c.lease.job_id in done for c in completions]

    async def fail(self, failures: Sequence[Failure]) -> list[bool]:
        if not failures:
            return []

        def run(conn: sqlite3.Connection) -> list[bool]:
            now = self.clock.time()
            done = []
            counts = _Counts()
            for f in failures:
                args = {"error": f.error, "now": now, "id": f.lease.job_id, "token": f.lease.token,
                        "if_expired": f.if_expired}  # fmt: skip
                if f.retry_delay is None:
                    row, target = conn.execute(Q["dead_letter_job"], args).fetchone(), "DEAD_LETTERED"
                else:
                    due = now + max(0.0, f.retry_delay)
                    row, target = conn.execute(Q["retry_job"], {**args, "due": due}).fetchone(), "FAILED"
                if row is not None:
                    counts.move(row[0], "PROCESSING", target)
                done.append(row is not None)
            counts.write(conn)
            return done

        done: list[bool] = await self._write(run)
        self._wake()  # a retry may be due at once
        return done

    async def heartbeat(self, leases: Sequence[Lease], lease: float = DEFAULT_LEASE) -> list[bool]:
        if not leases:
            return []

        def run(conn: sqlite3.Connection) -> list[bool]:
            expires = self.clock.time() + lease
            return [conn.execute(Q["heartbeat_job"], (expires, ref.job_id, ref.token)).rowcount == 1 for ref in leases]

        owned: list[bool] = await self._write(run)
        return owned

    async def release(self, leases: Sequence[Lease]) -> list[bool]:
        if not leases:
            return []

        def run(conn: sqlite3.Connection) -> list[bool]:
            now = self.clock.time()
            counts = _Counts()
            released = []
            for ref in leases:
                row = conn.execute(Q["release_job"], (now, ref.job_id, ref.token)).fetchone()
                if row is not None:
                    counts.move(row[0], "PROCESSING", "PENDING")
                released.append(row is not None)
            counts.write(conn)
            return released

        released: list[bool] = await self._write(run)
        if any(released):
            self._work_available()
        return released

    async def expired_leases(self, limit: int = 1000) -> list[Job]:
        rows = await self._read(lambda conn: conn.execute(Q["expired_leases"], (self.clock.time(), limit)).fetchall())
        return [_job(row) for row in rows]

    # ---- reading and administration -------------------------------------------------------

    async def get(self, job_id: str) -> Job | None:
        row = await self._read(lambda conn: conn.execute(Q["get_job"], (job_id,)).fetchone())
        return None if row is None else _job(row)

    async def list_jobs(self, params: ListParams) -> Page:
        args = {
            "cursor": params.cursor or "",
            "state": None if params.state is None else params.state.value,
            "queue": params.queue,
            "task": params.task,
            "limit": params.limit + 1,
        }
        rows = await self._read(lambda conn: conn.execute(Q["list_jobs"], args).fetchall())
        jobs = [_job(row) for row in rows[: params.limit]]
        return Page(jobs, jobs[-1].id if len(rows) > params.limit else None)

    async def replay_dead(self, job_id: str, capacity: int | None = None) -> Job:
        def run(conn: sqlite3.Connection) -> Job:
            now = self.clock.time()
            row = conn.execute(Q["get_job"], (job_id,)).fetchone()
            if row is None:
                raise JobNotFound(job_id)
            job = _job(row)
            if job.state is not JobState.DEAD_LETTERED:
                raise InvalidTransition(job_id, job.state, "replay")
            if capacity is not None and conn.execute(Q["waiting_count"], (job.queue,)).fetchone()[0] >= capacity:
                raise QueueFull(job.queue, capacity)
            replayed = _job(conn.execute(Q["replay_job"], (now, job_id)).fetchone())
            counts = _Counts()
            counts.move(job.queue, "DEAD_LETTERED", "PENDING")
            counts.write(conn)
            return replayed

        job: Job = await self._write(run, durable=True)
        self._work_available()
        return job

    async def cancel(self, job_id: str) -> Job:
        def run(conn: sqlite3.Connection) -> Job:
            current = conn.execute(Q["get_job"], (job_id,)).fetchone()
            if current is None:
                raise JobNotFound(job_id)
            row = conn.execute(Q["cancel_job"], (self.clock.time(), job_id)).fetchone()
            if row is None:
                raise InvalidTransition(job_id, current[5], "cancel")
            counts = _Counts()
            counts.move(current[1], current[5], "CANCELLED")
            counts.write(conn)
            return _job(row)

        job: Job = await self._write(run, durable=True)
        return job

    async def stats(self) -> Stats:
        def run(conn: sqlite3.Connection) -> Stats:
            conn.execute("BEGIN")  # one snapshot for both reads
            try:
                builder = StatsBuilder()
                for queue, state, n in conn.execute(Q["queue_counts"]):
                    builder.add(queue, state, n)
                (keys,) = conn.execute(Q["key_count"]).fetchone()
            finally:
                conn.execute("COMMIT")
            return builder.build(keys)

        stats: Stats = await self._read(run)
        return stats

    async def wait_for_work(self, queues: Sequence[str], timeout: float) -> bool:
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

    def _listen(self) -> None:
        self._channel.listen(self._wake, self._on_handed_message)

    async def _data_version_now(self) -> int:
        version: int = await self._read(lambda conn: conn.execute("PRAGMA data_version").fetchone()[0])
        return version

    async def prune(self, params: PruneParams) -> PruneResult:
        cutoffs = [
            (JobState.COMPLETED, params.completed_before),
            (JobState.DEAD_LETTERED, params.dead_before),
            (JobState.CANCELLED, params.cancelled_before),
        ]

        def run(conn: sqlite3.Connection) -> PruneResult:
            counts = _Counts()
            jobs = 0
            for state, cutoff in cutoffs:
                if cutoff is not None:
                    for (queue,) in conn.execute(Q["prune_jobs"], (state.value, cutoff)).fetchall():
                        counts.add(queue, state.value, -1)
                        jobs += 1
            counts.write(conn)
            keys = conn.execute(Q["prune_keys"], (self.clock.time(),)).rowcount
            return PruneResult(jobs=jobs, keys=keys)

        result: PruneResult = await self._write(run, inline=False)
        return result
