"""Periodic schedules on Redis: schedulers on separate connections fire each tick exactly once.

Each scheduler is its own ``RedisBackend`` (its own connection, as another process would have):
nothing but Redis stands between them, so one job per tick can only come from ``fire`` being one
script.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from jobqueue.backends import ClaimParams
from jobqueue.backends.params import Tick
from jobqueue.backends.redis import RedisBackend
from jobqueue.job import NewJob
from jobqueue.outcomes import Accepted, EnqueueOutcome, StoredSchedule
from tests.backends import require_redis, unique_prefix

SCHEDULERS = 5
TICKS = 50
T0 = 1_700_000_000.0


async def test_schedulers_on_separate_connections_make_one_job_per_tick() -> None:
    url, prefix = require_redis(), unique_prefix()
    schedulers = [RedisBackend(url, prefix=prefix) for _ in range(SCHEDULERS)]
    for scheduler in schedulers:
        await scheduler.open()
    start = asyncio.Event()

    async def run(number: int, scheduler: RedisBackend) -> list[EnqueueOutcome | None]:
        await start.wait()
        # Every scheduler fires every tick in order, as each would when its clock reaches it; the
        # jitter (clocks a little apart) lets a different scheduler win each race.
        fired: list[EnqueueOutcome | None] = []
        for t in range(1, TICKS + 1):
            await asyncio.sleep(random.random() / 1000)
            job = NewJob({"tick": t, "by": number}, task="report")
            fired.append(await scheduler.fire(Tick("every-minute", T0 + 60 * t, job)))
        return fired

    try:
        await schedulers[0].register_schedules([StoredSchedule("every-minute", "{}")])
        racing = [asyncio.create_task(run(n, s)) for n, s in enumerate(schedulers)]
        await asyncio.sleep(0)
        start.set()
        outcomes = [outcome for fired in await asyncio.gather(*racing) for outcome in fired]
        assert sum(isinstance(outcome, Accepted) for outcome in outcomes) == TICKS
        assert outcomes.count(None) == (SCHEDULERS - 1) * TICKS
        jobs = await schedulers[0].claim(ClaimParams(["default"], "w", 2 * SCHEDULERS * TICKS))
        assert len(jobs) == TICKS
        assert Counter(job.payload["tick"] for job in jobs) == Counter(range(1, TICKS + 1))
        (stored,) = await schedulers[-1].schedules()
        last = next(job for job in jobs if job.payload["tick"] == TICKS)
        assert (stored.last_tick, stored.last_job_id) == (T0 + 60 * TICKS, last.id)
    finally:
        await schedulers[0].drop()
        for scheduler in schedulers:
            await scheduler.close()


async def test_a_schedule_hash_deleted_by_hand_is_gone_not_an_error() -> None:
    url, prefix = require_redis(), unique_prefix()
    backend = RedisBackend(url, prefix=prefix)
    await backend.open()
    try:
        await backend.register_schedules([StoredSchedule("kept", "{}"), StoredSchedule("removed", "{}")])
        await backend._call("DEL", f"{{{prefix}}}:schedule:removed")  # by hand, as docs/periodic.md allows
        assert [s.name for s in await backend.schedules()] == ["kept"]
        await backend.register_schedules([StoredSchedule("removed", '{"v": 2}')])  # declared again
        assert [s.name for s in await backend.schedules()] == ["kept", "removed"]
    finally:
        await backend.drop()
        await backend.close()
