"""What a producer knows of tasks it has no handler for: their defaults as workers stored them.

A worker registers its tasks' job defaults in the store when it starts. A producer that enqueues
by a name it has no task for (``jobqueue api`` without the app, ``jobqueue submit``, a web
process that only enqueues) reads them back, at most every ``max_age`` seconds, so its jobs get
the queue, priority, retries and timeout the task declares instead of the plain defaults.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from jobqueue.errors import BackendError
from jobqueue.job import RegisteredTask
from jobqueue.task import TaskOptions

log = logging.getLogger("jobqueue")

#: Seconds the store's task defaults are used before they are read again.
MAX_AGE = 5.0


def registered(options: TaskOptions, name: str) -> RegisteredTask:
    """A task's defaults as a worker stores them."""
    return RegisteredTask(name, options.queue, options.priority, options.max_retries, options.timeout)


class StoredTasks:
    """The store's task defaults, read again when they are older than ``max_age``."""

    def __init__(self, max_age: float = MAX_AGE) -> None:
        self.max_age = max_age
        self._options: dict[str, TaskOptions] = {}
        self._read_at: float | None = None

    def get(self, name: str) -> TaskOptions | None:
        return self._options.get(name)

    @property
    def known(self) -> bool:
        """Whether any worker has registered any task (so an unknown name is worth a warning)."""
        return bool(self._options)

    def stale(self) -> bool:
        return self._read_at is None or time.monotonic() - self._read_at >= self.max_age

    async def refresh(self, read: Callable[[], Awaitable[list[RegisteredTask]]]) -> None:
        """Read the store's task defaults again if they are stale; keep the old ones if that fails
        (the enqueue that follows reports an unreachable store on its own)."""
        if not self.stale():
            return
        self._read_at = time.monotonic()
        try:
            tasks = await read()
        except BackendError as exc:
            log.warning("tasks.refresh_failed: %s", exc)
            return
        self._options = {
            t.name: TaskOptions(queue=t.queue, priority=t.priority, max_retries=t.max_retries, timeout=t.timeout)
            for t in tasks
        }
