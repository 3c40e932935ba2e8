"""What only the Redis backend shows of dependencies: separate connections (as separate processes
would have), the keys and fields it keeps, and how it splits heavy batches.

The behaviour every backend shares is in the conformance suite (``DependencySuite``).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from jobqueue.backends import ClaimParams, Completion, Failure, Lease, PruneParams
from jobqueue.backends.redis import RedisBackend, dependencies
from jobqueue.clock import FakeClock
from jobqueue.job import Job, JobState, NewJob
from jobqueue.outcomes import Accepted
from jobqueue.retention import Retention
from tests.backends import TestRedisBackend, require_redis, unique_prefix

S = JobState


async def put(backend: RedisBackend, *jobs: NewJob) -> list[Job]:
    outcomes = await backend.enqueue(jobs)
    assert all(isinstance(o, Accepted) for o in outcomes), outcomes
    return [o.job for o in outcomes if isinstance(o, Accepted)]


async def claim(backend: RedisBackend, limit: int = 100) -> list[Job]:
    return await backend.claim(ClaimParams(["default"], "w", limit))


def lease(job: Job) -> Lease:
    return Lease(job.id, job.lease_token)


async def keys_of(backend: RedisBackend) -> set[str]:
    keys: set[str] = set()
    cursor = b"0"
    while True:
        cursor, batch = await backend._call("SCAN", cursor, "MATCH", backend.namespace + "*", "COUNT", "1000")
        keys |= {key.decode().removeprefix(backend.namespace) for key in batch}
        if cursor == b"0":
            return keys


async def test_children_enqueued_on_one_connection_as_parents_complete_on_another(
    redis: RedisBackend, other: RedisBackend
) -> None:
    parents = await put(redis, *(NewJob(n) for n in range(200)))
    claimed = await claim(redis, 200)

    async def child_of(parent: Job) -> str:
        (child,) = await put(other, NewJob("c", depends_on=[parent.id], priority=-1))
        return child.id

    children = await asyncio.gather(
        *(child_of(parent) for parent in parents),
        *(redis.complete([Completion(lease(job))]) for job in claimed),
    )
    for child in children[: len(parents)]:
        stored = await redis.get(str(child))
        assert stored is not None and stored.state is S.PENDING


async def test_a_release_wakes_a_waiter_of_another_connection(redis: RedisBackend, other: RedisBackend) -> None:
    (parent,) = await put(redis, NewJob("p"))
    await put(redis, NewJob("c", depends_on=[parent.id]))
    (attempt,) = await claim(redis)
    await other.wait_for_work(["default"], 1.0)  # subscribe
    await other.wait_for_work(["default"], 0.01)  # drain the enqueues' wake-ups
    waiter = asyncio.create_task(other.wait_for_work(["default"], 30.0))
    await asyncio.sleep(0)
    started = time.monotonic()
    await redis.complete([Completion(lease(attempt))])
    assert await asyncio.wait_for(waiter, 5) is True
    assert time.monotonic() - started < 1.0


async def test_a_job_without_parents_or_children_gets_no_dependency_fields(redis: RedisBackend) -> None:
    (job,) = await put(redis, NewJob("plain"))
    (attempt,) = await claim(redis)
    await redis.complete([Completion(lease(attempt))])
    fields = await redis._call("HKEYS", f"{redis.namespace}job:{job.id}")
    assert not {b"parents", b"waits", b"anyway", b"children"} & set(fields)
    assert not any(key.startswith(("children:", "waiters:")) for key in await keys_of(redis))


async def test_edges_go_with_the_jobs(redis: RedisBackend) -> None:
    (parent,) = await put(redis, NewJob("p"))
    (child,) = await put(redis, NewJob("c", depends_on=[parent.id]))
    assert {f"children:{parent.id}", f"waiters:{parent.id}"} <= await keys_of(redis)
    for _ in range(2):
        (attempt,) = await claim(redis)
        await redis.complete([Completion(lease(attempt))])
    # The open edge was taken when the parent completed; the list of children stays for children().
    assert f"waiters:{parent.id}" not in await keys_of(redis)
    assert await redis.children(parent.id) == [child.id]
    await redis.prune(PruneParams(completed_before=time.time() + 60))
    assert await keys_of(redis) <= {"counts", "seq"}


async def test_retention_deletes_a_dead_child_and_its_edges() -> None:
    clock = FakeClock()
    retention = Retention(dead_lettered=60)
    backend = TestRedisBackend(require_redis(), clock=clock, prefix=unique_prefix(), retention=retention)
    await backend.open()
    try:
        (parent, kept) = await put(backend, NewJob("p", max_retries=0), NewJob("k"))
        (child,) = await put(backend, NewJob("c", depends_on=[parent.id, kept.id]))
        (attempt,) = await backend.claim(ClaimParams(["default"], "w", 1))
        assert attempt.id == parent.id
        await backend.fail([Failure(lease(attempt), "boom", None)])  # the child dies with it
        clock.advance(61)
        (late,) = await put(backend, NewJob("l", max_retries=0))
        (attempt,) = await backend.claim(ClaimParams(["default"], "w", 1))
        await backend.fail([Failure(lease(attempt), "boom", None)])  # sweeps the old dead ones
        assert await backend.get_many([parent.id, child.id, late.id]) == [None, None, await backend.get(late.id)]
        assert await backend.children(kept.id) == []
        assert f"children:{parent.id}" not in await keys_of(backend)
    finally:
        await backend.close()


async def test_a_heavy_batch_goes_in_parts_that_see_each_other(
    redis: RedisBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dependencies, "LINK_CHUNK", 3)
    first = NewJob("a")
    second = NewJob("b", depends_on=[first.id])
    third = NewJob("c", depends_on=[first.id, second.id])
    fourth = NewJob("d", depends_on=[first.id, second.id, third.id])
    assert dependencies.heavy_parts([first, second, third, fourth]) == [[first, second, third], [fourth]]
    stored = await put(redis, first, second, third, fourth)
    assert [job.state for job in stored] == [S.PENDING, S.BLOCKED, S.BLOCKED, S.BLOCKED]
    assert await redis.children(first.id) == sorted([second.id, third.id, fourth.id])
    for expected in stored:
        (attempt,) = await claim(redis)
        assert attempt.id == expected.id and attempt.parents == expected.parents
        await redis.complete([Completion(lease(attempt))])


async def test_parent_ids_of_any_characters_link_and_release(redis: RedisBackend) -> None:
    ids = ['a/b"c\\d', "ünï\u2028cødé", "tab\there", "{braces}:colon"]
    parents = await put(redis, *(NewJob(n, id=i) for n, i in enumerate(ids)))
    (child,) = await put(redis, NewJob("c", depends_on=ids))
    assert child.state is S.BLOCKED and child.parents == tuple(ids)
    assert [await redis.children(i) for i in ids] == [[child.id]] * len(ids)
    claimed = await claim(redis)
    assert {job.id for job in claimed} == {job.id for job in parents}
    await redis.complete([Completion(lease(job)) for job in claimed])
    (released,) = await claim(redis)
    assert released.id == child.id and released.parents == tuple(ids)
