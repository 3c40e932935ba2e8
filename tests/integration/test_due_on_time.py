"""Delayed and retried jobs start at their due time, not at the worker's next poll.

An idle worker with a 10 s poll interval: a job delayed 0.3 s, and a job that asks for a retry in
0.3 s, must each start well before a poll would have found them (the conformance suite checks
the backend's half; this checks that the worker waits on it, on the real clock).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from jobqueue import JobQueue, Retry
from jobqueue.clock import SystemClock
from jobqueue.worker import Worker, WorkerConfig
from tests.backends import ALL_BACKENDS, open_backend

POLL_INTERVAL = 10.0
DELAY = 0.3
#: How late a start may be here: far below the poll interval, with room for a loaded machine.
#: The lateness itself is measured in benchmarks/due_time.py, not asserted here.
LATE = 2.0


@pytest.fixture(params=ALL_BACKENDS)
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobQueue]:
    backend = await open_backend(request.param, tmp_path, SystemClock())
    queue = JobQueue(backend=backend)
    await queue.open()
    try:
        yield queue
    finally:
        await queue.close()


async def run_idle_worker(app: JobQueue) -> tuple[Worker, asyncio.Task[None]]:
    worker = Worker(app, WorkerConfig(poll_interval=POLL_INTERVAL, reaper_interval=None))
    worker.signals.init()
    running = asyncio.create_task(worker.run())
    await worker.signals.waiting.wait()  # it found nothing, and waits for work
    return worker, running


async def stop(worker: Worker, running: asyncio.Task[None]) -> None:
    worker.stop()
    await running


async def test_a_delayed_job_starts_at_its_due_time(app: JobQueue) -> None:
    starts: list[float] = []

    @app.task(name="stamp")
    async def stamp(payload: Any) -> None:
        starts.append(time.time())

    worker, running = await run_idle_worker(app)
    try:
        job = await stamp.enqueue("late?", delay=DELAY)
        assert job.run_at is not None
        await worker.signals.finished.wait(timeout=POLL_INTERVAL)
        assert job.run_at <= starts[0] < job.run_at + LATE
    finally:
        await stop(worker, running)


async def test_a_retry_starts_at_its_due_time(app: JobQueue) -> None:
    starts: list[float] = []

    @app.task(name="flaky")
    async def flaky(payload: Any) -> None:
        starts.append(time.time())
        if len(starts) == 1:
            raise Retry(delay=DELAY)

    worker, running = await run_idle_worker(app)
    try:
        await flaky.enqueue("retry me")
        await worker.signals.finished.wait(timeout=POLL_INTERVAL)
        await worker.signals.finished.wait(timeout=POLL_INTERVAL)
        assert starts[0] + DELAY <= starts[1] < starts[0] + DELAY + LATE
    finally:
        await stop(worker, running)
