"""Tasks: named handlers with their defaults, and the context a handler can read."""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from jobqueue.flows import Step
from jobqueue.job import DEFAULT_MAX_RETRIES, DEFAULT_QUEUE, Job
from jobqueue.retry import DEFAULT_RETRY_POLICY, RetryPolicy

Pool = Literal["async", "thread", "process"]

_current_job: contextvars.ContextVar[Job] = contextvars.ContextVar("jobqueue_current_job")


def current_job() -> Job:
    """The job the calling handler is running (attempt, idempotency key, payload, ...).

    Works in ``async def`` handlers and in plain ``def`` handlers run in the thread pool.
    Raises ``LookupError`` outside a handler.
    """
    return _current_job.get()


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """Defaults a task gives its jobs; each can be overridden per enqueue (except ``retry``)."""

    queue: str = DEFAULT_QUEUE
    priority: int = 0
    max_retries: int = DEFAULT_MAX_RETRIES
    #: Seconds an attempt may run before it is stopped and counted as failed; ``None``: no limit.
    timeout: float | None = None
    retry: RetryPolicy = DEFAULT_RETRY_POLICY
    #: Where the handler runs: ``"async"`` (on the worker's loop; for ``async def``), ``"thread"``
    #: (a thread pool), ``"process"`` (a child process, killed on timeout; for CPU-bound work).
    #: ``None``: ``async`` for coroutine functions, otherwise the worker's choice (threads by default).
    pool: Pool | None = None
    #: The ``rate_key`` of its jobs, for the queue's per-key limits: a string, or a function of
    #: the payload (``lambda p: p["tenant"]``) that may answer ``None`` (no key).
    rate_key: str | Callable[[Any], str | None] | None = None


class Producer(Protocol):
    """Where a task sends its jobs: the :class:`~jobqueue.app.JobQueue` it is registered on."""

    async def enqueue(self, task: str, payload: Any, **overrides: Any) -> Job: ...

    def enqueue_sync(self, task: str, payload: Any, **overrides: Any) -> Job: ...


@dataclass(frozen=True, slots=True)
class Task:
    """A registered handler. Call it directly to run the function in-process, or enqueue it."""

    name: str
    fn: Callable[..., Any]
    options: TaskOptions
    app: Producer = field(repr=False, compare=False)

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)

    def pool_for(self, worker_default: Pool) -> Pool:
        """Where this task runs in a worker whose default for plain functions is ``worker_default``."""
        if self.options.pool is not None:
            return self.options.pool
        return "async" if self.is_async else worker_default

    def __call__(self, payload: Any) -> Any:
        return self.fn(payload)

    def step(self, payload: Any, **overrides: Any) -> Step:
        """This task as a step of a flow (``a.step(x).then(b.step(y))``; see :mod:`jobqueue.flows`)."""
        return Step(self.name, payload, overrides)

    async def enqueue(self, payload: Any, **overrides: Any) -> Job:
        """Enqueue a job for this task; see :meth:`JobQueue.enqueue` for the overrides."""
        return await self.app.enqueue(self.name, payload, **overrides)

    def enqueue_sync(self, payload: Any, **overrides: Any) -> Job:
        """The same from plain synchronous code (Flask, Django, scripts)."""
        return self.app.enqueue_sync(self.name, payload, **overrides)
