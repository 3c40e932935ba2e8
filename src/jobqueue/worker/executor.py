"""Runs one attempt of a job and turns its ending into an outcome for the completer."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from jobqueue.backends.params import Completion, Failure, Lease
from jobqueue.errors import PermanentError, Retry
from jobqueue.job import Job, dump_json
from jobqueue.retry import DEFAULT_RETRY_POLICY, after_failure
from jobqueue.task import Pool, Task, _current_job
from jobqueue.worker.processes import ProcessPool, ProcessTimeout, RemoteFailure, format_traceback

log = logging.getLogger("jobqueue.worker")


class UnknownTask(Exception):
    """No handler is registered for the job's task in this worker."""


class AttemptTimeout(Exception):
    """The attempt ran past its timeout and was stopped."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the attempt produced: a completion, or a failure with its retry decision."""

    completion: Completion | None = None
    failure: Failure | None = None
    #: Set when the work could not be stopped (a thread past its timeout).
    abandoned_thread: bool = False


class ThreadCalls:
    """Counts handler calls running on threads: one still running after shutdown cannot be
    stopped, and would keep the process alive (the interpreter joins its threads at exit)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running = 0

    def run(self, fn: Callable[[Any], Any], payload: Any) -> Any:
        with self._lock:
            self.running += 1
        try:
            return fn(payload)
        finally:
            with self._lock:
                self.running -= 1


@dataclass(frozen=True, slots=True)
class Runtime:
    """Where handlers run in one worker."""

    threads: ThreadPoolExecutor
    #: ``None`` until a task needs it (children are started on first use).
    processes: ProcessPool | None
    #: Where plain functions without a ``pool`` option run.
    default_pool: Pool = "thread"
    #: Attempt timeout for jobs and tasks that set none.
    default_timeout: float | None = None
    thread_calls: ThreadCalls = field(default_factory=ThreadCalls)


async def run_attempt(job: Job, task: Task | None, runtime: Runtime) -> Outcome:
    """Run the handler for ``job`` and decide what to record. Never raises except on cancellation."""
    lease = Lease(job.id, job.lease_token)
    # The job's own timeout, else the task's (for jobs enqueued without its defaults: before any
    # worker registered them), else the worker's.
    timeout = job.timeout
    if timeout is None:
        timeout = (
            task.options.timeout if task is not None and task.options.timeout is not None else runtime.default_timeout
        )
    try:
        if task is None:
            raise UnknownTask(f"no handler for task {job.task!r} in this worker")
        result = await _call(task, job, runtime, timeout)
        try:
            dump_json(result)
        except TypeError as exc:
            raise PermanentError(f"handler returned a result that is not JSON: {exc}") from None
        return Outcome(completion=Completion(lease, result))
    except asyncio.CancelledError:
        raise
    except Retry as exc:
        return Outcome(failure=Failure(lease, f"Retry: {exc.reason}", _decide(job, task, requested_delay=exc.delay)))
    except UnknownTask as exc:  # our own refusal: its traceback would show jobqueue, not the job's code
        return Outcome(failure=Failure(lease, _describe(exc), _decide(job, task)))
    except PermanentError as exc:
        failure = Failure(lease, _describe(exc), _decide(job, task, permanent=True), traceback=format_traceback(exc))
        return Outcome(failure=failure)
    except AttemptTimeout as exc:
        return Outcome(failure=Failure(lease, str(exc), _decide(job, task)), abandoned_thread=True)
    except ProcessTimeout as exc:
        return Outcome(failure=Failure(lease, str(exc), _decide(job, task)))
    except RemoteFailure as exc:
        return Outcome(failure=Failure(lease, str(exc), _decide(job, task), traceback=exc.traceback))
    except Exception as exc:
        return Outcome(failure=Failure(lease, _describe(exc), _decide(job, task), traceback=format_traceback(exc)))


def failure_before_start(job: Job, task: Task | None, error: str) -> Outcome:
    """An attempt that failed before its handler ran, retried by the task's policy."""
    return Outcome(failure=Failure(Lease(job.id, job.lease_token), error, _decide(job, task)))


def _decide(
    job: Job, task: Task | None, *, requested_delay: float | None = None, permanent: bool = False
) -> float | None:
    """What this failed attempt becomes, by the task's retry policy (``None``: dead-letter)."""
    policy = DEFAULT_RETRY_POLICY if task is None else task.options.retry
    return after_failure(job.retry_count, job.max_retries, policy, requested_delay=requested_delay, permanent=permanent)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _call(task: Task, job: Job, runtime: Runtime, timeout: float | None) -> Any:
    pool = task.pool_for(runtime.default_pool)
    if pool == "process":
        if runtime.processes is None:
            raise PermanentError("this worker has no process pool")
        return await runtime.processes.run(task.fn, job, timeout)
    token = _current_job.set(job)
    try:
        if pool == "async":
            if timeout is None:
                return await task.fn(job.payload)
            try:
                async with asyncio.timeout(timeout):
                    return await task.fn(job.payload)
            except TimeoutError:
                raise AttemptTimeout(f"timed out after {timeout:g} s (cancelled)") from None
        context = contextvars.copy_context()
        future = asyncio.get_running_loop().run_in_executor(
            runtime.threads, context.run, runtime.thread_calls.run, task.fn, job.payload
        )
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            # A thread cannot be stopped from outside: it runs on, and whatever it returns is
            # discarded because this attempt is recorded as failed now (its lease is fenced).
            log.warning("job %s: thread handler %s still running after %g s timeout", job.id, task.name, timeout)
            raise AttemptTimeout(f"timed out after {timeout:g} s (thread left running, result discarded)") from None
    finally:
        _current_job.reset(token)
