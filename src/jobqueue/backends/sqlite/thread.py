"""One SQLite connection owned by one thread, fed by the event loop.

The writer thread does group commit: it takes every write waiting in its inbox, runs them in a
single ``BEGIN IMMEDIATE`` transaction (each inside a savepoint, so one failing operation does not
undo the others), commits once, and only then answers each caller. Fifty producers enqueueing at
once therefore share one fsync instead of paying fifty.

Waiting for the write lock: SQLite's own busy handler sleeps 1, 2, 5, 10... ms between tries, so
a writer that meets a lock held for 50 us would wait a millisecond or more. The writer thread
instead retries ``BEGIN IMMEDIATE`` itself, after 50 us and then up to every 0.5 ms, until ``busy_timeout``.

Durability per commit: an operation marked ``durable`` (it accepts or revives a job) is committed
with ``synchronous=FULL``; worker state changes use ``NORMAL`` unless the backend was opened with
``durability="full"`` for everything. WAL appends frames in order, so a FULL commit also makes every
earlier NORMAL commit durable.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from jobqueue.errors import BackendError, BackendUnavailable

T = TypeVar("T")

#: Upper bound on operations committed together, so one commit cannot grow without limit.
MAX_GROUP = 256
#: First and longest pause between two tries for the write lock, seconds.
FIRST_PAUSE, LONGEST_PAUSE = 50e-6, 0.0005


@dataclass(slots=True)
class _Request(Generic[T]):
    fn: Callable[[sqlite3.Connection], T]
    durable: bool
    loop: asyncio.AbstractEventLoop | None  # None: nobody waits for the answer (see post)
    future: asyncio.Future[T] | None
    result: Any = None
    error: BaseException | None = field(default=None)


def _settle(request: _Request[Any]) -> None:
    assert request.future is not None
    if request.future.done():  # the caller was cancelled; the write happened all the same
        return
    if request.error is not None:
        request.future.set_exception(request.error)
    else:
        request.future.set_result(request.result)


def is_busy(exc: sqlite3.OperationalError) -> bool:
    message = str(exc)
    return "locked" in message or "busy" in message


def translate(exc: BaseException) -> BaseException:
    """Driver errors become jobqueue errors at this boundary; others pass through."""
    if isinstance(exc, sqlite3.OperationalError):
        if is_busy(exc):
            return BackendUnavailable(f"sqlite database is busy: {exc}")
        return BackendError(f"sqlite: {exc}")
    if isinstance(exc, sqlite3.DatabaseError):
        return BackendError(f"sqlite: {exc}")
    return exc


class ConnectionThread:
    """Runs callables against a private connection on a dedicated thread.

    ``transactional=True`` makes it the writer (group commit as described above); otherwise each
    callable runs on its own, for reads.
    """

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        *,
        transactional: bool,
        name: str,
        always_full: bool,
        busy_timeout: float = 30.0,
    ) -> None:
        self._connect = connect
        self._transactional = transactional
        self._always_full = always_full
        self._busy_timeout = busy_timeout
        self._inbox: queue.SimpleQueue[_Request[Any] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = threading.Event()
        self._startup_error: BaseException | None = None
        self.connection: sqlite3.Connection | None = None
        self._synchronous: str | None = None

    def start(self) -> None:
        self._thread.start()
        self._started.wait()
        if self._startup_error is not None:
            raise translate(self._startup_error)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._inbox.put(None)
            self._thread.join()

    async def call(self, fn: Callable[[sqlite3.Connection], T], *, durable: bool = False) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._inbox.put(_Request(fn, durable, loop, future))
        return await future

    def post(self, fn: Callable[[sqlite3.Connection], object]) -> None:
        """Run ``fn`` on the thread when it gets to it, without waiting for it (errors are dropped)."""
        self._inbox.put(_Request(fn, False, None, None))

    def _run(self) -> None:
        try:
            self.connection = self._connect()
            if self._transactional:
                self.connection.execute("PRAGMA busy_timeout = 0")  # _begin waits for the lock itself
        except BaseException as exc:
            self._startup_error = exc
            self._started.set()
            return
        self._started.set()
        try:
            stop = False
            while not stop:
                batch, stop = self._next_batch()
                if not batch:
                    break
                posted = [r for r in batch if r.loop is None]
                if posted:  # run outside any transaction (a WAL checkpoint can't run inside one)
                    batch = [r for r in batch if r.loop is not None]
                    for request in posted:
                        self._run_one(self.connection, request)
                if not batch:
                    continue
                if self._transactional:
                    self._commit_group(self.connection, batch)
                else:
                    for request in batch:
                        self._run_one(self.connection, request)
                for request in batch:
                    if request.loop is not None:
                        request.loop.call_soon_threadsafe(_settle, request)
        finally:
            self.connection.close()

    def _next_batch(self) -> tuple[list[_Request[Any]], bool]:
        """Wait for a request, then take every one waiting behind it; ``True`` once told to stop."""
        first = self._inbox.get()
        if first is None:
            return [], True
        batch = [first]
        while len(batch) < MAX_GROUP:
            try:
                nxt = self._inbox.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                return batch, True
            batch.append(nxt)
        return batch, False

    @staticmethod
    def _run_one(conn: sqlite3.Connection, request: _Request[Any]) -> None:
        try:
            request.result = request.fn(conn)
        except BaseException as exc:
            request.error = translate(exc)

    def _begin(self, conn: sqlite3.Connection) -> None:
        pause, deadline = FIRST_PAUSE, time.monotonic() + self._busy_timeout
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not is_busy(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE)

    def _commit_group(self, conn: sqlite3.Connection, batch: list[_Request[Any]]) -> None:
        synchronous = "FULL" if self._always_full or any(r.durable for r in batch) else "NORMAL"
        try:
            if synchronous != self._synchronous:
                conn.execute(f"PRAGMA synchronous = {synchronous}")
                self._synchronous = synchronous
            self._begin(conn)
        except sqlite3.Error as exc:
            for request in batch:
                request.error = translate(exc)
            return
        single = len(batch) == 1
        for request in batch:
            if single:
                self._run_one(conn, request)
                continue
            conn.execute("SAVEPOINT op")
            self._run_one(conn, request)
            if request.error is not None:
                conn.execute("ROLLBACK TO op")
            conn.execute("RELEASE op")
        try:
            if single and batch[0].error is not None:
                conn.execute("ROLLBACK")
            else:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            # Nothing was committed: no caller may believe its write happened.
            for request in batch:
                request.error = translate(exc)
                request.result = None
