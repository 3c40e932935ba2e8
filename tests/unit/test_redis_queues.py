"""What only the Redis backend shows of paused queues: separate connections (as separate processes
would have), the key it keeps, and the wake-up a resume publishes.

The behaviour every backend shares is in the conformance suite (``QueuePauseSuite``).
"""

from __future__ import annotations

import asyncio
import time

from jobqueue.backends import ClaimParams
from jobqueue.backends.redis import RedisBackend
from jobqueue.job import Job, NewJob
from jobqueue.outcomes import Accepted

BOTH = ["mail", "default"]


async def test_a_pause_on_another_connection_holds_every_later_claim(redis: RedisBackend, other: RedisBackend) -> None:
    # Interleaved, so that a claim of both queues (same priority, arrival order) takes from each.
    outcomes = await redis.enqueue([NewJob(n, queue=BOTH[n % 2]) for n in range(2000)])
    assert all(isinstance(o, Accepted) for o in outcomes)
    # The phase is set by this task just before and just after each call on `other`. A claim is
    # counted in a phase only if it started and ended in it; one that spans a change is ambiguous.
    phase = "running"
    seen: dict[str, list[str]] = {"running": [], "paused": [], "resumed": []}
    stop, claimed = asyncio.Event(), asyncio.Event()

    async def worker() -> None:
        while not stop.is_set():
            started_in = phase
            jobs: list[Job] = await redis.claim(ClaimParams(BOTH, "w", 2))
            if phase == started_in and started_in in seen:
                seen[started_in] += [job.queue for job in jobs]
            claimed.set()
            await asyncio.sleep(0)

    async def until(name: str, queue: str, count: int) -> None:
        async with asyncio.timeout(10):
            while seen[name].count(queue) < count:
                claimed.clear()
                await claimed.wait()

    task = asyncio.create_task(worker())
    try:
        await until("running", "mail", 10)
        phase = "pausing"
        assert await other.pause_queue("mail", True) is True
        phase = "paused"  # every claim from here on runs after the pause
        await until("paused", "default", 100)  # the other queue goes on
        phase = "resuming"
        assert await other.pause_queue("mail", False) is False
        phase = "resumed"
        await until("resumed", "mail", 10)
    finally:
        stop.set()
        await task
    assert "mail" not in seen["paused"]
    assert await redis.paused_queues() == []


async def test_a_resume_on_another_connection_wakes_a_waiter(redis: RedisBackend, other: RedisBackend) -> None:
    await redis.enqueue([NewJob("x", queue="mail")])
    await other.pause_queue("mail", True)
    await redis.wait_for_work(["mail"], 1.0)  # subscribe
    waiter = asyncio.create_task(redis.wait_for_work(["mail"], 30.0))
    await asyncio.sleep(0.05)
    assert not waiter.done()  # a paused queue's job is no work
    started = time.monotonic()
    await other.pause_queue("mail", False)  # reaches `redis` only through the wake channel
    assert await asyncio.wait_for(waiter, 5) is True
    assert time.monotonic() - started < 1.0
    assert [job.payload for job in await redis.claim(ClaimParams(["mail"], "w", 1))] == ["x"]


async def test_pausing_a_paused_queue_or_resuming_a_running_one_publishes_nothing(
    redis: RedisBackend, other: RedisBackend
) -> None:
    await other.pause_queue("mail", True)
    await redis.wait_for_work(["mail"], 1.0)  # subscribe
    waiter = asyncio.create_task(redis.wait_for_work(["mail"], 0.3))
    await asyncio.sleep(0)
    await other.pause_queue("mail", True)
    await other.pause_queue("images", False)
    assert await waiter is False


async def test_the_state_is_one_hash_in_the_namespace_and_outlives_the_backend(redis: RedisBackend) -> None:
    await redis.pause_queue("mail", True)
    await redis.pause_queue("images", False)
    stored = await redis._call("HGETALL", redis.namespace + "paused")
    assert dict(zip(stored[::2], stored[1::2], strict=True)) == {b"mail": b"1", b"images": b"0"}
    later = RedisBackend(redis.url, prefix=redis.prefix)  # a restarted process
    await later.open()
    try:
        assert await later.paused_queues() == ["mail"]
        assert await later.pause_queue("mail", False, initial=True) is True  # the stored state wins
    finally:
        await later.close()
