"""Periodic schedules: when each one fires, and which ticks a scheduler fires after time away.

A schedule fires on a cron expression (5 fields, or 6 with seconds first; croniter reads them) in
an IANA time zone, or every N seconds. Cron ticks are found in local wall-clock time, then placed
on the real timeline: a local time that does not exist (the hour skipped when clocks go forward)
is skipped, and one that happens twice (the hour repeated when they go back) fires once, at its
first occurrence. Interval ticks are multiples of the interval since the Unix epoch, so every
scheduler computes the same ones whatever its start time.

This module only computes. Which scheduler's tick becomes the job is decided in the store
(:meth:`~jobqueue.backends.base.Backend.fire`): whoever comes first, once.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter  # type: ignore[import-untyped]  # ships no type hints

from jobqueue.errors import ConfigurationError, ValidationError
from jobqueue.job import DEFAULT_QUEUE, NewJob, check_name, dump_json

#: What a scheduler does with ticks it missed (it was down, or the schedule was paused):
#: ``once`` fires the latest of them, ``all`` each of them (the latest MAX_CATCH_UP at most),
#: ``skip`` none (a tick fires only when a scheduler sees it come due, within SKIP_AFTER seconds).
CatchUp = Literal["once", "all", "skip"]
MAX_CATCH_UP = 100
SKIP_AFTER = 5.0


@dataclass(frozen=True, slots=True)
class Schedule:
    """A job to enqueue on a schedule. ``queue`` and ``priority`` default to the task's."""

    name: str
    task: str
    cron: str | None = None
    every: float | None = None
    timezone: str = "UTC"
    payload: Any = None
    queue: str | None = None
    priority: int | None = None
    catch_up: CatchUp = "once"
    #: The state a schedule starts in when first stored (a stored pause or resume then wins).
    paused: bool = False
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    # Parsing the expression is most of what croniter costs: parsed once, and each call moves a
    # shallow copy of it (so that threads calling at once do not move each other's).
    _cron: Any = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        check_name("schedule", self.name)
        check_name("task", self.task)
        if (self.cron is None) == (self.every is None):
            raise ConfigurationError(f"schedule {self.name!r}: give either cron or every, not both or neither")
        if self.cron is not None and not croniter.is_valid(self.cron, second_at_beginning=True):
            raise ConfigurationError(f"schedule {self.name!r}: {self.cron!r} is not a cron expression")
        if self.every is not None and not (isinstance(self.every, int | float) and 0 < self.every < math.inf):
            raise ConfigurationError(f"schedule {self.name!r}: every must be a positive number of seconds")
        if self.catch_up not in get_args(CatchUp):
            raise ConfigurationError(f"schedule {self.name!r}: catch_up must be one of {', '.join(get_args(CatchUp))}")
        if self.cron is not None:
            object.__setattr__(self, "_cron", croniter(self.cron, datetime(2000, 1, 1), second_at_beginning=True))
        try:
            object.__setattr__(self, "_zone", ZoneInfo(self.timezone))
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigurationError(f"schedule {self.name!r}: unknown time zone {self.timezone!r}") from None
        try:  # the job each tick becomes, checked now rather than at every tick
            NewJob({} if self.payload is None else self.payload, task=self.task, queue=self.queue or DEFAULT_QUEUE,
                   priority=self.priority or 0)  # fmt: skip
        except ValidationError as exc:
            raise ConfigurationError(f"schedule {self.name!r}: {exc}") from None
        try:
            self.next_after(0.0)
        except CroniterBadDateError:
            raise ConfigurationError(f"schedule {self.name!r}: {self.cron!r} never fires") from None

    # ---- when ---------------------------------------------------------------------------

    def next_after(self, moment: float) -> float:
        """The first tick strictly after ``moment`` (POSIX seconds)."""
        if self.every is not None:
            return (math.floor(moment / self.every) + 1) * self.every
        assert self.cron is not None
        zone = self._zone
        ticks = copy.copy(self._cron)
        ticks.set_current(datetime.fromtimestamp(moment, zone).replace(tzinfo=None))
        while True:
            candidate: datetime = ticks.get_next(datetime)
            placed = candidate.replace(tzinfo=zone)  # fold=0: the first of a repeated local time
            if placed.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != candidate:
                continue  # does not exist in this zone (clocks went forward over it)
            at = placed.timestamp()
            if at > moment:  # in a repeated hour, earlier local times may lie behind
                return at

    def due(self, last_tick: float | None, since: float, now: float) -> list[float]:
        """The ticks to fire now, oldest first: those after the last fired one (or after
        ``since``, when none has fired) up to ``now``, as the catch-up policy keeps them."""
        after = since if last_tick is None else last_tick
        ticks = self.latest(after, now, MAX_CATCH_UP if self.catch_up == "all" else 1)
        if self.catch_up == "skip":
            return [tick for tick in ticks if now - tick <= SKIP_AFTER]
        return ticks

    def latest(self, after: float, until: float, limit: int) -> list[float]:
        """At most ``limit`` of the latest ticks in (``after``, ``until``], oldest first. Walks
        back from ``until``, so a scheduler down for a week finds its tick at once."""
        found: list[float] = []
        if self.every is not None:
            k = math.floor(until / self.every)
            while len(found) < limit and (tick := k * self.every) > after:
                found.append(tick)
                k -= 1
            return found[::-1]
        assert self.cron is not None
        zone = self._zone
        moment = datetime.fromtimestamp(until, zone)
        local = moment.replace(tzinfo=None) + timedelta(microseconds=1)
        if moment.fold:
            # In the second pass of a repeated hour, the first pass's later local times are behind
            # us too: walk back from the end of the hour (those after ``until`` are left out below).
            local += moment.replace(fold=0).utcoffset() - moment.utcoffset()  # type: ignore[operator]
        ticks = copy.copy(self._cron)
        ticks.set_current(local)
        while len(found) < limit:
            candidate: datetime = ticks.get_prev(datetime)
            placed = candidate.replace(tzinfo=zone)
            if placed.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != candidate:
                continue  # skipped by the clocks going forward
            at = placed.timestamp()
            if at <= after:
                break
            if at <= until:
                found.append(at)
        return found[::-1]

    # ---- stored form --------------------------------------------------------------------

    def spec(self) -> str:
        """What the store keeps, so that an API process without this code can show it."""
        fields = {"task": self.task, "cron": self.cron, "every": self.every, "timezone": self.timezone,
                  "payload": self.payload, "queue": self.queue, "priority": self.priority,
                  "catch_up": self.catch_up}  # fmt: skip
        return dump_json(fields).decode()

    @classmethod
    def from_spec(cls, name: str, spec: str) -> Schedule:
        fields = json.loads(spec)
        return cls(name, fields["task"], cron=fields["cron"], every=fields["every"], timezone=fields["timezone"],
                   payload=fields["payload"], queue=fields["queue"], priority=fields["priority"],
                   catch_up=fields["catch_up"])  # fmt: skip

    def describe(self) -> str:
        """``*/5 * * * * (Europe/Paris)`` or ``every 30 s``."""
        return f"every {self.every:g} s" if self.every is not None else f"{self.cron} ({self.timezone})"
