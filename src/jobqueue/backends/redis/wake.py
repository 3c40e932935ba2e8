"""Wake-ups from other processes: a pub/sub subscription to the queues' wake channels.

Every script that makes work claimable (enqueue, a retry, a release, a replay) publishes on
``<namespace>wake:<queue>``. One listener per backend holds a dedicated connection subscribed to
the channels of the queues its workers wait on, and turns every message into an in-process wake.

No wake-up is missed: a subscription that has just been (re)established wakes every waiter once,
so work published while the listener was not yet subscribed, or was reconnecting, is looked for
at once. A listener that cannot connect retries with a jittered backoff; meanwhile the workers'
jittered poll is the fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Iterable
from typing import Any

from jobqueue.backends.redis.wire import Address, Connection, connect
from jobqueue.backends.wakeup import Wakeup
from jobqueue.errors import BackendUnavailable

log = logging.getLogger("jobqueue.redis")

#: Reconnect backoff bounds in seconds.
RETRY_MIN = 0.05
RETRY_MAX = 2.0


class WakeListener:
    """The pub/sub side of ``wait_for_work``: one subscribed connection per backend, started by
    the first wait, that turns wake messages into in-process wake-ups."""

    def __init__(self, address: Address, namespace: str, wakeup: Wakeup, *, connect_timeout: float) -> None:
        self._address = address
        self._namespace = namespace
        self._wakeup = wakeup
        self._connect_timeout = connect_timeout
        self._channels: set[str] = set()
        self._protocol: Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._recovering = False  # subscribed again after a lost connection: wake the waiters

    def channel(self, queue: str) -> str:
        return f"{self._namespace}wake:{queue}"

    async def listen(self, queues: Iterable[str], timeout: float) -> bool:
        """Make sure the queues' channels are subscribed; ``True`` if it had to subscribe now.

        A fresh subscription cannot tell whether work was published just before it: the caller
        should then look for work again instead of waiting. That look also answers a wake-up
        already pending in this process, which is spent here: otherwise the next wait would end at
        once for nothing (a worker on a paused queue would look twice).
        """
        new = {self.channel(q) for q in queues} - self._channels
        if not new and self._task is not None and self._subscribed.is_set():
            return False
        self._channels |= new
        if self._task is None or self._task.done():
            self._subscribed.clear()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="jobqueue-redis-wake")
        elif new and self._protocol is not None and self._protocol.open:
            self._subscribed.clear()
            self._protocol.push(("SUBSCRIBE", *sorted(new)))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._subscribed.wait()
        await self._wakeup.wait(0)
        return True

    def _on_push(self, reply: Any) -> None:
        # ["subscribe", channel, n] confirms a subscription, ["message", channel, data] is a wake.
        # Whoever waited for a first subscription looks for work itself (``listen`` answers True);
        # after a lost connection, work published meanwhile was missed: every waiter looks again.
        if isinstance(reply, list) and reply and reply[0] == b"subscribe":
            self._subscribed.set()
            if self._recovering:
                self._recovering = False
                self._wakeup.wake()
        else:
            self._wakeup.wake()

    async def _run(self) -> None:
        delay = RETRY_MIN
        while True:
            try:
                protocol = await connect(
                    self._address, connect_timeout=self._connect_timeout, command_timeout=None, on_push=self._on_push
                )
            except BackendUnavailable as exc:
                log.warning("redis.wake_reconnect: %s (retrying in %.2f s)", exc, delay)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(RETRY_MAX, delay * 2)
                continue
            self._protocol = protocol
            protocol.push(("SUBSCRIBE", *sorted(self._channels)))
            await protocol.lost
            # No wake now: a claim would fail while Redis is away. The poll covers the outage,
            # and the next subscription wakes every waiter.
            self._protocol = None
            self._subscribed.clear()
            self._recovering = True
            delay = RETRY_MIN

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._protocol is not None:
            self._protocol.abort()
            self._protocol = None
        self._channels.clear()
