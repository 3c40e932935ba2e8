"""PostgreSQL's insight operations beyond the conformance suite: the attempts recorded by every path
that fails a job (a parent's fail_parents, the reaper, batches, racing failures), exactly the latest
twenty kept across releases and replays, the arrival counter read from the jobs' sequence, expired
worker reports deleted as they are listed, and a store upgraded from version 8."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg

from jobqueue.backends import ClaimParams, Failure, Lease
from jobqueue.backends.params import MAX_ATTEMPT_ERRORS
from jobqueue.backends.postgres import PostgresBackend
from jobqueue.clock import FakeClock
from jobqueue.job import Job, JobState, NewJob
from jobqueue.outcomes import Accepted
from tests.backends import opened, require_postgres
from tests.integration.test_postgres_schema import apply_migrations

S = JobState


async def put(backend: PostgresBackend, *jobs: NewJob) -> list[Job]:
    outcomes = await backend.enqueue(jobs)
    assert all(isinstance(o, Accepted) for o in outcomes), outcomes
    return [o.job for o in outcomes if isinstance(o, Accepted)]


async def claim(backend: PostgresBackend, limit: int = 10, worker: str = "w", lease: float = 30.0) -> list[Job]:
    return await backend.claim(ClaimParams(["default"], worker, limit, lease))


def lease(job: Job) -> Lease:
    return Lease(job.id, job.lease_token)


async def sql(backend: PostgresBackend, statement: str, *args: object) -> object:
    """The value of ``statement`` run on a connection of its own; ``S.`` names the backend's schema."""
    conn = await asyncpg.connect(require_postgres())
    try:
        return await conn.fetchval(statement.replace("S.", f'"{backend.schema}".'), *args)
    finally:
        await conn.close()


async def rows(backend: PostgresBackend, table: str) -> object:
    return await sql(backend, f"SELECT count(*) FROM S.{table}")


async def test_every_path_that_fails_a_job_records_its_attempt(shared: Callable[..., PostgresBackend]) -> None:
    clock = FakeClock()
    (backend,) = await opened(lambda: shared(clock=clock), 1)
    parent, plain, reaped = await put(backend, NewJob("p", max_retries=0), NewJob("x"), NewJob("r"))
    (child,) = await put(backend, NewJob("c", depends_on=[parent.id]))
    attempts = {job.id: job for job in await claim(backend, worker="w-1", lease=10)}
    # One batch: a parent (left by fail to fail_parents), a plain retry, and a stale lease.
    batch = [
        Failure(lease(attempts[parent.id]), "parent failed", None, traceback="tb-p"),
        Failure(lease(attempts[plain.id]), "plain failed", 5.0, traceback="tb-x"),
        Failure(Lease(reaped.id, attempts[reaped.id].lease_token + 1), "stale", 0.0),
    ]
    assert await backend.fail(batch) == [True, True, False]
    assert await backend.attempt_errors(reaped.id) == []
    (p,) = await backend.attempt_errors(parent.id)
    assert (p.attempt, p.error, p.traceback, p.worker_id, p.failed_at) == (
        1,
        "parent failed",
        "tb-p",
        "w-1",
        clock.time(),
    )
    assert p.started_at == attempts[parent.id].last_attempt
    (x,) = await backend.attempt_errors(plain.id)
    assert (x.attempt, x.error, x.traceback, x.worker_id) == (1, "plain failed", "tb-x", "w-1")
    released = await backend.get(child.id)
    assert released is not None and released.state is S.DEAD_LETTERED
    assert await backend.attempt_errors(child.id) == []  # dead-lettered by its parent, never attempted
    # The reaper's failure: none while the lease holds, one once it has expired.
    expired = Failure(lease(attempts[reaped.id]), "lease expired", 0.0, if_expired=True)
    assert await backend.fail([expired]) == [False]
    clock.advance(11)
    assert await backend.fail([expired]) == [True]
    (r,) = await backend.attempt_errors(reaped.id)
    assert (r.attempt, r.error, r.traceback, r.worker_id) == (1, "lease expired", None, "w-1")


async def test_racing_failures_of_one_attempt_record_it_once(shared: Callable[..., PostgresBackend]) -> None:
    clock = FakeClock()
    worker, reaper = await opened(lambda: shared(clock=clock), 2)
    jobs = await put(worker, *(NewJob(n) for n in range(20)))
    attempts = await claim(worker, limit=20, lease=1)
    clock.advance(2)
    mine = worker.fail([Failure(lease(job), "handler failed", 0.0) for job in attempts])
    reaped = reaper.fail([Failure(lease(job), "lease expired", 0.0, if_expired=True) for job in attempts])
    first, second = await asyncio.gather(mine, reaped)
    assert all(a != b for a, b in zip(first, second, strict=True))  # each attempt failed once
    for job, by_worker in zip(jobs, first, strict=True):
        (error,) = await worker.attempt_errors(job.id)
        assert error.error == ("handler failed" if by_worker else "lease expired")


