"""Concurrency: a flood against a small queue while jobs fail and retry, and a race on one key."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from jobqueue.api import create_app
from jobqueue.app import JobQueue
from jobqueue.backends.base import empty_counts
from jobqueue.job import JobState
from jobqueue.task import current_job
from jobqueue.worker import Worker, WorkerConfig
from tests.api.conftest import NO_WAIT, client_for

CAPACITY = 100
CONCURRENCY = 10


async def test_flood_never_overfills_and_loses_no_accepted_job(queue: JobQueue) -> None:
    """2,000 submits in waves of 100 concurrent requests against a queue of 100, while jobs run.

    Every seventh job always fails (dead-lettered after its retries), every third fails once and
    is retried. The original drops retries that find the queue full; here a retry always
    re-enters, so the waiting count may pass capacity by at most the attempts running when they
    fail, and jobs never run are never more than the capacity.
    """
    queue.capacity = CAPACITY
    attempts = 0
    progressed = asyncio.Condition()

    @queue.task(name="default", retry=NO_WAIT, max_retries=2)
    async def flaky(n: int) -> int:
        nonlocal attempts
        async with progressed:
            attempts += 1
            progressed.notify_all()
        if n % 7 == 0 or (n % 3 == 0 and current_job().attempt == 1):
            raise RuntimeError("transient")
        return n

    worker = Worker(queue, WorkerConfig(concurrency=CONCURRENCY, poll_interval=0.01, reaper_interval=None))
    app = create_app(queue, workers=[worker], shed_window=0.0)
    accepted: list[str] = []
    codes: Counter[int] = Counter()
    depths: list[tuple[int, int]] = []

    async def one(client: httpx.AsyncClient, n: int) -> None:
        response = await client.post("/jobs", json={"payload": n})
        codes[response.status_code] += 1
        if response.status_code == 202:
            accepted.append(response.json()["job_id"])

    async def sample() -> None:
        # Before the first submit has committed, the queue has no counts yet.
        stats = (await queue.stats()).queues.get("default")
        counts = stats.counts if stats is not None else empty_counts()
        never_run = [j for j in (await queue.list_jobs(state=JobState.PENDING, limit=1000)).jobs if j.retry_count == 0]
        depths.append((counts[JobState.PENDING] + counts[JobState.SCHEDULED] + counts[JobState.FAILED], len(never_run)))

    running = asyncio.ensure_future(worker.run())
    async with client_for(app) as client:
        for wave in range(20):
            await asyncio.gather(*(one(client, wave * 100 + i) for i in range(100)), sample())
            await sample()
            # Let the workers make progress before the next wave (an event, not a sleep). Every
            # waiting job is due, so at least that many attempts will come.
            target = attempts + min(40, depths[-1][0])
            async with progressed:
                await progressed.wait_for(lambda: attempts >= target)  # noqa: B023 - used at once
    worker.stop()
    await running
    await Worker(queue, WorkerConfig(concurrency=CONCURRENCY, reaper_interval=None)).drain()

    assert set(codes) <= {202, 503} and codes[202] == len(accepted) and codes[503] > 0
    assert len(accepted) > 5 * CAPACITY  # the queue drained and refilled many times
    assert max(never_run for _, never_run in depths) <= CAPACITY
    assert max(waiting for waiting, _ in depths) <= CAPACITY + CONCURRENCY
    finished = {j.id: j.state for j in (await queue.list_jobs(limit=10_000)).jobs}
    assert set(accepted) == set(finished)  # nothing lost, nothing extra
    assert set(finished.values()) <= {JobState.COMPLETED, JobState.DEAD_LETTERED}
    assert Counter(finished.values())[JobState.DEAD_LETTERED] > 0


async def test_fifty_concurrent_posts_with_one_key_make_one_job(queue: JobQueue) -> None:
    async with client_for(create_app(queue)) as client:
        body = {"payload": "charge-card-9", "idempotency_key": "payment-9"}
        responses = await asyncio.gather(*(client.post("/jobs", json=body) for _ in range(50)))
    codes = Counter(r.status_code for r in responses)
    assert codes == {202: 1, 409: 49}
    named = {r.json()["job_id"] for r in responses}
    assert len(named) == 1
    jobs = (await queue.list_jobs()).jobs
    assert [j.id for j in jobs] == list(named)
