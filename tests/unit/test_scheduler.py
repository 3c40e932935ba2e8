"""The scheduler on the fake clock: one job per tick whatever the number of schedulers, catch-up
after time away, pause and resume, a DST change, and the worker running it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from jobqueue import FakeClock, JobQueue
from jobqueue.backends.memory import MemoryBackend
from jobqueue.errors import ConfigurationError, ScheduleNotFound
from jobqueue.worker import Worker, WorkerConfig
from jobqueue.worker.scheduler import MAX_SLEEP, Scheduler
from jobqueue.worker.signals import WorkerSignals

T0 = 1_700_000_005.0  # 5 s past a multiple of 10


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def app(clock: FakeClock) -> AsyncIterator[JobQueue]:
    queue = JobQueue(backend=MemoryBackend(clock=clock), clock=clock)

    @queue.task(name="report")
    async def report(payload: object) -> object:
        return payload

    await queue.open()
    yield queue
    await queue.close()


def scheduler(app: JobQueue, clock: FakeClock) -> Scheduler:
    signals = WorkerSignals()
    signals.init()
    return Scheduler(app, clock, signals)


async def jobs_of(app: JobQueue) -> list[tuple[object, str | None]]:
    page = await app.list_jobs(limit=1000)
    return [(job.payload, job.idempotency_key) for job in page.jobs]


async def test_each_tick_becomes_one_job_however_many_schedulers_run(app: JobQueue, clock: FakeClock) -> None:
    app.schedule("ten", task="report", every=10)
    schedulers = [scheduler(app, clock) for _ in range(5)]
    assert [await s.run_once() for s in schedulers] == [0] * 5  # nothing due before the first tick
    for _ in range(3):
        clock.advance(10)
        assert sorted([await s.run_once() for s in schedulers]) == [0, 0, 0, 0, 1]
    ticks = ["2023-11-14T22:13:30+00:00", "2023-11-14T22:13:40+00:00", "2023-11-14T22:13:50+00:00"]
    assert await jobs_of(app) == [({"schedule": "ten", "tick": t}, f"schedule:ten@{t}") for t in ticks]
    (state,) = await app.schedule_states()
    assert state.last_tick == T0 + 25 and state.next_tick == T0 + 35 and not state.paused


@pytest.mark.parametrize(("catch_up", "jobs"), [("once", 1), ("all", 4), ("skip", 0)])
async def test_missed_ticks_follow_the_catch_up_policy(
    app: JobQueue, clock: FakeClock, catch_up: str, jobs: int
) -> None:
    app.schedule("ten", task="report", every=10, catch_up=catch_up)  # type: ignore[arg-type]
    first = scheduler(app, clock)
    await first.run_once()
    clock.advance(10)
    await first.run_once()  # fires T0 + 5
    clock.advance(42)  # down for ticks T0 + 15, 25, 35 and 45; back 7 s after the last
    assert await scheduler(app, clock).run_once() == jobs
    assert len(await jobs_of(app)) == 1 + jobs


async def test_a_paused_schedule_fires_nothing_on_any_node_until_resumed(app: JobQueue, clock: FakeClock) -> None:
    app.schedule("ten", task="report", every=10, payload={"fixed": True})
    node = scheduler(app, clock)
    await node.run_once()
    paused = await app.pause_schedule("ten")
    assert paused.paused and paused.next_tick is None
    clock.advance(30)
    assert await node.run_once() == 0
    await app.resume_schedule("ten")
    clock.advance(MAX_SLEEP)  # each scheduler sees a resume at its next read of the store
    assert await node.run_once() == 1  # the missed ticks, caught up once (the default policy)
    assert await jobs_of(app) == [({"fixed": True}, "schedule:ten@2023-11-14T22:14:00+00:00")]
    with pytest.raises(ScheduleNotFound):
        await app.pause_schedule("nope")


async def test_run_now_enqueues_outside_the_ticks(app: JobQueue, clock: FakeClock) -> None:
    app.schedule("ten", task="report", every=10, queue="reports", priority=7)
    job = await app.run_schedule_now("ten")
    assert (job.task, job.queue, job.priority, job.payload) == (
        "report",
        "reports",
        7,
        {"schedule": "ten", "tick": None},
    )
    node = scheduler(app, clock)
    await node.run_once()
    clock.advance(10)
    assert await node.run_once() == 1


async def test_the_spring_forward_skips_a_tick_and_the_fall_back_fires_once(clock: FakeClock) -> None:
    paris = ZoneInfo("Europe/Paris")
    clock.advance(datetime(2026, 3, 28, 12, tzinfo=paris).timestamp() - clock.time())
    app = JobQueue(backend=MemoryBackend(clock=clock), clock=clock)
    app.schedule("nightly", task="report", cron="30 2 * * *", timezone="Europe/Paris", catch_up="all")
    async with app:
        node = scheduler(app, clock)
        for _ in range(4 * 24 * 3):  # every 15 minutes for three days, 2026-03-28 to 03-31
            await node.run_once()
            clock.advance(900)
        # 03-29 has no 02:30; 03-30 and 03-31 have one each.
        assert [payload["tick"] for payload, _ in await jobs_of(app)] == [  # type: ignore[index]
            "2026-03-30T00:30:00+00:00",
            "2026-03-31T00:30:00+00:00",
        ]
        clock.advance(datetime(2026, 10, 24, 12, tzinfo=paris).timestamp() - clock.time())
    autumn = JobQueue(backend=MemoryBackend(clock=clock), clock=clock)
    autumn.schedule("nightly", task="report", cron="30 2 * * *", timezone="Europe/Paris", catch_up="all")
    async with autumn:
        node = scheduler(autumn, clock)
        for _ in range(4 * 24):  # 2026-10-24 12:00 to 10-25 12:00; 02:00-02:59 happens twice on 10-25
            await node.run_once()
            clock.advance(900)
        # The first 02:30 (CEST, UTC+2), not the second (CET, UTC+1).
        assert [payload["tick"] for payload, _ in await jobs_of(autumn)] == ["2026-10-25T00:30:00+00:00"]  # type: ignore[index]


async def test_a_worker_runs_the_scheduler_unless_told_not_to(app: JobQueue, clock: FakeClock) -> None:
    app.schedule("ten", task="report", every=10)
    quiet = Worker(app, WorkerConfig(reaper_interval=None, retention=None, scheduler=False), clock=clock)
    quiet.signals.init()
    running = asyncio.create_task(quiet.run())
    await quiet.signals.waiting.wait()
    assert await app.backend.schedules() == []  # no scheduler looked
    quiet.stop()
    await running

    worker = Worker(app, WorkerConfig(reaper_interval=None, retention=None), clock=clock)
    worker.signals.init()
    running = asyncio.create_task(worker.run())
    assert await worker.signals.schedules_checked.wait() == 0  # it looked at T0; the first tick is T0 + 5
    clock.advance(5.01)
    assert await worker.signals.tick_fired.wait() == ("ten", T0 + 5)
    done = await app.wait((await app.list_jobs()).jobs[0].id, timeout=5)
    assert done.result == {"schedule": "ten", "tick": "2023-11-14T22:13:30+00:00"}
    worker.stop()
    await running


def test_schedules_are_declared_once_and_above_a_task() -> None:
    app = JobQueue("memory://")

    @app.periodic(every=60)
    @app.task(name="tidy")
    async def tidy(payload: object) -> None:
        return None

    assert app.schedules["tidy"].every == 60 and app.schedules["tidy"].task == "tidy"
    with pytest.raises(ConfigurationError):
        app.schedule("tidy", task="tidy", every=5)
    with pytest.raises(ConfigurationError):
        app.periodic(every=5)(lambda payload: None)  # type: ignore[arg-type]


async def test_a_pause_shorter_than_a_read_of_the_store_loses_no_tick(app: JobQueue, clock: FakeClock) -> None:
    app.schedule("second", task="report", every=1, catch_up="all")
    node = scheduler(app, clock)
    for second in range(25):
        if second == 12:
            await app.pause_schedule("second")  # and resumed 4 s later, between two reads
        if second == 16:
            await app.resume_schedule("second")
        await node.run_once()
        clock.advance(1)
    ticks = sorted(payload["tick"] for payload, _ in await jobs_of(app))  # type: ignore[index]
    assert len(ticks) == len(set(ticks)) == 24  # every second from T0 + 0.995..., none missing