async def test_exactly_the_latest_attempts_are_kept_across_releases_and_replays(
    shared: Callable[..., PostgresBackend],
) -> None:
    (backend,) = await opened(shared, 1)
    (job,) = await put(backend, NewJob("x", max_retries=MAX_ATTEMPT_ERRORS - 1))
    for n in range(MAX_ATTEMPT_ERRORS):
        (attempt,) = await claim(backend)
        if n % 3 == 0:  # a release takes a lease token but records no attempt
            assert await backend.release([lease(attempt)]) == [True]
            (attempt,) = await claim(backend)
        assert await backend.fail(
            [Failure(lease(attempt), f"run {n + 1}", 0.0 if n < MAX_ATTEMPT_ERRORS - 1 else None)]
        )
    await backend.replay_dead(job.id)
    for n in range(3):  # the replay starts counting again; the oldest three make room
        (attempt,) = await claim(backend)
        await backend.fail([Failure(lease(attempt), f"replayed {n + 1}", 0.0)])
    errors = await backend.attempt_errors(job.id)
    assert len(errors) == MAX_ATTEMPT_ERRORS == await rows(backend, "attempt_errors")
    assert [e.error for e in errors[:2]] == ["run 4", "run 5"]
    assert [(e.attempt, e.error) for e in errors[-4:]] == [
        (MAX_ATTEMPT_ERRORS, f"run {MAX_ATTEMPT_ERRORS}"), (1, "replayed 1"), (2, "replayed 2"), (3, "replayed 3")
    ]  # fmt: skip


async def test_the_arrival_counter_is_the_jobs_sequence_and_never_goes_down(
    shared: Callable[..., PostgresBackend],
) -> None:
    (backend,) = await opened(shared, 1)
    assert await backend.enqueued_total() == 0
    jobs = await put(backend, *(NewJob(n) for n in range(5)))
    assert await backend.enqueued_total() == 5
    # The name the enqueued_total statement reads is the one PostgreSQL gave the identity.
    sequence = await sql(backend, "SELECT pg_get_serial_sequence($1, 'seq')", f'"{backend.schema}".jobs')
    assert sequence == f"{backend.schema}.jobs_seq_seq"
    await sql(backend, "DELETE FROM S.jobs WHERE id = $1", jobs[-1].id)  # the newest row
    assert await backend.enqueued_total() == 5
    await put(backend, NewJob("more"))
    assert await backend.enqueued_total() == 6


async def test_expired_worker_reports_are_deleted_as_they_are_listed(shared: Callable[..., PostgresBackend]) -> None:
    clock = FakeClock()
    (backend,) = await opened(lambda: shared(clock=clock), 1)
    for n in range(3):
        await backend.report_worker(f"w-{n}", f'{{"n": {n}}}', ttl=10 * (n + 1))
    clock.advance(15)
    assert await rows(backend, "worker_reports") == 3
    assert await backend.worker_reports() == ['{"n": 1}', '{"n": 2}']
    assert await rows(backend, "worker_reports") == 2
    await backend.report_worker("w-1", '{"n": 11}', ttl=20)  # renewed: it outlives its first expiry
    clock.advance(10)
    assert await backend.worker_reports() == ['{"n": 11}', '{"n": 2}']
    await backend.remove_worker_report("w-1")
    assert await backend.worker_reports() == ['{"n": 2}']


async def test_a_store_upgraded_from_version_8_records_attempts(shared: Callable[..., PostgresBackend]) -> None:
    backend = shared()
    conn = await asyncpg.connect(require_postgres())
    try:
        await apply_migrations(conn, backend.schema, 8)
        schema = f'"{backend.schema}"'
        await conn.execute(
            f"INSERT INTO {schema}.jobs (id, queue, task, payload, priority, state, max_retries, created_at, run_at,"
            " idempotency_key) VALUES ('old', 'default', 'default', '1', 0, 'PENDING', 3, 0, 0, 'k')"
        )
        await conn.execute(f"INSERT INTO {schema}.idempotency_keys VALUES ('k', 'old', 1e12)")
        await conn.execute(f"INSERT INTO {schema}.queue_counts VALUES ('default', 'PENDING', 0, 1)")
    finally:
        await conn.close()
    await backend.open()  # migrates
    assert await backend.enqueued_total() == 1
    found = await backend.find_by_key("k")
    assert found is not None and found.id == "old"
    (old,) = await backend.claim(ClaimParams(["default"], "w", 1))
    assert await backend.fail([Failure(Lease("old", old.lease_token), "boom", 0.0, traceback="tb")]) == [True]
    assert [(e.attempt, e.error, e.traceback) for e in await backend.attempt_errors("old")] == [(1, "boom", "tb")]
    await backend.report_worker("w", "{}", 5)
    assert await backend.worker_reports() == ["{}"]
