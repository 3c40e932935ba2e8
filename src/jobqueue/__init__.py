"""jobqueue: a durable job queue for Python.

The names below are the user API; everything else may change between releases. Writing a
backend of your own: :mod:`jobqueue.backends` (the protocol and its types) and
:mod:`jobqueue.testing` (the conformance suite). Serving the HTTP API: :mod:`jobqueue.api` and
:mod:`jobqueue.serving`.
"""

from jobqueue.app import JobQueue
from jobqueue.bulk import JobFilter, ReplayResult
from jobqueue.clock import Clock, FakeClock, SystemClock
from jobqueue.errors import (
    BackendError,
    BackendUnavailable,
    ConfigurationError,
    InvalidTransition,
    JobNotFound,
    JobQueueError,
    PermanentError,
    QueueFull,
    Retry,
    ScheduleNotFound,
    ValidationError,
)
from jobqueue.flows import Chain, Group, Step, group
from jobqueue.job import TRANSITIONS, Job, JobState, NewJob
from jobqueue.limits import QueueLimits, Rate
from jobqueue.outcomes import Accepted, Duplicate, EnqueueOutcome, MissingParent, Page, QueueStats, Rejected, Stats
from jobqueue.periodic import Schedule
from jobqueue.retention import Retention
from jobqueue.retry import RetryPolicy
from jobqueue.scheduling import ScheduleState
from jobqueue.task import Task, TaskOptions, current_job
from jobqueue.version import __version__
from jobqueue.worker import Worker, WorkerConfig

__all__ = [
    "TRANSITIONS",
    "Accepted",
    "BackendError",
    "BackendUnavailable",
    "Chain",
    "Clock",
    "ConfigurationError",
    "Duplicate",
    "EnqueueOutcome",
    "FakeClock",
    "Group",
    "InvalidTransition",
    "Job",
    "JobFilter",
    "JobNotFound",
    "JobQueue",
    "JobQueueError",
    "JobState",
    "MissingParent",
    "NewJob",
    "Page",
    "PermanentError",
    "QueueFull",
    "QueueLimits",
    "QueueStats",
    "Rate",
    "Rejected",
    "ReplayResult",
    "Retention",
    "Retry",
    "RetryPolicy",
    "Schedule",
    "ScheduleNotFound",
    "ScheduleState",
    "Stats",
    "Step",
    "SystemClock",
    "Task",
    "TaskOptions",
    "ValidationError",
    "Worker",
    "WorkerConfig",
    "__version__",
    "current_job",
    "group",
]
