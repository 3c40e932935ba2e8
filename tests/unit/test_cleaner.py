"""The cleaner (retention) on every backend: storage stays flat under steady load."""

from __future__ import annotations

import pytest

from jobqueue.app import JobQueue
from jobqueue.backends import Backend, ListParams
from jobqueue.clock import FakeClock
from jobqueue.job import JobState, NewJob
from jobqueue.retention import HOUR, Retention
from jobqueue.worker import Worker, WorkerConfig
from jobqueue.worker.cleaner import Cleaner

S = JobState


async def test_steady_load_keeps_the_store_flat(backend: Backend, clock: FakeClock) -> None:
    """Ten rounds of 50 jobs (some with keys) an hour apart, with a one-hour retention: the store
    never holds more than about two rounds of finished jobs and keys."""
    app = JobQueue(backend=backend)

    @app.task(name="ok")
    async def ok(payload: int) -> int:
        return payload

    retention = Retention(completed=HOUR, dead_lettered=HOUR, cancelled=HOUR)
    cleaner = Cleaner(backend, retention, clock)
    sizes = []
    for round_ in range(10):
        await app.enqueue_many(
            [app.new_job("ok", n, idempotency_key=f"r{round_}-{n}" if n % 2 else None, key_ttl=HOUR) for n in range(50)]
        )
        await Worker(app, WorkerConfig(reaper_interval=None, retention=None)).drain()
        clock.advance(HOUR + 1)
        await cleaner.run_once()
        stats = await backend.stats()
        stored = len((await backend.list_jobs(ListParams(limit=10_000))).jobs)
        sizes.append((stored, stats.idempotency_keys))
    assert max(stored for stored, _ in sizes) <= 100
    assert max(keys for _, keys in sizes) <= 50
    assert sizes[-1] == (0, 0)  # everything finished over an hour ago is gone


async def test_prune_keeps_waiting_and_running_jobs_and_live_keys(backend: Backend, clock: FakeClock) -> None:
    (waiting,) = await backend.enqueue([NewJob("w", idempotency_key="live", key_ttl=10 * HOUR)])
    clock.advance(2 * HOUR)
    result = await Cleaner(backend, Retention(completed=0, dead_lettered=0, cancelled=0), clock).run_once()
    assert (result.jobs, result.keys) == (0, 0)
    assert (await backend.stats()).idempotency_keys == 1
    assert (job := await backend.get(waiting.job.id)) is not None and job.state is S.PENDING  # type: ignore[union-attr]


def test_retention_is_validated_and_none_keeps_forever() -> None:
    with pytest.raises(ValueError):
        Retention(completed=-1)
    with pytest.raises(ValueError):
        Retention(interval=0)
    assert Retention(completed=None, dead_lettered=10, cancelled=None).cutoffs(1000.0) == (None, 990.0, None)
    assert WorkerConfig().retention == Retention()
