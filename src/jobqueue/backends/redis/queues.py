"""Queues paused and resumed for every worker on the namespace (``lua/queues.lua``).

The state is the hash ``paused`` (queue -> '1' or '0'; no field: never set), kept by Redis like
the jobs, so it outlives restarts and every process sees it. The claim script reads it in the
same atomic step that leases jobs, so a claim that starts after a pause returns gets none of that
queue's jobs; ``next_due`` reads it too, so that a paused queue's due jobs do not end a wait.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jobqueue.backends.wakeup import Wakeup

if TYPE_CHECKING:
    from jobqueue.backends.redis.wire import Arg


class QueuePauses:
    """``_pause_queue`` and ``_paused_queues`` of :class:`~jobqueue.backends.redis.RedisBackend`."""

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
