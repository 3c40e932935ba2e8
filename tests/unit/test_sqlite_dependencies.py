"""SQLite's ``depends_on`` where the conformance suite cannot look: two backends on one file (two
processes, as far as SQLite knows), the hand-off, atomicity, an upgraded database, fan-in at full size."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

from jobqueue import Accepted, Duplicate, EnqueueOutcome, Job, JobState, NewJob
from jobqueue.backends import ClaimParams, Completion, Lease, PruneParams, SQLiteBackend
from jobqueue.backends.sqlite import dependencies
from jobqueue.backends.sqlite.connection import _statements
from jobqueue.backends.sqlite.rows import Counts
from jobqueue.backends.sqlite.sql import migrations
from jobqueue.errors import BackendError
from jobqueue.job import MAX_PARENTS

S = JobState


def job_of(outcome: EnqueueOutcome) -> Job:
    assert isinstance(outcome, Accepted)
    return outcome.job


def lease_of(job: Job) -> Lease:
    return Lease(job.id, job.lease_token)


def params(worker: str, limit: int = 100) -> ClaimParams:
    return ClaimParams(["default"], worker, limit, 30.0)


async def test_children_enqueued_in_one_process_as_another_completes_their_parents_all_run(
    pair: tuple[SQLiteBackend, SQLiteBackend],
) -> None:
    producer, worker = pair
    parents = [job_of(o) for o in await producer.enqueue([NewJob(n) for n in range(200)])]
    claimed = await worker.claim(params("w", 200))

    async def enqueue_children() -> list[Job]:
        children = []
        for parent in parents:
            (outcome,) = await producer.enqueue([NewJob("c", depends_on=[parent.id], priority=-1)])
            children.append(job_of(outcome))
        return children

    async def complete_parents() -> None:
        for job in claimed:
            assert await worker.complete([Completion(lease_of(job), None)]) == [True]

    children, _ = await asyncio.gather(enqueue_children(), complete_parents())
    states = {job.id: job.state for job in await worker.get_many([child.id for child in children]) if job}
    assert set(states.values()) == {S.PENDING}
    assert (await worker.stats()).queues["default"].counts[S.BLOCKED] == 0


async def test_a_child_released_in_one_process_reaches_a_worker_waiting_in_another(
    pair: tuple[SQLiteBackend, SQLiteBackend],
) -> None:
    producer, worker = pair
    (parent,) = [job_of(o) for o in await producer.enqueue([NewJob("p")])]
    (child,) = [job_of(o) for o in await producer.enqueue([NewJob("c", depends_on=[parent.id])])]
    (attempt,) = await producer.claim(params("p"))
    assert await worker.claim_or_wait(params("w")) == []  # registered: enqueues would hand it jobs
    assert not await worker.wait_for_work(["default"], 0.01)
    waiter = asyncio.create_task(worker.wait_for_work(["default"], 30))
    await asyncio.sleep(0)
    assert await producer.complete([Completion(lease_of(attempt), None)]) == [True]
    assert await asyncio.wait_for(waiter, 5) is True
    (started,) = await worker.claim_or_wait(params("w"))
    assert (started.id, started.parents) == (child.id, (parent.id,))


async def test_a_blocked_child_is_never_handed_and_a_ready_one_waits_for_a_claim(
    pair: tuple[SQLiteBackend, SQLiteBackend],
) -> None:
    producer, worker = pair
    (parent,) = [job_of(o) for o in await producer.enqueue([NewJob("p")])]
    (attempt,) = await producer.claim(params("p"))
    assert await worker.claim_or_wait(params("w")) == []
    (blocked,) = [job_of(o) for o in await producer.enqueue([NewJob("c", depends_on=[parent.id])])]
    assert (blocked.state, blocked.worker_id) == (S.BLOCKED, None)
    await producer.complete([Completion(lease_of(attempt), None)])
    (ready,) = [job_of(o) for o in await producer.enqueue([NewJob("d", depends_on=[parent.id])])]
    assert (ready.state, ready.worker_id) == (S.PENDING, None)
    assert await worker.wait_for_work(["default"], 5)
    claimed = await worker.claim_or_wait(params("w"))
    assert {job.id for job in claimed} == {blocked.id, ready.id}


async def test_a_failed_release_undoes_the_completion_with_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with SQLiteBackend(tmp_path / "jobs.db") as backend:
        (parent,) = [job_of(o) for o in await backend.enqueue([NewJob("p")])]
        (child,) = [job_of(o) for o in await backend.enqueue([NewJob("c", depends_on=[parent.id])])]
        (attempt,) = await backend.claim(params("w"))
        resolve = dependencies.resolve

        def resolve_then_fail(
            conn: sqlite3.Connection, finished: list[str], state: str, now: float, counts: Counts
        ) -> int:
            resolve(conn, finished, state, now, counts)
            raise sqlite3.OperationalError("disk I/O error")  # after the children were released

        monkeypatch.setattr(dependencies, "resolve", resolve_then_fail)
        with pytest.raises(BackendError):
            await backend.complete([Completion(lease_of(attempt), None)])
        monkeypatch.undo()
        states = [job.state for job in await backend.get_many([parent.id, child.id]) if job]
        assert states == [S.PROCESSING, S.BLOCKED]
        assert (await backend.stats()).queues["default"].counts[S.BLOCKED] == 1
        assert await backend.complete([Completion(lease_of(attempt), None)]) == [True]
        (started,) = await backend.claim(params("w"))
        assert started.id == child.id


async def test_the_same_child_sent_again_is_a_duplicate_even_once_its_parent_is_pruned(tmp_path: Path) -> None:
    async with SQLiteBackend(tmp_path / "jobs.db") as backend:
        (parent,) = [job_of(o) for o in await backend.enqueue([NewJob("p")])]
        new = NewJob("c", depends_on=[parent.id])
        first = job_of((await backend.enqueue([new]))[0])  # its answer lost, say
        await backend.cancel(parent.id)  # which dead-letters the child
        await backend.prune(PruneParams(cancelled_before=time.time() + 10))
        assert await backend.get(parent.id) is None
        stored = await backend.get(first.id)
        assert stored is not None and stored.state is S.DEAD_LETTERED
        assert await backend.enqueue([new]) == [Duplicate(stored)]
        other, again = await backend.enqueue([NewJob("x"), new])  # in a batch too
        assert type(other) is Accepted and again == Duplicate(stored)


async def test_a_database_of_the_previous_version_is_upgraded_with_its_jobs(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        for number, script in migrations():
            if number > 6:
                break
            for statement in _statements(script):
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 6")
        conn.execute(
            "INSERT INTO jobs (id, queue, task, payload, priority, state, max_retries, created_at, run_at) "
            "VALUES ('old', 'default', 't', '1', 0, 'PENDING', 3, 0, 0)"
        )
        conn.execute("INSERT INTO queue_counts VALUES ('default', 'PENDING', 1)")
    async with SQLiteBackend(path) as backend:
        old = await backend.get("old")
        assert old is not None and old.parents == ()
        (child,) = [job_of(o) for o in await backend.enqueue([NewJob("c", depends_on=["old"])])]
        assert child.state is S.BLOCKED
        (attempt,) = await backend.claim(params("w"))
        assert attempt.id == "old"
        await backend.complete([Completion(lease_of(attempt), None)])
        (started,) = await backend.claim(params("w"))
        assert started.id == child.id


@pytest.mark.slow
async def test_a_fan_in_of_the_largest_size_is_released_at_once(tmp_path: Path) -> None:
    async with SQLiteBackend(tmp_path / "jobs.db", durability="normal") as backend:
        parents = [job_of(o) for o in await backend.enqueue([NewJob(n) for n in range(MAX_PARENTS)])]
        (child,) = [job_of(o) for o in await backend.enqueue([NewJob("all", depends_on=[p.id for p in parents])])]
        assert child.state is S.BLOCKED
        claimed = [job for _ in range(MAX_PARENTS // 1000) for job in await backend.claim(params("w", 1000))]
        assert len(claimed) == MAX_PARENTS
        for start in range(0, MAX_PARENTS - 1000, 1000):
            await backend.complete([Completion(lease_of(job), None) for job in claimed[start : start + 1000]])
        assert [job.state for job in await backend.get_many([child.id]) if job] == [S.BLOCKED]
        began = time.perf_counter()
        await backend.complete([Completion(lease_of(job), None) for job in claimed[-1000:]])
        (started,) = await backend.claim(params("w"))
        assert time.perf_counter() - began < 1.0
        assert started.id == child.id and started.parents == tuple(p.id for p in parents)
