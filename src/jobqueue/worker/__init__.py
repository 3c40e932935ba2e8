"""The worker runtime: :class:`Worker` runs jobs; :func:`recover_expired` is its reaper's rule."""

from jobqueue.worker.config import WorkerConfig
from jobqueue.worker.reaper import WORKER_LOST, recover_expired
from jobqueue.worker.worker import Worker

__all__ = ["WORKER_LOST", "Worker", "WorkerConfig", "recover_expired"]
