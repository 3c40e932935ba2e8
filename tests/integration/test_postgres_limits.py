"""PostgreSQL queue limits across processes (backend objects with pools of their own stand for
processes): concurrent claims on many connections never exceed a limit together, a busy key does
not hide the jobs of other keys however many of its jobs come first, a slot freed or a limit
raised in one process wakes a worker waiting in another, and a claim of queues without limits
never enters the limited path."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable

from jobqueue.backends import ClaimParams, Completion, Lease
from jobqueue.backends.postgres import PostgresBackend
from jobqueue.clock import FakeClock
from jobqueue.job import Job, JobState, NewJob
from jobqueue.limits import QueueLimits, Rate
from tests.backends import opened

MAIL = ["mail"]


def lease(job: Job) -> Lease:
    return Lease(job.id, job.lease_token)


async def claim_all(backends: list[PostgresBackend], rounds: int, limit: int = 3) -> list[Job]:
    """Every backend claims ``rounds`` times on several connections at once; all jobs claimed."""
    batches = await asyncio.gather(
        *(b.claim(ClaimParams(MAIL, f"w{n}", limit)) for n, b in enumerate(backends) for _ in range(rounds))
    )
    return [job for batch in batches for job in batch]


async def test_claims_on_many_connections_never_exceed_the_limits_together(
    shared: Callable[[], PostgresBackend],
) -> None:
    producer, *workers = await opened(shared, 4)
    await producer.set_queue_limits("mail", QueueLimits(concurrency=4, key_concurrency=2))
    keys = ["a", "b", "c"]
    await producer.enqueue([NewJob(n, queue="mail", rate_key=keys[n % 3]) for n in range(60)])
    await producer.enqueue([NewJob(n, queue="mail") for n in range(10)])
    claimed = await claim_all(workers, 4)
    assert len(claimed) == 4 and len({job.id for job in claimed}) == 4
    assert all(count <= 2 for key, count in Counter(job.rate_key for job in claimed).items() if key)
    # Each completion frees one slot; the claims racing for it take one job between them.
    for done in claimed[:2]:
        await workers[0].complete([Completion(lease(done))])
        assert len(await claim_all(workers, 3)) == 1
    counts = (await producer.stats()).queues["mail"].counts
    assert counts[JobState.PROCESSING] == 4


async def test_a_rate_holds_for_all_connections_together(shared: Callable[[], PostgresBackend]) -> None:
    producer, *workers = await opened(shared, 4)
    await producer.set_queue_limits("mail", QueueLimits(rate=Rate(5, 1.0, 5), key_rate=Rate(2, 1.0, 2)))
    await producer.enqueue([NewJob(n, queue="mail", rate_key="a" if n % 2 else None) for n in range(100)])
    started = time.monotonic()
    claimed = await claim_all(workers, 5)
    elapsed = time.monotonic() - started
    # The burst, and what refills while the claims run (a token per 0.2 s).
    assert 5 <= len(claimed) <= 5 + int(elapsed / 0.2) + 1
    assert sum(job.rate_key == "a" for job in claimed) <= 2 + int(elapsed / 0.5) + 1


async def test_a_busy_key_at_the_head_does_not_hide_another_key_behind_it(
    shared: Callable[[], PostgresBackend],
) -> None:
    (backend,) = await opened(shared, 1)
    await backend.set_queue_limits("mail", QueueLimits(key_concurrency=1))
    await backend.enqueue([NewJob(n, queue="mail", rate_key="a", priority=1) for n in range(10_000)])
    behind = NewJob("b", queue="mail", rate_key="b")
    await backend.enqueue([behind])
    (first,) = await backend.claim(ClaimParams(MAIL, "w", 1))
    assert first.rate_key == "a"
    # "a" is full: the next claim walks past its 9,999 waiting jobs to "b"'s, and then finds none.
    (second,) = await backend.claim(ClaimParams(MAIL, "w", 1))
    assert second.id == behind.id and second.rate_key == "b"
    assert await backend.claim(ClaimParams(MAIL, "w", 10)) == []
    await backend.complete([Completion(lease(first))])
    assert [job.rate_key for job in await backend.claim(ClaimParams(MAIL, "w", 10))] == ["a"]


async def test_a_freed_slot_and_a_raised_limit_wake_a_worker_in_another_process(
    shared: Callable[[], PostgresBackend],
) -> None:
    admin, worker = await opened(shared, 2)
    await admin.set_queue_limits("mail", QueueLimits(concurrency=1))
    await admin.enqueue([NewJob(n, queue="mail") for n in range(3)])
    (running,) = await worker.claim(ClaimParams(MAIL, "w", 10))

    async def woken_by(act: Callable[[], Awaitable[object]]) -> None:
        await worker.wait_for_work(MAIL, 0.05)  # drain earlier notifications
        assert await worker.wait_for_work(MAIL, 0.1) is False  # held back: no work
        waiter = asyncio.create_task(worker.wait_for_work(MAIL, 10))
        await act()
        # From the act's commit: a commit can wait on the server's disk (seen: 2.6 s while a
        # checkpoint synced thousands of test schemas' files), which is not the wake-up's time.
        started = time.perf_counter()
        assert await asyncio.wait_for(waiter, 5) is True
        assert time.perf_counter() - started < 0.5

    await woken_by(lambda: admin.complete([Completion(lease(running))]))
    (running,) = await worker.claim(ClaimParams(MAIL, "w", 10))
    await woken_by(lambda: admin.cancel(running.id))
    (running,) = await worker.claim(ClaimParams(MAIL, "w", 10))
    await admin.enqueue([NewJob("more", queue="mail")])
    await woken_by(lambda: admin.set_queue_limits("mail", QueueLimits(concurrency=2)))
    assert len(await worker.claim(ClaimParams(MAIL, "w", 10))) == 1


async def test_limits_are_the_databases_and_a_restart_keeps_a_change_made_by_hand(
    shared: Callable[[], PostgresBackend],
) -> None:
    nodes = await opened(shared, 3)
    code = QueueLimits.of("10/s", 4)
    assert await asyncio.gather(*(n.set_queue_limits("mail", code, configured=True) for n in nodes)) == [code] * 3
    await nodes[0].set_queue_limits("mail", QueueLimits(concurrency=8))
    for node in nodes:
        await node.close()
    (restarted,) = await opened(shared, 1)
    assert await restarted.set_queue_limits("mail", code, configured=True) == QueueLimits(concurrency=8)
    assert await restarted.queue_limits() == {"mail": QueueLimits(concurrency=8)}


async def test_an_odd_period_is_stored_exactly(shared: Callable[[], PostgresBackend]) -> None:
    (backend,) = await opened(shared, 1)
    limits = QueueLimits(rate=Rate(3, 1 / 3, 7), key_rate=Rate(7, 86_400 / 7, 1))
    await backend.set_queue_limits("mail", limits, configured=True)
    assert (await backend.queue_limits())["mail"] == limits
    assert await backend.set_queue_limits("mail", QueueLimits(concurrency=1)) == QueueLimits(concurrency=1)
    assert await backend.set_queue_limits("mail", limits, configured=True) == QueueLimits(concurrency=1)


async def test_prune_forgets_the_buckets_that_refilled(shared: Callable[..., PostgresBackend]) -> None:
    clock = FakeClock()
    (backend,) = await opened(lambda: shared(clock=clock), 1)
    await backend.set_queue_limits("mail", QueueLimits(key_rate=Rate(1, 10.0, 1)))
    await backend.enqueue([NewJob(n, queue="mail", rate_key=f"k{n}") for n in range(3)])
    await backend.enqueue([NewJob("again", queue="mail", rate_key="k0")])
    assert len(await backend.claim(ClaimParams(MAIL, "w", 10))) == 3

    async def buckets() -> int:
        rows = await backend._run("prune", None, None, None, 1)  # what the cleaner runs
        assert rows[0]["jobs"] == 0
        count: int = await backend._runners()[1].pool.fetchval(f'SELECT count(*) FROM "{backend.schema}".rate_buckets')
        return count

    clock.advance(9)
    assert await buckets() == 3  # still refilling: kept
    clock.advance(1)
    assert await buckets() == 0  # full again, the same as never used
    assert [job.id for job in await backend.claim(ClaimParams(MAIL, "w", 10))] != []
