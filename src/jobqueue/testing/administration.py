"""The conformance suite, part 3: the dead-letter queue, cancel, listing, stats, prune, wake-ups."""

from __future__ import annotations

import asyncio

import pytest

from jobqueue.backends.base import Backend
from jobqueue.backends.params import Completion, Failure, ListParams, PruneParams
from jobqueue.clock import FakeClock
from jobqueue.errors import InvalidTransition, JobNotFound, QueueFull, ValidationError
from jobqueue.job import NewJob, RegisteredTask
from jobqueue.testing.helpers import S, claim, dead_job, lease_of, put, state_of


class AdminSuite:
    """Looking after jobs: replay, cancel, list, count, prune, and waking waiters."""

    # ---- dead-letter queue -----------------------------------------------------------

    async def test_replay_dead_gives_a_fresh_attempt_budget(self, backend: Backend) -> None:
        job = await dead_job(backend)
        replayed = await backend.replay_dead(job.id)
        assert replayed.state is S.PENDING and replayed.retry_count == 0 and replayed.finished_at is None
        (again,) = await claim(backend)
        assert again.id == job.id and again.attempt == 1

    async def test_replay_into_a_full_queue_keeps_the_job_in_the_dlq(self, backend: Backend) -> None:
        job = await dead_job(backend)
        await put(backend, NewJob("filler"), capacity={"default": 1})
        with pytest.raises(QueueFull):
            await backend.replay_dead(job.id, capacity=1)
        assert await state_of(backend, job.id) is S.DEAD_LETTERED
        replayed = await backend.replay_dead(job.id, capacity=2)
        assert replayed.state is S.PENDING

    async def test_replay_errors(self, backend: Backend) -> None:
        with pytest.raises(JobNotFound):
            await backend.replay_dead("no-such-job")
        (job,) = await put(backend, NewJob("x"))
        with pytest.raises(InvalidTransition):
            await backend.replay_dead(job.id)

    # ---- cancel ----------------------------------------------------------------------

    async def test_cancel_waiting_jobs(self, backend: Backend, clock: FakeClock) -> None:
        pending, scheduled = await put(backend, NewJob("p"), NewJob("s", delay=10))
        for job in (pending, scheduled):
            cancelled = await backend.cancel(job.id)
            assert cancelled.state is S.CANCELLED and cancelled.finished_at == clock.time()
        clock.advance(20)
        assert await claim(backend) == []

    async def test_cancel_a_failed_job_awaiting_retry(self, backend: Backend, clock: FakeClock) -> None:
        await put(backend, NewJob("x"))
        (job,) = await claim(backend)
        await backend.fail([Failure(lease_of(job), "boom", 5)])
        assert (await backend.cancel(job.id)).state is S.CANCELLED
        clock.advance(10)
        assert await claim(backend) == []

    async def test_cancel_errors(self, backend: Backend) -> None:
        with pytest.raises(JobNotFound):
            await backend.cancel("no-such-job")
        await put(backend, NewJob("x"))
        (job,) = await claim(backend)
        await backend.complete([Completion(lease_of(job))])
        with pytest.raises(InvalidTransition):
            await backend.cancel(job.id)
        await backend.cancel((await put(backend, NewJob("y")))[0].id)
        with pytest.raises(InvalidTransition):  # cancelled already
            await backend.cancel(job.id)

    # ---- list, stats, prune ----------------------------------------------------------

    async def test_list_filters_and_pages(self, backend: Backend, clock: FakeClock) -> None:
        jobs = []
        for n in range(7):
            jobs += await put(backend, NewJob(n, queue="a" if n % 2 else "b", task="t" if n < 3 else "u"))
            clock.advance(0.001)
        ids = [j.id for j in jobs]
        seen: list[str] = []
        cursor = None
        while True:
            page = await backend.list_jobs(ListParams(limit=3, cursor=cursor))
            seen += [j.id for j in page.jobs]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == sorted(ids)
        page = await backend.list_jobs(ListParams(queue="a"))
        assert sorted(j.payload for j in page.jobs) == [1, 3, 5]
        page = await backend.list_jobs(ListParams(task="t", queue="b"))
        assert sorted(j.payload for j in page.jobs) == [0, 2]
        await dead_job(backend, "dead")
        page = await backend.list_jobs(ListParams(state=S.DEAD_LETTERED))
        assert [j.payload for j in page.jobs] == ["dead"]
        exact = await backend.list_jobs(ListParams(queue="a", limit=3))
        assert len(exact.jobs) == 3 and exact.next_cursor is None

    def test_page_limits_are_validated(self) -> None:
        for limit in (0, -1, 10_001):
            with pytest.raises(ValidationError):
                ListParams(limit=limit)

    async def test_stats_count_by_queue_and_state(self, backend: Backend) -> None:
        await put(backend, NewJob(1), NewJob(2), NewJob(3, queue="other", idempotency_key="k"), NewJob(4, delay=9))
        (job,) = await claim(backend, limit=1)
        await backend.complete([Completion(lease_of(job))])
        stats = await backend.stats()
        assert set(stats.queues) == {"default", "other"}
        default = stats.queues["default"].counts
        assert (default[S.PENDING], default[S.SCHEDULED], default[S.COMPLETED], default[S.PROCESSING]) == (1, 1, 1, 0)
        assert stats.queues["other"].counts[S.PENDING] == 1
        assert stats.idempotency_keys == 1

    async def test_prune_removes_old_finished_jobs_and_expired_keys(self, backend: Backend, clock: FakeClock) -> None:
        old_done, old_dead = await put(backend, NewJob("done", idempotency_key="k1", key_ttl=10), NewJob("dead"))
        a, b = await claim(backend, limit=2)
        await backend.complete([Completion(lease_of(a))])
        await backend.fail([Failure(lease_of(b), "x", None)])
        clock.advance(100)
        await put(backend, NewJob("waiting", idempotency_key="k2"))
        (fresh,) = await claim(backend)
        await backend.complete([Completion(lease_of(fresh))])
        cutoff = clock.time() - 50
        result = await backend.prune(PruneParams(completed_before=cutoff))
        assert (result.jobs, result.keys) == (1, 1)
        assert await backend.get(old_done.id) is None
        assert await backend.get(old_dead.id) is not None  # dead jobs are kept unless asked
        assert await backend.get(fresh.id) is not None
        result = await backend.prune(PruneParams(dead_before=cutoff))
        assert (result.jobs, result.keys) == (1, 0)
        assert await backend.get(old_dead.id) is None
        stats = await backend.stats()
        assert stats.idempotency_keys == 1
        assert stats.queues["default"].counts[S.COMPLETED] == 1
        assert stats.queues["default"].counts[S.DEAD_LETTERED] == 0

    async def test_a_healthy_store_takes_writes(self, backend: Backend) -> None:
        await backend.check_writes()
        assert (await backend.stats()).queues == {}  # the probe left no job, count or key

    # ---- registered tasks ------------------------------------------------------------

    async def test_registered_tasks_are_kept_and_replaced_by_name(self, backend: Backend) -> None:
        assert await backend.registered_tasks() == []
        await backend.register_tasks([RegisteredTask("send", "mail", 5, 0, 2.5), RegisteredTask("resize")])
        await backend.register_tasks([RegisteredTask("send", "mail", 1, 7, None)])
        await backend.register_tasks([])
        stored = sorted(await backend.registered_tasks(), key=lambda task: task.name)
        assert stored == [RegisteredTask("resize"), RegisteredTask("send", "mail", 1, 7, None)]

    # ---- wake-ups --------------------------------------------------------------------

    async def test_wait_for_work_wakes_on_enqueue(self, backend: Backend) -> None:
        # Drain any wake-up left over from earlier operations, then wait for real.
        await backend.wait_for_work(["default"], 0.01)
        waiter = asyncio.create_task(backend.wait_for_work(["default"], 30))
        await asyncio.sleep(0)
        await put(backend, NewJob("x"))
        assert await asyncio.wait_for(waiter, 5) is True

    async def test_wait_for_work_wakes_on_a_delayed_enqueue(self, backend: Backend) -> None:
        # The waiter must learn of the new due time: it was waiting for the whole timeout.
        await backend.wait_for_work(["default"], 0.01)
        waiter = asyncio.create_task(backend.wait_for_work(["default"], 30))
        await asyncio.sleep(0)
        await put(backend, NewJob("x", delay=60))
        assert await asyncio.wait_for(waiter, 5) is True

    async def test_wait_for_work_ends_when_a_delayed_job_comes_due(self, backend: Backend, clock: FakeClock) -> None:
        (job,) = await put(backend, NewJob("x", delay=0.2))
        await _wait_until_due(backend, 0.2)
        clock.advance(0.2)
        assert [j.id for j in await claim(backend)] == [job.id]

    async def test_wait_for_work_ends_when_a_retry_comes_due(self, backend: Backend, clock: FakeClock) -> None:
        await put(backend, NewJob("x"))
        (job,) = await claim(backend)
        assert await backend.fail([Failure(lease_of(job), "boom", retry_delay=0.2)]) == [True]
        await _wait_until_due(backend, 0.2)
        clock.advance(0.2)
        assert [j.id for j in await claim(backend)] == [job.id]

    async def test_wait_for_work_times_out_without_work(self, backend: Backend) -> None:
        await backend.wait_for_work(["default"], 0.01)
        assert await backend.wait_for_work(["default"], 0.05) is False


async def _wait_until_due(backend: Backend, due_in: float) -> None:
    """Wait for work as an idle worker would, with a poll interval far longer than ``due_in``: each
    wait must end by the due time (the fake clock stands still, so it stays ``due_in`` away)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while loop.time() < started + due_in:  # a spurious wake-up is allowed: wait again
        await asyncio.wait_for(backend.wait_for_work(["default"], 30), 10 * due_in)
