"""The dashboard's chart points (``api.pulse``) and the worker reports they are made of."""

from __future__ import annotations

import os
import socket

import pytest

from jobqueue import JobQueue
from jobqueue.api.pulse import Pulse, percentile
from jobqueue.backends.memory import MemoryBackend
from jobqueue.clock import FakeClock
from jobqueue.status import BUCKETS, Histogram, WorkerReport
from jobqueue.worker import Worker, WorkerConfig


def report(worker_id: str, started_at: float, completed: int, failed: int, latencies: list[float]) -> WorkerReport:
    histogram = Histogram()
    for seconds in latencies:
        histogram.observe(seconds)
    return WorkerReport(worker_id, "h", 1, ("default",), 4, 0, started_at, started_at, "0",
                        {"completed": completed, "failed": failed}, tuple(histogram.counts))  # fmt: skip


def test_percentiles_interpolate_within_a_bucket() -> None:
    counts = [0] * (len(BUCKETS) + 1)
    counts[BUCKETS.index(0.01)] = 100  # 100 starts between 5 ms and 10 ms
    assert percentile(counts, 0.5) == pytest.approx(0.0075)
    assert percentile(counts, 0.99) == pytest.approx(0.00995)
    counts[-1] = 100  # as many past the last bound: reported at it
    assert percentile(counts, 0.99) == BUCKETS[-1]


async def test_points_are_differences_between_two_readings() -> None:
    clock = FakeClock(1000.0)
    app = JobQueue(backend=MemoryBackend(clock))
    await app.open()
    pulse = Pulse(app)
    backend = app.backend
    old, new = report("old", 900.0, 50, 5, [0.001] * 10), report("gone", 900.0, 5, 0, [])
    for r in (old, new):
        await backend.report_worker(r.id, r.to_json(), ttl=60)
    assert await pulse.sample(now=1000.0) is None  # nothing to take a difference from yet
    for n in range(10):
        await app.enqueue("t", n)
    await backend.remove_worker_report("gone")
    later = report("old", 900.0, 54, 6, [0.001] * 10 + [0.004] * 4)
    joined = report("joined", 1001.0, 2, 0, [0.02, 0.02])  # started after the last reading: all of it counts
    stale = report("stale", 500.0, 1000, 1000, [5.0] * 9)  # listed only now, running long: none of it counts
    for r in (later, joined, stale):
        await backend.report_worker(r.id, r.to_json(), ttl=60)
    point = await pulse.sample(now=1002.0)
    assert point is not None and point.seq == 1
    assert (point.enqueued, point.completed, point.failed) == (5.0, 3.0, 0.5)
    assert point.latency is not None
    p50, p95, p99 = point.latency
    assert 0.0025 < p50 <= 0.005 < p95 <= p99 <= 0.025
    assert pulse.after(0) == [point] and pulse.after(1) == []
    quiet = await pulse.sample(now=1003.0)
    assert quiet is not None and quiet.latency is None and (quiet.enqueued, quiet.completed) == (0.0, 0.0)
    await app.close()


async def test_a_worker_reports_itself_while_it_runs_and_leaves_when_it_stops() -> None:
    clock = FakeClock()
    app = JobQueue(backend=MemoryBackend(clock))
    await app.open()
    worker = Worker(app, WorkerConfig(queues=("default", "mail"), concurrency=3, report_interval=2.0), clock=clock)
    worker.metrics.completed = 7
    worker.presence.start()
    written = await worker.presence.run_once()
    (listed,) = await app.workers()
    assert listed == written
    assert (listed.id, listed.host, listed.pid, listed.queues) == (
        worker.id,
        socket.gethostname(),
        os.getpid(),
        ("default", "mail"),
    )
    assert (listed.concurrency, listed.busy, listed.counters["completed"]) == (3, 0, 7)
    clock.advance(5.0)  # a report lives 3 intervals (6 s): still listed
    assert [w.id for w in await app.workers()] == [worker.id]
    await worker.presence.stop()
    assert await app.workers() == []
    await app.close()


def test_a_report_that_is_not_one_reads_as_none() -> None:
    assert WorkerReport.from_json("{") is None
    assert WorkerReport.from_json('{"id": "x"}') is None
    good = report("w", 1.0, 1, 0, [0.1])
    assert WorkerReport.from_json(good.to_json()) == good


def test_report_interval_is_checked() -> None:
    with pytest.raises(ValueError, match="report_interval"):
        WorkerConfig(report_interval=0)
