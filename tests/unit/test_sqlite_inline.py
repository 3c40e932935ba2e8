"""Writes that need no fsync run on the caller's thread, and step aside when the lock is taken."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from jobqueue import NewJob
from jobqueue.backends import ClaimParams, Completion, Lease, SQLiteBackend
from jobqueue.backends.sqlite import inline


def new_jobs(n: int) -> list[NewJob]:
    return [NewJob(task="t", payload=i) for i in range(n)]


async def test_a_claim_waits_for_a_lock_held_elsewhere_without_blocking_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    async with SQLiteBackend(path) as backend:
        await backend.enqueue(new_jobs(1))
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        claim = asyncio.create_task(backend.claim(ClaimParams(["default"], "w1", 1, 30.0)))
        ticks = 0
        for _ in range(20):
            await asyncio.sleep(0.005)  # the loop keeps running while the claim waits
            ticks += 1
        assert ticks == 20 and not claim.done()
        other.execute("COMMIT")
        other.close()
        (job,) = await asyncio.wait_for(claim, 10)
        assert job.payload == 0


async def test_errors_raised_in_an_inline_write_reach_the_caller_and_leave_nothing(tmp_path: Path) -> None:
    async with SQLiteBackend(tmp_path / "jobs.db", durability="normal") as backend:

        def half_then_fail(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM jobs")
            raise LookupError("handler bug")

        await backend.enqueue(new_jobs(2))
        with pytest.raises(LookupError, match="handler bug"):
            await backend._write(half_then_fail)
        stats = await backend.stats()
        assert sum(stats.queues["default"].counts.values()) == 2  # rolled back


async def test_inline_commits_ask_for_wal_checkpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The inline connection never checkpoints by itself; without the requests the WAL file would
    # grow by every commit (~30 MB here). Writes this close together race most checkpoints, so
    # it is every HOLD_AFTER-th that starts the file over.
    monkeypatch.setattr(inline, "CHECKPOINT_EVERY", 50)
    path = tmp_path / "jobs.db"
    async with SQLiteBackend(path, durability="normal") as backend:
        for i in range(1500):
            await backend.enqueue([NewJob(task="t", payload="x" * 500)])
            if i % 100 == 0:
                jobs = await backend.claim(ClaimParams(["default"], "w1", 100, 30.0))
                await backend.complete([Completion(Lease(j.id, j.lease_token), None) for j in jobs])
        await backend.stats()
        assert (path.parent / "jobs.db-wal").stat().st_size < 8 << 20
