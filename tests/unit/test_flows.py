"""Jobs that wait for other jobs, as a user runs them: ``depends_on``, chains, groups with a
callback, parents' results in the handler, and failures that reach the children. Every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from jobqueue import FakeClock, JobState, PermanentError, group
from jobqueue.app import JobQueue
from jobqueue.backends import Backend
from jobqueue.errors import QueueFull, ValidationError
from jobqueue.job import parent_failed_error
from jobqueue.outcomes import Accepted, Duplicate
from jobqueue.task import current_job
from jobqueue.worker import Worker, WorkerConfig

S = JobState


@pytest.fixture
async def app(backend: Backend) -> AsyncIterator[JobQueue]:
    queue = JobQueue(backend=backend)
    await queue.open()
    yield queue


def worker(app: JobQueue, clock: FakeClock | None = None) -> Worker:
    return Worker(app, WorkerConfig(reaper_interval=None), clock=clock)


async def test_a_chain_runs_in_order_and_each_step_reads_the_one_before(app: JobQueue) -> None:
    seen: list[tuple[str, Any]] = []

    @app.task(name="add")
    async def add(n: int) -> int:
        parents = current_job().parent_results or {}
        seen.append(("add", dict(parents)))
        return n + int(sum(parents.values()))

    @app.task(name="double")
    def double(_: object) -> int:
        (value,) = (current_job().parent_results or {}).values()
        seen.append(("double", value))
        return int(value) * 2

    first, second, third = await app.enqueue_flow(add.step(1).then(add.step(10)).then(double.step({})))
    assert (first.state, second.state, third.state) == (S.PENDING, S.BLOCKED, S.BLOCKED)
    assert (second.parents, third.parents) == ((first.id,), (second.id,))
    await worker(app).drain()
    done = [await app.get(job.id) for job in (first, second, third)]
    assert [(job.state, job.result) for job in done if job] == [(S.COMPLETED, 1), (S.COMPLETED, 11), (S.COMPLETED, 22)]
    assert seen == [("add", {}), ("add", {first.id: 1}), ("double", 11)]
    assert await app.children(first.id) == [second.id]


async def test_a_group_callback_runs_once_after_every_member_with_all_results(app: JobQueue) -> None:
    @app.task(name="square")
    async def square(n: int) -> int:
        return n * n

    @app.task(name="total")
    async def total(_: object) -> int:
        return sum((current_job().parent_results or {}).values())

    jobs = await app.enqueue_flow(group(square.step(n) for n in range(1, 6)).then(total.step({})))
    callback = jobs[-1]
    assert callback.state is S.BLOCKED and set(callback.parents) == {job.id for job in jobs[:-1]}
    await worker(app).drain()
    finished = await app.get(callback.id)
    assert finished is not None and (finished.state, finished.result) == (S.COMPLETED, 55)


async def test_a_dead_lettered_parent_fails_the_rest_of_the_chain(app: JobQueue) -> None:
    ran: list[str] = []

    @app.task(name="step", max_retries=0)
    async def step(name: str) -> None:
        ran.append(name)
        if name == "b":
            raise PermanentError("b is broken")

    _, b, c, d = await app.enqueue_flow(step.step("a").then(step.step("b")).then(step.step("c")).then(step.step("d")))
    await worker(app).drain()
    assert ran == ["a", "b"]
    states = {job.id: await app.get(job.id) for job in (c, d)}
    assert [(job.state, job.error) for job in states.values() if job] == [
        (S.DEAD_LETTERED, parent_failed_error(b.id, S.DEAD_LETTERED)),
        (S.DEAD_LETTERED, parent_failed_error(c.id, S.DEAD_LETTERED)),
    ]


async def test_a_callback_may_run_when_a_member_failed(app: JobQueue) -> None:
    @app.task(name="maybe", max_retries=0)
    async def maybe(n: int) -> int:
        if n == 2:
            raise PermanentError("two")
        return n

    @app.task(name="report")
    async def report(_: object) -> list[int]:
        return sorted((current_job().parent_results or {}).values())

    flow = group(maybe.step(1), maybe.step(2), maybe.step(3)).then(report.step({}, on_parent_failure="run"))
    jobs = await app.enqueue_flow(flow)
    await worker(app).drain()
    finished = await app.get(jobs[-1].id)
    assert finished is not None and (finished.state, finished.result) == (S.COMPLETED, [1, 3])


async def test_depends_on_takes_jobs_or_ids_and_refuses_an_unknown_parent(app: JobQueue) -> None:
    @app.task(name="t")
    async def t(_: object) -> None:
        return None

    parent = await t.enqueue(1)
    child = await t.enqueue(2, depends_on=[parent])
    other = await app.enqueue("t", 3, depends_on=[parent.id, child.id])
    assert child.state is other.state is S.BLOCKED and other.parents == (parent.id, child.id)
    with pytest.raises(ValidationError) as caught:
        await t.enqueue(4, depends_on=["no-such-job"])
    assert caught.value.field == "depends_on" and "no-such-job" in caught.value.message
    await worker(app).drain()
    assert {(await app.get(job.id)).state for job in (parent, child, other)} == {S.COMPLETED}  # type: ignore[union-attr]


async def test_blocked_children_count_against_capacity(backend: Backend) -> None:
    app = JobQueue(backend=backend, capacity=2)
    parent = await app.enqueue("t", 1)
    await app.enqueue("t", 2, depends_on=[parent])
    with pytest.raises(QueueFull):
        await app.enqueue("t", 3, depends_on=[parent])
    with pytest.raises(QueueFull):
        await app.enqueue_flow(app.step("t", 4).then(app.step("t", 5)))


async def test_a_flow_sent_again_waits_for_the_jobs_it_stored_the_first_time(app: JobQueue) -> None:
    # The parent has a key, the child none: sent twice (a retry after a lost answer), the second
    # child must wait for the first parent, which holds the key, not for a job never stored.
    def flow() -> Any:
        return app.step("t", "p", idempotency_key="order-1").then(app.step("t", "c"))

    parent, child = await app.enqueue_flow(flow())
    again = await app.enqueue_many(app._flow_jobs(flow()))
    assert isinstance(again[0], Duplicate) and again[0].job.id == parent.id
    assert isinstance(again[1], Accepted) and again[1].job.parents == (parent.id,)
    assert child.parents == (parent.id,)


def test_a_flow_from_synchronous_code() -> None:
    app = JobQueue("memory://")
    try:
        first, second = app.enqueue_flow_sync(app.step("t", 1).then(app.step("t", 2)))
        assert (first.state, second.state, second.parents) == (S.PENDING, S.BLOCKED, (first.id,))
    finally:
        app.close_sync()
