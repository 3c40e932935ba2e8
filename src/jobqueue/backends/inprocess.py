"""Periodic schedules kept in the process: all that an unshared store (memory) needs.

Each operation runs to its end without awaiting anything between its check and its change, so it
is atomic on the event loop; :meth:`_fire` enqueues through the backend's own ``_enqueue``, which
must do the same (the memory backend's does).
"""

from __future__ import annotations

import dataclasses
from abc import ABC
from collections.abc import Sequence

from jobqueue.backends.core import BackendBase
from jobqueue.backends.params import Tick
from jobqueue.outcomes import Accepted, Duplicate, EnqueueOutcome, StoredSchedule


class InProcessSchedules(BackendBase, ABC):
    """The schedule operations of :class:`~jobqueue.backends.base.Backend`, in a dict."""

    _stored_schedules: dict[str, StoredSchedule]

    def _schedule_table(self) -> dict[str, StoredSchedule]:
        if not hasattr(self, "_stored_schedules"):
            self._stored_schedules = {}
        return self._stored_schedules

    async def _register_schedules(self, schedules: Sequence[StoredSchedule]) -> None:
        table = self._schedule_table()
        for schedule in schedules:
            stored = table.get(schedule.name)
            table[schedule.name] = schedule if stored is None else dataclasses.replace(stored, spec=schedule.spec)

    async def _schedules(self) -> list[StoredSchedule]:
        return list(self._schedule_table().values())

    async def _pause_schedule(self, name: str, paused: bool) -> StoredSchedule | None:
        table = self._schedule_table()
        stored = table.get(name)
        if stored is None:
            return None
        changed = table[name] = dataclasses.replace(stored, paused=paused)
        return changed

    async def _fire(self, tick: Tick, capacity: int | None) -> EnqueueOutcome | None:
        table = self._schedule_table()
        stored = table.get(tick.schedule)
        if stored is None or stored.paused or (stored.last_tick is not None and stored.last_tick >= tick.at):
            return None
        (outcome,) = await self._enqueue([tick.job], None if capacity is None else {tick.job.queue: capacity})
        job_id = outcome.job.id if isinstance(outcome, Accepted | Duplicate) else None
        table[tick.schedule] = dataclasses.replace(stored, last_tick=tick.at, last_job_id=job_id)
        return outcome
