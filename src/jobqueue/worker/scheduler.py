"""The scheduler: fires the app's periodic schedules, in every worker.

Every worker runs one unless told not to (``WorkerConfig(scheduler=False)``, ``--no-scheduler``).
The store makes each tick one job however many schedulers fire it (``Backend.fire``), so no
leader is elected and no node is special: a scheduler that dies costs nothing while another
runs. It sleeps until the next tick of any schedule, at most MAX_SLEEP, then fires what each
schedule's catch-up policy says is due. A pause holds at once on every node (the store refuses
a paused schedule's ticks); a resume is seen by each scheduler within MAX_SLEEP.
"""

from __future__ import annotations

import logging
import math

from jobqueue.app import JobQueue
from jobqueue.clock import Clock
from jobqueue.errors import BackendError
from jobqueue.outcomes import Accepted, Duplicate, EnqueueOutcome, Rejected, StoredSchedule
from jobqueue.periodic import Schedule
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
        self.since: float | None = None
        self._sleep = ERROR_PAUSE
        self._registered: set[str] = set()
        # Each schedule's next tick, computed once per tick rather than at every wake: with a
        # thousand schedules the cron arithmetic, not the store, would be the cost.
        self._next: dict[str, float] = {}
        self._paused: set[str] = set()
        self._read_at: float | None = None
        self._tried: dict[str, float] = {}  # the last tick each schedule was fired for, by this scheduler
        self._refused: set[str] = set()  # schedules whose last fire here the store refused

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
        now, fired = self.clock.time(), 0
        # The stored state is read every MAX_SLEEP, not at every wake: the store's fire checks a
        # pause and a tick already fired itself, so between reads a due tick is simply fired.
        stored = None
        if missing or self._refused or self._read_at is None or now - self._read_at >= MAX_SLEEP:
            stored = {state.name: state for state in await backend.schedules()}
            self._read_at = now
            self._refused = set()
        if self.since is None:
            self.since = now
        for schedule in schedules.values():
            try:
                fired += await self._run_schedule(schedule, stored, now)
            except BackendError:
                raise  # the store is down: the whole look is retried after ERROR_PAUSE
            except Exception:  # one schedule's fault must not stop the others
                log.exception("schedule.failed name=%s", schedule.name)
        soonest = min(self._next.values(), default=now + MAX_SLEEP)
        self._sleep = min(MAX_SLEEP, max(0.0, soonest - self.clock.time()) + TICK_MARGIN)
        self.signals.schedules_checked.signal(fired)
        return fired

    async def _run_schedule(self, schedule: Schedule, stored: dict[str, StoredSchedule] | None, now: float) -> int:
        """Fire what of ``schedule`` is due (``stored``: the state, when read this time)."""
        assert self.since is not None
        name, last_tick = schedule.name, None
        if stored is not None:
            state = stored.get(name)
            if state is None or self._held(name, state.paused):
                return 0
            last_tick = state.last_tick
            if (last_tick if last_tick is not None else -math.inf) < self._tried.get(name, -math.inf):
                # A tick tried since the last read was refused, and no scheduler fired it: the
                # schedule was paused, and resumed since. Looked at afresh, from its last tick.
                self._next.pop(name, None)
                self._tried.pop(name, None)
            if name not in self._next:  # from its last tick, so that missed ones come due now
                self._next[name] = schedule.next_after(self.since if last_tick is None else last_tick)
        elif name not in self._next:
            return 0  # paused at the last read
        due_at = self._next[name]
        if due_at > now:
            return 0
        following = schedule.next_after(due_at)
        if following > now and schedule.catch_up != "skip":
            # The usual case: the one tick cached is due, and no other was missed.
            ticks = [due_at] if last_tick is None or last_tick < due_at else []
        else:
            ticks = schedule.due(last_tick, self.since if stored is not None else due_at - TICK_MARGIN, now)
            following = schedule.next_after(now)
        fired = 0
        for at in ticks:
            outcome = await self._fire(schedule, at)
            fired += isinstance(outcome, Accepted | Duplicate)
            self._tried[name] = at
            if outcome is None:
                # Another scheduler fired it, or the schedule is paused: the next look reads the
                # store to tell which, before a later tick could pass over missed ones.
                self._refused.add(name)
        self._next[name] = following
        return fired

    def _held(self, name: str, paused: bool) -> bool:
        """Whether a schedule is paused; one resumed since the last read is looked at afresh (its
        missed ticks follow its catch-up policy)."""
        if paused:
            self._paused.add(name)
            self._next.pop(name, None)
            return True
        if name in self._paused:
            self._paused.discard(name)
            self._next.pop(name, None)  # looked at afresh, from its last tick
        return False

    async def _fire(self, schedule: Schedule, at: float) -> EnqueueOutcome | None:
        tick, capacity = self.app.tick(schedule, at)
        outcome = await self.app.backend.fire(tick, capacity)
        if outcome is None:
            return None
        self.signals.tick_fired.signal((schedule.name, at))
        if isinstance(outcome, Rejected):
            log.warning("schedule.tick_refused name=%s tick=%.3f: queue %s is full (%d)", schedule.name, at,
                        outcome.queue, outcome.capacity)  # fmt: skip
        elif isinstance(outcome, Accepted | Duplicate):  # a tick's job has no parents to miss
            log.info("schedule.fired name=%s tick=%.3f job=%s", schedule.name, at, outcome.job.id)
        return outcome
