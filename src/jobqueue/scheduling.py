"""Periodic jobs on the app: declaring schedules, and seeing and steering them while they run.

``JobQueue`` takes these methods from :class:`PeriodicJobs`. The schedules an app declares are
fired by every worker's scheduler (:mod:`jobqueue.worker.scheduler`); their state (paused, the
last tick fired and its job) lives in the store, so a pause holds for every node and across
restarts. A process without the app's code (``jobqueue api`` alone) reads the definitions the
schedulers stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from jobqueue.backends.base import Backend
from jobqueue.backends.params import Tick
from jobqueue.clock import Clock, SystemClock, to_datetime
from jobqueue.errors import ConfigurationError, ScheduleNotFound
from jobqueue.job import Job, NewJob
from jobqueue.outcomes import StoredSchedule
from jobqueue.periodic import CatchUp, Schedule
from jobqueue.task import Task

T = TypeVar("T")
log = logging.getLogger("jobqueue.scheduling")
#: How long a tick's idempotency key is held: a second guard, beside the store's last tick.
TICK_KEY_TTL = 3600.0


@dataclass(frozen=True, slots=True)
class ScheduleState:
    """A schedule with its stored state, as ``GET /schedules`` and ``jobqueue schedules`` show it."""

    schedule: Schedule
    paused: bool
    last_tick: float | None
    last_job_id: str | None
    #: The next tick, by this process's clock (``None`` while paused).
    next_tick: float | None

    def to_dict(self) -> dict[str, Any]:
        s = self.schedule
        return {"name": s.name, "task": s.task, "queue": s.queue, "when": s.describe(), "cron": s.cron,
                "every": s.every, "timezone": s.timezone, "catch_up": s.catch_up, "paused": self.paused,
                "last_tick": _iso(self.last_tick), "last_job_id": self.last_job_id,
                "next_tick": _iso(self.next_tick)}  # fmt: skip


def _job_of(schedule: Schedule, tick: str | None) -> tuple[Any, dict[str, Any]]:
    """The payload and enqueue options of ``schedule``'s job (``tick``: its ISO time, if a tick's)."""
    payload = {"schedule": schedule.name, "tick": tick} if schedule.payload is None else schedule.payload
    options = {k: v for k, v in (("queue", schedule.queue), ("priority", schedule.priority)) if v is not None}
    return payload, options


def _iso(moment: float | None) -> str | None:
    when = to_datetime(moment)
    return None if when is None else when.isoformat()


class PeriodicJobs:
    """The periodic-job methods of :class:`~jobqueue.app.JobQueue`."""

    backend: Backend
    clock: Clock | None
    schedules: dict[str, Schedule]

    def new_job(self, task: str | Task, payload: Any, **overrides: Any) -> NewJob:
        raise NotImplementedError

    def capacity_for(self, queue: str) -> int | None:
        raise NotImplementedError

    async def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        raise NotImplementedError

    async def enqueue(self, task: str | Task, payload: Any, **overrides: Any) -> Job:
        raise NotImplementedError

    # ---- declaring --------------------------------------------------------------------------

    def schedule(
        self,
        name: str,
        *,
        task: str | Task,
        cron: str | None = None,
        every: float | None = None,
        timezone: str = "UTC",
        payload: Any = None,
        queue: str | None = None,
        priority: int | None = None,
        catch_up: CatchUp = "once",
        paused: bool = False,
    ) -> Schedule:
        """Enqueue ``task`` on a schedule: ``cron`` (5 fields, or 6 with seconds first) in
        ``timezone``, or ``every`` N seconds. Each tick becomes one job however many workers run.
        ``payload`` defaults to ``{"schedule": name, "tick": <ISO time of the tick>}``."""
        if name in self.schedules:
            raise ConfigurationError(f"schedule {name!r} is already declared")
        task_name = task.name if isinstance(task, Task) else task
        made = Schedule(name, task_name, cron=cron, every=every, timezone=timezone, payload=payload, queue=queue,
                        priority=priority, catch_up=catch_up, paused=paused)  # fmt: skip
        self.schedules[name] = made
        return made

    def periodic(self, cron: str | None = None, *, name: str | None = None, **options: Any) -> Callable[[Task], Task]:
        """Run a task on a schedule: ``@app.periodic("*/5 * * * *", timezone="Europe/Paris")`` above
        ``@app.task``; or ``@app.periodic(every=30)``. Options as for :meth:`schedule`."""

        def declare(task: Task) -> Task:
            if not isinstance(task, Task):
                raise ConfigurationError("@app.periodic goes above @app.task (it schedules a task)")
            self.schedule(name or task.name, task=task, cron=cron, **options)
            return task

        return declare

    def tick_job(self, schedule: Schedule, at: float) -> NewJob:
        """The job one tick of ``schedule`` becomes; its key names the tick."""
        when = _iso(at)
        payload, options = _job_of(schedule, when)
        key = f"schedule:{schedule.name}@{when}"
        return self.new_job(schedule.task, payload, idempotency_key=key, key_ttl=TICK_KEY_TTL, **options)

    def tick(self, schedule: Schedule, at: float) -> tuple[Tick, int | None]:
        """The store's tick for ``at``, and the capacity it is enqueued under."""
        job = self.tick_job(schedule, at)
        return Tick(schedule.name, at, job), self.capacity_for(job.queue)

    # ---- seeing and steering ----------------------------------------------------------------

    async def schedule_states(self) -> list[ScheduleState]:
        """Every schedule declared here or stored by a scheduler, by name, with its state."""
        stored = {s.name: s for s in await self._run(self.backend.schedules())}
        names = sorted(set(stored) | set(self.schedules))
        now, states = self._now(), []
        for name in names:
            try:
                states.append(self._state(name, stored.get(name), now))
            except (ConfigurationError, LookupError, TypeError, ValueError) as exc:
                # A definition stored by another release, or in a time zone this host lacks:
                # the other schedules are still listed.
                log.warning("schedule.unreadable name=%s: %s", name, exc)
        return states

    async def pause_schedule(self, name: str) -> ScheduleState:
        """Pause a schedule on every node (its ticks do not fire until resumed)."""
        return await self._set_paused(name, True)

    async def resume_schedule(self, name: str) -> ScheduleState:
        """Resume a schedule; the ticks it missed follow its catch-up policy."""
        return await self._set_paused(name, False)

    async def run_schedule_now(self, name: str) -> Job:
        """Enqueue a schedule's job now, outside its ticks (its next tick fires as usual)."""
        schedule = self.schedules.get(name)
        if schedule is None:
            stored = {s.name: s for s in await self._run(self.backend.schedules())}.get(name)
            if stored is None:
                raise ScheduleNotFound(name)
            schedule = Schedule.from_spec(name, stored.spec)
        payload, options = _job_of(schedule, None)
        return await self.enqueue(schedule.task, payload, **options)

    def _now(self) -> float:
        return (self.clock or SystemClock()).time()

    async def _set_paused(self, name: str, paused: bool) -> ScheduleState:
        stored = await self._run(self.backend.pause_schedule(name, paused))
        if stored is None and name in self.schedules:
            # Declared here, never stored by a scheduler yet: store it, then pause it.
            declared = self.schedules[name]
            await self._run(self.backend.register_schedules([StoredSchedule(name, declared.spec(), declared.paused)]))
            stored = await self._run(self.backend.pause_schedule(name, paused))
        if stored is None:
            raise ScheduleNotFound(name)
        return self._state(name, stored, self._now())

    def _state(self, name: str, stored: StoredSchedule | None, now: float) -> ScheduleState:
        schedule = self.schedules.get(name)
        if schedule is None:
            assert stored is not None
            schedule = Schedule.from_spec(name, stored.spec)
        paused = schedule.paused if stored is None else stored.paused
        last_tick = None if stored is None else stored.last_tick
        next_tick = None if paused else schedule.next_after(max(now, last_tick or now))
        return ScheduleState(schedule, paused, last_tick, None if stored is None else stored.last_job_id, next_tick)
