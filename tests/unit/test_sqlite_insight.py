"""SQLite's insight operations beyond the conformance suite: the arrival counter keeps counting
when the last jobs are deleted (SQLite hands their seqs out again), failed attempts are trimmed
across replays and leave no rows behind their jobs, expired worker reports are dropped from the
file, and a store made before them opens with its jobs."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest

from jobqueue import JobState, NewJob
from jobqueue.backends import Completion, Failure, PruneParams, SQLiteBackend
from jobqueue.backends.params import MAX_ATTEMPT_ERRORS
from jobqueue.backends.sqlite.connection import _statements
from jobqueue.backends.sqlite.sql import migrations
from jobqueue.clock import FakeClock
from jobqueue.testing.helpers import claim, dead_job, lease_of, put

S = JobState


@pytest.fixture
async def backend(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SQLiteBackend]:
    async with SQLiteBackend(tmp_path / "jobs.db", clock=clock) as opened:
        yield opened


def rows(backend: SQLiteBackend, table: str) -> int:
    with closing(sqlite3.connect(backend.path)) as conn:
        (n,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(n)


async def test_the_arrival_counter_counts_on_after_the_last_jobs_are_deleted(
    backend: SQLiteBackend, clock: FakeClock
) -> None:
    jobs = await put(backend, *(NewJob(n) for n in range(3)))
    assert await backend.enqueued_total() == 3
    for claimed in await claim(backend, limit=3):
        await backend.complete([Completion(lease_of(claimed), None)])
    assert await backend.delete([jobs[-1].id]) == [True]  # the last seq: SQLite gives it out again
    assert await backend.enqueued_total() == 3
    await put(backend, NewJob(3), NewJob(4))
    assert await backend.enqueued_total() == 5
    for claimed in await claim(backend, limit=2):
        await backend.complete([Completion(lease_of(claimed), None)])
    clock.advance(1)
    await backend.prune(PruneParams(completed_before=clock.time()))  # every job: the table is empty
    assert await backend.get(jobs[0].id) is None
    assert await backend.enqueued_total() == 5
    await put(backend, NewJob(5))
    assert await backend.enqueued_total() == 6
    assert await backend.delete(["no-such-job"]) == [False]
    assert await backend.enqueued_total() == 6


async def test_the_latest_attempts_are_kept_across_replays(backend: SQLiteBackend) -> None:
    (job,) = await put(backend, NewJob("x", max_retries=2))
    errors = []
    for life in range(8):  # 3 attempts a life, 24 in all
        for attempt in range(1, 4):
            (claimed,) = await claim(backend)
            delay = None if attempt == 3 else 0.0
            await backend.fail([Failure(lease_of(claimed), f"{life}.{attempt}", delay, traceback="tb")])
            errors.append((attempt, f"{life}.{attempt}"))
        await backend.replay_dead(job.id)
    kept = await backend.attempt_errors(job.id)
    assert [(e.attempt, e.error) for e in kept] == errors[-MAX_ATTEMPT_ERRORS:]
    assert rows(backend, "attempt_errors") == MAX_ATTEMPT_ERRORS


async def test_a_batch_records_only_the_failures_that_hold(backend: SQLiteBackend, clock: FakeClock) -> None:
    first, second, third = await put(backend, *(NewJob(n, max_retries=1) for n in range(3)))
    a, b, c = await claim(backend, limit=3)
    await backend.heartbeat([lease_of(b)], lease=60)
    clock.advance(31)  # a's and c's leases expired, b's renewed
    done = await backend.fail(
        [
            Failure(lease_of(a), "expired", 0.0, if_expired=True),
            Failure(lease_of(b), "expired", 0.0, if_expired=True),  # the heartbeat won
            Failure(lease_of(c), "boom", None),
            Failure(lease_of(c), "boom again", None),  # the same lease twice: spent by the first
        ]
    )
    assert done == [True, False, True, False]
    assert [e.error for e in await backend.attempt_errors(first.id)] == ["expired"]
    assert await backend.attempt_errors(second.id) == []
    assert [(e.error, e.worker_id) for e in await backend.attempt_errors(third.id)] == [("boom", "worker-1")]
    stored = await backend.get(second.id)
    assert stored is not None and stored.state is S.PROCESSING


async def test_deleted_and_pruned_jobs_leave_no_attempts(backend: SQLiteBackend, clock: FakeClock) -> None:
    deleted, pruned, kept = await dead_job(backend), await dead_job(backend), await dead_job(backend)
    assert rows(backend, "attempt_errors") == 3
    assert await backend.delete([deleted.id]) == [True]
    clock.advance(10)
    (fresh,) = await put(backend, NewJob("y", max_retries=0))
    (claimed,) = await claim(backend)
    await backend.fail([Failure(lease_of(claimed), "later", None)])
    await backend.prune(PruneParams(dead_before=clock.time() - 5))  # pruned and kept, not fresh
    assert rows(backend, "attempt_errors") == 1
    assert [e.error for e in await backend.attempt_errors(fresh.id)] == ["later"]
    assert {await backend.get(j.id) for j in (deleted, pruned, kept)} == {None}


async def test_expired_worker_reports_are_dropped_from_the_file(backend: SQLiteBackend, clock: FakeClock) -> None:
    for worker in ("w-1", "w-2", "w-3"):
        await backend.report_worker(worker, "{}", ttl=10)
    clock.advance(11)
    assert await backend.worker_reports() == []
    assert rows(backend, "worker_reports") == 3  # the listing only leaves them out
    await backend.report_worker("w-4", '{"n": 4}', ttl=10)
    assert rows(backend, "worker_reports") == 1
    assert await backend.worker_reports() == ['{"n": 4}']


async def test_a_store_made_before_insight_opens_with_its_jobs(tmp_path: Path, clock: FakeClock) -> None:
    db = tmp_path / "jobs.db"
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        for number, script in migrations():
            if number > 9:
                break
            for statement in _statements(script):
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 9")
        for seq, job_id in ((1, "old-1"), (7, "old-7")):
            conn.execute(
                "INSERT INTO jobs (seq, id, queue, task, payload, priority, state, max_retries, created_at, run_at) "
                "VALUES (?, ?, 'default', 't', '1', 0, 'PENDING', 3, 0, 0)",
                (seq, job_id),
            )
        conn.execute("INSERT INTO queue_counts VALUES ('default', 'PENDING', 2)")
    async with SQLiteBackend(db, clock=clock) as backend:
        assert await backend.enqueued_total() == 7
        first, _ = await claim(backend, limit=2)
        assert first.id == "old-1"
        await backend.fail([Failure(lease_of(first), "boom", 0.0)])
        (error,) = await backend.attempt_errors("old-1")
        assert (error.attempt, error.error, error.worker_id) == (1, "boom", "worker-1")
        assert await backend.worker_reports() == []
