"""A CPU-bound sync handler must not starve the heartbeat (real clock, real threads)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from jobqueue import JobQueue, JobState, Worker, WorkerConfig

pytestmark = pytest.mark.slow


async def test_cpu_bound_thread_handler_keeps_its_lease(tmp_path: Path) -> None:
    app = JobQueue(f"sqlite:///{tmp_path / 'jobs.db'}")

    @app.task(name="spin")
    def spin(seconds: float) -> int:
        deadline, n = time.monotonic() + seconds, 0
        while time.monotonic() < deadline:  # pure Python: holds the GIL as much as it can
            n += 1
        return n

    async with app:
        job = await spin.enqueue(2.0)  # runs for more than 6 leases of 0.3 s
        worker = Worker(app, WorkerConfig(lease=0.3, reaper_interval=0.05, poll_interval=0.05))
        await worker.drain()
        done = await app.get(job.id)
    assert done is not None and done.state is JobState.COMPLETED and done.retry_count == 0
    assert worker.metrics.recovered == 0 and worker.metrics.lost_leases == 0
