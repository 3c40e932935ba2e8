"""SQLite fires a schedule's tick as it enqueues a job: in one write transaction, once per tick
however many backends share the file, handed to a waiting worker and committed as durably."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from jobqueue import Accepted, JobState, NewJob
from jobqueue.backends import ClaimParams, SQLiteBackend
from jobqueue.backends.params import Tick
from jobqueue.backends.sqlite.connection import Durability
from jobqueue.outcomes import Duplicate, StoredSchedule

T0 = 1_700_000_000.0


def tick(n: int, key: str | None = None) -> Tick:
    return Tick("nightly", T0 + 60 * n, NewJob(payload={"n": n}, task="report", idempotency_key=key))


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[SQLiteBackend, SQLiteBackend]]:
    """A scheduler's backend and a worker's, on one file: two processes, as far as SQLite knows."""
    async with (
        SQLiteBackend(tmp_path / "jobs.db", durability="normal") as scheduler,
        SQLiteBackend(tmp_path / "jobs.db", durability="normal") as worker,
    ):
        await scheduler.register_schedules([StoredSchedule("nightly", "{}")])
        yield scheduler, worker


async def test_a_fired_tick_is_handed_to_a_worker_waiting_in_another_process(
    pair: tuple[SQLiteBackend, SQLiteBackend],
) -> None:
    scheduler, worker = pair
    assert await worker.claim_or_wait(ClaimParams(["default"], "w1", 10, 30.0)) == []  # w1 waits
    fired = await scheduler.fire(tick(1))
    assert isinstance(fired, Accepted)
    assert (fired.job.state, fired.job.worker_id) == (JobState.PROCESSING, "w1")
    assert await worker.wait_for_work(["default"], 5)  # the message woke the worker's process
    (job,) = await worker.claim_or_wait(ClaimParams(["default"], "w1", 10, 30.0))
    assert (job.id, job.payload) == (fired.job.id, {"n": 1})
    assert (await scheduler.stats()).queues["default"].counts[JobState.PROCESSING] == 1


async def test_a_fired_tick_wakes_a_worker_of_another_process(pair: tuple[SQLiteBackend, SQLiteBackend]) -> None:
    scheduler, worker = pair
    assert not await worker.wait_for_work(["default"], 0.01)  # listening, not registered to be handed
    waiting = asyncio.create_task(worker.wait_for_work(["default"], 5))
    await asyncio.sleep(0.01)
    fired = await scheduler.fire(tick(1))
    assert isinstance(fired, Accepted) and fired.job.state is JobState.PENDING
    assert await waiting  # woken by the wake datagram, long before its timeout
    (job,) = await worker.claim(ClaimParams(["default"], "w1", 10))
    assert job.id == fired.job.id


@pytest.mark.parametrize("durability", ["full", "normal"])
async def test_backends_on_one_file_fire_each_tick_once(tmp_path: Path, durability: Durability) -> None:
    """Separate connections racing for each tick: on the writer threads ("full") and inline, where
    a write that finds the lock taken goes to the writer thread ("normal")."""
    async with AsyncExitStack() as stack:
        backends = [
            await stack.enter_async_context(SQLiteBackend(tmp_path / "jobs.db", durability=durability))
            for _ in range(4)
        ]
        await asyncio.gather(*(b.register_schedules([StoredSchedule("nightly", "{}")]) for b in backends))

        async def scheduler(backend: SQLiteBackend) -> list[tuple[int, str]]:
            fired = []
            for n in range(1, 31):
                outcome = await backend.fire(tick(n))
                if outcome is not None:
                    assert isinstance(outcome, Accepted)
                    fired.append((n, outcome.job.id))
                await asyncio.sleep(0)
            return fired

        fired = sorted(pair for found in await asyncio.gather(*map(scheduler, backends)) for pair in found)
        assert [n for n, _ in fired] == list(range(1, 31))
        stats = await backends[0].stats()
        assert stats.queues["default"].counts[JobState.PENDING] == 30
        (stored,) = await backends[1].schedules()
        assert (stored.last_tick, stored.last_job_id) == (T0 + 60 * 30, fired[-1][1])


async def test_a_tick_whose_key_is_held_names_the_holder_and_is_spent(tmp_path: Path) -> None:
    async with SQLiteBackend(tmp_path / "jobs.db") as backend:
        await backend.register_schedules([StoredSchedule("nightly", "{}")])
        (holder,) = await backend.enqueue([NewJob(payload="first", idempotency_key="k")])
        assert isinstance(holder, Accepted)
        duplicate = await backend.fire(tick(1, key="k"))
        assert isinstance(duplicate, Duplicate) and duplicate.job.id == holder.job.id
        (stored,) = await backend.schedules()
        assert (stored.last_tick, stored.last_job_id) == (T0 + 60, holder.job.id)
        assert await backend.fire(tick(1)) is None
        assert (await backend.stats()).queues["default"].counts[JobState.PENDING] == 1


async def test_a_fired_tick_is_committed_on_the_writer_thread_as_an_enqueue_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under ``durability="full"`` a tick accepts a job: fsynced, so never written inline."""
    async with SQLiteBackend(tmp_path / "jobs.db") as backend:
        await backend.register_schedules([StoredSchedule("nightly", "{}")])
        assert backend._inline is not None

        def inline(body: object) -> None:
            raise AssertionError("a fired tick was written inline, without fsync")

        monkeypatch.setattr(backend._inline, "run", inline)
        assert isinstance(await backend.fire(tick(1)), Accepted)
