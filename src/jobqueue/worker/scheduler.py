"""The scheduler: fires the app's periodic schedules, in every worker.

Every worker runs one unless told not to (``WorkerConfig(scheduler=False)``, ``--no-scheduler``).
The store makes each tick one job however many schedulers fire it (``Backend.fire``), so no
leader is elected and no node is special: a scheduler that dies costs nothing while another
runs. It sleeps until the next tick of any schedule, at most MAX_SLEEP so that a pause or a
resume made elsewhere is seen, then fires what each schedule's catch-up policy says is due.
"""

from __future__ import annotations

import logging

from jobqueue.app import JobQueue
from jobqueue.clock import Clock
from jobqueue.outcomes import Accepted, Duplicate, Rejected, StoredSchedule
from jobqueue.worker.service import PeriodicService
from jobqueue.worker.signals import WorkerSignals

log = logging.getLogger("jobqueue.scheduler")

#: The longest sleep between two looks at the store's schedule state.
MAX_SLEEP = 10.0
#: Before looking again after the store failed.
ERROR_PAUSE = 1.0
#: Past the tick: a timer that fires a hair early must still find the tick due.
TICK_MARGIN = 0.001


class Scheduler(PeriodicService):
    name = "scheduler"
    run_at_start = True

    def __init__(self, app: JobQueue, clock: Clock, signals: WorkerSignals) -> None:
        super().__init__(clock)
        self.app = app
        self.signals = signals
        #: When this scheduler first looked: a schedule that never fired fires no earlier tick.
        self.since = clock.time()
        self._sleep = ERROR_PAUSE
        self._registered: set[str] = set()

    def interval(self) -> float:
        return self._sleep

    async def run_once(self) -> int:
        """Fire every due tick; how many became jobs. Sets the sleep until the next one."""
        self._sleep = ERROR_PAUSE  # unless this run gets through
        backend, schedules = self.app.backend, self.app.schedules
        missing = [s for name, s in schedules.items() if name not in self._registered]
        if missing:
            await backend.register_schedules([StoredSchedule(s.name, s.spec(), s.paused) for s in missing])
            self._registered.update(s.name for s in missing)
        stored = {state.name: state for state in await backend.schedules()}
        now, fired = self.clock.time(), 0
        for schedule in schedules.values():
            state = stored.get(schedule.name)
            if state is None or state.paused:
                continue
            for at in schedule.due(state.last_tick, self.since, now):
                tick, capacity = self.app.tick(schedule, at)
                outcome = await backend.fire(tick, capacity)
                if outcome is None:
                    continue  # another scheduler fired it first
                self.signals.tick_fired.signal((schedule.name, at))
                if isinstance(outcome, Accepted | Duplicate):
                    fired += 1
                    log.info("schedule.fired name=%s tick=%.3f job=%s", schedule.name, at, outcome.job.id)
                elif isinstance(outcome, Rejected):
                    log.warning("schedule.tick_refused name=%s tick=%.3f: queue %s is full (%d)", schedule.name,
                                at, outcome.queue, outcome.capacity)  # fmt: skip
        if schedules:
            soonest = min(schedule.next_after(now) for schedule in schedules.values())
            self._sleep = min(MAX_SLEEP, max(0.0, soonest - self.clock.time()) + TICK_MARGIN)
        else:
            self._sleep = MAX_SLEEP
        self.signals.schedules_checked.signal(fired)
        return fired
