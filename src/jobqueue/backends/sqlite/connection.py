"""Connections to the database file: WAL and durability settings, the schema, WAL checkpoints.

Every connection of the backend (the writer thread's, the reader's, the inline writer's and the
checkpointer's) is made by :func:`connect`. Checkpoints run off the event loop, on a short-lived
thread and connections of their own (:class:`Checkpointer`), because they fsync.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from jobqueue.backends.sqlite.sql import migrations, read
from jobqueue.backends.sqlite.thread import ConnectionThread
from jobqueue.errors import ConfigurationError

Durability = Literal["full", "strict", "normal"]
DURABILITIES = ("full", "strict", "normal")


def connect(path: Path, durability: Durability, busy_timeout: float) -> sqlite3.Connection:
    """A connection in WAL mode, fsyncing commits unless ``durability`` is ``"normal"``."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=busy_timeout)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    # Switching a new file to WAL answers "locked" at once, without the busy handler, while
    # another process is doing the same: several workers starting together on a fresh file.
    deadline = time.monotonic() + busy_timeout
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
        raise ConfigurationError(f"{path}: SQLite could not use WAL (journal_mode={mode}); use a local disk")
    conn.execute("PRAGMA synchronous = FULL" if durability != "normal" else "PRAGMA synchronous = NORMAL")
    return conn


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


class Checkpointer:
    """Checkpoints the WAL and starts it over, off the event loop (a checkpoint fsyncs).

    On a short-lived thread and connections of its own, so that nothing queues behind its fsyncs
    (neither a write falling back to the writer thread nor the reader's polls); with ``hold``, on
    the writer thread, which the held writes then queue on (see :mod:`.inline`).
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection], writer: ConnectionThread) -> None:
        self._connect = connect
        self._writer = writer
        self._thread: threading.Thread | None = None

    def request(self, done: Callable[[bool], None], hold: bool) -> None:
        """Checkpoint soon, then call ``done(started_over)``."""

        def on_own_connections() -> None:
            try:
                conn, locker = self._connect(), self._connect()
            except sqlite3.Error:
                done(False)
                return
            restarted = False
            try:
                restarted = _checkpoint_and_restart(conn, locker)
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

        if hold:
            self._writer.post(on_writer)
        else:
            self._thread = threading.Thread(target=on_own_connections, name="jobqueue-sqlite-checkpoint")
            self._thread.start()

    def join(self) -> None:
        """Wait for a checkpoint under way (the backend is closing)."""
        if self._thread is not None:
            self._thread.join()


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
