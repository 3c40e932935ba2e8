"""Exceptions raised by jobqueue.

Every error jobqueue raises derives from one base, so ``except JobQueueError`` catches them all::

    JobQueueError
    ├── ValidationError            a job or a setting breaks a documented limit
    ├── QueueFull                  a new job (or a DLQ replay) would exceed the queue's capacity
    ├── JobNotFound                no job has that id
    ├── InvalidTransition          the job's state does not allow the operation (e.g. cancel a COMPLETED job)
    ├── ConfigurationError         a backend URL or option is wrong
    └── BackendError               the store failed; driver errors are translated into this
        └── BackendUnavailable     the store cannot be reached right now (retry later)

A handler may also raise the control-flow exceptions ``Retry`` (reschedule) and ``PermanentError``
(dead-letter at once); they are not ``JobQueueError`` because they are raised by user code.
"""

from __future__ import annotations


class JobQueueError(Exception):
    """Base class of every error jobqueue raises."""


class ValidationError(JobQueueError, ValueError):
    """A job field or an option is outside its documented limits.

    ``field`` names the offending field so that an API can report it.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class QueueFull(JobQueueError):
    """The queue already holds its capacity of waiting jobs; nothing was stored."""

    def __init__(self, queue: str, capacity: int) -> None:
        super().__init__(f"queue {queue!r} is full (capacity {capacity})")
        self.queue = queue
        self.capacity = capacity


class JobNotFound(JobQueueError, LookupError):
    """No job has this id (it never existed, or retention pruned it)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id!r} not found")
        self.job_id = job_id


class InvalidTransition(JobQueueError):
    """The job is in a state that does not allow the requested operation."""

    def __init__(self, job_id: str, state: str, operation: str) -> None:
        super().__init__(f"cannot {operation} job {job_id!r} in state {state}")
        self.job_id = job_id
        self.state = state
        self.operation = operation


class ConfigurationError(JobQueueError, ValueError):
    """A backend URL, option or setting is invalid."""


class BackendError(JobQueueError):
    """The store reported an error; the original driver exception is chained as ``__cause__``."""


class BackendUnavailable(BackendError):
    """The store cannot be reached now; the operation may succeed if retried later."""


class Retry(Exception):
    """Raise from a handler to run the job again after ``delay`` seconds.

    It counts as an attempt: a job that keeps asking for retries is dead-lettered after
    ``max_retries``. ``delay=None`` uses the task's retry policy.
    """

    def __init__(self, delay: float | None = None, reason: str = "retry requested") -> None:
        super().__init__(reason)
        self.delay = delay
        self.reason = reason


class PermanentError(Exception):
    """Raise from a handler when retrying cannot help: the job is dead-lettered at once."""


class ScheduleNotFound(JobQueueError, LookupError):
    """No schedule of that name is declared here or stored by a scheduler."""

    def __init__(self, name: str) -> None:
        super().__init__(f"schedule {name!r} not found")
        self.name = name
