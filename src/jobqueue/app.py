"""``JobQueue``: the application object users create, register tasks on and enqueue through.

The app owns one backend, opened on first use on a "home" event loop: the loop of the first async
call, or (for code that only uses the ``*_sync`` methods) a private loop thread. Calls made from any
other loop or thread are forwarded to the home loop, so one backend's connections serve them all.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any, TypeVar, overload

from jobqueue.backends import DEFAULT_URL, create_backend
from jobqueue.backends.base import Backend
from jobqueue.bulk import BulkActions
from jobqueue.clock import Clock
from jobqueue.control import QueueControl, configured_limits
from jobqueue.errors import ConfigurationError, JobNotFound, QueueFull, ValidationError
from jobqueue.flows import FlowRunner, adopt_orphans, missing_parent_message
from jobqueue.insight import JobInsight
from jobqueue.job import (
    DEFAULT_KEY_TTL,
    DEFAULT_TASK,
    FINISHED_STATES,
    Job,
    NewJob,
    RegisteredTask,
    check_name,
)
from jobqueue.lifecycle import OpenClose
from jobqueue.limits import QueueLimits
from jobqueue.outcomes import Accepted, Duplicate, EnqueueOutcome, MissingParent, Rejected, Stats
from jobqueue.periodic import Schedule
from jobqueue.portal import Portal
from jobqueue.registry import StoredTasks, registered
from jobqueue.retry import DEFAULT_RETRY_POLICY, RetryPolicy
from jobqueue.scheduling import PeriodicJobs
from jobqueue.task import Pool, Task, TaskOptions

T = TypeVar("T")
#: The defaults of a task nobody registered.
PLAIN_OPTIONS = TaskOptions()
F = TypeVar("F", bound=Callable[..., Any])

#: Overrides ``enqueue`` accepts per call.
ENQUEUE_OPTIONS = frozenset(
    {"queue", "priority", "max_retries", "idempotency_key", "key_ttl", "delay", "run_at", "timeout",
     "depends_on", "on_parent_failure", "rate_key"}
)  # fmt: skip


class JobQueue(PeriodicJobs, FlowRunner, QueueControl, BulkActions, JobInsight, OpenClose):
    """A job queue application.

    ``url`` selects the backend (``memory://``, ``sqlite:///path.db``); without it, ``JOBQUEUE_URL``,
    then the embedded default ``sqlite:///jobqueue.db``. ``capacity`` bounds the waiting jobs per
    queue (an int for every queue, or a mapping per queue name; ``None``: unbounded). ``key_ttl``
    is how long an idempotency key stays reserved. ``start_paused``: queues paused the first time
    the app opens on a store that never had their state (see :meth:`pause`). ``limits``: rate and
    concurrency limits by queue (:class:`~jobqueue.limits.QueueLimits`, or its dict form), applied
    at each open as :mod:`jobqueue.control` says. ``clock`` (tests)
    drives the backend made from ``url`` and, by default, the loops of this app's workers.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        backend: Backend | None = None,
        clock: Clock | None = None,
        capacity: int | Mapping[str, int] | None = None,
        key_ttl: float = DEFAULT_KEY_TTL,
        start_paused: Iterable[str] = (),
        limits: Mapping[str, QueueLimits | Mapping[str, Any]] | None = None,
    ) -> None:
        if backend is not None and url is not None:
            raise ConfigurationError("give either a backend URL or a backend object, not both")
        self.url = url or os.environ.get("JOBQUEUE_URL") or DEFAULT_URL
        self.clock = clock
        self.backend: Backend = backend or create_backend(self.url, clock=clock)
        self.capacity = capacity
        self.key_ttl = key_ttl
        self.start_paused = frozenset(check_name("queue", queue) for queue in start_paused)
        self.configured_limits = configured_limits(limits)
        self.tasks: dict[str, Task] = {}
        #: Periodic schedules (``app.schedule``, ``@app.periodic``), fired by every worker's scheduler.
        self.schedules: dict[str, Schedule] = {}
        #: Defaults of tasks this app has no handler for, as workers registered them (see registry).
        self.stored_tasks = StoredTasks()
        self._home: asyncio.AbstractEventLoop | None = None
        self._home_thread: int | None = None
        self._open_lock = threading.Lock()
        self._portal = Portal()

    def use_backend(self, url: str, *, clock: Clock | None = None) -> None:
        """Point the app at another backend URL (e.g. from a command-line flag) before it opens."""
        if self._home is not None:
            raise ConfigurationError("the queue is already open; choose its backend before first use")
        self.url = url
        self.backend = create_backend(url, clock=clock or self.clock)

    @property
    def backend_name(self) -> str:
        """The name of the app's kind of store ("sqlite", "postgres", ...)."""
        return self.backend.name

    # ---- tasks ----------------------------------------------------------------------------

    @overload
    def task(self, fn: F, /) -> Task: ...

    @overload
    def task(
        self,
        *,
        name: str | None = None,
        queue: str = ...,
        priority: int = ...,
        max_retries: int = ...,
        timeout: float | None = ...,
        retry: RetryPolicy = ...,
        pool: Pool | None = ...,
        rate_key: str | Callable[[Any], str | None] | None = ...,
    ) -> Callable[[F], Task]: ...

    def task(  # type: ignore[misc]  # one implementation serves both decorator forms
        self, fn: Callable[..., Any] | None = None, /, *, name: str | None = None, **options: Any
    ) -> Any:
        """Register a handler: ``@app.task`` or ``@app.task(queue="mail", max_retries=5, timeout=30)``.

        The handler takes the job's payload. ``async def`` handlers run on the worker's loop; plain
        functions run in its thread pool. The task name defaults to ``module.function``.
        """

        def register(func: Callable[..., Any]) -> Task:
            task_name = name or f"{func.__module__}.{func.__qualname__}"
            NewJob(0, task=task_name, **{k: v for k, v in options.items() if k in ("queue", "priority", "max_retries")})
            if task_name in self.tasks:
                raise ConfigurationError(f"task {task_name!r} is already registered")
            task = Task(task_name, func, TaskOptions(**options), self)
            if task.is_async != (task.pool_for("thread") == "async"):
                raise ConfigurationError(
                    f"task {task_name!r}: pool='async' needs an async def handler, and an async def handler "
                    "runs on the event loop (pool='thread' or 'process' is for plain functions)"
                )
            self.tasks[task_name] = task
            return task

        return register if fn is None else register(fn)

    def default_handler(self, fn: F) -> F:
        """Register the handler for jobs submitted without a task name (task ``"default"``)."""
        self.task(name=DEFAULT_TASK)(fn)
        return fn

    def task_options(self, name: str) -> TaskOptions:
        """The defaults a job of task ``name`` gets: this app's task, else as a worker registered
        it in the store (see :meth:`refresh_tasks`), else the plain defaults."""
        task = self.tasks.get(name)
        if task is not None:
            return task.options
        return self.stored_tasks.get(name) or PLAIN_OPTIONS

    def knows_task(self, name: str) -> bool:
        """Whether this app or a registered worker has task ``name`` (as far as the last read of
        the store tells; with no worker ever registered, every name is taken on trust)."""
        return name in self.tasks or self.stored_tasks.get(name) is not None or not self.stored_tasks.known

    async def refresh_tasks(self) -> None:
        """Read the task defaults workers registered, if the copy here is older than a few seconds."""
        await self.stored_tasks.refresh(lambda: self._run(self.backend.registered_tasks()))

    def registered_tasks(self) -> list[RegisteredTask]:
        """This app's tasks as a worker registers them in the store when it starts."""
        return [registered(task.options, name) for name, task in self.tasks.items()]

    def retry_policy(self, task_name: str) -> RetryPolicy:
        task = self.tasks.get(task_name)
        return DEFAULT_RETRY_POLICY if task is None else task.options.retry

    # ---- the home loop --------------------------------------------------------------------

    async def open(self) -> None:
        """Open the backend on the running loop, which becomes the app's home loop. Idempotent."""
        if self._home is None:
            loop = asyncio.get_running_loop()
            await self.backend.open()
            if self.start_paused:
                await self._apply_start_paused()
            if self.configured_limits:
                await self._apply_configured_limits()
            self._home, self._home_thread = loop, threading.get_ident()

    async def close(self) -> None:
        """Close the backend (and the private loop of the sync API, if it was started)."""
        if self._home is not None:
            home = self._home
            if home is asyncio.get_running_loop():
                await self.backend.close()
            else:
                await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.backend.close(), home))
            self._home = self._home_thread = None
        await asyncio.to_thread(self._portal.stop)

    def close_sync(self) -> None:
        if self._home is not None and self._home_thread != threading.get_ident():
            asyncio.run_coroutine_threadsafe(self.backend.close(), self._home).result()
            self._home = self._home_thread = None
        self._portal.stop()

    async def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a backend coroutine on the home loop, opening the backend on first use."""
        if self._home is None:
            try:
                await self.open()
            except BaseException:
                coro.close()  # never to run: no "coroutine was never awaited" warning
                raise
        assert self._home is not None
        if self._home is asyncio.get_running_loop():
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._home))

    def _run_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._home is not None and self._home_thread == threading.get_ident():
            coro.close()
            raise RuntimeError("this thread runs the queue's event loop: use the async method with `await`")
        if self._home is None:
            with self._open_lock:
                if self._home is None:
                    try:
                        self._portal.call(self.open())
                    except BaseException:
                        coro.close()
                        raise
        assert self._home is not None
        return asyncio.run_coroutine_threadsafe(coro, self._home).result()

    # ---- producing ------------------------------------------------------------------------

    def new_job(self, task: str | Task, payload: Any, **overrides: Any) -> NewJob:
        """Build (and validate) a job from a task's defaults and per-call overrides."""
        unknown = set(overrides) - ENQUEUE_OPTIONS
        if unknown:
            raise TypeError(f"unknown enqueue option(s): {', '.join(sorted(unknown))}")
        name = task.name if isinstance(task, Task) else task
        options = self.task_options(name)
        fields: dict[str, Any] = {
            "queue": options.queue,
            "priority": options.priority,
            "max_retries": options.max_retries,
            "timeout": options.timeout,
            "key_ttl": self.key_ttl,
        }
        if options.rate_key is not None and "rate_key" not in overrides:
            fields["rate_key"] = _rate_key_of(options, payload)
        fields.update(overrides)
        parents = fields.get("depends_on")
        if parents and not isinstance(parents, str):  # jobs as well as their ids
            fields["depends_on"] = [parent.id if isinstance(parent, Job) else parent for parent in parents]
        return NewJob(payload, task=name, **fields)

    def capacity_for(self, queue: str) -> int | None:
        """The capacity of ``queue`` (``None``: unbounded)."""
        if self.capacity is None or isinstance(self.capacity, int):
            return self.capacity
        return self.capacity.get(queue)

    def capacities(self, queues: Iterable[str]) -> dict[str, int]:
        """The capacity of each of ``queues`` that has one."""
        return {queue: limit for queue in set(queues) if (limit := self.capacity_for(queue)) is not None}

    def _capacities(self, jobs: Iterable[NewJob]) -> dict[str, int] | None:
        return None if self.capacity is None else self.capacities(job.queue for job in jobs)

    async def enqueue_many(self, jobs: list[NewJob]) -> list[EnqueueOutcome]:
        """Enqueue a batch in one backend call; one outcome per job (Accepted, Duplicate, Rejected,
        MissingParent). A job may name an earlier one of the batch as a parent."""
        return await self._run(self._enqueue_batch(jobs))

    def enqueue_many_sync(self, jobs: list[NewJob]) -> list[EnqueueOutcome]:
        return self._run_sync(self._enqueue_batch(jobs))

    async def _enqueue_batch(self, jobs: list[NewJob]) -> list[EnqueueOutcome]:
        outcomes = await self.backend.enqueue(jobs, self._capacities(jobs))
        if any(type(outcome) is MissingParent for outcome in outcomes):
            await adopt_orphans(self.backend, jobs, outcomes, self._capacities(jobs))
        return outcomes

    async def enqueue(self, task: str | Task, payload: Any, **overrides: Any) -> Job:
        """Enqueue one job and return it.

        Overrides: ``queue``, ``priority``, ``max_retries``, ``idempotency_key``, ``key_ttl``,
        ``delay`` (seconds) or ``run_at`` (POSIX time), ``timeout``, ``depends_on`` (jobs or
        job ids: the job waits BLOCKED until they all complete) and ``on_parent_failure``
        (``"fail"``, or ``"run"`` to run even when a parent dead-letters or is cancelled). With a
        key that a live job already holds, that job is returned instead (check ``job.id``). Raises
        :class:`~jobqueue.errors.QueueFull` when the queue is at capacity, and
        :class:`~jobqueue.errors.ValidationError` when a parent does not exist.
        """
        if not isinstance(task, Task) and task not in self.tasks:
            await self.refresh_tasks()
        (outcome,) = await self.enqueue_many([self.new_job(task, payload, **overrides)])
        return _unwrap(outcome)

    def enqueue_sync(self, task: str | Task, payload: Any, **overrides: Any) -> Job:
        """:meth:`enqueue` from synchronous code."""
        if not isinstance(task, Task) and task not in self.tasks:
            self._run_sync(self.refresh_tasks())
        (outcome,) = self.enqueue_many_sync([self.new_job(task, payload, **overrides)])
        return _unwrap(outcome)

    # ---- reading and administration -------------------------------------------------------

    async def get(self, job_id: str) -> Job | None:
        return await self._run(self.backend.get(job_id))

    def get_sync(self, job_id: str) -> Job | None:
        return self._run_sync(self.backend.get(job_id))

    async def wait(self, job_id: str, timeout: float = 60.0, poll: float = 0.05) -> Job:
        """Wait until the job is finished (COMPLETED, DEAD_LETTERED or CANCELLED) and return it."""
        async with asyncio.timeout(timeout):
            while True:
                job = await self.get(job_id)
                if job is None:
                    raise JobNotFound(job_id)
                if job.state in FINISHED_STATES:
                    return job
                await asyncio.sleep(poll)

    async def children(self, job_id: str, limit: int = 1000) -> list[str]:
        """The ids of the jobs enqueued ``depends_on`` this one, oldest first."""
        return await self._run(self.backend.children(job_id, limit))

    async def replay(self, job_id: str) -> Job:
        """Move a dead-lettered job back to its queue (``QueueFull`` when there is no room)."""
        job = await self.get(job_id)
        capacity = None if job is None else self.capacity_for(job.queue)
        return await self._run(self.backend.replay_dead(job_id, capacity))

    async def stats(self) -> Stats:
        return await self._run(self.backend.stats())

    async def check_writes(self) -> None:
        """Raise ``BackendUnavailable`` (or another store error) if the store refuses writes now."""
        await self._run(self.backend.check_writes())


def _rate_key_of(options: TaskOptions, payload: Any) -> str | None:
    if not callable(options.rate_key):
        return options.rate_key
    try:
        return options.rate_key(payload)
    except Exception as exc:  # a payload without the field the function reads, say
        raise ValidationError("rate_key", f"the task's rate_key function failed on this payload: {exc!r}") from None


def _unwrap(outcome: EnqueueOutcome) -> Job:
    if isinstance(outcome, Rejected):
        raise QueueFull(outcome.queue, outcome.capacity)
    if isinstance(outcome, MissingParent):
        raise ValidationError("depends_on", missing_parent_message(outcome))
    assert isinstance(outcome, Accepted | Duplicate)
    return outcome.job
