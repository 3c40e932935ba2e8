"""The worker runtime."""

from jobqueue.worker.worker import Worker, WorkerConfig

__all__ = ["Worker", "WorkerConfig"]
