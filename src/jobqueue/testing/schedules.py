"""The conformance suite, part 4: periodic schedules' stored state, and one job per tick."""

from __future__ import annotations

import asyncio

from jobqueue.backends.base import Backend
from jobqueue.backends.params import Tick
from jobqueue.job import NewJob
from jobqueue.outcomes import Accepted, Duplicate, Rejected, StoredSchedule
from jobqueue.testing.helpers import claim, put

T0 = 1_700_000_000.0


def tick(at: float, name: str = "nightly", payload: object = "tick") -> Tick:
    return Tick(name, at, NewJob(payload, task="report"))


class ScheduleSuite:
    """Schedules shared by every scheduler: registered, paused, and fired once per tick."""

    async def test_schedules_are_registered_by_name_and_keep_their_state(self, backend: Backend) -> None:
        assert await backend.schedules() == []
        await backend.register_schedules([StoredSchedule("nightly", '{"v": 1}'), StoredSchedule("hourly", "{}")])
        assert isinstance(await backend.fire(tick(T0)), Accepted)
        await backend.pause_schedule("nightly", True)
        # A restart, or a second node with a newer release: the spec changes, the state does not.
        await backend.register_schedules([StoredSchedule("nightly", '{"v": 2}')])
        hourly, nightly = await backend.schedules()
        assert hourly == StoredSchedule("hourly", "{}")
        assert (nightly.name, nightly.spec, nightly.paused, nightly.last_tick) == ("nightly", '{"v": 2}', True, T0)

    async def test_a_tick_becomes_one_job_once(self, backend: Backend) -> None:
        await backend.register_schedules([StoredSchedule("nightly", "{}")])
        fired = await backend.fire(tick(T0, payload={"n": 1}))
        assert isinstance(fired, Accepted) and fired.job.task == "report" and fired.job.payload == {"n": 1}
        assert await backend.fire(tick(T0)) is None  # another scheduler, the same tick
        assert await backend.fire(tick(T0 - 60)) is None  # a scheduler behind the others
        (stored,) = await backend.schedules()
        assert (stored.last_tick, stored.last_job_id) == (T0, fired.job.id)
        later = await backend.fire(tick(T0 + 60))
        assert isinstance(later, Accepted)
        assert {job.id for job in await claim(backend)} == {fired.job.id, later.job.id}

    async def test_schedulers_racing_for_one_tick_make_one_job(self, backend: Backend) -> None:
        await backend.register_schedules([StoredSchedule("nightly", "{}")])
        outcomes = await asyncio.gather(*(backend.fire(tick(T0, payload=n)) for n in range(10)))
        assert sum(isinstance(outcome, Accepted) for outcome in outcomes) == 1
        assert outcomes.count(None) == 9
        assert len(await claim(backend, limit=20)) == 1

    async def test_a_paused_or_unknown_schedule_fires_nothing(self, backend: Backend) -> None:
        assert await backend.fire(tick(T0, name="unknown")) is None
        assert await backend.pause_schedule("unknown", True) is None
        await backend.register_schedules([StoredSchedule("nightly", "{}")])
        paused = await backend.pause_schedule("nightly", True)
        assert paused is not None and paused.paused
        assert await backend.fire(tick(T0)) is None
        resumed = await backend.pause_schedule("nightly", False)
        assert resumed is not None and not resumed.paused and resumed.last_tick is None
        assert isinstance(await backend.fire(tick(T0)), Accepted)
        assert len(await claim(backend)) == 1

    async def test_a_tick_refused_by_a_full_queue_is_spent(self, backend: Backend) -> None:
        await backend.register_schedules([StoredSchedule("nightly", "{}")])
        await put(backend, NewJob("filler"))
        assert isinstance(await backend.fire(tick(T0), capacity=1), Rejected)
        (stored,) = await backend.schedules()
        assert (stored.last_tick, stored.last_job_id) == (T0, None)
        assert await backend.fire(tick(T0), capacity=2) is None
        assert isinstance(await backend.fire(tick(T0 + 60), capacity=2), Accepted)

    async def test_a_tick_whose_key_is_held_names_the_holder_as_its_job(self, backend: Backend) -> None:
        await backend.register_schedules([StoredSchedule("nightly", "{}")])
        (held,) = await put(backend, NewJob("earlier", idempotency_key="nightly-1"))
        duplicate = await backend.fire(Tick("nightly", T0, NewJob("tick", idempotency_key="nightly-1")))
        assert isinstance(duplicate, Duplicate) and duplicate.job.id == held.id
        (stored,) = await backend.schedules()
        assert (stored.last_tick, stored.last_job_id) == (T0, held.id)
        # A later tick refused by a full queue names no job, not the last one's.
        assert isinstance(await backend.fire(tick(T0 + 60), capacity=1), Rejected)
        (stored,) = await backend.schedules()
        assert (stored.last_tick, stored.last_job_id) == (T0 + 60, None)

    async def test_a_tick_time_is_stored_exactly(self, backend: Backend) -> None:
        # Schedulers compare the stored last tick with the next one: it must come back bit for bit.
        at = T0 + 1 / 3
        await backend.register_schedules([StoredSchedule("nightly", "{}")])
        assert isinstance(await backend.fire(tick(at)), Accepted)
        (stored,) = await backend.schedules()
        assert stored.last_tick == at
        assert await backend.fire(tick(at)) is None
        assert isinstance(await backend.fire(tick(at + 1e-6)), Accepted)

    async def test_a_name_registered_twice_at_once_is_one_schedule(self, backend: Backend) -> None:
        # As if registered one after the other: the first as given, then the second's spec.
        await backend.register_schedules(
            [StoredSchedule("nightly", '{"v": 1}', paused=True), StoredSchedule("nightly", '{"v": 2}')]
        )
        assert await backend.schedules() == [StoredSchedule("nightly", '{"v": 2}', paused=True)]
