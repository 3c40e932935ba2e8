"""Flow control through the app and the worker, on every backend: running jobs cancelled, fair
claims, jobs cancelled and the DLQ replayed or purged in bulk, limits set in code."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from jobqueue import FakeClock, JobState
from jobqueue.app import JobQueue
from jobqueue.backends import Backend
from jobqueue.bulk import JobFilter
from jobqueue.errors import InvalidTransition, JobNotFound, ValidationError
from jobqueue.limits import QueueLimits, Rate
from jobqueue.task import current_job
from tests.unit.test_worker import app, worker

S = JobState


__all__ = ["app"]  # the fixture, imported for pytest


async def test_a_running_async_job_is_cancelled_at_the_next_look(app: JobQueue) -> None:
    started, stopped = asyncio.Event(), asyncio.Event()

    @app.task(name="long", max_retries=5)
    async def long(payload: object) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            stopped.set()
            raise

    job = await long.enqueue(1)
    clock = FakeClock()  # the worker's: its lease watch looks when this says half a second passed
    w = worker(app, clock)
    runner = asyncio.create_task(w.run())
    await asyncio.wait_for(started.wait(), 5)
    cancelled = await app.cancel(job.id)
    assert cancelled.state is S.CANCELLED
    assert not stopped.is_set()
    clock.advance(0.5)
    await asyncio.wait_for(stopped.wait(), 5)
    w.stop()
    await asyncio.wait_for(runner, 5)
    final = await app.get(job.id)
    assert final is not None and final.state is S.CANCELLED and final.retry_count == 0
    assert w.metrics.lost_leases == 1 and w.metrics.completed == w.metrics.failed == 0


async def test_a_thread_handler_sees_it_was_cancelled_and_its_result_is_discarded(app: JobQueue) -> None:
    started, seen = threading.Event(), threading.Event()

    @app.task(name="polite")
    def polite(payload: object) -> str:
        started.set()
        while not current_job().cancelled:
            seen.wait(0.005)
        seen.set()
        return "discarded"

    job = await polite.enqueue(1)
    clock = FakeClock()
    w = worker(app, clock)
    runner = asyncio.create_task(w.run())
    await asyncio.to_thread(started.wait, 5)
    await app.cancel(job.id)
    clock.advance(0.5)
    assert await asyncio.to_thread(seen.wait, 5)
    w.stop()
    await asyncio.wait_for(runner, 5)
    final = await app.get(job.id)
    assert final is not None and final.state is S.CANCELLED and final.result is None


async def test_a_fair_worker_does_not_starve_a_lower_priority_queue(app: JobQueue) -> None:
    order: list[str] = []

    @app.task(name="note")
    async def note(payload: str) -> None:
        order.append(payload)

    async def run(**config: Any) -> list[str]:
        order.clear()
        await app.enqueue_many([app.new_job("note", "bulk", queue="bulk", priority=10) for _ in range(40)])
        await app.enqueue_many([app.new_job("note", "mail", queue="mail") for _ in range(4)])
        await worker(app, queues=("bulk", "mail"), concurrency=2, **config).drain()
        return list(order)

    strict = await run()
    assert strict.index("mail") == 40  # strict priority: the default, mail waits for the whole backlog
    fair = await run(fair=True)
    assert max(i for i, name in enumerate(fair) if name == "mail") < 12
    weighted = await run(fair={"bulk": 3, "mail": 1})
    assert max(i for i, name in enumerate(weighted) if name == "mail") < 24


async def test_cancel_with_children_cancels_the_waiting_descendants(app: JobQueue) -> None:
    parent = await app.enqueue("t", "p")
    child = await app.enqueue("t", "c", depends_on=[parent])
    grandchild = await app.enqueue("t", "g", depends_on=[child])
    other = await app.enqueue("t", "o", depends_on=[parent])
    await app.cancel(parent.id, with_children=True)
    states = [(await app.get(job.id)).state for job in (parent, child, grandchild, other)]  # type: ignore[union-attr]
    assert states == [S.CANCELLED] * 4  # not dead-lettered for their parent's sake


async def test_cancel_with_children_of_a_finished_job_touches_nothing(app: JobQueue) -> None:
    parent = await app.enqueue("t", "p")
    child = await app.enqueue("t", "c", depends_on=[parent])
    await app.cancel(parent.id)  # finished now (its child dead-lettered for it)
    other = await app.enqueue("t", "o", depends_on=[child])  # a waiting grandchild, enqueued after
    with pytest.raises(InvalidTransition):
        await app.cancel(parent.id, with_children=True)
    assert (await app.get(other.id)).state is S.DEAD_LETTERED  # type: ignore[union-attr]
    with pytest.raises(JobNotFound):
        await app.cancel("no-such-job", with_children=True)


async def test_jobs_are_cancelled_in_bulk_by_filter(app: JobQueue) -> None:
    await app.enqueue_many([app.new_job("a", n, queue="mail") for n in range(7)])
    await app.enqueue_many([app.new_job("b", n, queue="mail", delay=60) for n in range(3)])
    keep = await app.enqueue("a", "other queue")
    assert await app.cancel_jobs(JobFilter(queue="mail", task="b")) == 3
    assert await app.cancel_jobs(JobFilter(queue="mail"), states=[S.PENDING]) == 7
    assert (await app.get(keep.id)).state is S.PENDING  # type: ignore[union-attr]
    counts = (await app.stats()).queues["mail"].counts
    assert counts[S.CANCELLED] == 10 and counts[S.PENDING] == counts[S.SCHEDULED] == 0
    with pytest.raises(ValidationError):
        await app.cancel_jobs(states=[S.COMPLETED])


async def test_the_dlq_is_replayed_by_filter_and_a_full_queue_keeps_the_rest(
    backend: Backend, clock: FakeClock
) -> None:
    app = JobQueue(backend=backend)
    await app.open()

    @app.task(name="fails", max_retries=0)
    async def fails(payload: str) -> None:
        raise RuntimeError(payload)

    await app.enqueue_many([app.new_job("fails", f"timeout {n}", queue="mail") for n in range(5)])
    await app.enqueue_many([app.new_job("fails", "refused", queue="mail") for _ in range(2)])
    await app.enqueue_many([app.new_job("fails", "timeout", queue="other") for _ in range(2)])
    await worker(app, queues=("mail", "other")).drain()
    assert (await app.stats()).queues["mail"].counts[S.DEAD_LETTERED] == 7
    app.capacity = {"mail": 3}
    result = await app.replay_dead_letters(JobFilter(queue="mail", error="TIMEOUT"))
    assert (result.replayed, result.stayed, result.full_queues) == (3, 2, ("mail",))
    counts = (await app.stats()).queues["mail"].counts
    assert counts[S.PENDING] == 3 and counts[S.DEAD_LETTERED] == 4
    later = datetime.fromtimestamp(clock.time() + 1, UTC)
    assert await app.purge_dead_letters(JobFilter(queue="mail", finished_after=later)) == 0
    assert await app.purge_dead_letters(JobFilter(queue="mail", finished_before=later)) == 4
    assert (await app.stats()).queues["other"].counts[S.DEAD_LETTERED] == 2
    everything = await app.replay_dead_letters()
    assert (everything.replayed, everything.stayed) == (2, 0)


async def test_limits_from_code_are_applied_at_open(backend: Backend) -> None:
    api = QueueLimits(rate=Rate.parse("10/s"), concurrency=2)
    limits: dict[str, Any] = {"api": api, "mail": {"key_concurrency": 1}}
    app = JobQueue(backend=backend, limits=limits)
    await app.open()
    assert await app.limits() == {"api": api, "mail": QueueLimits(key_concurrency=1)}
    assert await app.set_limits("api") == QueueLimits()
    assert await app.limits() == {"mail": QueueLimits(key_concurrency=1)}
    with pytest.raises(ValidationError):
        JobQueue(backend=backend, limits={"api": {"rate": "fast"}})


async def test_a_tasks_rate_key_comes_from_its_payload(app: JobQueue) -> None:
    @app.task(name="per_tenant", rate_key=lambda payload: payload["tenant"])
    async def per_tenant(payload: dict[str, str]) -> None:
        pass

    job = await per_tenant.enqueue({"tenant": "acme"})
    assert job.rate_key == "acme"
    assert (await per_tenant.enqueue({"tenant": "acme"}, rate_key="override")).rate_key == "override"
    with pytest.raises(ValidationError, match="rate_key"):
        await per_tenant.enqueue({"no": "tenant"})
