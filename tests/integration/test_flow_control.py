"""Limits and cancels hold across worker processes, proved by the times their handlers recorded."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from jobqueue import JobQueue, JobState
from jobqueue.limits import QueueLimits, Rate
from tests.integration.test_worker_faults import Cluster, cluster, wait_until

__all__ = ["cluster"]  # the fixture, imported for pytest
pytestmark = pytest.mark.slow
S = JobState


def run(url: str, steps: object) -> object:
    async def go() -> object:
        async with JobQueue(url) as app:
            return await steps(app)  # type: ignore[operator]

    return asyncio.run(go())


def spans(cluster: Cluster) -> list[tuple[float, float, str]]:
    """(start, end, rate key) of every finished ``timed`` attempt."""
    return [(float(r[4]), float(r[5]), r[6]) for r in cluster.attempts("timed")]


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, change in events:  # an end sorts before a start at the same instant
        running += change
        peak = max(peak, running)
    return peak


def test_a_rate_limit_holds_across_worker_processes(cluster: Cluster) -> None:
    burst = 5

    async def fill(app: JobQueue) -> None:
        await app.set_limits("api", rate=Rate(20, 1.0, burst))
        await app.enqueue_many([app.new_job("timed", 0, queue="api") for _ in range(400)])

    run(cluster.url, fill)
    for _ in range(2):
        cluster.worker("--queues", "api", "--concurrency", "10")
    wait_until(lambda: len(spans(cluster)) >= 1, what="the first start")
    first = min(start for start, _, _ in spans(cluster))
    wait_until(lambda: max(start for start, _, _ in spans(cluster)) >= first + 10.5, timeout=30, what="10 s of starts")
    in_ten_seconds = sum(1 for start, _, _ in spans(cluster) if start < first + 10)
    assert in_ten_seconds <= 200 + burst
    assert in_ten_seconds >= 180, "the limit is a ceiling, not a stall: it should be nearly reached"


def test_concurrency_limits_hold_across_worker_processes(cluster: Cluster) -> None:
    async def fill(app: JobQueue) -> None:
        await app.set_limits("api", concurrency=3)
        await app.set_limits("tenants", key_concurrency=1)
        await app.enqueue_many([app.new_job("timed", 0.05, queue="api") for _ in range(30)])
        await app.enqueue_many([app.new_job("timed", 0.05, queue="tenants", rate_key=key) for key in ("a", "b") * 10])

    run(cluster.url, fill)
    for _ in range(2):
        cluster.worker("--queues", "api,tenants", "--concurrency", "4")
    wait_until(lambda: len(spans(cluster)) == 50, what="all 50 jobs")
    api = [(start, end) for start, end, key in spans(cluster) if key == "-"]
    assert most_at_once(api) == 3  # reached, never passed
    for key in ("a", "b"):
        assert most_at_once([(start, end) for start, end, k in spans(cluster) if k == key]) == 1
    pids = {row[3] for row in cluster.attempts("timed")}
    assert len(pids) == 2, "both processes took jobs"


def test_a_slot_held_by_a_killed_worker_is_freed_when_its_lease_is_recovered(cluster: Cluster) -> None:
    lease, reaper = 2.0, 0.5

    async def fill(app: JobQueue) -> str:
        await app.set_limits("api", concurrency=1)
        holder = await app.enqueue("held", 0, queue="api")
        await app.enqueue("timed", 0, queue="api", priority=-1)
        return holder.id

    holder_id = run(cluster.url, fill)
    doomed = cluster.worker("--queues", "api", "--lease", str(lease), "--reaper-interval", str(reaper))
    wait_until(lambda: len(cluster.attempts("held")) == 1, what="the holder to start")
    # A second worker, with its reaper, waits on the same queue: the slot is taken.
    cluster.worker("--queues", "default", "--lease", str(lease), "--reaper-interval", str(reaper))
    cluster.worker("--queues", "api", "--lease", str(lease), "--reaper-interval", str(reaper))
    os.killpg(doomed.pid, signal.SIGKILL)
    killed_at = time.time()
    wait_until(lambda: len(spans(cluster)) == 1, what="the next job to start")
    ((start, _, _),) = spans(cluster)
    assert start - killed_at <= lease + reaper + 1.0
    assert holder_id in {row[1] for row in cluster.attempts("held")}


@pytest.mark.parametrize("task", ["held", "polite", "forever"])
def test_a_running_job_is_stopped_within_a_second_and_never_retried(cluster: Cluster, task: str) -> None:
    job_id = run(cluster.url, lambda app: _enqueue_id(app, task))
    cluster.worker("--queues", "default")
    wait_until(lambda: len(cluster.attempts(task)) == 1, what=f"{task} to start")
    pid = int(cluster.attempts(task)[0][3])
    asked_at = time.time()
    cancelled = run(cluster.url, lambda app: app.cancel(job_id))
    assert cancelled.state is S.CANCELLED  # type: ignore[attr-defined]
    if task == "forever":  # the process-pool child running it is killed
        wait_until(lambda: not _alive(pid), timeout=5, what="the child to be killed")
        assert time.time() - asked_at < 1.5
    else:
        wait_until(lambda: len(cluster.attempts(f"{task}-stopped")) == 1, timeout=5, what="the handler to stop")
        assert float(cluster.attempts(f"{task}-stopped")[0][4]) - asked_at < 1.0
    # Nothing runs it again: a second job behind it completes, and the cancelled one stays so.
    run(cluster.url, lambda app: app.enqueue("timed", 0))
    wait_until(lambda: len(spans(cluster)) == 1, what="the next job")
    job = run(cluster.url, lambda app: app.get(job_id))
    assert job.state is S.CANCELLED and job.result is None  # type: ignore[attr-defined]
    assert len(cluster.attempts(task)) == 1


async def _enqueue_id(app: JobQueue, task: str) -> str:
    return (await app.enqueue(task, 0)).id


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_limits_set_in_code_apply_at_start_and_a_change_at_run_time_survives_a_restart(cluster: Cluster) -> None:
    code = QueueLimits(concurrency=2)

    async def start(app: JobQueue) -> dict[str, QueueLimits]:
        return await app.limits()

    async def change(app: JobQueue) -> None:
        await app.set_limits("api", concurrency=7)

    assert asyncio.run(_with_limits(cluster.url, code, start)) == {"api": code}
    run(cluster.url, change)
    assert asyncio.run(_with_limits(cluster.url, code, start)) == {"api": QueueLimits(concurrency=7)}
    new_code = QueueLimits(rate=Rate.parse("5/s"))
    assert asyncio.run(_with_limits(cluster.url, new_code, start)) == {"api": new_code}


async def _with_limits(url: str, limits: QueueLimits, steps: object) -> object:
    async with JobQueue(url, limits={"api": limits}) as app:
        return await steps(app)  # type: ignore[operator]
