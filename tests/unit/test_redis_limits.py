"""What only the Redis backend shows of queue limits: the token math done in Lua to the last bit,
separate connections (as separate processes would have), the keys it keeps, its wake-ups, and
the walk of a claim past a key with a long backlog.

The behaviour every backend shares is in the conformance suite (``LimitSuite``, ``RunningJobSuite``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator

import pytest

from jobqueue.backends import Backend, ClaimParams, Completion, Failure, Lease, ListParams, PruneParams
from jobqueue.backends.memory import MemoryBackend
from jobqueue.backends.redis import RedisBackend
from jobqueue.clock import FakeClock
from jobqueue.job import Job, JobState, NewJob
from jobqueue.limits import QueueLimits, Rate
from jobqueue.outcomes import Accepted, Duplicate
from tests.backends import TestRedisBackend, require_redis, unique_prefix
from tests.unit.test_redis import keys_of

S = JobState
MAIL = ["mail"]


@pytest.fixture
async def faked() -> AsyncIterator[tuple[RedisBackend, FakeClock]]:
    clock = FakeClock()
    backend = TestRedisBackend(require_redis(), clock=clock, prefix=unique_prefix())
    await backend.open()
    try:
        yield backend, clock
    finally:
        await backend.close()


def lease(job: Job) -> Lease:
    return Lease(job.id, job.lease_token)


async def claim(backend: Backend, limit: int = 10, queues: list[str] = MAIL) -> list[Job]:
    return await backend.claim(ClaimParams(queues, "w", limit))


async def score(backend: RedisBackend, key: str, member: str) -> float | None:
    value = await backend._call("ZSCORE", backend.namespace + key, member)
    return None if value is None else float(value)


async def test_the_buckets_follow_the_reference_math_to_the_last_bit(faked: tuple[RedisBackend, FakeClock]) -> None:
    """A model on jobqueue.limits.Rate and the Lua script claim the same jobs, and the stored tats
    are the very doubles Rate.spend computes, over uneven times and claim sizes."""
    backend, clock = faked
    rate, key_rate = Rate(7, 3.0, 5), Rate(3, 0.7, 2)
    await backend.set_queue_limits("mail", QueueLimits(rate=rate, key_rate=key_rate))
    rng = random.Random(17)
    waiting: list[tuple[str, str | None]] = []  # (id, rate key), in claim order
    queue_tat: float | None = None
    key_tat: float | None = None
    for step in range(60):
        fresh = [NewJob(step, queue="mail", rate_key=rng.choice(["k", None])) for _ in range(3)]
        await backend.enqueue(fresh)
        waiting += [(job.id, job.rate_key) for job in fresh]
        clock.advance(rng.choice([0.0, 1e-7, 0.05, 0.1, 0.2333, 0.7, 1.9]))
        now, limit = clock.time(), rng.randint(1, 6)
        budget, key_full = min(limit, rate.available(queue_tat, now)), False
        expected: list[str] = []
        for job_id, key in waiting:
            if len(expected) == budget:
                break
            if key is not None:
                if key_full or key_rate.available(key_tat, now) == 0:
                    key_full = True
                    continue
                key_tat = key_rate.spend(key_tat, now, 1)
            expected.append(job_id)
            queue_tat = rate.spend(queue_tat, now, 1)
        claimed = [job.id for job in await claim(backend, limit)]
        assert claimed == expected, step
        waiting = [entry for entry in waiting if entry[0] not in claimed]
        assert await score(backend, "rate", "mail") == queue_tat
        assert await score(backend, "key_rate:mail", "k") == key_tat


async def test_a_key_with_a_long_backlog_does_not_hide_the_keys_behind_it(redis: RedisBackend) -> None:
    await redis.set_queue_limits("mail", QueueLimits(key_concurrency=1))
    backlog = [NewJob(n, queue="mail", rate_key="a") for n in range(10_000)]
    for start in range(0, len(backlog), 1000):
        await redis.enqueue(backlog[start : start + 1000])
    b, free = NewJob("b", queue="mail", rate_key="b"), NewJob("free", queue="mail")
    await redis.enqueue([b, free])
    first, *rest = await claim(redis)
    assert first.id == backlog[0].id and [job.id for job in rest] == [b.id, free.id]
    assert await claim(redis) == []  # the walk reaches the end of the queue, and takes nothing
    late = NewJob("late", queue="mail", rate_key="c")
    await redis.enqueue([late])
    assert [job.id for job in await claim(redis)] == [late.id]
    await redis.complete([Completion(lease(first))])
    assert [job.id for job in await claim(redis)] == [backlog[1].id]


async def test_claims_on_two_connections_never_exceed_a_limit_together(
    redis: RedisBackend, other: RedisBackend
) -> None:
    await other.set_queue_limits("mail", QueueLimits(concurrency=3, key_concurrency=2))
    await redis.enqueue([NewJob(n, queue="mail", rate_key=("a", "b")[n % 2]) for n in range(40)])
    batches = await asyncio.gather(*(b.claim(ClaimParams(MAIL, f"w{n}", 2)) for n in range(10) for b in (redis, other)))
    assert sum(len(batch) for batch in batches) == 3
    await redis.set_queue_limits("mail", QueueLimits(rate=Rate(4, 3600.0, 4)))
    batches = await asyncio.gather(*(b.claim(ClaimParams(MAIL, f"w{n}", 3)) for n in range(10) for b in (redis, other)))
    assert sum(len(batch) for batch in batches) == 4  # the burst, shared: tokens are the server's


async def test_a_slot_freed_on_another_connection_wakes_a_waiter(redis: RedisBackend, other: RedisBackend) -> None:
    await redis.set_queue_limits("mail", QueueLimits(concurrency=1))
    await redis.enqueue([NewJob(1, queue="mail"), NewJob(2, queue="mail")])
    (running,) = await claim(other)
    await redis.wait_for_work(MAIL, 1.0)  # subscribe
    waiter = asyncio.create_task(redis.wait_for_work(MAIL, 30.0))
    await asyncio.sleep(0.05)
    assert not waiter.done()  # a job held back for a slot is no work
    started = time.monotonic()
    await other.complete([Completion(lease(running))])  # reaches `redis` only through the channel
    assert await asyncio.wait_for(waiter, 5) is True
    assert time.monotonic() - started < 1.0
    assert len(await claim(redis)) == 1


async def test_a_job_of_a_queue_without_a_slot_limit_publishes_nothing_when_it_ends(
    redis: RedisBackend, other: RedisBackend
) -> None:
    await redis.set_queue_limits("mail", QueueLimits(rate=Rate.parse("100/s"), key_rate=Rate.parse("10/s")))
    await redis.enqueue([NewJob(1, queue="mail", rate_key="a")])
    (running,) = await claim(other)
    await redis.wait_for_work(MAIL, 1.0)
    waiter = asyncio.create_task(redis.wait_for_work(MAIL, 0.3))
    await asyncio.sleep(0)
    await other.complete([Completion(lease(running))])
    assert await waiter is False


async def test_a_limit_changed_on_another_connection_wakes_a_waiter(redis: RedisBackend, other: RedisBackend) -> None:
    await redis.set_queue_limits("mail", QueueLimits(concurrency=1))
    await redis.enqueue([NewJob(1, queue="mail"), NewJob(2, queue="mail")])
    await claim(redis)
    await redis.wait_for_work(MAIL, 1.0)
    waiter = asyncio.create_task(redis.wait_for_work(MAIL, 30.0))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await other.set_queue_limits("mail", QueueLimits(concurrency=1))  # no change: no wake
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await other.set_queue_limits("mail", QueueLimits(concurrency=2))
    assert await asyncio.wait_for(waiter, 5) is True
    assert len(await claim(redis)) == 1


async def test_the_limits_and_their_state_live_in_the_namespace(faked: tuple[RedisBackend, FakeClock]) -> None:
    backend, clock = faked
    limits = QueueLimits.of("10/s", 5, burst=2, key_rate="1/s", key_concurrency=2)
    await backend.set_queue_limits("mail", limits, configured=True)
    later = RedisBackend(backend.url, prefix=backend.prefix, clock=clock)  # a restarted process
    await later.open()
    try:
        assert await later.queue_limits() == {"mail": limits}
        assert await later.set_queue_limits("mail", QueueLimits(), configured=False) == QueueLimits()
        assert await later.set_queue_limits("mail", limits, configured=True) == QueueLimits()  # kept
        assert await later.set_queue_limits("mail", limits) == limits
    finally:
        await later.close()
    await backend.enqueue([NewJob(n, queue="mail", rate_key=f"t{n % 2}") for n in range(4)])
    claimed = await claim(backend)
    assert sorted(job.rate_key or "" for job in claimed) == ["t0", "t1"]
    running = await backend._call("HGETALL", backend.namespace + "running:mail")
    assert dict(zip(running[::2], running[1::2], strict=True)) == {b"t0": b"1", b"t1": b"1"}
    assert await score(backend, "rate", "mail") is not None
    assert await backend._call("SMEMBERS", backend.namespace + "key_rated") == [b"mail"]
    await backend.complete([Completion(lease(claimed[0]))])
    await backend.cancel(claimed[1].id)  # a running job cancelled leaves its key too
    assert await backend._call("EXISTS", backend.namespace + "running:mail") == 0
    # Prune drops the buckets full again, and forgets a queue with no key rate and no buckets left.
    await backend.prune(PruneParams())
    assert await score(backend, "rate", "mail") is not None  # not full yet
    clock.advance(1.0)
    await backend.set_queue_limits("mail", QueueLimits(concurrency=1))
    await backend.prune(PruneParams())
    assert await backend._call("ZCARD", backend.namespace + "rate") == 0
    assert await backend._call("EXISTS", backend.namespace + "key_rate:mail") == 0
    assert await backend._call("SMEMBERS", backend.namespace + "key_rated") == []


async def test_an_unlimited_queue_keeps_no_limit_state(redis: RedisBackend) -> None:
    """The claim of a queue without limits, of jobs without keys, is the claim of before: it
    writes nothing that limits need (and reads one hash field more)."""
    await redis.set_queue_limits("other", QueueLimits(concurrency=1))
    await redis.enqueue([NewJob(n) for n in range(5)])
    while claimed := await claim(redis, 2, ["default"]):
        await redis.complete([Completion(lease(job)) for job in claimed])
    suffixes = {key.decode().removeprefix(redis.namespace).partition(":")[0] for key in await keys_of(redis)}
    assert suffixes.isdisjoint({"rate", "key_rate", "running", "rate_keys", "key_rated"}), suffixes


async def test_an_empty_bucket_never_ends_a_wait_at_once(faked: tuple[RedisBackend, FakeClock]) -> None:
    """Near 2^31 seconds a double moves in steps of 2.4e-7 s: a fast rate's next token must still
    lie ahead of now, or idle workers would spin on a bucket without a token."""
    backend, clock = faked
    empty = 0
    for n, (count, key) in enumerate((c, k) for c in (1_000_000, 3_000_000, 7) for k in (False, True)):
        queue, rate = f"q{n}", Rate(count, 1.0, 1)
        await backend.set_queue_limits(queue, QueueLimits(key_rate=rate) if key else QueueLimits(rate=rate))
        for step in range(20):
            await backend.enqueue([NewJob(step, queue=queue, rate_key="k" if key else None) for _ in range(2)])
            clock.advance(step * 1.3e-7)
            await claim(backend, 1, [queue])
            tat = await score(backend, f"key_rate:{queue}" if key else "rate", "k" if key else queue)
            if rate.available(tat, clock.time()) == 0:
                empty += 1
                due_in = await backend._due_in([queue])
                assert due_in is not None and due_in > 0, (count, key, step)
    assert empty >= 40


async def test_the_rate_key_comes_back_on_every_read(faked: tuple[RedisBackend, FakeClock]) -> None:
    backend, clock = faked
    job = NewJob("x", queue="mail", rate_key="tenant-1", idempotency_key="once")
    (outcome,) = await backend.enqueue([job])
    (duplicate,) = await backend.enqueue([NewJob("y", queue="mail", idempotency_key="once")])
    assert isinstance(duplicate, Duplicate) and duplicate.job.rate_key == "tenant-1"
    assert isinstance(outcome, Accepted) and outcome.job.rate_key == "tenant-1"
    assert [j.rate_key for j in (await backend.list_jobs(ListParams())).jobs] == ["tenant-1"]
    assert [j and j.rate_key for j in await backend.get_many([job.id])] == ["tenant-1"]
    (claimed,) = await backend.claim(ClaimParams(MAIL, "w", 1, lease=1))
    clock.advance(2)
    assert [j.rate_key for j in await backend.expired_leases()] == ["tenant-1"]
    assert (await backend.cancel(job.id)).rate_key == "tenant-1"
    assert await backend.delete([job.id]) == [True]
    assert await backend._call("HLEN", backend.namespace + "rate_keys") == 0
    assert claimed.rate_key == "tenant-1"


async def test_claims_match_the_memory_backend_step_for_step(faked: tuple[RedisBackend, FakeClock]) -> None:
    """The memory backend is the reference: the same operations on the same clock claim the same
    jobs in the same order, across queues with different limits, priorities and keys."""
    backend, clock = faked
    reference = MemoryBackend(clock)
    await reference.open()
    limits = {
        "a": QueueLimits(Rate(5, 1.0, 3), 4, Rate(2, 1.0, 1), 2),
        "b": QueueLimits(key_concurrency=1),
        "c": QueueLimits(),
    }
    for queue, queue_limits in limits.items():
        for store in (backend, reference):
            await store.set_queue_limits(queue, queue_limits)
    rng = random.Random(5)
    running: list[tuple[Job, Job]] = []  # each claimed job as each store gave it (tokens differ)
    for step in range(300):
        action = rng.choice(["enqueue", "enqueue", "claim", "claim", "claim", "finish", "advance"])
        if action == "enqueue":
            keys = [rng.choice([None, "x", "y"]) for _ in range(rng.randint(1, 4))]
            jobs = [NewJob(step, queue=rng.choice("abc"), priority=rng.choice([0, 0, 5]), rate_key=k) for k in keys]
            for store in (backend, reference):
                await store.enqueue(jobs)
        elif action == "claim":
            queues, limit = rng.sample("abc", rng.randint(1, 3)), rng.randint(1, 5)
            got, expected = await claim(backend, limit, queues), await claim(reference, limit, queues)
            assert [job.id for job in got] == [job.id for job in expected], step
            running += zip(got, expected, strict=True)
        elif action == "finish" and running:
            jobs_now = running.pop(rng.randrange(len(running)))
            how = rng.choice(["complete", "retry", "release", "cancel"])
            for finishing, job in zip((backend, reference), jobs_now, strict=True):
                await finish(finishing, job, how)
        elif action == "advance":
            clock.advance(rng.choice([0.1, 0.3, 0.5, 1.0]))
    await reference.close()


async def finish(store: Backend, job: Job, how: str) -> None:
    if how == "complete":
        assert await store.complete([Completion(lease(job))]) == [True]
    elif how == "retry":
        assert await store.fail([Failure(lease(job), "boom", 0.0)]) == [True]
    elif how == "release":
        assert await store.release([lease(job)]) == [True]
    else:
        await store.cancel(job.id)
