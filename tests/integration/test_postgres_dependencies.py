"""PostgreSQL dependencies beyond the conformance suite: parents and children on separate
connections (the READ COMMITTED race either way round), a completion cut off while it waits, many
producers and workers at once, and a fan-in of 10,000 parents woken across connections."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable

import asyncpg

from jobqueue.backends import ClaimParams, Completion, Failure, Lease
from jobqueue.backends.postgres import PostgresBackend
from jobqueue.errors import InvalidTransition
from jobqueue.job import MAX_PARENTS, Job, JobState, NewJob, parent_failed_error
from jobqueue.outcomes import Accepted, EnqueueOutcome
from tests.backends import opened, require_postgres

S = JobState
FINISHED = ("COMPLETED", "DEAD_LETTERED", "CANCELLED")


def job_of(outcome: EnqueueOutcome) -> Job:
    assert isinstance(outcome, Accepted), outcome
    return outcome.job


async def claim_one(backend: PostgresBackend, queue: str = "default") -> Job:
    (job,) = await backend.claim(ClaimParams([queue], "w", 1))
    return job


async def states(backend: PostgresBackend, *job_ids: str) -> list[JobState | None]:
    return [None if job is None else job.state for job in await backend.get_many(job_ids)]


async def waits(task: asyncio.Task[object]) -> bool:
    """Whether ``task`` is still blocked a moment later (on a row lock, here)."""
    await asyncio.sleep(0.3)
    return not task.done()


async def test_a_child_enqueued_while_its_parent_completes_is_released(
    shared: Callable[[], PostgresBackend],
) -> None:
    # The child's enqueue holds its parent's row lock until it commits; the completion waits for
    # it, and its own snapshot, taken before, cannot see the edge: the release must look again.
    producer, worker = await opened(shared, 2)
    (parent,) = [job_of(o) for o in await producer.enqueue([NewJob("p")])]
    attempt = await claim_one(worker)
    conn = await asyncpg.connect(require_postgres())
    try:
        async with conn.transaction():
            (child,) = [job_of(o) for o in await producer.enqueue_in(conn, [NewJob("c", depends_on=[parent.id])])]
            assert child.state is S.BLOCKED
            completing = asyncio.create_task(worker.complete([Completion(Lease(parent.id, attempt.lease_token))]))
            assert await waits(completing)
        assert await completing == [True]
    finally:
        await conn.close()
    released = await worker.get(child.id)
    assert released is not None and released.state is S.PENDING
    assert (await claim_one(worker)).id == child.id


async def test_a_child_enqueued_as_its_parent_finishes_finds_it_finished(
    shared: Callable[[], PostgresBackend],
) -> None:
    producer, worker = await opened(shared, 2)
    dying, living = (job_of(o) for o in await producer.enqueue([NewJob("d"), NewJob("l")]))
    conn = await asyncpg.connect(require_postgres())
    try:
        # The parents' ends are committed while the children's enqueues wait for their locks.
        attempts = await worker.claim(ClaimParams(["default"], "w", 2))
        tokens = {job.id: job.lease_token for job in attempts}
        async with conn.transaction():
            q = worker.q
            await conn.fetch(q["complete"], None, [living.id], [tokens[living.id]], ["null"])
            errors = ["boom"]
            await conn.fetch(q["fail"], None, [dying.id], [tokens[dying.id]], errors, [None], [False], [None])
            enqueuing = asyncio.create_task(
                producer.enqueue([NewJob("c", depends_on=[living.id]), NewJob("x", depends_on=[dying.id])])
            )
            assert await waits(enqueuing)
        ready, dead = (job_of(o) for o in await enqueuing)
    finally:
        await conn.close()
    assert ready.state is S.PENDING
    assert dead.state is S.DEAD_LETTERED and dead.error == f"parent job {dying.id} was dead-lettered"
    assert (await worker.get(dead.id)) == dead


async def test_a_completion_cut_off_while_it_waits_leaves_parent_and_child_as_they_were(
    shared: Callable[[], PostgresBackend],
) -> None:
    producer, worker, observer = await opened(shared, 3)
    (parent,) = [job_of(o) for o in await producer.enqueue([NewJob("p")])]
    (child,) = [job_of(o) for o in await producer.enqueue([NewJob("c", depends_on=[parent.id])])]
    attempt = await claim_one(worker)
    conn = await asyncpg.connect(require_postgres())
    try:
        async with conn.transaction():
            # Holding the parent's lock (a second child's enqueue) makes the completion wait.
            await producer.enqueue_in(conn, [NewJob("c2", depends_on=[parent.id])])
            completing = asyncio.create_task(worker.complete([Completion(Lease(parent.id, attempt.lease_token))]))
            assert await waits(completing)
            cut = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND query LIKE '%resolve_children%'"
            )
            assert cut == 1
            await asyncio.sleep(0.1)
            # Rolled back whole: the parent is not finished without its children released.
            assert await states(observer, parent.id, child.id) == [S.PROCESSING, S.BLOCKED]
        # The worker's store call ran again on a fresh connection.
        assert await completing == [True]
    finally:
        await conn.close()
    assert await states(observer, parent.id, child.id) == [S.COMPLETED, S.PENDING]


async def test_producers_and_workers_on_separate_connections_strand_no_child(
    shared: Callable[[], PostgresBackend],
) -> None:
    backends = await opened(shared, 6)
    producers, workers, observer = backends[:3], backends[3:5], backends[5]
    roots = [job_of(o) for o in await producers[0].enqueue([NewJob(n, max_retries=0) for n in range(600)])]
    known = [job.id for job in roots]
    rng = random.Random(7)
    stop = asyncio.Event()

    async def produce(backend: PostgresBackend) -> None:
        while not stop.is_set():
            first = NewJob("c", depends_on=rng.sample(known[-200:], rng.randint(1, 6)),
                           on_parent_failure=rng.choice(["fail", "run"]), queue=rng.choice(["a", "b"]))  # fmt: skip
            batch = [first, NewJob("g", depends_on=[first.id, rng.choice(known)], queue="a")]
            known.extend(job_of(outcome).id for outcome in await backend.enqueue(batch[: rng.randint(1, 2)]))
            if rng.random() < 0.05:
                with contextlib.suppress(InvalidTransition):
                    await backend.cancel(rng.choice(known[-30:]))

    async def work(backend: PostgresBackend) -> None:
        idle = 0
        while idle < 10:
            batch = await backend.claim(ClaimParams(["default", "a", "b"], "w", rng.randint(1, 25)))
            if not batch:
                idle += 1
                await asyncio.sleep(0.02)
                continue
            idle = 0
            dead = {job.id for job in batch if rng.random() < 0.15}
            await asyncio.gather(
                backend.complete([Completion(Lease(j.id, j.lease_token)) for j in batch if j.id not in dead]),
                backend.fail([Failure(Lease(j.id, j.lease_token), "boom", None) for j in batch if j.id in dead]),
            )

    async def observe() -> int:
        # One statement, one snapshot: no finished parent with an edge its children wait on.
        assert observer._work is not None
        looks = 0
        while not stop.is_set():
            seen = await observer._work.pool.fetchval(
                f'SELECT count(*) FROM "{observer.schema}".job_dependencies d'
                f' JOIN "{observer.schema}".jobs p ON p.id = d.parent_id'
                " WHERE NOT d.resolved AND p.state = ANY ($1::text[])",
                list(FINISHED),
            )
            assert seen == 0
            looks += 1
        return looks

    tasks = [asyncio.create_task(produce(b)) for b in producers] + [asyncio.create_task(work(b)) for b in workers]
    looking = asyncio.create_task(observe())
    await asyncio.sleep(2.5)
    stop.set()
    await asyncio.gather(*tasks[: len(producers)])
    await asyncio.gather(*tasks[len(producers) :])  # the workers drain what was released
    assert await looking > 0
    assert observer._work is not None
    pool, schema = observer._work.pool, observer.schema
    assert await pool.fetchval(f"""SELECT count(*) FROM "{schema}".jobs WHERE state = 'BLOCKED'""") == 0
    rows = await pool.fetch(f'SELECT queue, state, count(*) FROM "{schema}".jobs GROUP BY queue, state')
    table = {(queue, state): n for queue, state, n in rows}
    stats = await observer.stats()
    assert {(q, s.value): n for q, qs in stats.queues.items() for s, n in qs.counts.items() if n} == table
    # Each child ended as its parents decided: failed with one of them, or run (and completed, or
    # dead-lettered by the worker), or cancelled before either.
    rows = await pool.fetch(f'SELECT id, runs_if_parents_fail FROM "{schema}".jobs WHERE parents IS NOT NULL')
    runs: dict[str, bool] = {job_id: runs_anyway for job_id, runs_anyway in rows}
    jobs = {job.id: job for job in await observer.get_many(known) if job is not None}
    for job in (jobs[job_id] for job_id in runs):
        failed = {parent: jobs[parent].state for parent in job.parents if jobs[parent].state is not S.COMPLETED}
        if job.state is S.CANCELLED:
            continue
        if failed and not runs[job.id]:
            assert job.state is S.DEAD_LETTERED and job.retry_count == 0, job
            assert job.error in {parent_failed_error(parent, state) for parent, state in failed.items()}, job
        else:
            assert job.state is S.COMPLETED or (job.state, job.error) == (S.DEAD_LETTERED, "boom"), job


async def test_a_fan_in_of_ten_thousand_parents_is_released_across_connections(
    shared: Callable[[], PostgresBackend],
) -> None:
    producer, worker, waiter = await opened(shared, 3)
    parents = [job_of(o) for o in await producer.enqueue([NewJob(n) for n in range(MAX_PARENTS)])]
    started = time.perf_counter()
    (child,) = [job_of(o) for o in await producer.enqueue([NewJob("all", depends_on=[p.id for p in parents])])]
    assert child.state is S.BLOCKED and time.perf_counter() - started < 5  # one call, one statement
    completed = 0
    while completed < MAX_PARENTS - 1:
        batch = await worker.claim(ClaimParams(["default"], "w", min(500, MAX_PARENTS - 1 - completed)))
        assert batch and child.id not in {job.id for job in batch}
        assert all(await worker.complete([Completion(Lease(j.id, j.lease_token)) for j in batch]))
        completed += len(batch)
    (last,) = await worker.claim(ClaimParams(["default"], "w", 1))
    await waiter.wait_for_work(["default"], 0.01)
    woken = asyncio.create_task(waiter.wait_for_work(["default"], 30))
    await asyncio.sleep(0.05)
    finished = time.perf_counter()
    assert await worker.complete([Completion(Lease(last.id, last.lease_token))]) == [True]
    assert await asyncio.wait_for(woken, 5) is True
    (claimed,) = await waiter.claim(ClaimParams(["default"], "w", 1))
    assert claimed.id == child.id and claimed.parents == tuple(p.id for p in parents)
    assert time.perf_counter() - finished < 1.0


async def test_parent_ids_are_kept_whatever_their_characters(shared: Callable[[], PostgresBackend]) -> None:
    (backend,) = await opened(shared, 1)
    odd = ['with "quotes"', "back\\slash", "{braces,comma}", "ünïcødé ✓", "NULL", " "]
    assert all(isinstance(o, Accepted) for o in await backend.enqueue([NewJob(n, id=n) for n in odd]))
    (child,) = [job_of(o) for o in await backend.enqueue([NewJob("c", depends_on=odd)])]
    stored = await backend.get(child.id)
    assert stored is not None and stored.parents == tuple(odd) == child.parents
    assert [await backend.children(n) for n in odd] == [[child.id]] * len(odd)
