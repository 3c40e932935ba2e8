"""jobqueue: a durable job queue for Python.

The names below are the public API; everything else may change between releases.
"""

from jobqueue.app import JobQueue
from jobqueue.backends import DEFAULT_URL, create_backend
from jobqueue.backends.base import (
    Accepted,
    Backend,
    Capabilities,
    ClaimParams,
    Completion,
    Duplicate,
    EnqueueOutcome,
    Failure,
    Lease,
    ListParams,
    Page,
    PruneParams,
    PruneResult,
    QueueStats,
    Rejected,
    Stats,
)
from jobqueue.backends.memory import MemoryBackend
from jobqueue.backends.sqlite import SQLiteBackend
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
    ValidationError,
)
from jobqueue.job import TRANSITIONS, Job, JobState, NewJob
from jobqueue.recovery import recover_expired
from jobqueue.retry import RetryPolicy
from jobqueue.task import Task, TaskOptions, current_job
from jobqueue.worker import Worker, WorkerConfig

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_URL",
    "TRANSITIONS",
    "Accepted",
    "Backend",
    "BackendError",
    "BackendUnavailable",
    "Capabilities",
    "ClaimParams",
    "Clock",
    "Completion",
    "ConfigurationError",
    "Duplicate",
    "EnqueueOutcome",
    "Failure",
    "FakeClock",
    "InvalidTransition",
    "Job",
    "JobNotFound",
    "JobQueue",
    "JobQueueError",
    "JobState",
    "Lease",
    "ListParams",
    "MemoryBackend",
    "NewJob",
    "Page",
    "PermanentError",
    "PruneParams",
    "PruneResult",
    "QueueFull",
    "QueueStats",
    "Rejected",
    "Retry",
    "RetryPolicy",
    "SQLiteBackend",
    "Stats",
    "SystemClock",
    "Task",
    "TaskOptions",
    "ValidationError",
    "Worker",
    "WorkerConfig",
    "__version__",
    "create_backend",
    "current_job",
    "recover_expired",
]
