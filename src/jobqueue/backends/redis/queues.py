"""Queue settings for every worker on the namespace: pauses (``lua/queues.lua``) and limits
(``lua/limits.lua``).

A pause is the hash ``paused`` (queue -> '1' or '0'; no field: never set), kept by Redis like the
jobs, so it outlives restarts and every process sees it. The claim script reads it in the same
atomic step that leases jobs, so a claim that starts after a pause returns gets none of that
queue's jobs; ``next_due`` reads it too, so that a paused queue's due jobs do not end a wait.

Limits are the hash ``limits`` (queue -> the limits in force) beside ``configured_limits`` (the
last configured from code), each value a JSON array of eight numbers that the claim script reads
as it is (:func:`encode_limits`). The claim checks them and spends the token buckets' state (the
sorted sets ``rate`` and ``key_rate:<queue>``) in the step that leases the jobs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from jobqueue.backends.wakeup import Wakeup
from jobqueue.limits import QueueLimits, Rate

if TYPE_CHECKING:
    from jobqueue.backends.redis.wire import Arg


def encode_limits(limits: QueueLimits) -> bytes:
    """``[rate count, period, burst, concurrency, key rate count, key period, key burst, key
    concurrency]``, 0 for a limit not set (``parse_limits`` in ``lua/common.lua``); b'' for none.
    One QueueLimits has one encoding (a period is written as the shortest text of its float), so
    the script compares configured limits as text."""
    if not limits:
        return b""
    rate, key_rate = limits.rate, limits.key_rate
    return orjson.dumps([
        0 if rate is None else rate.count, 0.0 if rate is None else rate.per, 0 if rate is None else rate.burst,
        limits.concurrency or 0,
        0 if key_rate is None else key_rate.count, 0.0 if key_rate is None else key_rate.per,
        0 if key_rate is None else key_rate.burst,
        limits.key_concurrency or 0,
    ])  # fmt: skip


def decode_limits(raw: bytes) -> QueueLimits:
    if not raw:
        return QueueLimits()
    count, per, burst, concurrency, key_count, key_per, key_burst, key_concurrency = orjson.loads(raw)
    return QueueLimits(
        Rate(count, float(per), burst) if count else None,
        concurrency or None,
        Rate(key_count, float(key_per), key_burst) if key_count else None,
        key_concurrency or None,
    )


class QueueSettings:
    """Pauses and limits of :class:`~jobqueue.backends.redis.RedisBackend`."""

    _wakeup: Wakeup

    if TYPE_CHECKING:

        async def _run(self, script: str, *args: Arg) -> Any: ...

    async def _pause_queue(self, queue: str, paused: bool, initial: bool) -> bool:
        state, resumed = await self._run("queues", "set", queue, "1" if paused else "0", "1" if initial else "0")
        if resumed:
            self._wakeup.wake()  # waiters in this process; other processes hear the script's PUBLISH
        return bool(state == b"1")

    async def _paused_queues(self) -> list[str]:
        return [queue.decode() for queue in await self._run("queues", "all")]

    async def _set_queue_limits(self, queue: str, limits: QueueLimits, configured: bool) -> QueueLimits:
        in_force, changed = await self._run("limits", "set", queue, encode_limits(limits), "1" if configured else "0")
        if changed:
            self._wakeup.wake()  # a raised limit may admit held-back jobs; the script told other processes
        return decode_limits(in_force)

    async def _queue_limits(self) -> dict[str, QueueLimits]:
        flat = await self._run("limits", "all")
        return {flat[i].decode(): decode_limits(flat[i + 1]) for i in range(0, len(flat), 2)}
