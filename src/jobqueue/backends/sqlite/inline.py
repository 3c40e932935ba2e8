"""Writes that need no fsync, run on the caller's thread when SQLite's write lock is free.

A claim, a completion or (with ``durability=normal``) an enqueue is a transaction of some tens of
microseconds. Handing it to the writer thread costs two thread switches, each of which may wait on
a sleeping core or the GIL: more than the transaction itself, and most of a worker's
enqueue-to-start latency. So such a write first tries its own connection, right here: ``BEGIN
IMMEDIATE`` with no busy timeout either gets the lock at once or fails at once, and on failure (the
writer thread or another process holds the lock) the write goes to the writer thread as before,
where waiting for the lock does not block the event loop.

Writes that must be fsynced keep to the writer thread: there, one fsync serves a whole group.
This connection never checkpoints the WAL itself (a checkpoint is an fsync too). After every
``CHECKPOINT_EVERY`` commits it asks the owner for one, to be run off the event loop, and goes on
writing meanwhile; the owner's checkpoint also starts the WAL file over (see
``SQLiteBackend._checkpoint_and_restart``), unless a write raced it. Should ``HOLD_AFTER``
checkpoints in a row be raced, the next one runs on the writer thread with writes sent there too,
queued behind it, so that the file cannot grow for ever.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import TypeVar

from jobqueue.backends.sqlite.thread import is_busy, translate

T = TypeVar("T")

#: Commits between two requests for a WAL checkpoint (SQLite's own default is ~1000 pages).
CHECKPOINT_EVERY = 2000
#: Checkpoints in a row that did not start the WAL over, after which one holds writes (see above).
HOLD_AFTER = 2


class LockBusy(Exception):
    """The write lock was not free at once: run the write on the writer thread instead."""


class InlineWriter:
    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        checkpoint: Callable[[Callable[[bool], None], bool], None],
    ) -> None:
        """``checkpoint(done, hold)`` must checkpoint the WAL elsewhere and start it over, then call
        ``done(started_over)``; with ``hold``, on the writer thread (writes are sent there meanwhile)."""
        conn = connect()
        conn.execute("PRAGMA busy_timeout = 0")
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute("PRAGMA synchronous = NORMAL")
        self._conn: sqlite3.Connection | None = conn
        # Several threads may call (the event loop, a portal's caller); one at a time uses the
        # connection, and a thread that finds it in use goes to the writer thread instead.
        self._lock = threading.Lock()
        self._commits = 0
        self._checkpoint = checkpoint
        self._checkpointing = False  # one has been asked for and is not done yet
        self._hold = False  # writes wait for it (too many in a row missed starting the WAL over)
        self._missed = 0

    def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in a transaction of its own, or raise :class:`LockBusy` having done nothing."""
        if self._hold or not self._lock.acquire(blocking=False):
            raise LockBusy
        try:
            conn = self._conn
            if conn is None:
                raise LockBusy
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if is_busy(exc):
                    raise LockBusy from None
                raise translate(exc) from exc
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError) and is_busy(exc):
                    raise LockBusy from None  # rolled back: nothing happened, the thread may retry
                translated = translate(exc)
                if translated is exc:
                    raise
                raise translated from exc
            self._commits += 1
            if self._commits >= CHECKPOINT_EVERY and not self._checkpointing:
                self._commits = 0
                self._checkpointing = True
                self._hold = self._missed >= HOLD_AFTER
                self._checkpoint(self._checkpoint_done, self._hold)
            return result
        finally:
            self._lock.release()

    def _checkpoint_done(self, started_over: bool) -> None:
        self._missed = 0 if started_over else self._missed + 1
        self._checkpointing = self._hold = False

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
