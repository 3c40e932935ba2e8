"""Concurrency: a flood against a small queue while jobs fail and retry, and a race on one key."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from jobqueue.api import create_app
from jobqueue.app import JobQueue
from jobqueue.job import JobState
from jobqueue.serving import create_app_with_workers
from jobqueue.task import current_job
from jobqueue.worker import Worker, WorkerConfig
from tests.api.conftest import NO_WAIT, client_for

CAPACITY = 100
CONCURRENCY = 10


async def test_flood_never_overfills_and_loses_no_accepted_job(queue: JobQueue) -> None:
    """2,000 submits in waves of 100 concurrent requests against a queue of 100, while jobs run.

    During a wave the handlers are held at a gate, so a wave meets a queue that cannot drain and
    must be refused in part, whatever the speed of the store; between waves the gate opens, jobs
    run, every seventh always fails (dead-lettered after its retries) and every third fails once
    and is retried. The original drops retries that find the queue full; here a retry always
    re-enters, so the waiting count may pass capacity by at most the attempts running when they
    fail, and jobs never run are never more than the capacity.
    """
    queue.capacity = CAPACITY
    attempts = 0
    progressed = asyncio.Condition()
    gate = asyncio.Event()

    @queue.task(name="default", retry=NO_WAIT, max_retries=2)
    async def flaky(n: int) -> int:
        nonlocal attempts
        await gate.wait()
        async with progressed:
            attempts += 1
            progressed.notify_all()
        if n % 7 == 0 or (n % 3 == 0 and current_job().attempt == 1):
            raise RuntimeError("transient")
        return n

    worker = Worker(queue, WorkerConfig(concurrency=CONCURRENCY, poll_interval=0.01, reaper_interval=None))
    app = create_app_with_workers(queue, [worker], shed_window=0.0)
    accepted: list[str] = []
    codes: Counter[int] = Counter()
    depths: list[tuple[int, int]] = []

    async def one(client: httpx.AsyncClient, n: int) -> None:
        response = await client.post("/jobs", json={"payload": n})
        codes[response.status_code] += 1
        if response.status_code == 202:
            accepted.append(response.json()["job_id"])

    async def waiting() -> int:
        # Before the first submit has committed, the queue has no counts yet.
        stats = (await queue.stats()).queues.get("default")
        return stats.waiting if stats is not None else 0

    async def sample() -> None:
        never_run = [j for j in (await queue.list_jobs(state=JobState.PENDING, limit=1000)).jobs if j.retry_count == 0]
        depths.append((await waiting(), len(never_run)))

    running = asyncio.ensure_future(worker.run())
    async with client_for(app) as client:
        for wave in range(20):
            gate.clear()
            await asyncio.gather(*(one(client, wave * 100 + i) for i in range(100)), sample())
            await sample()
            gate.set()
            # Let the jobs run until half the queue is free (woken by each attempt, not by a
            # timer). While more than that wait, they are due, so attempts keep coming.
            while await waiting() > CAPACITY // 2:
                async with progressed:
                    await progressed.wait()
    worker.stop()
    await running
    await Worker(queue, WorkerConfig(concurrency=CONCURRENCY, reaper_interval=None)).drain()

    assert set(codes) <= {202, 503} and codes[202] == len(accepted) and codes[503] > 0
    assert len(accepted) >= 20 * CAPACITY // 2  # each wave found at least half the queue free
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
